/* status_doc.c: see status_doc.h. */
#include "status_doc.h"

#include <jansson.h>
#include <string.h>

#include "banned.h"

#define STATUS_DOC_DEFINE(id, where, key) const char id[] = key;
STATUS_DOC_KEYS(STATUS_DOC_DEFINE)
#undef STATUS_DOC_DEFINE

const struct status_doc_key status_doc_keys[] = {
#define STATUS_DOC_ENTRY(id, where, key) { where, id },
	STATUS_DOC_KEYS(STATUS_DOC_ENTRY)
#undef STATUS_DOC_ENTRY
	{ NULL, NULL },
};

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_t *outcome(const json_t *st)
{
	return json_object_get(st, STATUS_OUTCOME);
}

const char *status_doc_state(const json_t *st)
{
	return str(st, STATUS_STATE);
}

const char *status_doc_run(const json_t *st)
{
	return str(st, STATUS_RUN);
}

const char *status_doc_started(const json_t *st)
{
	return str(st, STATUS_STARTED);
}

const char *status_doc_updated(const json_t *st)
{
	return str(st, STATUS_UPDATED);
}

json_int_t status_doc_elapsed_ms(const json_t *st)
{
	return json_integer_value(json_object_get(st, STATUS_ELAPSED_MS));
}

int status_doc_final(const json_t *st)
{
	return json_is_true(json_object_get(st, STATUS_FINAL));
}

const char *status_doc_outcome_state(const json_t *st)
{
	return str(outcome(st), STATUS_OUTCOME_STATE);
}

int status_doc_exit_code(const json_t *st, json_int_t *code)
{
	json_t *c = json_object_get(outcome(st), STATUS_OUTCOME_EXIT_CODE);
	*code = json_integer_value(c);
	return json_is_integer(c);
}

int status_doc_degraded(const json_t *st)
{
	return json_is_true(json_object_get(outcome(st), STATUS_OUTCOME_DEGRADED));
}

int status_doc_cause(const json_t *st, struct status_cause *c)
{
	json_t *o = json_object_get(outcome(st), STATUS_OUTCOME_CAUSE);
	memset(c, 0, sizeof *c);
	if (!json_is_object(o))
		return 0;
	c->kind = str(o, STATUS_CAUSE_KIND);
	c->what = str(o, STATUS_CAUSE_WHAT);
	c->stage = str(o, STATUS_CAUSE_STAGE);
	c->how = str(o, STATUS_CAUSE_HOW);
	c->check = str(o, STATUS_CAUSE_CHECK);
	c->msg = str(o, STATUS_CAUSE_MSG);
	c->error = str(o, STATUS_CAUSE_ERROR);
	return 1;
}

static json_t *object_or_null(json_t *o)
{
	return json_is_object(o) ? o : NULL;
}

json_t *status_doc_command(const json_t *st)
{
	return object_or_null(json_object_get(st, STATUS_COMMAND));
}

json_t *status_doc_pending_command(const json_t *st)
{
	return object_or_null(json_object_get(outcome(st), STATUS_OUTCOME_PENDING_COMMAND));
}

json_t *status_doc_recent_command(const json_t *st, size_t i)
{
	return json_array_get(json_object_get(st, STATUS_COMMANDS), i);
}

int status_doc_command_read(const json_t *obj, struct status_command *c)
{
	json_t *hcack = json_object_get(obj, STATUS_CMD_HCACK), *into = json_object_get(obj, STATUS_CMD_INTO);
	memset(c, 0, sizeof *c);
	if (!json_is_object(obj))
		return 0;
	c->id = json_integer_value(json_object_get(obj, STATUS_CMD_ID));
	c->from = json_integer_value(json_object_get(obj, STATUS_CMD_FROM));
	c->op = str(obj, STATUS_CMD_OP);
	c->by = str(obj, STATUS_CMD_BY);
	c->fate = str(obj, STATUS_CMD_FATE);
	c->fate_by = str(obj, STATUS_CMD_FATE_BY);
	c->reason = str(obj, STATUS_CMD_REASON);
	c->has_hcack = json_is_integer(hcack);
	c->hcack = json_integer_value(hcack);
	c->has_into = json_is_integer(into);
	c->into = json_integer_value(into);
	return 1;
}

json_t *status_doc_stages(const json_t *st)
{
	json_t *a = json_object_get(st, STATUS_STAGES);
	return json_is_array(a) ? a : NULL;
}

int status_doc_stage(const json_t *st, size_t i, struct status_stage *s)
{
	json_t *o = json_array_get(status_doc_stages(st), i), *q, *io, *age, *link;
	memset(s, 0, sizeof *s);
	if (!o)
		return 0;
	s->name = str(o, STATUS_STAGE_NAME);
	s->state = str(o, STATUS_STAGE_STATE);
	s->verdict = str(o, STATUS_STAGE_VERDICT);
	s->signal = str(o, STATUS_STAGE_SIGNAL);
	s->pid = json_integer_value(json_object_get(o, STATUS_STAGE_PID));
	s->exit = json_integer_value(json_object_get(o, STATUS_STAGE_EXIT));
	s->counters = json_object_get(o, STATUS_STAGE_COUNTERS);
	q = json_object_get(o, STATUS_STAGE_QUEUE);
	s->has_queue = json_is_integer(json_object_get(q, STATUS_QUEUE_BYTES));
	s->queue_bytes = json_integer_value(json_object_get(q, STATUS_QUEUE_BYTES));
	s->queue_cap = json_integer_value(json_object_get(q, STATUS_QUEUE_CAP));
	s->queue_fill = json_number_value(json_object_get(q, STATUS_QUEUE_FILL));
	io = json_object_get(o, STATUS_STAGE_IO);
	s->has_io = json_is_object(io);
	s->io_rchar = json_integer_value(json_object_get(io, STATUS_IO_RCHAR));
	s->io_wchar = json_integer_value(json_object_get(io, STATUS_IO_WCHAR));
	age = json_object_get(o, STATUS_STAGE_PROGRESS_AGE_MS);
	s->has_progress_age = json_is_integer(age);
	s->progress_age_ms = json_integer_value(age);
	link = json_object_get(o, STATUS_STAGE_LINK);
	s->link_state = str(link, STATUS_LINK_STATE);
	if (s->link_state) {
		s->link_since = str(link, STATUS_LINK_SINCE);
		s->link_cause = str(link, STATUS_LINK_CAUSE);
	}
	return 1;
}

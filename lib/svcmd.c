/* svcmd.c: see svcmd.h. */
#include "util.h"
#include "event.h"
#include "svcmd.h"
#include "status_doc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static const char *const fate_names[SVC__COUNT] = {
	"requested", "queued", "sent", "accepted", "confirmed", "refused", "timed_out",
	"superseded", "merged",
};

const char *svc_fate_name(enum svc_fate f)
{
	return (unsigned)f < SVC__COUNT ? fate_names[f] : "?";
}

int svc_fate_parse(const char *name)
{
	return name_index(name, fate_names, SVC__COUNT);
}

int svc_fate_final(enum svc_fate f)
{
	return f >= SVC_CONFIRMED && f < SVC__COUNT;
}

static void now_str(char out[40])
{
	struct timespec ts;
	real_now(&ts);
	event_time_fmt(&ts, out);
}

struct svc *svc_new(struct svc_list *l, const char *op, const char *by, long from)
{
	struct svc *c;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = xrealloc(l->v, (size_t)l->cap * sizeof *l->v);
	}
	c = &l->v[l->n++];
	memset(c, 0, sizeof *c);
	c->id = l->n;
	snprintf(c->op, sizeof c->op, "%s", op);
	snprintf(c->by, sizeof c->by, "%s", by);
	c->from = from;
	c->cmd_id = -1;
	c->hcack = -1;
	c->fate = SVC_REQUESTED;
	c->fate_by = "kerf";
	now_str(c->requested);
	memcpy(c->since, c->requested, sizeof c->since);
	return c;
}

struct svc *svc_get(struct svc_list *l, int id)
{
	return id >= 1 && id <= l->n ? &l->v[id - 1] : NULL;
}

void svc_set(struct svc *c, enum svc_fate f, const char *fate_by, const char *reason)
{
	c->fate = f;
	c->fate_by = fate_by;
	if (reason) {
		free(c->reason);
		c->reason = xstrdup(reason);
	}
	now_str(c->since);
}

static struct svc *by_cmd_id(struct svc_list *l, long cmd_id)
{
	for (int i = 0; i < l->n; i++)
		if (l->v[i].cmd_id == cmd_id)
			return &l->v[i];
	return NULL;
}

struct svc *svc_record(struct svc_list *l, json_t *rec, int *late)
{
	json_t *jid = json_object_get(rec, "cmd_id");
	const char *op = json_string_value(json_object_get(rec, "command"));
	const char *by = json_string_value(json_object_get(rec, "by"));
	const char *reason = json_string_value(json_object_get(rec, "reason"));
	json_t *hcack = json_object_get(rec, "hcack"), *into = json_object_get(rec, "into");
	int fate = svc_fate_parse(json_string_value(json_object_get(rec, "fate")));
	struct svc *c;

	*late = 0;
	if (!json_is_integer(jid) || !op || !*op || fate < 0)
		return NULL;
	if (!by)
		by = "operator";
	c = by_cmd_id(l, (long)json_integer_value(jid));
	if (!c && !strcmp(by, "operator"))
		for (int i = 0; i < l->n && !c; i++) {
			struct svc *o = &l->v[i];
			if (o->cmd_id < 0 && !svc_fate_final(o->fate) && !strcmp(o->by, "operator") &&
			    !strcmp(o->op, op))
				c = o;
		}
	if (!c)
		c = svc_new(l, op, by, 0);
	c->cmd_id = (long)json_integer_value(jid);
	if (svc_fate_final(c->fate)) {
		*late = 1;
		return c;
	}
	if (json_is_integer(hcack))
		c->hcack = (long)json_integer_value(hcack);
	if (json_is_integer(into)) {
		struct svc *t = by_cmd_id(l, (long)json_integer_value(into));
		c->into = t ? t->id : 0;
	}
	svc_set(c, (enum svc_fate)fate, "tool", reason);
	return c;
}

json_t *svc_json(const struct svc *c)
{
	return json_pack("{s:i, s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:o, s:o, s:s, s:s}",
			 STATUS_CMD_ID, c->id, STATUS_CMD_OP, c->op, STATUS_CMD_BY, c->by,
			 STATUS_CMD_FROM, c->from ? json_integer(c->from) : json_null(),
			 STATUS_CMD_CMD_ID, c->cmd_id >= 0 ? json_integer(c->cmd_id) : json_null(),
			 STATUS_CMD_FATE, svc_fate_name(c->fate), STATUS_CMD_FATE_BY, c->fate_by,
			 STATUS_CMD_HCACK, c->hcack >= 0 ? json_integer(c->hcack) : json_null(),
			 STATUS_CMD_INTO, c->into ? json_integer(c->into) : json_null(),
			 STATUS_CMD_REASON, c->reason ? json_string(c->reason) : json_null(),
			 STATUS_CMD_REQUESTED, c->requested, STATUS_CMD_SINCE, c->since);
}

json_t *svc_recent_json(const struct svc_list *l, int max)
{
	json_t *a = json_array();
	for (int i = l->n > max ? l->n - max : 0; i < l->n; i++)
		json_array_append_new(a, svc_json(&l->v[i]));
	return a;
}

void svc_release(struct svc_list *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i].reason);
	free(l->v);
	memset(l, 0, sizeof *l);
}

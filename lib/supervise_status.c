/*
 * supervise_status.c: the run's account: the cause, the stages' and the
 * outcome's JSON, status.json (and metrics.prom from it), summary.json
 * and the run's end.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "atomic.h"
#include "supervise.h"
#include "supervise_int.h"
#include "status_doc.h"
#include "status_metrics.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "banned.h"

const char *sv_sig_name(int sig)
{
	const char *s = sigabbrev_np(sig);
	return s ? s : "?";
}

json_t *sv_stage_ref(const struct sv_stage *s)
{
	return json_pack("{s:s, s:I}", "stage", s->name, "pid", (json_int_t)s->pid);
}

void sv_how_str(const struct sv_stage *s, char *out, size_t len)
{
	if (s->sig)
		snprintf(out, len, "signal %s", sv_sig_name(s->sig));
	else
		snprintf(out, len, "exit %d", s->code);
}

const char *sv_cause_kind_name(enum cause_kind c)
{
	switch (c) {
	case C_FAULT: return "fault";
	case C_ALARM: return "alarm";
	case C_OPERATOR: return "operator";
	case C_TIMEOUT: return "timeout";
	case C_PREP: return "preparation";
	default: return "none";
	}
}

static json_t *cause_json(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	json_t *c;
	if (p->cause == C_NONE)
		return json_null();
	c = json_pack("{s:s, s:s}", STATUS_CAUSE_KIND, sv_cause_kind_name(p->cause), STATUS_CAUSE_WHAT,
		      p->cause_what);
	if (p->cause_stage >= 0) {
		json_object_set_new(c, STATUS_CAUSE_STAGE, json_string(sv->st[p->cause_stage].name));
		json_object_set_new(c, STATUS_CAUSE_HOW, json_string(p->cause_how));
	}
	if (p->cause_check[0])
		json_object_set_new(c, STATUS_CAUSE_CHECK, json_string(p->cause_check));
	if (p->cause_msg[0])
		json_object_set_new(c, STATUS_CAUSE_MSG, json_string(p->cause_msg));
	/* Why the stage failed, in its own words ("cannot write ...: No
	 * space left on device"), when it logged an error. */
	if (p->cause_stage >= 0 && sv->st[p->cause_stage].last_error)
		json_object_set_new(c, STATUS_CAUSE_ERROR, json_string(sv->st[p->cause_stage].last_error));
	return c;
}

static json_t *stage_json(struct supervisor *sv, int i)
{
	struct sv_stage *s = &sv->st[i];
	json_t *o = json_object(), *argv = json_array();
	const char *state = !s->started ? "pending" : s->exited ? "exited" : "running";

	if (s->started && !s->exited && i == 0 && sv->p->rs->state == RS_PAUSED)
		state = "paused";
	json_object_set_new(o, STATUS_STAGE_NAME, json_string(s->name));
	for (int a = 0; a < s->argc; a++)
		json_array_append_new(argv, json_string(s->argv[a]));
	json_object_set_new(o, STATUS_STAGE_ARGV, argv);
	json_object_set_new(o, STATUS_STAGE_OPTIONAL, json_boolean(s->optional));
	json_object_set_new(o, STATUS_STAGE_PID, s->pid ? json_integer(s->pid) : json_null());
	json_object_set_new(o, STATUS_STAGE_STATE, json_string(state));
	if (s->exited) {
		json_object_set_new(o, STATUS_STAGE_EXIT, s->sig ? json_null() : json_integer(s->code));
		json_object_set_new(o, STATUS_STAGE_SIGNAL, s->sig ? json_string(sv_sig_name(s->sig)) : json_null());
		json_object_set_new(o, STATUS_STAGE_VERDICT, json_string(blame_verdict_name(s->verdict)));
	}
	json_object_set_new(o, STATUS_STAGE_COUNTERS, s->counters ? json_incref(s->counters) : json_object());
	if (s->link)
		json_object_set(o, STATUS_STAGE_LINK, s->link);
	if (i > 0) {
		json_t *q = json_object();
		if (s->q_ok) {
			json_object_set_new(q, STATUS_QUEUE_BYTES, json_integer(s->q_bytes));
			json_object_set_new(q, STATUS_QUEUE_CAP, json_integer(s->q_cap));
			json_object_set_new(q, STATUS_QUEUE_FILL,
					    json_real(s->q_cap ? (double)s->q_bytes / (double)s->q_cap : 0));
		}
		json_object_set_new(o, STATUS_STAGE_QUEUE, q);
	}
	if (s->io_ok)
		json_object_set_new(o, STATUS_STAGE_IO, json_pack("{s:I, s:I}", STATUS_IO_RCHAR, (json_int_t)s->rchar,
								  STATUS_IO_WCHAR, (json_int_t)s->wchar));
	if (s->started && !s->exited && s->progress_ms)
		json_object_set_new(o, STATUS_STAGE_PROGRESS_AGE_MS,
				    json_integer((json_int_t)(mono_ms() - s->progress_ms)));
	return o;
}

int sv_exit_code_of(struct supervisor *sv)
{
	switch (sv->p->cause) {
	case C_NONE: return KERF_EX_OK;
	case C_ALARM: return KERF_EX_ALARM;
	case C_OPERATOR: return KERF_EX_CANCELLED;
	case C_TIMEOUT: return KERF_EX_TIMEOUT;
	default: return KERF_EX_FAILED;
	}
}

static json_t *outcome_json(struct supervisor *sv, int final)
{
	struct sv_private *p = sv->p;
	json_t *o = json_object(), *deg = json_array();
	for (int i = 0; i < sv->n; i++)
		if (sv->st[i].verdict == BLAME_DEGRADED || (sv->st[i].optional && !sv->st[i].path))
			json_array_append_new(deg, json_string(sv->st[i].name));
	json_object_set_new(o, STATUS_OUTCOME_STATE, json_string(runstate_state_name(p->rs->state)));
	json_object_set_new(o, STATUS_OUTCOME_EXIT_CODE, final ? json_integer(sv_exit_code_of(sv)) : json_null());
	json_object_set_new(o, STATUS_OUTCOME_CAUSE, cause_json(sv));
	json_object_set_new(o, STATUS_OUTCOME_DEGRADED, json_boolean(p->degraded));
	json_object_set_new(o, STATUS_OUTCOME_DEGRADED_STAGES, deg);
	json_object_set_new(o, STATUS_OUTCOME_PENDING_COMMAND,
			    p->pending_end ? svc_json(svc_get(&p->cmds, p->pending_end)) : json_null());
	return o;
}

void sv_write_status(struct supervisor *sv, int final)
{
	json_t *body = json_object(), *stages = json_array(), *doc;
	for (int i = 0; i < sv->n; i++)
		json_array_append_new(stages, stage_json(sv, i));
	json_object_set_new(body, STATUS_OUTCOME, outcome_json(sv, final));
	json_object_set_new(body, STATUS_FINAL, json_boolean(final));
	json_object_set_new(body, STATUS_COMMAND,
			    sv->p->cmds.n ? svc_json(svc_get(&sv->p->cmds, sv->p->cmds.n)) : json_null());
	json_object_set_new(body, STATUS_COMMANDS, svc_recent_json(&sv->p->cmds, SV_RECENT_COMMANDS));
	json_object_set_new(body, STATUS_STAGES, stages);
	json_object_set_new(body, STATUS_CHECKS, sv_checks_json(sv));
	json_object_set_new(body, STATUS_OPTIONS,
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
				      STATUS_OPT_GRACE_MS, (json_int_t)sv->opt.grace_ms,
				      STATUS_OPT_DEADLINE_MS, (json_int_t)sv->opt.deadline_ms,
				      STATUS_OPT_STALL_MS, (json_int_t)sv->opt.stall_ms,
				      STATUS_OPT_READY_MS, (json_int_t)sv->opt.ready_ms,
				      STATUS_OPT_TICK_MS, (json_int_t)sv->opt.tick_ms,
				      STATUS_OPT_MIN_FREE, (json_int_t)sv->opt.min_free));
	doc = runstate_status_doc(sv->p->rs, body);
	runstate_write_status(sv->p->rs, doc, final);
	/* The same document for monitoring, beside it. */
	if (status_metrics_write(sv->p->rs->dir, doc) != 0 && !sv->p->metrics_warned) {
		/* Once: a full disk stays full for every tick after. */
		log_msg(LOG_WARN, NULL, "cannot write '%s/" STATUS_METRICS_FILE "': %s", sv->p->rs->dir,
			strerror(errno));
		sv->p->metrics_warned = 1;
	}
	json_decref(doc);
	json_decref(body);
}

void sv_fire(struct supervisor *sv, enum runstate_event e, json_t *fields)
{
	enum runstate_state before = sv->p->rs->state;
	runstate_fire(sv->p->rs, e, fields);
	if (sv->p->rs->state != before)
		sv_write_status(sv, runstate_is_final(sv->p->rs->state));
}

void sv_set_cause(struct supervisor *sv, enum cause_kind k, const char *what, int stage,
		  const char *how, const char *msg)
{
	struct sv_private *p = sv->p;
	/* The first cause wins, except that a fault or a critical alarm
	 * while the operator's stop drains the pipeline is worse than the
	 * stop: events may be lost, the tool needs attention. */
	if (p->cause != C_NONE && !(p->cause == C_OPERATOR && (k == C_FAULT || k == C_ALARM)))
		return;
	p->cause = k;
	snprintf(p->cause_what, sizeof p->cause_what, "%s", what);
	p->cause_stage = stage;
	p->cause_how[0] = '\0';
	if (stage >= 0 && how)
		snprintf(p->cause_how, sizeof p->cause_how, "%s", how);
	else if (stage >= 0) {
		sv_how_str(&sv->st[stage], p->cause_how, sizeof p->cause_how);
		p->cause_exit_us = sv->st[stage].exit_us;
	}
	snprintf(p->cause_msg, sizeof p->cause_msg, "%s", msg ? msg : "");
	p->cause_us = mono_us();
	runstate_note(p->rs, "cause", json_pack("{s:o}", "cause", cause_json(sv)));
}

static void write_summary(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	char *path = xasprintf("%s/summary.json", p->rs->dir);
	json_t *sum = json_load_file(path, 0, NULL), *o = outcome_json(sv, 1);
	char *s;

	if (!sum || !json_is_object(sum)) {
		json_decref(sum);
		sum = json_pack("{s:s}", "run", p->rs->run);
	}
	/* The outcome goes in an "outcome" object; persist's totals stay. */
	json_object_set_new(sum, "outcome", o);
	s = json_dumps(sum, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	if (s) {
		size_t n = strlen(s);
		s[n] = '\n';
		if (atomic_write_file(path, s, n + 1) != 0)
			log_msg(LOG_WARN, NULL, "cannot write '%s': %s", path, strerror(errno));
		free(s);
	}
	json_decref(sum);
	free(path);
}

void sv_finish(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	enum runstate_event e;

	if (p->rs->state == RS_PREPARING && p->cause == C_NONE)
		sv_fire(sv, RSE_READY, NULL);
	sv_checks_close(sv, CK_CANCELLED, "the run ended before the check did");
	sv_cmd_close_pending(sv);
	switch (p->cause) {
	case C_NONE: e = RSE_DONE_OK; break;
	case C_OPERATOR: e = RSE_DONE_CANCELLED; break;
	case C_TIMEOUT: e = RSE_DONE_TIMEOUT; break;
	default: e = RSE_DONE_FAILED; break;
	}
	runstate_fire(p->rs, e, json_pack("{s:i}", "exit_code", sv_exit_code_of(sv)));
	write_summary(sv);
	sv_write_status(sv, 1);
}

/*
 * supervise_command.c: commands to the tool: the operator's signals,
 * each command's fate, and what pause, resume and stop do to the run.
 */
#include "log.h"
#include "supervise.h"
#include "supervise_int.h"

#include <jansson.h>
#include <string.h>
#include <sys/signalfd.h>

#include "banned.h"

static int transitional(enum runstate_state s)
{
	return s == RS_PAUSING || s == RS_RESUMING || s == RS_STOP_REQUESTED;
}

/* The command a pausing, resuming or stop-requested run waits on. */
struct svc *sv_awaited(struct supervisor *sv)
{
	return transitional(sv->p->rs->state) ? svc_get(&sv->p->cmds, sv->p->awaiting) : NULL;
}

/* Preparing, or a stop requested while preparing: the readiness wait goes on. */
int sv_preparing(struct supervisor *sv)
{
	struct runstate *rs = sv->p->rs;
	return rs->state == RS_PREPARING || (rs->state == RS_STOP_REQUESTED && rs->settled == RS_PREPARING);
}

/* The timeline's "command" record: the command as it is now. */
static void cmd_note(struct supervisor *sv, int id, json_t *extra)
{
	json_t *f = svc_json(svc_get(&sv->p->cmds, id));
	json_object_set_new(f, "state", json_string(runstate_state_name(sv->p->rs->state)));
	if (extra) {
		json_object_update(f, extra);
		json_decref(extra);
	}
	runstate_note(sv->p->rs, "command", f);
}

/* A transition's fields: the command that made it. */
json_t *sv_cmd_ref(struct supervisor *sv, int id)
{
	struct svc *c = svc_get(&sv->p->cmds, id);
	json_t *f = json_pack("{s:s, s:i, s:s, s:s}", "command", c->op, "id", c->id, "fate",
			      svc_fate_name(c->fate), "fate_by", c->fate_by);
	if (c->reason)
		json_object_set_new(f, "reason", json_string(c->reason));
	return f;
}

/*
 * Command 'id' has a new fate: what it does to the run's state.  The
 * awaited command's confirmation moves pausing, resuming and
 * stop-requested on; its refusal or timeout moves them back (a stop to
 * the settled state, and the next stop is a first stop again).  A stop
 * superseded by the tool (only an abort goes ahead of it) leaves the
 * run in stop-requested: the abort's outcome ends it.  A command merged
 * into another makes the run wait on that one.  While a stop is
 * requested, the tool's confirmation of an earlier pause or resume
 * settles where a refused stop goes back to.
 */
static void cmd_fate(struct supervisor *sv, int id)
{
	struct sv_private *p = sv->p;
	struct svc *c = svc_get(&p->cmds, id), *w = sv_awaited(sv);
	int stop;

	if (!c || !svc_fate_final(c->fate))
		return;
	stop = !strcmp(c->op, "stop");
	if (w && w->id == c->id) {
		switch (c->fate) {
		case SVC_MERGED: {
			struct svc *t = svc_get(&p->cmds, c->into);
			if (t && t->id != c->id && !strcmp(t->op, c->op)) {
				p->awaiting = t->id;
				cmd_fate(sv, t->id);
			}
			return;
		}
		case SVC_CONFIRMED:
			if (stop) {
				sv_set_cause(sv, C_OPERATOR, "operator_stop", -1, NULL, "operator stop");
				sv_fire(sv, RSE_STOP_CONFIRMED, sv_cmd_ref(sv, id));
			} else {
				sv_fire(sv, !strcmp(c->op, "pause") ? RSE_PAUSED : RSE_RESUMED, sv_cmd_ref(sv, id));
			}
			return;
		case SVC_SUPERSEDED:
			if (stop)
				return;
			/* fall through */
		case SVC_REFUSED:
		case SVC_TIMED_OUT:
			if (stop) {
				p->stops = 0;
				/* The stop's SIGTERM came to nothing: the first
				 * stage's later exit is judged on its own, not
				 * as the stop's consequence. */
				if (!p->tearing && sv->st[0].signalled == SIGTERM)
					sv->st[0].signalled = 0;
			}
			sv_fire(sv, c->fate == SVC_TIMED_OUT ? RSE_CMD_TIMED_OUT : RSE_CMD_REFUSED, sv_cmd_ref(sv, id));
			return;
		default:
			return;
		}
	}
	if (c->fate == SVC_CONFIRMED && p->rs->state == RS_STOP_REQUESTED && !strcmp(c->by, "operator")) {
		if (!strcmp(c->op, "pause"))
			sv_fire(sv, RSE_PAUSED, sv_cmd_ref(sv, id));
		else if (!strcmp(c->op, "resume"))
			sv_fire(sv, RSE_RESUMED, sv_cmd_ref(sv, id));
	}
}

/* kerf decides a command's fate itself (the tool cannot, or did not). */
void sv_cmd_decide(struct supervisor *sv, int id, enum svc_fate f, const char *reason)
{
	struct svc *c = svc_get(&sv->p->cmds, id);
	if (!c || svc_fate_final(c->fate))
		return;
	svc_set(c, f, "kerf", reason);
	cmd_note(sv, id, NULL);
	cmd_fate(sv, id);
	sv_write_status(sv, 0);
}

/*
 * Whether the first stage reports what becomes of commands (kerf(7)):
 * yes from its first command record on; no when it has become ready,
 * or has exited, without one.  Then kerf confirms every pending command
 * itself, and every later one as soon as it has signalled it.
 */
void sv_decide_reports(struct supervisor *sv, int reports, const char *why)
{
	struct sv_private *p = sv->p;

	if (p->reports == reports)
		return;
	if (p->reports == 0)
		log_msg(LOG_WARN, NULL, "stage '%s' reports commands only now; kerf confirmed the earlier ones itself",
			sv->st[0].name);
	p->reports = reports;
	runstate_note(p->rs, "command_reporting", json_pack("{s:s, s:b, s:s}", "stage", sv->st[0].name,
							    "reports", reports, "why", why));
	for (int id = 1; !reports && id <= p->cmds.n; id++) {
		struct svc *c = svc_get(&p->cmds, id);
		if (!svc_fate_final(c->fate) && !strcmp(c->by, "operator"))
			sv_cmd_decide(sv, id, SVC_CONFIRMED, NO_REPORTS);
	}
}

/* A first stage's log record: when it is a command record, its fate. */
void sv_command_record(struct supervisor *sv, json_t *rec)
{
	struct sv_private *p = sv->p;
	int late, id;
	struct svc *c = svc_record(&p->cmds, rec, &late);

	if (!c)
		return;
	id = c->id;
	sv_decide_reports(sv, 1, "it logged a command record");
	/* A fate after the final one (kerf decided first) changes nothing. */
	cmd_note(sv, id, late ? json_pack("{s:b, s:O}", "late", 1, "tool_fate", json_object_get(rec, "fate")) : NULL);
	if (!late)
		cmd_fate(sv, id);
	sv_write_status(sv, 0);
}

/* The run ends: a command still pending is superseded by kerf, and the
 * one the run waited on is the outcome's pending_command. */
void sv_cmd_close_pending(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	struct svc *w = sv_awaited(sv);
	char reason[160];

	if (w && !p->pending_end)
		p->pending_end = w->id;
	for (int id = 1; id <= p->cmds.n; id++) {
		struct svc *c = svc_get(&p->cmds, id);
		if (svc_fate_final(c->fate))
			continue;
		if (p->cause == C_ALARM)
			snprintf(reason, sizeof reason, "a critical alarm ended the run while the %s was pending", c->op);
		else if (p->cause == C_NONE)
			snprintf(reason, sizeof reason, "the tool completed the lot while the %s was pending", c->op);
		else
			snprintf(reason, sizeof reason, "the run ended (%s) while the %s was pending",
				 sv_cause_kind_name(p->cause), c->op);
		svc_set(c, SVC_SUPERSEDED, "kerf", reason);
		cmd_note(sv, id, NULL);
	}
}

static void operator_stop(struct supervisor *sv, int abort_now, const char *via, long from)
{
	struct sv_private *p = sv->p;
	int id;

	if (abort_now || p->stops > 1) {
		id = svc_new(&p->cmds, "abort", "operator", from)->id;
		log_msg(LOG_WARN, NULL, "aborting the run (%s)", via);
		sv_set_cause(sv, C_OPERATOR, "abort", -1, NULL, "operator abort");
		if (p->cause == C_OPERATOR) {
			snprintf(p->cause_what, sizeof p->cause_what, "abort");
			snprintf(p->cause_msg, sizeof p->cause_msg, "operator abort");
		}
		sv_teardown(sv, "abort");
		/* An abort goes ahead of everything: kerf does it, at once. */
		for (int k = 1; k < id; k++) {
			struct svc *c = svc_get(&p->cmds, k);
			if (!svc_fate_final(c->fate) && !strcmp(c->by, "operator")) {
				svc_set(c, SVC_SUPERSEDED, "kerf", "an abort went ahead of it");
				cmd_note(sv, k, NULL);
			}
		}
		svc_set(svc_get(&p->cmds, id), SVC_CONFIRMED, "kerf", "kerf tears the pipeline down");
		cmd_note(sv, id, NULL);
		{
			json_t *f = sv_cmd_ref(sv, id);
			json_object_set_new(f, "via", json_string(via));
			sv_fire(sv, RSE_ABORT, f);
		}
		sv_write_status(sv, 0);
		return;
	}
	id = svc_new(&p->cmds, "stop", "operator", from)->id;
	if (p->cause != C_NONE || sv->st[0].exited) {
		sv_cmd_decide(sv, id, SVC_REFUSED, p->cause != C_NONE ? "the run is already stopping"
				   : "the first stage has ended: the lot is done and the pipeline drains");
		return;
	}
	log_msg(LOG_INFO, NULL, "stopping acquisition; the pipeline drains (%s)", via);
	sv_signal_stage(sv, 0, SIGTERM, "operator_stop");
	if (p->paused_by_stop) {
		sv_signal_stage(sv, 0, SIGCONT, "operator_stop");
		p->paused_by_stop = 0;
	}
	cmd_note(sv, id, NULL);
	p->awaiting = id;
	{
		json_t *f = sv_cmd_ref(sv, id);
		json_object_set_new(f, "via", json_string(via));
		sv_fire(sv, RSE_STOP, f);
	}
	if (p->reports == 0)
		sv_cmd_decide(sv, id, SVC_CONFIRMED, NO_REPORTS);
	sv_write_status(sv, 0);
}

/*
 * Pause or resume: one of them pending at a time.  The same again while
 * it is pending joins it (merged); anything that does not apply in the
 * run's state is refused by kerf, with the reason, and changes nothing.
 */
static void operator_pause(struct supervisor *sv, int pause, long from)
{
	struct sv_private *p = sv->p;
	struct sv_stage *s = &sv->st[0];
	const char *op = pause ? "pause" : "resume";
	enum runstate_state want = pause ? RS_RUNNING : RS_PAUSED;
	int id = svc_new(&p->cmds, op, "operator", from)->id;
	struct svc *w = sv_awaited(sv);
	char why[160];

	if (w && !strcmp(w->op, op)) {
		svc_get(&p->cmds, id)->into = w->id;
		snprintf(why, sizeof why, "joins command %d, pending", w->id);
		sv_cmd_decide(sv, id, SVC_MERGED, why);
		return;
	}
	if (p->rs->state != want || s->exited) {
		if (w)
			snprintf(why, sizeof why, "a %s is pending (command %d)", w->op, w->id);
		else if (p->rs->state == (pause ? RS_PAUSED : RS_RUNNING))
			snprintf(why, sizeof why, "the run is %s already", pause ? "paused" : "running");
		else if (p->rs->state != want)
			snprintf(why, sizeof why, "the run is %s", runstate_state_name(p->rs->state));
		else
			snprintf(why, sizeof why, "the first stage has ended");
		sv_cmd_decide(sv, id, SVC_REFUSED, why);
		return;
	}
	/* kerf-acquire pauses at a die boundary on SIGUSR1; a foreign
	 * first stage knows nothing of that and is stopped instead. */
	if (s->is_acquire)
		sv_signal_stage(sv, 0, pause ? SIGUSR1 : SIGUSR2, op);
	else {
		sv_signal_stage(sv, 0, pause ? SIGSTOP : SIGCONT, op);
		p->paused_by_stop = pause;
	}
	cmd_note(sv, id, NULL);
	p->awaiting = id;
	sv_fire(sv, pause ? RSE_PAUSE : RSE_RESUME, sv_cmd_ref(sv, id));
	if (!s->is_acquire)
		sv_cmd_decide(sv, id, SVC_CONFIRMED, pause ? "SIGSTOP takes effect at once" : "SIGCONT takes effect at once");
	else if (p->reports == 0)
		sv_cmd_decide(sv, id, SVC_CONFIRMED, NO_REPORTS);
	sv_write_status(sv, 0);
}

void sv_handle_signals(struct supervisor *sv)
{
	struct signalfd_siginfo si;
	while (read(sv->p->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		int sig = (int)si.ssi_signo;
		long from = (long)si.ssi_pid;
		char via[48];
		snprintf(via, sizeof via, "SIG%s from pid %u", sv_sig_name(sig), si.ssi_pid);
		runstate_note(sv->p->rs, "signal_received",
			      json_pack("{s:s, s:I}", "sig", sv_sig_name(sig), "from", (json_int_t)si.ssi_pid));
		switch (sig) {
		case SIGINT:
		case SIGTERM:
		case SIGHUP:
			sv->p->stops++;
			operator_stop(sv, 0, via, from);
			break;
		case SIGQUIT:
			operator_stop(sv, 1, via, from);
			break;
		case SIGUSR1:
			operator_pause(sv, 1, from);
			break;
		case SIGUSR2:
			operator_pause(sv, 0, from);
			break;
		default:
			break;
		}
	}
}

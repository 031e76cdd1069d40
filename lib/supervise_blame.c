/*
 * supervise_blame.c: the stages' exits, judged by lib/blame.h's rules
 * (the facts gathered here) and acted on: the cause, degradation, the
 * critical alarm, the suspects' timers.
 */
#include "util.h"
#include "log.h"
#include "supervise.h"
#include "supervise_int.h"

#include <jansson.h>
#include <signal.h>
#include <string.h>

#include "banned.h"

/*
 * What stage i's exit was.  A broken pipe (SIGPIPE, or exit 74: what a
 * stage does on EPIPE) only with a critical stage downstream of it: no
 * stage downstream of the last can have closed its output, and a stage
 * that must outlive an optional consumer is told so (kerf-persist
 * --downstream-optional).  Nor when the stage logged an error of its own
 * (one without reason downstream_closed): exit 74 there is a real I/O
 * error, a full disk say, and must not pass for the consequence of
 * another exit.  Only the first stage's exit 3 is a critical alarm, and
 * only kerf-acquire's.
 */
static enum blame_exit exit_kind(const struct supervisor *sv, int i)
{
	const struct sv_stage *s = &sv->st[i];
	int can_break = i + 1 < sv->n && !sv->st[i + 1].optional && !s->own_error;
	return blame_exit_kind(s->code, s->sig, can_break, i == 0 && s->is_acquire);
}

/*
 * A stage downstream of i has exited in a way that explains i's broken
 * pipe: it failed, or it exited no later than i did (noticed together or
 * before), or i's reader had certainly closed its input (i died of
 * SIGPIPE, or said so with reason downstream_closed).  Otherwise a
 * consumer that ended cleanly after i merely saw i's end of output: it
 * is i's consequence, not its cause.  The certain case matters because
 * a consumer may close its input well before it exits (head(1) does), so
 * that i's exit is noticed first and the consumer's clean exit after it.
 */
static int downstream_exited(struct supervisor *sv, int i)
{
	const struct sv_stage *s = &sv->st[i];
	int closed = s->sig == SIGPIPE || (!s->sig && s->said_closed);

	for (int j = i + 1; j < sv->n; j++) {
		const struct sv_stage *d = &sv->st[j];
		if (d->exited && (closed || d->sig || d->code != 0 || !s->exited ||
				  d->exit_batch <= s->exit_batch))
			return 1;
	}
	return 0;
}

/* No cause yet, or only the operator's stop: a failure now is the first. */
static unsigned first_failure(const struct supervisor *sv)
{
	return (sv->p->cause == C_NONE || sv->p->cause == C_OPERATOR) ? BLAME_FIRST : 0;
}

/* What else has happened, as blame_judge takes it. */
static unsigned facts(struct supervisor *sv, int i)
{
	const struct sv_stage *s = &sv->st[i];
	unsigned f = first_failure(sv);

	if (s->signalled)
		f |= BLAME_SIGNALLED;
	if (sv->p->tearing)
		f |= BLAME_TEARING;
	if (downstream_exited(sv, i))
		f |= BLAME_DOWNSTREAM;
	if (s->optional)
		f |= BLAME_OPTIONAL;
	return f;
}

/* An optional stage failed: the run goes on, degraded. */
static void degrade(struct supervisor *sv, int i)
{
	struct sv_private *p = sv->p;
	struct sv_stage *s = &sv->st[i];
	char how[64];

	sv_how_str(s, how, sizeof how);
	p->degraded = 1;
	log_msg(LOG_WARN, log_is_json() ? json_pack("{s:s, s:s}", "failed_stage", s->name, "how", how) : NULL,
		"optional stage '%s' failed (%s); the run goes on degraded", s->name, how);
	runstate_note(p->rs, "degraded", json_pack("{s:s, s:s}", "stage", s->name, "how", how));
}

/* A critical stage failed: the cause if it is the first, then teardown. */
static void blame(struct supervisor *sv, int i)
{
	struct sv_stage *s = &sv->st[i];
	char how[64];
	int first = first_failure(sv) != 0;

	sv_how_str(s, how, sizeof how);
	if (first) {
		char msg[128];
		s->verdict = BLAME_CAUSE;
		snprintf(msg, sizeof msg, "stage '%s' failed: %s", s->name, how);
		sv_set_cause(sv, C_FAULT, "fault", i, NULL, msg);
		log_msg(LOG_ERROR, log_is_json() ? json_pack("{s:s, s:s}", "failed_stage", s->name, "how", how) : NULL,
			"stage '%s' failed (%s); stopping the run", s->name, how);
	}
	/* Signals first: the status file's fsync can wait. */
	sv_teardown(sv, "fault");
	sv_fire(sv, RSE_FAULT, sv_stage_ref(s));
}

/* Broken pipes waiting for their consumer's exit: a consequence when a
 * stage downstream has exited since, the cause when none did in time. */
void sv_resolve_suspects(struct supervisor *sv)
{
	uint64_t now = mono_ms();
	for (int i = 0; i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		if (s->verdict != BLAME_SUSPECT)
			continue;
		s->verdict = blame_judge(s->exit_kind, facts(sv, i),
					 now >= s->suspect_until ? BLAME_EXPIRED : BLAME_WAITING);
		if (s->verdict == BLAME_SUSPECT)
			continue;
		runstate_note(sv->p->rs, "verdict", json_pack("{s:s, s:s}", "stage", s->name, "verdict",
							     blame_verdict_name(s->verdict)));
		if (s->verdict == BLAME_CAUSE || s->verdict == BLAME_FAILED)
			blame(sv, i);
		else if (s->verdict == BLAME_DEGRADED)
			degrade(sv, i);
	}
}

uint64_t sv_next_suspect(struct supervisor *sv)
{
	uint64_t t = 0;
	for (int i = 0; i < sv->n; i++)
		if (sv->st[i].verdict == BLAME_SUSPECT && (t == 0 || sv->st[i].suspect_until < t))
			t = sv->st[i].suspect_until;
	return t;
}

/*
 * The first stage has exited (noticed now): what it logged first, then
 * whether it reports commands.  A stop it was sent and has not
 * confirmed is confirmed by its exit when the exit is not 0 (a stop
 * before the lot started, a signal) and not a critical alarm's; an exit
 * 0 is the lot completed, the stop pending (kerf(7)).
 */
static void first_exited(struct supervisor *sv)
{
	struct sv_stage *s = &sv->st[0];
	struct svc *w;

	if (sv->p->reports < 0)
		sv_decide_reports(sv, 0, "it exited without a command record");
	w = sv_awaited(sv);
	if (w && !strcmp(w->op, "stop") && !svc_fate_final(w->fate) && (s->sig || s->code != 0) &&
	    exit_kind(sv, 0) != BLAME_EXIT_ALARM) {
		char how[64], why[128];
		sv_how_str(s, how, sizeof how);
		snprintf(why, sizeof why, "the first stage ended (%s) after the stop", how);
		sv_cmd_decide(sv, w->id, SVC_CONFIRMED, why);
	} else if (w && !strcmp(w->op, "stop") && w->fate == SVC_SUPERSEDED && w->fate_by && !strcmp(w->fate_by, "tool") &&
		   (s->sig || s->code != 0) &&
		   exit_kind(sv, 0) != BLAME_EXIT_ALARM) {
		/*
		 * The first stage itself ended the run for the stop (kerf-acquire:
		 * a stop before the tool started the lot, exit 75), superseding
		 * it with no command ahead of it: the stop took effect.
		 */
		sv_set_cause(sv, C_OPERATOR, "operator_stop", -1, NULL, "operator stop");
		sv_fire(sv, RSE_STOP_CONFIRMED, sv_cmd_ref(sv, w->id));
	}
}

/* The exits that happened since the last look, in pipeline order, into
 * 'fresh' (room for every stage); how many. */
static int collect_exits(struct supervisor *sv, int *fresh)
{
	int nf = 0;

	for (int i = 0; i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		siginfo_t si;
		if (!s->started || s->exited || s->pidfd < 0)
			continue;
		memset(&si, 0, sizeof si);
		if (waitid((idtype_t)P_PIDFD, (id_t)s->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
			continue;
		if (si.si_pid == 0)
			continue;
		s->exited = 1;
		s->exit_us = mono_us();
		s->exit_batch = sv->p->batch + 1;
		if (si.si_code == CLD_EXITED)
			s->code = si.si_status;
		else
			s->sig = si.si_status;
		/* What it logged up to its exit, before the exit is judged:
		 * its own error makes an exit 74 no broken pipe. */
		sv_drain_stderr(sv, i);
		fresh[nf++] = i;
	}
	return nf;
}

/* The first judgement of each exit noticed together (lib/blame.h), then
 * the root cause among them moved first, so that it is named before the
 * rest: the highest blame_rank, the most upstream among equals. */
static void judge_exits(struct supervisor *sv, int *fresh, int nf)
{
	int best = -1, rank = 0;

	for (int k = 0; k < nf; k++) {
		struct sv_stage *s = &sv->st[fresh[k]];
		int r;
		s->exit_kind = exit_kind(sv, fresh[k]);
		s->facts = facts(sv, fresh[k]) & ~(unsigned)BLAME_FIRST;
		s->verdict = blame_judge(s->exit_kind, s->facts, BLAME_AT_EXIT);
		if (s->verdict == BLAME_SUSPECT)
			s->suspect_until = mono_ms() + BLAME_SUSPECT_MS;
		r = blame_rank(s->verdict, s->exit_kind);
		if (r > rank) {
			rank = r;
			best = k;
		}
	}
	if (best > 0) {
		int cause = fresh[best];
		fresh[best] = fresh[0];
		fresh[0] = cause;
	}
}

/* A critical alarm ends the run without a teardown; it wins over a
 * pending command, and says so. */
static void alarm_exit(struct supervisor *sv, int i)
{
	struct sv_private *p = sv->p;
	struct svc *w = sv_awaited(sv);
	char msg[160] = "critical alarm";

	if (w)
		snprintf(msg, sizeof msg, "critical alarm while a %s was pending (command %d)", w->op, w->id);
	sv_set_cause(sv, C_ALARM, "alarm", i, NULL, msg);
	if (w && p->cause == C_ALARM && !p->pending_end)
		p->pending_end = w->id;
	sv_fire(sv, RSE_ALARM, sv_stage_ref(&sv->st[i]));
	log_msg(LOG_ERROR, NULL, "stage '%s' ended the run on a critical alarm; "
		"draining the pipeline", sv->st[i].name);
}

/* Stage i's exit, judged: whether it is the first failure now that the
 * exits before it in the batch were acted on; noted; acted on. */
static void exit_judged(struct supervisor *sv, int i)
{
	struct sv_private *p = sv->p;
	struct sv_stage *s = &sv->st[i];
	json_t *f = sv_stage_ref(s);

	s->verdict = blame_judge(s->exit_kind, s->facts | first_failure(sv), BLAME_AT_EXIT);
	if (s->sig)
		json_object_set_new(f, "signal", json_string(sv_sig_name(s->sig)));
	else
		json_object_set_new(f, "exit", json_integer(s->code));
	json_object_set_new(f, "verdict", json_string(blame_verdict_name(s->verdict)));
	json_object_set_new(f, "ran_ms", json_integer((json_int_t)((s->exit_us - s->start_us) / 1000)));
	if (p->cause_exit_us)
		json_object_set_new(f, "after_cause_us",
				    json_integer((json_int_t)s->exit_us - (json_int_t)p->cause_exit_us));
	runstate_note(p->rs, "stage_exit", f);
	if (s->verdict == BLAME_DEGRADED)
		degrade(sv, i);
	else if (s->verdict == BLAME_ALARM)
		alarm_exit(sv, i);
	else if (s->verdict == BLAME_CAUSE || s->verdict == BLAME_FAILED)
		blame(sv, i);
}

/* Collect the exits that happened; name causes and consequences. */
void sv_check_exits(struct supervisor *sv)
{
	int *fresh = xcalloc((size_t)sv->n, sizeof *fresh);
	int nf = collect_exits(sv, fresh);

	if (nf > 0) {
		sv->p->batch++;
		if (sv->st[0].exited && sv->st[0].exit_batch == sv->p->batch)
			first_exited(sv);
		judge_exits(sv, fresh, nf);
		for (int k = 0; k < nf; k++)
			exit_judged(sv, fresh[k]);
		sv_resolve_suspects(sv);
		sv_write_status(sv, 0);
	}
	free(fresh);
}

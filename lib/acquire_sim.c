/*
 * acquire_sim.c: kerf-acquire --sim writes the simulated tool's lot
 * (lib/simrun.c, the sequence kerf-tool sends over SECS/GEM too) as
 * NDJSON.  What is kerf-acquire's own is here: signals become commands
 * (SIGUSR1 pause, SIGUSR2 resume, SIGTERM and SIGINT stop, a second one
 * abort; a critical alarm abort too) that go through the command
 * coordinator (lib/command.c) to the simulator, which answers them as a
 * tool does; --rate waits on the wall clock, --truth is opened and
 * closed, and the counters and exit status follow the events.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "sig.h"
#include "event.h"
#include "acquire_run.h"
#include "command.h"
#include "simrun.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

static void nap_us(uint64_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

static int not_ready(struct acq *a)
{
	uint64_t end = mono_ms() + (uint64_t)(a->ready_timeout_s * 1000);
	for (size_t i = 0; i < a->ninj; i++) {
		if (a->inj[i].kind != INJ_NOTREADY)
			continue;
		while (!sig_stop && mono_ms() < end)
			nap_us(20000);
		if (sig_stop) {
			log_msg(LOG_WARN, NULL, "stopped while waiting for the machine to become ready");
			return KERF_EX_TEMPFAIL;
		}
		log_msg(LOG_ERROR, json_pack("{sfss}", "ready_timeout_s", a->ready_timeout_s, "state", a->state),
			"machine not ready after %gs: still in state '%s'", a->ready_timeout_s, a->state);
		return KERF_EX_UNAVAILABLE;
	}
	return 0;
}

/* The simulator as the tool of the command coordinator. */
struct simtool {
	struct simrun *r;
	struct commands *cs;
	unsigned cursor;        /* the command signals taken */
	int stops;              /* stop signals so far: the second one aborts */
	int answer;             /* the simulator's answer to the command just sent; -1: none */
	enum profile_op answered;
	int start_failed;       /* START refused or not confirmed: nothing to write */
	int alarm;              /* a critical alarm aborted the lot */
};

static int sim_send(void *arg, const struct cmd *c, char *why, size_t n)
{
	struct simtool *st = arg;

	(void)why;
	(void)n;
	st->answer = simrun_command(st->r, c->op);
	st->answered = c->op;
	return 0;
}

/* What a fate means for the lot: the same as for a tool over HSMS (acquire_hsms.c). */
static void sim_changed(void *arg, const struct cmd *c)
{
	struct simtool *st = arg;

	if (c->fate != CMD_REFUSED && c->fate != CMD_TIMED_OUT)
		return;
	if (c->op == PROFILE_START) {
		log_msg(LOG_ERROR, json_pack("{ss}", "reason", "start_refused"), "the simulated tool did not start the lot");
		st->start_failed = 1;
	} else if (c->op == PROFILE_STOP && c->fate == CMD_TIMED_OUT) {
		log_msg(LOG_WARN, NULL, "the tool did not confirm the stop: kerf ends the run itself");
		simrun_stop(st->r);
	} else if (c->op == PROFILE_ABORT) {
		log_msg(LOG_WARN, NULL, "the tool did not take the abort: kerf ends the run itself");
		simrun_abort(st->r);
	}
}

/* The answer reaches the coordinator after the send returned, as a tool's does. */
static void answers(struct simtool *st)
{
	while (st->answer >= 0) {
		int h = st->answer;
		st->answer = -1;
		commands_reply(st->cs, st->answered, h, NULL);
	}
}

/* Each signal is one command, in the order they came; then the deadlines. */
static void take_signals(struct simtool *st)
{
	int signo;

	while ((signo = sig_next_command(&st->cursor)) != 0) {
		enum profile_op op = signo == SIGUSR1 ? PROFILE_PAUSE : signo == SIGUSR2 ? PROFILE_RESUME
					: st->stops++ ? PROFILE_ABORT : PROFILE_STOP;
		commands_submit(st->cs, op, CMD_BY_OPERATOR);
		answers(st);
	}
	commands_tick(st->cs);
	answers(st);
}

static void idle(void *arg)
{
	take_signals(arg);
}

/* An event written: it may confirm a command; a critical alarm aborts the lot. */
static void heard(struct simtool *st, const char *type, const char *what, int critical)
{
	if (critical && !st->alarm) {
		st->alarm = 1;
		commands_submit(st->cs, PROFILE_ABORT, CMD_BY_ALARM);
		answers(st);
	}
	commands_event(st->cs, type, what);
	answers(st);
}

static void count(struct acq *a, const struct simrun *r, const json_t *ev)
{
	switch (event_type_of(json_string_value(json_object_get(ev, "type")))) {
	case EV_DIE:
		(*a->c_dies)++;
		*a->c_defects += simrun_die_defects(r);
		break;
	case EV_WAFER_END:
		(*a->c_wafers)++;
		break;
	case EV_ALARM:
		(*a->c_alarms)++;
		break;
	default:
		break;
	}
}

/*
 * Write the lot until its run_end; the run_end's status into status
 * (static strings).  0, or -1 when stdout is gone.
 */
static int write_lot(struct acq *a, struct simtool *st, const char **status)
{
	struct simrun *r = st->r;

	for (;;) {
		uint64_t due, now;
		char type[16], what[16];
		int critical;
		json_t *ev;

		take_signals(st);
		if (st->start_failed)
			return 0;
		due = simrun_due_us(r);
		if (due > (now = mono_us())) {
			/* Flushed before waiting, so that a paced event is out when it is due. */
			if (acq_flush(a) < 0)
				return -1;
			nap_us(due - now);
			continue;
		}
		ev = simrun_next(r);
		if (!ev) {
			if (simrun_over(r) && !a->lines) {
				/* The tool took the stop before it started the lot: nothing to write (as over HSMS). */
				log_msg(LOG_WARN, NULL, "stopped before the tool started the lot");
				commands_end(st->cs, "kerf ended the run before the tool started the lot");
				*status = "unstarted";
				return 0;
			}
			if (simrun_over(r))
				return 0;
			if (acq_flush(a) < 0)
				return -1;
			nap_us(20000);
			continue;
		}
		count(a, r, ev);
		snprintf(type, sizeof type, "%s", json_string_value(json_object_get(ev, "type")));
		snprintf(what, sizeof what, "%s", json_string_value(json_object_get(ev, "state")) ? json_string_value(json_object_get(ev, "state"))
			 : json_string_value(json_object_get(ev, "status")) ? json_string_value(json_object_get(ev, "status")) : "");
		critical = !strcmp(type, "alarm") && json_is_true(json_object_get(ev, "critical"));
		if (!strcmp(type, "run_end"))
			*status = !strcmp(what, "aborted") ? "aborted" : !strcmp(what, "stopped") ? "stopped" : "completed";
		if (acq_emit(a, ev) < 0)
			return -1;
		heard(st, type, what[0] ? what : NULL, critical);
	}
}

int acq_run_sim(struct acq *a, const struct simrun_opts *o)
{
	char err[256];
	struct simrun_opts so = *o;
	struct simrun *r;
	struct simtool st;
	FILE *tf = NULL;
	const char *status = "completed";
	int rc = KERF_EX_OK, truth_failed = 0;

	so.wall_clock = o->rate > 0;
	so.inline_images = 1;
	so.alarms = a->alarms;
	so.nalarms = a->nalarms;
	so.faults = a->faults;
	so.nfaults = a->nfaults;
	so.wait_start = 1;
	r = simrun_new(&so, a->run, err, sizeof err);
	if (!r) {
		log_msg(LOG_ERROR, NULL, "%s", err);
		return KERF_EX_USAGE;
	}
	a->wall = so.wall_clock;
	if ((rc = not_ready(a)) != 0) {
		simrun_free(r);
		return rc;
	}
	if (o->truth) {
		tf = fopen(o->truth, "w");
		if (!tf) {
			log_msg(LOG_ERROR, json_pack("{ss}", "path", o->truth), "cannot open '%s': %s", o->truth,
				strerror(errno));
			simrun_free(r);
			return KERF_EX_IOERR;
		}
		simrun_set_truth(r, tf, o->truth);
	}
	log_msg(LOG_INFO, json_pack("{sisisisi}", "wafers", o->cfg.wafers, "dies_per_wafer", simrun_sim(r)->ndies,
				    "cols", simrun_sim(r)->cols, "rows", simrun_sim(r)->rows),
		"simulated tool ready");
	/* The simulator answers at once: T3 never runs out; a confirmation may not come. */
	struct cmd_tool tool = { &st, sim_send, sim_changed };
	memset(&st, 0, sizeof st);
	st.r = r;
	st.answer = -1;
	st.cs = commands_new(45000, (uint64_t)(a->confirm_timeout_s * 1000), &tool);
	a->idle = idle;
	a->idle_arg = &st;
	commands_ready(st.cs, 1);
	commands_submit(st.cs, PROFILE_START, CMD_BY_KERF);
	answers(&st);
	if (write_lot(a, &st, &status) < 0)
		rc = KERF_EX_IOERR;
	else if (st.start_failed)
		rc = KERF_EX_UNAVAILABLE;
	else if (!strcmp(status, "unstarted"))
		rc = KERF_EX_TEMPFAIL;
	else if (!strcmp(status, "aborted") && st.alarm)
		rc = KERF_EX_ALARM;
	else if (!strcmp(status, "stopped"))
		log_msg(LOG_INFO, json_pack("{si}", "signal", (int)sig_stop), "stopped at a die boundary");
	truth_failed = simrun_truth_failed(r);
	if (tf && fclose(tf) != 0 && !truth_failed) {
		log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", o->truth, strerror(errno));
		truth_failed = 1;
	}
	if (truth_failed && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	a->idle = NULL;
	commands_free(st.cs);
	simrun_free(r);
	return rc;
}

/*
 * acquire_sim.c: kerf-acquire --sim writes the simulated tool's lot
 * (lib/simrun.c, the sequence kerf-tool sends over SECS/GEM too) as
 * NDJSON.  What is kerf-acquire's own is here: signals become the lot's
 * requests (SIGTERM and SIGINT stop, SIGUSR1 pauses, SIGUSR2 resumes),
 * --rate waits on the wall clock, --truth is opened and closed, and the
 * counters and exit status follow the events.
 */
#include "kerf.h"
#include "acquire_run.h"
#include "simrun.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* The signals as the lot's requests; they are levels, so this is idempotent. */
static void take_signals(struct simrun *r)
{
	if (sig_stop)
		simrun_stop(r);
	if (sig_pause)
		simrun_pause(r);
	else
		simrun_resume(r);
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
static int write_lot(struct acq *a, struct simrun *r, const char **status)
{
	for (;;) {
		uint64_t due, now;
		json_t *ev;

		take_signals(r);
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
			if (simrun_over(r))
				return 0;
			if (acq_flush(a) < 0)
				return -1;
			nap_us(20000);
			continue;
		}
		count(a, r, ev);
		if (!strcmp(json_string_value(json_object_get(ev, "type")), "run_end")) {
			const char *st = json_string_value(json_object_get(ev, "status"));
			*status = !strcmp(st, "aborted") ? "aborted" : !strcmp(st, "stopped") ? "stopped" : "completed";
		}
		if (acq_emit(a, ev) < 0)
			return -1;
	}
}

int acq_run_sim(struct acq *a, const struct simrun_opts *o)
{
	char err[256];
	struct simrun_opts so = *o;
	struct simrun *r;
	FILE *tf = NULL;
	const char *status = "completed";
	int rc = KERF_EX_OK, truth_failed = 0;

	so.wall_clock = o->rate > 0;
	so.inline_images = 1;
	so.alarms = a->alarms;
	so.nalarms = a->nalarms;
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
	if (write_lot(a, r, &status) < 0)
		rc = KERF_EX_IOERR;
	else if (!strcmp(status, "aborted"))
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
	simrun_free(r);
	return rc;
}

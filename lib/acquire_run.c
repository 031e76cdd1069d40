/* acquire_run.c: see acquire_run.h (the writer, time and injections). */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "stats.h"
#include "sig.h"
#include "event.h"
#include "out.h"
#include "acquire_run.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

void acq_init(struct acq *a)
{
	memset(a, 0, sizeof *a);
	a->t.tv_sec = SIM_EPOCH;
	a->state = "idle";
	a->ready_timeout_s = 10;
	a->confirm_timeout_s = 30;
	stats_init(&a->stats, 0);
	a->c_out = stats_work(&a->stats, "out", "events");
	STATS_COUNTERS(&a->stats, { "bytes", &a->c_bytes }, { "dies", &a->c_dies }, { "wafers", &a->c_wafers },
		       { "defects", &a->c_defects }, { "alarms", &a->c_alarms }, { "rejected", &a->c_rejected });
}

void acq_release(struct acq *a)
{
	if (a->rec)
		fclose(a->rec);
	free_all(a->rec_path, a->inj, a->alarms, a->faults, a->run);
	stats_release(&a->stats);
	memset(a, 0, sizeof *a);
}

void acq_set_run(struct acq *a, const char *run)
{
	free(a->run);
	a->run = xstrdup(run);
	log_set_run(run);
}

void acq_virtual_die(const double pitch_um[2], double *pixel_um, long *w, long *h)
{
	*pixel_um = ceil(fmax(pitch_um[0], pitch_um[1]) / 65536.0);
	if (*pixel_um < 1)
		*pixel_um = 1;
	*w = lround(ceil(pitch_um[0] / *pixel_um));
	*h = lround(ceil(pitch_um[1] / *pixel_um));
}

int acq_alarm(struct acq *a, uint32_t alid, const char *text, int set, const char *category, int alcd)
{
	int critical = event_alarm_critical(category);
	json_t *ev = acq_event(a, "alarm");

	event_alarm_fill(ev, alid, text, set, category, alcd);
	if (set) {
		(*a->c_alarms)++;
		log_msg(critical ? LOG_ERROR : LOG_WARN,
			json_pack("{sIsssb}", "alid", (json_int_t)alid, "category", category, "critical", critical),
			"machine alarm %lu (%s)%s%s", (unsigned long)alid, category, text && *text ? ": " : "",
			text ? text : "");
	}
	return acq_emit(a, ev);
}

int acq_inject_parse(struct acq *a, const char *spec, char *err, size_t errlen)
{
	struct acq_inject in;
	const char *at = strchr(spec, '@');
	char kind[16], rest[128], *p;
	long v;
	struct simrun_fault f;
	int rc;

	memset(&in, 0, sizeof in);
	rc = simrun_fault_parse(spec, &f, err, errlen);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		a->faults = xrealloc(a->faults, (a->nfaults + 1) * sizeof *a->faults);
		a->faults[a->nfaults++] = f;
		return 0;
	}
	if (!strncmp(spec, "alarm@", 6)) {
		struct simrun_alarm al;
		if (simrun_alarm_parse(spec, &al, err, errlen) < 0)
			return -1;
		a->alarms = xrealloc(a->alarms, (a->nalarms + 1) * sizeof *a->alarms);
		a->alarms[a->nalarms++] = al;
		return 0;
	}
	if (!strcmp(spec, "notready")) {
		in.kind = INJ_NOTREADY;
		goto add;
	}
	if (!at || (size_t)(at - spec) >= sizeof kind || strlen(at + 1) >= sizeof rest) {
		snprintf(err, errlen, "bad --inject '%s': expected KIND@N[:...]", spec);
		return -1;
	}
	memcpy(kind, spec, (size_t)(at - spec));
	kind[at - spec] = '\0';
	memcpy(rest, at + 1, strlen(at + 1) + 1);
	p = strchr(rest, ':');
	if (p)
		*p++ = '\0';
	if (parse_long(rest, 1, 1L << 40, &v) < 0) {
		snprintf(err, errlen, "bad --inject '%s': '%s' is not a count of at least 1", spec, rest);
		return -1;
	}
	in.at = (uint64_t)v;
	if (!strcmp(kind, "crash") || !strcmp(kind, "garbage") || !strcmp(kind, "hold")) {
		in.kind = kind[0] == 'c' ? INJ_CRASH : kind[0] == 'g' ? INJ_GARBAGE : INJ_HOLD;
		if (p) {
			snprintf(err, errlen, "bad --inject '%s': expected %s@N", spec, kind);
			return -1;
		}
	} else if (!strcmp(kind, "stall")) {
		in.kind = INJ_STALL;
		if (!p || parse_double(p, 0, 86400, &in.seconds) < 0) {
			snprintf(err, errlen, "bad --inject '%s': expected stall@N:SECONDS", spec);
			return -1;
		}
	} else {
		snprintf(err, errlen, "bad --inject '%s': unknown kind '%s'", spec, kind);
		return -1;
	}
add:
	a->inj = xrealloc(a->inj, (a->ninj + 1) * sizeof *a->inj);
	a->inj[a->ninj++] = in;
	return 0;
}

int acq_record_open(struct acq *a, const char *path)
{
	/* Not through a symbolic link: RUNDIR/acquired.ndjson is ours. */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || !(a->rec = out_open(fd))) {
		log_msg(LOG_ERROR, json_pack("{ss}", "path", path), "cannot open '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	a->rec_path = xstrdup(path);
	return 0;
}

static void broken(struct acq *a)
{
	if (!a->broken)
		log_write_failed(LOG_ERROR, "standard output", errno, NULL);
	a->broken = 1;
}

/* The record cannot be written: the live stream goes on; the exit status will say it. */
static void rec_failed(struct acq *a)
{
	log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", a->rec_path, strerror(errno));
	fclose(a->rec);
	a->rec = NULL;
	a->rec_failed = 1;
}

int acq_flush(struct acq *a)
{
	if (a->rec && fflush(a->rec) != 0)
		rec_failed(a);
	if (!a->broken && fflush(stdout) != 0)
		broken(a);
	return a->broken ? -1 : 0;
}

/* The line and its newline, to stdout and the record. */
static int put_line(struct acq *a, const char *s, size_t n)
{
	if (a->rec && out_line(a->rec, s, n) != 0)
		rec_failed(a);
	if (out_line(stdout, s, n) != 0) {
		broken(a);
		return -1;
	}
	return 0;
}

static void nap(struct acq *a)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	if (a->idle)
		a->idle(a->idle_arg);
}

/* Wait s seconds, or until a stop signal. */
static void stall(struct acq *a, double s)
{
	uint64_t end = mono_ms() + (uint64_t)(s * 1000);
	log_msg(LOG_WARN, json_pack("{sf}", "seconds", s), "injected stall");
	while (!sig_stop && mono_ms() < end)
		nap(a);
}

/* Wait for the operator's next signal (pause, resume, stop): seen is the count before the output went out. */
static void hold(struct acq *a, unsigned seen)
{
	log_msg(LOG_INFO, json_pack("{sI}", "events", (json_int_t)a->lines), "injected hold: until the next signal");
	while (sig_commands() == seen)
		nap(a);
}

/* The injections due after the line just written. */
static int after_line(struct acq *a)
{
	for (size_t i = 0; i < a->ninj; i++) {
		struct acq_inject *in = &a->inj[i];
		if (in->done || in->kind == INJ_NOTREADY || a->lines < in->at)
			continue;
		in->done = 1;
		switch (in->kind) {
		case INJ_CRASH:
			acq_flush(a);
			log_msg(LOG_ERROR, json_pack("{sI}", "events", (json_int_t)a->lines), "injected crash");
			kill(getpid(), SIGKILL);
			_exit(KERF_EX_SOFTWARE);
		case INJ_STALL:
			if (acq_flush(a) < 0)
				return -1;
			stall(a, in->seconds);
			break;
		case INJ_HOLD: {
			/* Counted before the flush: a signal sent on seeing the output ends the hold. */
			unsigned seen = sig_commands();
			if (acq_flush(a) < 0)
				return -1;
			hold(a, seen);
			break;
		}
		case INJ_GARBAGE: {
			static const char junk[] = "{\"v\":1,\"type\":\"die\",\"seq\":garbage";
			log_msg(LOG_WARN, json_pack("{sI}", "events", (json_int_t)a->lines), "injected garbage line");
			if (put_line(a, junk, sizeof junk - 1) < 0)
				return -1;
			break;
		}
		default:
			break;
		}
	}
	return 0;
}

int acq_line(struct acq *a, const char *line, size_t len)
{
	if (a->broken)
		return -1;
	if (put_line(a, line, len) < 0)
		return -1;
	a->lines++;
	(*a->c_out)++;
	*a->c_bytes += len + 1;
	stats_tick(&a->stats);
	return a->ninj ? after_line(a) : 0;
}

json_t *acq_event(struct acq *a, const char *type)
{
	struct timespec now;
	if (a->wall)
		real_now(&now);
	else
		now = a->t;
	return event_new(type, a->run, ++a->seq, &now);
}

int acq_emit(struct acq *a, json_t *ev)
{
	char *s = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(15));
	int rc;
	json_decref(ev);
	if (!s) {
		log_msg(LOG_ERROR, NULL, "cannot serialize an event");
		return -1;
	}
	rc = acq_line(a, s, strlen(s));
	free(s);
	return rc;
}

int acq_state(struct acq *a, const char *state)
{
	json_t *ev = acq_event(a, "state");
	json_object_set_new(ev, "state", json_string(state));
	json_object_set_new(ev, "prev", json_string(a->state));
	a->state = state;
	return acq_emit(a, ev);
}

void acq_tick(struct acq *a, uint64_t us)
{
	uint64_t ns = (uint64_t)a->t.tv_nsec + (us % 1000000) * 1000;
	a->t.tv_sec += (time_t)(us / 1000000 + ns / 1000000000);
	a->t.tv_nsec = (long)(ns % 1000000000);
}

int acq_finish(struct acq *a, int status)
{
	int rc;
	acq_flush(a);
	if (a->rec) {
		if (fclose(a->rec) != 0) {
			log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", a->rec_path, strerror(errno));
			a->rec_failed = 1;
		}
		a->rec = NULL;
	}
	stats_emit(&a->stats, 1);
	rc = stdout_shut(a->broken);
	if (a->broken)
		return KERF_EX_IOERR;
	if (status != KERF_EX_OK)
		return status;
	return a->rec_failed ? KERF_EX_IOERR : rc;
}

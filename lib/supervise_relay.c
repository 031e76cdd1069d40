/*
 * supervise_relay.c: the stages' stderr: each log record relayed to
 * log.ndjson (and echoed), and read for what kerf acts on: its command
 * records, checks, errors, link state and counters.
 */
#include "util.h"
#include "log.h"
#include "event.h"
#include "supervise.h"
#include "supervise_int.h"
#include "reject.h"
#include "status_doc.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/ioctl.h>

#include "banned.h"

/* Everything stage i has logged so far, before deciding anything by
 * its output or its exit: a stage logs a command record before the output
 * or the exit that follows it, and the error that explains its exit before
 * that exit (whether the exit is its own failure or a broken pipe hangs on
 * it: supervise_blame.c).  A stage's writes to its stderr pipe are there
 * once they returned, so an exited stage's records are all readable now. */
void sv_drain_stderr(struct supervisor *sv, int i)
{
	struct sv_stage *s = &sv->st[i];
	int r, avail = 0;
	uint64_t until;

	if (s->errfd < 0)
		return;
	/* What is in the pipe now and no more: a child that inherited the
	 * stage's stderr and goes on writing cannot hold kerf here. */
	if (ioctl(s->errfd, FIONREAD, &avail) < 0 || avail < 0)
		avail = 0;
	until = s->err_bytes + (uint64_t)avail;
	do
		r = sv_read_stderr(sv, i);
	while (r > 0 && s->err_bytes < until);
	if (r == 0)
		sv_close_stderr(s);
}

static void echo_record(const char *name, json_t *rec, const char *line, size_t len)
{
	static const char *const envelope[] = { "t", "lvl", "stage", "run", "msg", "raw_stage", NULL };

	if (log_is_json()) {
		(void)write_all(2, line, len);
		return;
	}
	log_write_text(name, json_string_value(json_object_get(rec, "lvl")),
		       json_string_value(json_object_get(rec, "msg")), rec, envelope);
}

static uint64_t counters_sig(json_t *c)
{
	const char *key;
	json_t *val;
	uint64_t sig = 0;
	json_object_foreach(c, key, val) {
		if (!json_is_integer(val) || !strcmp(key, "elapsed_ms") || !strncmp(key, "lat_", 4))
			continue;
		sig = sig * 1000003u + (uint64_t)json_integer_value(val) + kerf_xxh3(key, strlen(key));
	}
	return sig;
}

static void stage_line(struct supervisor *sv, int i, const char *line, size_t len)
{
	struct sv_private *p = sv->p;
	struct sv_stage *s = &sv->st[i];
	json_t *rec = NULL;
	const char *msg, *lvl;
	int is_json = 0, show;
	char *out;

	if (len && line[len - 1] == '\r')
		len--;
	if (len && line[0] == '{')
		rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (rec && json_is_object(rec)) {
		const char *own = json_string_value(json_object_get(rec, "stage"));
		is_json = 1;
		if (own && strcmp(own, s->name))
			json_object_set_new(rec, "program", json_string(own));
		json_object_set_new(rec, "stage", json_string(s->name));
		if (!json_object_get(rec, "run"))
			json_object_set_new(rec, "run", json_string(p->rs->run));
	} else {
		struct timespec ts;
		char t[40];
		int cut;
		char *clean = utf8_sanitize(line, len, 4096, &cut);
		json_decref(rec);
		real_now(&ts);
		event_time_fmt(&ts, t);
		rec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "t", t, "lvl", "info", "stage", s->name,
				"run", p->rs->run, "msg", clean);
		free(clean);
	}
	msg = json_string_value(json_object_get(rec, "msg"));
	lvl = json_string_value(json_object_get(rec, "lvl"));
	/* The machine's word on a command (kerf-events(5)). */
	if (is_json && i == 0)
		sv_command_record(sv, rec);
	/* A readiness check the stage runs (kerf-acquire(1)). */
	if (is_json && json_is_string(json_object_get(rec, "check")) && json_is_string(json_object_get(rec, "outcome")))
		sv_check_heard(sv, i, rec);
	if (is_json && msg && lvl && !strcmp(lvl, "error")) {
		free(s->last_error);
		s->last_error = xstrdup(msg);
		/* An error without reason downstream_closed is the stage's
		 * own (disk full, ...). */
		if (log_reason_of(rec) != LOG_REASON_DOWNSTREAM_CLOSED)
			s->own_error = 1;
		else
			s->said_closed = 1;
	}
	/* A tool link's state (kerf-acquire(1): connecting ... online,
	 * lost with its cause, closed): the last word is status.json's. */
	if (is_json && json_is_string(json_object_get(rec, "link"))) {
		json_t *l = json_pack("{s:O}", STATUS_LINK_STATE, json_object_get(rec, "link"));
		if (json_is_string(json_object_get(rec, "t")))
			json_object_set(l, STATUS_LINK_SINCE, json_object_get(rec, "t"));
		if (json_is_string(json_object_get(rec, "cause")))
			json_object_set(l, STATUS_LINK_CAUSE, json_object_get(rec, "cause"));
		json_decref(s->link);
		s->link = l;
	}
	if (is_json && msg && !strcmp(msg, "stats")) {
		json_t *c = json_deep_copy(rec);
		uint64_t sig;
		json_object_del(c, "t");
		json_object_del(c, "lvl");
		json_object_del(c, "stage");
		json_object_del(c, "run");
		json_object_del(c, "msg");
		json_object_del(c, "program");
		json_decref(s->counters);
		s->counters = c;
		sig = counters_sig(c);
		if (sig != s->progress_sig) {
			s->progress_sig = sig;
			s->progress_ms = mono_ms();
		}
	}
	out = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	if (out) {
		size_t n = strlen(out);
		out[n] = '\n';
		if (p->log_fd >= 0)
			(void)write_all(p->log_fd, out, n + 1);
		if (sv->opt.echo == SV_ECHO_NONE || (is_json && msg && !strcmp(msg, "stats")))
			show = 0;
		else if (sv->opt.echo == SV_ECHO_ALL || !is_json)
			show = 1;
		else
			show = lvl && (!strcmp(lvl, "warn") || !strcmp(lvl, "error"));
		if (show)
			echo_record(s->name, rec, out, n + 1);
		free(out);
	}
	json_decref(rec);
}

/* Read what is there: 1 when bytes came, 0 at end of file (or an
 * error), -1 when there was nothing to read. */
int sv_read_stderr(struct supervisor *sv, int i)
{
	struct sv_stage *s = &sv->st[i];
	ssize_t n;
	size_t start = 0;

	if (s->ecap - s->elen < 65536) {
		s->ecap = s->elen + 65536;
		s->ebuf = xrealloc(s->ebuf, s->ecap);
	}
	n = read(s->errfd, s->ebuf + s->elen, s->ecap - s->elen);
	if (n < 0)
		return (errno == EINTR || errno == EAGAIN) ? -1 : 0;
	if (n == 0) {
		if (s->elen)
			stage_line(sv, i, s->ebuf, s->elen);
		s->elen = 0;
		return 0;
	}
	s->err_bytes += (uint64_t)n;
	s->elen += (size_t)n;
	for (size_t k = 0; k < s->elen; k++) {
		if (s->ebuf[k] == '\n') {
			stage_line(sv, i, s->ebuf + start, k - start);
			start = k + 1;
		}
	}
	/* A line longer than 1 MiB is cut rather than held forever. */
	if (start == 0 && s->elen > (1u << 20)) {
		stage_line(sv, i, s->ebuf, s->elen);
		start = s->elen;
	}
	memmove(s->ebuf, s->ebuf + start, s->elen - start);
	s->elen -= start;
	return 1;
}

void sv_close_stderr(struct sv_stage *s)
{
	if (s->errfd >= 0)
		close(s->errfd);
	s->errfd = -1;
}

/*
 * acquire_replay.c: re-emit a recorded stream (--replay) and pass through
 * a live machine connection (--listen).  Both copy each line's bytes
 * unchanged, so a replay of a recording is byte-identical to it; they
 * only look at seq, run, t and type (event_peek, no parsing).  When the
 * operator stops a live connection inside a run, it is closed with state
 * stopping and run_end stopped, numbered after the last event seen.  A
 * stopped replay invents nothing: the recording already holds events with
 * those seq numbers, and an invented event would carry a real event's id,
 * so a later replay that completes the run would lose that real event to
 * kerf-persist's duplicate check.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "sig.h"
#include "line.h"
#include "event.h"
#include "acquire_run.h"
#include "reject.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "banned.h"

/* What the pass-through has seen of the stream so far. */
struct seen {
	char run[256];
	uint64_t seq;
	int have_seq;
	struct timespec t;
	int have_t;
	int started, ended;
	uint64_t events;
	char state[16];           /* the last state event's state */
	char wafer[128];          /* the open wafer, if any */
	long slot;
	int wafer_open;
	uint64_t wafer_dies, wafers, dies;
};

static void peek_str(const char *line, size_t len, const char *key, char *out, size_t outlen)
{
	const char *v;
	size_t vl;
	if (event_peek(line, len, key, &v, &vl) && vl < outlen) {
		memcpy(out, v, vl);
		out[vl] = '\0';
	}
}

static int peek_u64(const char *line, size_t len, const char *key, uint64_t *out)
{
	const char *v;
	size_t vl;
	char tmp[32];
	if (!event_peek(line, len, key, &v, &vl) || vl == 0 || vl >= sizeof tmp)
		return 0;
	memcpy(tmp, v, vl);
	tmp[vl] = '\0';
	return parse_u64(tmp, out) == 0;
}

static void look(struct seen *s, const char *line, size_t len)
{
	const char *v;
	size_t vl;
	char tmp[64];
	enum event_type ty = event_peek_type(line, len);
	uint64_t seq;
	if (peek_u64(line, len, "seq", &seq)) {
		s->seq = seq;
		s->have_seq = 1;
	}
	if (event_peek(line, len, "run", &v, &vl) && vl < sizeof s->run) {
		memcpy(s->run, v, vl);
		s->run[vl] = '\0';
	}
	if (event_peek(line, len, "t", &v, &vl) && vl < sizeof tmp) {
		memcpy(tmp, v, vl);
		tmp[vl] = '\0';
		if (event_time_parse(tmp, &s->t) == 0)
			s->have_t = 1;
	}
	switch (ty) {
	case EV_RUN_START:
		s->started = 1;
		s->ended = 0;
		s->wafers = s->dies = 0;
		break;
	case EV_RUN_END:
		s->ended = 1;
		break;
	case EV_STATE:
		peek_str(line, len, "state", s->state, sizeof s->state);
		break;
	case EV_WAFER_START: {
		uint64_t slot = 0;
		peek_str(line, len, "wafer", s->wafer, sizeof s->wafer);
		peek_u64(line, len, "slot", &slot);
		s->slot = (long)slot;
		s->wafer_open = 1;
		s->wafer_dies = 0;
		break;
	}
	case EV_WAFER_END:
		s->wafer_open = 0;
		s->wafers++;
		break;
	case EV_DIE:
		s->wafer_dies++;
		s->dies++;
		break;
	default:
		break;
	}
	s->events++;
}

/* Make our own events follow the stream's run, seq and time. */
static void adopt(struct acq *a, const struct seen *s)
{
	if (s->run[0])
		acq_set_run(a, s->run);
	else if (!a->run)
		acq_set_run(a, "unknown");
	if (s->seq > a->seq)
		a->seq = s->seq;
	a->wall = !s->have_t;
	if (s->have_t)
		a->t = s->t;
}

/* Close what the stream left open: the wafer (wafer_end), then the run. */
static int close_run(struct acq *a, const struct seen *s, const char *status)
{
	json_t *ev;
	uint64_t wafers = s->wafers;
	adopt(a, s);
	if (s->state[0]) {
		static const char *const known[] = {"idle", "ready", "executing", "paused", "stopping"};
		for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
			if (!strcmp(s->state, known[i]))
				a->state = known[i];
	}
	if (!strcmp(status, "stopped") && strcmp(a->state, "stopping") && acq_state(a, "stopping") < 0)
		return -1;
	if (s->wafer_open) {
		ev = acq_event(a, "wafer_end");
		json_object_set_new(ev, "wafer", json_string(s->wafer));
		json_object_set_new(ev, "slot", json_integer(s->slot));
		json_object_set_new(ev, "dies", json_integer((json_int_t)s->wafer_dies));
		if (acq_emit(a, ev) < 0)
			return -1;
		wafers++;
	}
	ev = acq_event(a, "run_end");
	json_object_set_new(ev, "status", json_string(status));
	json_object_set_new(ev, "wafers", json_integer((json_int_t)wafers));
	json_object_set_new(ev, "dies", json_integer((json_int_t)s->dies));
	return acq_emit(a, ev);
}

static void flush_cb(void *arg)
{
	acq_flush(arg);
}

/* A line the reader refused: a reject record, and nothing passed on. */
static void reject_line(struct acq *a, struct rejects **rj, const struct line_reader *lr, enum line_status st,
			const char *line, size_t len)
{
	char msg[LINE_CONTROL_MSG];
	struct reject_info ri = {
		.reason = "too_long", .msg = "line longer than --max-line", .run = a->run, .seq = -1,
		.line = lr->lineno, .offset = lr->offset, .raw = line, .raw_len = lr->prefix_len,
		.len = len,
	};
	if (st == LINE_CONTROL) {
		line_control_msg(line, lr->control_at, msg);
		ri.reason = LINE_CONTROL_REASON;
		ri.msg = msg;
		ri.raw_len = len;
	}
	if (!*rj)
		*rj = rejects_open(NULL);
	if (*rj)
		rejects_write(*rj, &ri);
	(*a->c_rejected)++;
}

int acq_run_replay(struct acq *a, const struct acq_replay_opts *o)
{
	struct line_reader lr;
	struct rejects *rj = NULL;
	struct seen s;
	struct timespec t0 = {0, 0};
	uint64_t base_us = 0;
	int fd = 0, rc = KERF_EX_OK, have_t0 = 0, in_window = 0;
	char *line;
	size_t len;

	memset(&s, 0, sizeof s);
	if (strcmp(o->path, "-")) {
		fd = open(o->path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			log_msg(LOG_ERROR, json_pack("{ss}", "path", o->path), "cannot open '%s': %s", o->path,
				strerror(errno));
			return KERF_EX_IOERR;
		}
	}
	line_reader_init(&lr, fd, o->max_line);
	lr.before_read = flush_cb;
	lr.before_read_arg = a;
	for (;;) {
		enum line_status st;
		uint64_t seq = 0;
		int has_seq;
		if (sig_stop)
			break;
		st = line_read(&lr, &line, &len);
		if (st == LINE_EOF)
			break;
		if (st == LINE_INTR)
			continue;
		if (st == LINE_ERROR) {
			log_msg(LOG_ERROR, NULL, "cannot read '%s': %s", o->path, strerror(errno));
			rc = KERF_EX_IOERR;
			break;
		}
		if (st == LINE_TOO_LONG || st == LINE_CONTROL) {
			reject_line(a, &rj, &lr, st, line, len);
			continue;
		}
		has_seq = peek_u64(line, len, "seq", &seq);
		if (has_seq)
			in_window = seq >= o->from_seq && seq <= o->to_seq;
		else if (o->from_seq == 0 && s.events == 0)
			in_window = 1;
		if (!in_window) {
			if (has_seq && seq > o->to_seq)
				break;
			continue;
		}
		look(&s, line, len);
		if (o->speed > 0 && s.have_t) {
			/* The recorded pace: due when (t - first t) / speed has passed. */
			int64_t dt;
			if (!have_t0) {
				t0 = s.t;
				have_t0 = 1;
				base_us = mono_us();
			}
			dt = (int64_t)(s.t.tv_sec - t0.tv_sec) * 1000000 + (s.t.tv_nsec - t0.tv_nsec) / 1000;
			if (dt > 0) {
				uint64_t due = base_us + (uint64_t)((double)dt / o->speed);
				if (acq_flush(a) < 0)
					goto broken;
				while (!sig_stop) {
					uint64_t now = mono_us();
					struct timespec ts;
					if (now >= due)
						break;
					ts.tv_sec = (time_t)((due - now) / 1000000);
					ts.tv_nsec = (long)((due - now) % 1000000) * 1000;
					nanosleep(&ts, NULL);
				}
			}
		}
		while (sig_pause && !sig_stop) {
			struct timespec ts = {0, 20 * 1000 * 1000};
			if (acq_flush(a) < 0)
				goto broken;
			nanosleep(&ts, NULL);
		}
		if (acq_line(a, line, len) < 0)
			goto broken;
	}
	if (sig_stop && s.started && !s.ended)
		log_msg(LOG_INFO, json_pack("{sI}", "seq", (json_int_t)s.seq),
			"replay stopped inside the run after seq %llu; replay the recording again to complete it",
			(unsigned long long)s.seq);
	goto out;
broken:
	rc = KERF_EX_IOERR;
out:
	line_reader_release(&lr);
	if (fd > 0)
		close(fd);
	if (rj && rejects_close(rj) < 0 && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	return rc;
}

/* ------------------------------------------------------------------ listen */

static int listen_socket(const char *addr, char *path, size_t pathlen, char *err, size_t errlen)
{
	int fd;
	path[0] = '\0';
	if (!strncmp(addr, "unix:", 5)) {
		struct sockaddr_un un;
		struct stat st;
		const char *p = addr + 5;
		if (!*p || strlen(p) >= sizeof un.sun_path) {
			snprintf(err, errlen, "bad unix socket path '%s'", p);
			return -1;
		}
		memset(&un, 0, sizeof un);
		un.sun_family = AF_UNIX;
		memcpy(un.sun_path, p, strlen(p) + 1);
		/* A stale socket from an earlier run is replaced; any other file is not. */
		if (lstat(p, &st) == 0 && S_ISSOCK(st.st_mode))
			unlink(p);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof un) < 0 || listen(fd, 1) < 0) {
			snprintf(err, errlen, "cannot listen on '%s': %s", p, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		snprintf(path, pathlen, "%s", p);
		return fd;
	}
	if (!strncmp(addr, "tcp:", 4)) {
		struct addrinfo hints, *res = NULL;
		const char *hp = addr + 4, *colon = strrchr(hp, ':');
		char host[256];
		int one = 1, g;
		if (!colon || (size_t)(colon - hp) >= sizeof host || colon == hp || !colon[1]) {
			snprintf(err, errlen, "bad tcp address '%s': expected tcp:HOST:PORT", addr);
			return -1;
		}
		memcpy(host, hp, (size_t)(colon - hp));
		host[colon - hp] = '\0';
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		if ((g = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
			snprintf(err, errlen, "bad tcp address '%s': %s", addr, gai_strerror(g));
			return -1;
		}
		fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1) < 0) {
			snprintf(err, errlen, "cannot listen on '%s': %s", addr, strerror(errno));
			if (fd >= 0)
				close(fd);
			freeaddrinfo(res);
			return -1;
		}
		freeaddrinfo(res);
		return fd;
	}
	snprintf(err, errlen, "bad --listen address '%s': expected unix:PATH or tcp:HOST:PORT", addr);
	return -1;
}

/* Wait until fd is readable, a stop signal or the deadline: 1, 0 (timeout), -1 (stop). */
static int wait_readable(int fd, uint64_t deadline_ms)
{
	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		uint64_t now = mono_ms();
		int n;
		if (sig_stop)
			return -1;
		if (now >= deadline_ms)
			return 0;
		n = poll(&p, 1, (int)(deadline_ms - now > 200 ? 200 : deadline_ms - now));
		if (n > 0)
			return 1;
	}
}

static int dropped(struct acq *a, const struct seen *s, const char *why)
{
	char *text;
	int rc;
	log_msg(LOG_ERROR, json_pack("{sIss}", "events", (json_int_t)s->events, "reason", why),
		"machine connection dropped after %llu events: %s", (unsigned long long)s->events, why);
	adopt(a, s);
	text = xasprintf("machine connection dropped: %s", why);
	rc = acq_alarm(a, ACQ_ALID_DROPPED, text, 1, "irrecoverable", -1);
	free(text);
	if (rc < 0 || close_run(a, s, "aborted") < 0)
		return KERF_EX_IOERR;
	return KERF_EX_UNAVAILABLE;
}

int acq_run_listen(struct acq *a, const struct acq_listen_opts *o)
{
	char path[128], err[256];
	struct line_reader lr;
	struct rejects *rj = NULL;
	struct seen s;
	int lfd, cfd, w, rc = KERF_EX_OK;
	uint64_t deadline = mono_ms() + (uint64_t)(a->ready_timeout_s * 1000);
	char *line;
	size_t len;

	memset(&s, 0, sizeof s);
	lfd = listen_socket(o->addr, path, sizeof path, err, sizeof err);
	if (lfd < 0) {
		log_msg(LOG_ERROR, NULL, "%s", err);
		return KERF_EX_UNAVAILABLE;
	}
	if (!path[0]) {
		/* tcp: say which port it took (with port 0, the kernel chose). */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		char bound[SOCKADDR_STR];
		if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0) {
			sockaddr_str((struct sockaddr *)&ss, sl, bound, sizeof bound);
			in_port_t port = ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
								  : ((struct sockaddr_in *)&ss)->sin_port;
			log_msg(LOG_INFO, json_pack("{sssssi}", "addr", o->addr, "bound", bound, "port", ntohs(port)),
				"listening on 'tcp:%s'", bound);
		}
	} else {
		log_msg(LOG_INFO, json_pack("{ss}", "addr", o->addr), "listening on '%s'", o->addr);
	}
	w = wait_readable(lfd, deadline);
	if (w <= 0) {
		if (w == 0)
			log_msg(LOG_ERROR, json_pack("{ssss}", "addr", o->addr, "reason", "no_connection"),
				"machine not ready: no connection to '%s' within %gs", o->addr, a->ready_timeout_s);
		close(lfd);
		if (path[0])
			unlink(path);
		return w == 0 ? KERF_EX_UNAVAILABLE : KERF_EX_OK;
	}
	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	close(lfd);
	if (path[0])
		unlink(path);
	if (cfd < 0) {
		log_msg(LOG_ERROR, NULL, "cannot accept on '%s': %s", o->addr, strerror(errno));
		return KERF_EX_UNAVAILABLE;
	}
	log_msg(LOG_INFO, NULL, "machine connected");
	w = wait_readable(cfd, deadline);
	if (w <= 0) {
		if (w == 0)
			log_msg(LOG_ERROR, json_pack("{ss}", "reason", "no_first_event"),
				"machine not ready: connected but sent no event within %gs", a->ready_timeout_s);
		close(cfd);
		return w == 0 ? KERF_EX_UNAVAILABLE : KERF_EX_OK;
	}
	line_reader_init(&lr, cfd, o->max_line);
	lr.before_read = flush_cb;
	lr.before_read_arg = a;
	for (;;) {
		enum line_status st;
		if (sig_stop) {
			if (s.started && !s.ended) {
				log_msg(LOG_INFO, NULL, "stopped: closing the run");
				if (close_run(a, &s, "stopped") < 0)
					rc = KERF_EX_IOERR;
			}
			break;
		}
		while (sig_pause && !sig_stop) {
			struct timespec ts = {0, 20 * 1000 * 1000};
			acq_flush(a);
			nanosleep(&ts, NULL);
		}
		st = line_read(&lr, &line, &len);
		if (st == LINE_INTR)
			continue;
		if (st == LINE_EOF || st == LINE_ERROR) {
			if (st == LINE_EOF && s.ended && !lr.missing_newline)
				break;
			rc = dropped(a, &s, st == LINE_ERROR ? strerror(errno) :
					    s.events == 0 ? "closed before any event" : "closed before run_end");
			break;
		}
		if (st == LINE_TOO_LONG || st == LINE_CONTROL) {
			reject_line(a, &rj, &lr, st, line, len);
			continue;
		}
		look(&s, line, len);
		if (acq_line(a, line, len) < 0) {
			rc = KERF_EX_IOERR;
			break;
		}
	}
	line_reader_release(&lr);
	close(cfd);
	if (rj && rejects_close(rj) < 0 && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	return rc;
}

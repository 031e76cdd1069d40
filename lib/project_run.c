/* project_run.c: see project_run.h. */
#include "project_run.h"

#include "cli.h"
#include "exitcode.h"
#include "journal.h"
#include "line.h"
#include "log.h"
#include "out.h"
#include "project.h"
#include "reject.h"
#include "sig.h"
#include "stats.h"
#include "svg.h"
#include "tty.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

enum mode { MODE_SUMMARY, MODE_TTY, MODE_SNAPSHOTS };

/* One run of kerf-project. */
struct prun {
	const struct project_opts *o;
	struct project model;
	struct stats st;
	uint64_t *c_in, *c_used, *c_ignored, *c_rejected, *c_redraws, *c_snapshots;
	struct rejects *rej;
	int rej_to_file;   /* rejects to RUNDIR/rejects.ndjson (dashboard on a terminal) */
	int stdout_failed; /* a write to stdout failed and was logged */
	int map_failed;    /* a wafer's map could not be written (logged) */
	int eof;           /* standard input ended (not stopped by a signal) */
};

/* stdin's flags before it was made non-blocking, for atexit (-1: none). */
static int stdin_flags = -1;

void project_opts_init(struct project_opts *o)
{
	memset(o, 0, sizeof *o);
	o->interval_ms = 200;
	o->max_line = KERF_MAX_LINE_DEFAULT;
}

/* The project's wafer_done hook: a finished wafer's map, before its details go. */
static void draw_finished(const struct project *p, const struct project_wafer *w, void *arg)
{
	struct prun *r = arg;
	if (svg_wafer_write(p, w, r->o->rundir) != 0)
		r->map_failed = 1;
}

static void flush_stdout(void *arg)
{
	(void)arg;
	fflush(stdout);
}

static void restore_stdin(void)
{
	if (stdin_flags >= 0)
		fcntl(0, F_SETFL, stdin_flags);
	stdin_flags = -1;
}

static void reject(struct prun *r, const struct line_reader *lr, const char *reason, const char *msg,
		   const char *line, size_t avail, size_t len)
{
	struct reject_info ri = {
		.reason = reason, .msg = msg, .run = r->model.run, .seq = -1,
		.line = lr->lineno, .offset = lr->offset, .raw = line,
		.raw_len = avail, .len = len,
	};
	(*r->c_rejected)++;
	if (!r->rej) {
		char *path = r->rej_to_file ? xasprintf("%s/rejects.ndjson", r->o->rundir) : NULL;
		r->rej = rejects_open(path);
		free(path);
		if (!r->rej)
			return;
	}
	rejects_write(r->rej, &ri);
}

/* One line of input into the model; counts it. */
static void take(struct prun *r, const struct line_reader *lr, enum line_status s, const char *line, size_t len)
{
	(*r->c_in)++;
	if (s == LINE_TOO_LONG) {
		reject(r, lr, "too_long", "line longer than --max-line", line, lr->prefix_len, len);
		return;
	}
	if (s == LINE_CONTROL) {
		char msg[LINE_CONTROL_MSG];
		line_control_msg(line, lr->control_at, msg);
		reject(r, lr, LINE_CONTROL_REASON, msg, line, len, len);
		return;
	}
	switch (project_feed(&r->model, line, len)) {
	case PROJECT_USED:
		(*r->c_used)++;
		break;
	case PROJECT_IGNORED:
		(*r->c_ignored)++;
		break;
	case PROJECT_BAD:
		reject(r, lr, "json", "not a JSON object", line, len, len);
		break;
	}
}

/*
 * Read lines until the input would block, ends, a signal comes or the
 * redraw is due.  stdin is non-blocking, so the line reader's read(2)
 * returns EAGAIN instead of waiting.  Returns 1 at end of input, -1 on a
 * read error, else 0.
 */
static int drain(struct prun *r, struct line_reader *lr, uint64_t due_ms, int timed)
{
	char *line;
	size_t len;
	unsigned n = 0;
	for (;;) {
		enum line_status s = line_read(lr, &line, &len);
		switch (s) {
		case LINE_OK:
		case LINE_CONTROL:
		case LINE_TOO_LONG:
			take(r, lr, s, line, len);
			if (timed && (++n & 255) == 0 && mono_ms() >= due_ms)
				return 0;
			if (sig_stop)
				return 0;
			break;
		case LINE_EOF:
			return 1;
		case LINE_INTR:
			return 0;
		case LINE_ERROR:
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			log_msg(LOG_ERROR, NULL, "cannot read standard input: %s", strerror(errno));
			return -1;
		}
	}
}

static int snapshot(struct prun *r, int final)
{
	json_t *o = project_snapshot(&r->model, final);
	int rc = json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(o);
	if (rc == 0)
		rc = fputc('\n', stdout) == EOF ? -1 : 0;
	if (rc == 0)
		rc = fflush(stdout);
	if (rc != 0) {
		r->stdout_failed = 1;
		log_write_failed(LOG_ERROR, "standard output", errno, NULL);
		return -1;
	}
	(*r->c_snapshots)++;
	return 0;
}

/* A journal's committed lines, numbered as a line reader would. */
struct committed {
	struct prun *r;
	struct line_reader pos;
};

static void feed_committed(void *arg, const char *line, size_t len)
{
	/* project_feed wants the line NUL-terminated; journal lines are not. */
	struct committed *c = arg;
	char *copy = xmemdup(line, len);
	c->pos.lineno++;
	c->pos.control_at = line_control_at(copy, len);
	take(c->r, &c->pos, c->pos.control_at < len ? LINE_CONTROL : LINE_OK, copy, len);
	free(copy);
}

/*
 * The committed events of DIR/journal/, checked by kerf-persist's own
 * reader: an uncommitted tail is left out (it was never acknowledged),
 * and a damaged journal is drawn up to the damage and reported.
 */
static int feed_journal(struct prun *r, const char *dir)
{
	char *jdir = xasprintf("%s/journal", dir);
	struct journal_info ji;
	struct committed c = { .r = r, .pos = { .fd = -1 } };
	int rc;
	if (access(jdir, R_OK | X_OK) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot read '%s': %s", jdir, strerror(errno));
		free(jdir);
		return -2;
	}
	rc = journal_verify(jdir, feed_committed, &c, &ji);
	if (rc == 1)
		log_msg(LOG_WARN, NULL, "'%s': uncommitted tail left out: %s", jdir, ji.err);
	else if (rc < 0)
		log_msg(LOG_ERROR, NULL, "'%s': %s", jdir, ji.err[0] ? ji.err : "cannot be read");
	journal_info_release(&ji);
	free(jdir);
	return rc < 0 ? -1 : 0;
}

static int svg_only(struct prun *r, int nfiles, char **files)
{
	int rc = 0;
	if (nfiles == 0) {
		int j = feed_journal(r, r->o->rundir);
		if (j != 0)
			rc = j == -2 ? KERF_EX_IOERR : KERF_EX_DATAERR;
	}
	for (int i = 0; i < nfiles; i++) {
		int fd = strcmp(files[i], "-") ? open(files[i], O_RDONLY | O_CLOEXEC) : 0;
		struct line_reader lr;
		if (fd < 0) {
			log_msg(LOG_ERROR, NULL, "cannot open '%s': %s", files[i], strerror(errno));
			rc = KERF_EX_IOERR;
			continue;
		}
		line_reader_init(&lr, fd, r->o->max_line);
		while (drain(r, &lr, 0, 0) == 0 && !sig_stop)
			;
		line_reader_release(&lr);
		if (fd > 0)
			close(fd);
	}
	if (sig_stop)
		return KERF_EX_TEMPFAIL;
	{
		char *sp = xasprintf("%s/status.json", r->o->rundir);
		project_status_read(&r->model, sp);
		free(sp);
	}
	if (svg_write_all(&r->model, r->o->rundir) != 0 || r->map_failed)
		rc = KERF_EX_IOERR;
	return rc;
}

/*
 * Until the end of input (r->eof), a stop signal or a failure: drain the
 * input, and at every interval read status.json and redraw (or write a
 * snapshot).  Returns 0, or the exit status of a failure.
 */
static int live(struct prun *r, enum mode mode, struct tty *tty, const char *status_path, int quiet_stats)
{
	struct line_reader lr;
	uint64_t due = mono_ms(), v_seen = (uint64_t)-1, sv_seen = (uint64_t)-1;
	int rc = KERF_EX_OK;

	stdin_flags = fcntl(0, F_GETFL);
	if (stdin_flags >= 0 && fcntl(0, F_SETFL, stdin_flags | O_NONBLOCK) == 0)
		atexit(restore_stdin);
	else
		stdin_flags = -1;
	line_reader_init(&lr, 0, r->o->max_line);
	lr.before_read = flush_stdout;

	while (!r->eof && rc == KERF_EX_OK && !sig_stop) {
		uint64_t now = mono_ms();
		struct pollfd pfd = { .fd = 0, .events = POLLIN };
		int timeout, n;

		if (mode != MODE_SUMMARY && now >= due) {
			project_status_read(&r->model, status_path);
			project_tick(&r->model, now);
			if (mode == MODE_TTY) {
				tty_draw(tty, &r->model, r->o->interval_ms);
				(*r->c_redraws)++;
			} else if (r->model.version != v_seen || r->model.status_version != sv_seen) {
				/* Coalesced: nothing new, nothing written. */
				v_seen = r->model.version;
				sv_seen = r->model.status_version;
				if (snapshot(r, 0) != 0)
					rc = KERF_EX_IOERR;
			}
			due = now + r->o->interval_ms;
		}
		if (!quiet_stats)
			stats_tick(&r->st);
		timeout = mode == MODE_SUMMARY ? 1000 : (int)(due > now ? due - now : 0);
		n = poll(&pfd, 1, timeout);
		if (n < 0 && errno != EINTR) {
			log_msg(LOG_ERROR, NULL, "cannot poll standard input: %s", strerror(errno));
			rc = KERF_EX_IOERR;
		}
		if (n > 0) {
			/* Come back for the redraw, or (summary) for the stats tick. */
			int d = drain(r, &lr, mode == MODE_SUMMARY ? now + 500 : due, 1);
			if (d > 0)
				r->eof = 1;
			else if (d < 0)
				rc = KERF_EX_IOERR;
		}
	}
	line_reader_release(&lr);
	restore_stdin();
	return rc;
}

/* The events on standard input, as they come; 0, or the exit status of a failure. */
static int follow(struct prun *r)
{
	struct tty *tty = NULL;
	enum mode mode = r->o->snapshots ? MODE_SNAPSHOTS : isatty(1) ? MODE_TTY : MODE_SUMMARY;
	char *status_path;
	int rc, quiet_stats;

	/* ncurses needs the real stdout (it asks for its descriptor). */
	if (mode != MODE_TTY)
		stdout_init();
	else
		setvbuf(stdout, NULL, _IOFBF, 64 * 1024);
	if (mode == MODE_TTY && !(tty = tty_open()))
		mode = MODE_SUMMARY;
	/* Log records on the dashboard's terminal would tear it: keep them for the end. */
	quiet_stats = mode == MODE_TTY && isatty(2);
	r->rej_to_file = quiet_stats;
	status_path = xasprintf("%s/status.json", r->o->rundir);

	rc = live(r, mode, tty, status_path, quiet_stats);

	/* The end: last figures, maps, then the summary on the normal screen. */
	project_status_read(&r->model, status_path);
	project_tick(&r->model, mono_ms());
	if (tty) {
		tty_draw(tty, &r->model, r->o->interval_ms);
		tty_close(tty);
	}
	if (!r->o->no_maps && (svg_write_all(&r->model, r->o->rundir) != 0 || r->map_failed) && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	if (mode == MODE_SNAPSHOTS) {
		if (!r->stdout_failed && snapshot(r, 1) != 0 && rc == KERF_EX_OK)
			rc = KERF_EX_IOERR;
	} else {
		project_summary(&r->model, stdout);
		if (!r->o->no_maps)
			printf("maps: %s/index.html\n", r->o->rundir);
	}
	if (sig_stop && !r->eof)
		log_msg(LOG_INFO, json_pack("{s:i}", "signal", (int)sig_stop),
			"stopped by a signal before the end of input");
	free(status_path);
	return rc;
}

int project_run(struct project_opts *o, int nfiles, char **files)
{
	struct prun r = { .o = o };
	int rc, c;

	if (!o->rundir)
		o->rundir = getenv("KERF_RUNDIR") && *getenv("KERF_RUNDIR") ? getenv("KERF_RUNDIR") : ".";
	sig_init();
	project_init(&r.model);
	if (!o->no_maps) {
		r.model.wafer_done = draw_finished;
		r.model.wafer_done_arg = &r;
	}
	stats_init(&r.st, 0);
	r.c_in = stats_work(&r.st, "in", "lines");
	STATS_COUNTERS(&r.st, { "used", &r.c_used }, { "ignored", &r.c_ignored }, { "rejected", &r.c_rejected },
		       { "redraws", &r.c_redraws }, { "snapshots", &r.c_snapshots });

	rc = o->svg_only ? svg_only(&r, nfiles, files) : follow(&r);

	stats_emit(&r.st, 1);
	project_release(&r.model);
	if (rejects_close(r.rej) != 0 && !rc)
		rc = KERF_EX_IOERR;
	if (o->svg_only) {
		if (fshut(stdout, "standard output") != KERF_EX_OK && !rc)
			rc = KERF_EX_IOERR;
		return rc;
	}
	/* A write error said once already is not said again. */
	c = stdout_shut(r.stdout_failed);
	if (r.stdout_failed)
		return c;
	if (rc != KERF_EX_OK)
		return rc;
	if (c != KERF_EX_OK)
		return c;
	return sig_stop && !r.eof ? KERF_EX_TEMPFAIL : KERF_EX_OK;
}

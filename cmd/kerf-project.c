/*
 * kerf-project: the operator's view of a run.  Drains the persisted
 * events on stdin as fast as they come, folds them into the project
 * model, and at most every --interval draws the terminal dashboard (or
 * writes one NDJSON snapshot); at the end writes the wafer maps and the
 * HTML index into the run directory.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "stats.h"
#include "sig.h"
#include "line.h"
#include "cli.h"
#include "out.h"
#include "journal.h"
#include "project.h"
#include "reject.h"
#include "svg.h"
#include "tty.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

static const char usage[] =
	"Usage: kerf-project [-C RUNDIR] [--interval MS] [--snapshots] [--no-maps]\n"
	"                    [--max-line SIZE]\n"
	"       kerf-project --svg-only [-C RUNDIR] [FILE...]\n"
	"Show a run as it happens, from the persisted events on standard input and\n"
	"the supervisor's RUNDIR/status.json; at the end draw RUNDIR/wafermap/*.svg\n"
	"and RUNDIR/index.html.\n"
	"\n";

static const char usage_tail[] =
	"\n"
	"Standard output is a terminal: a live dashboard.  Otherwise, a short final\n"
	"summary (or the snapshots with --snapshots).\n";

enum mode { MODE_SUMMARY, MODE_TTY, MODE_SNAPSHOTS };

static struct {
	const char *rundir;
	uint64_t interval_ms;
	int snapshots, no_maps, svg_only;
	uint64_t max_line;
} opt = { NULL, 200, 0, 0, 0, KERF_MAX_LINE_DEFAULT };

static const struct cli_opt options[] = {
	OPT_STRING('C', "rundir", "RUNDIR", &opt.rundir, "run directory (default $KERF_RUNDIR, else .)"),
	OPT_MS('i', "interval", "MS", &opt.interval_ms, 100, 1000,
	       "redraw at most every MS milliseconds, 100..1000\n(default 200)"),
	OPT_BOOL('s', "snapshots", &opt.snapshots,
		 "write one NDJSON snapshot per interval to standard\noutput (when something changed) instead of the\n"
		 "dashboard or the final summary"),
	OPT_BOOL('n', "no-maps", &opt.no_maps, "do not write the wafer maps and the index"),
	CLI_MAX_LINE('m', &opt.max_line),
	OPT_BOOL(0, "svg-only", &opt.svg_only,
		 "only draw the maps, from the FILEs given ('-' for\nstandard input) or else from RUNDIR/journal/"),
	OPT_HELP("show this help and exit"),
	OPT_VERSION('V', "show the version and exit"),
	OPT_END(),
};

static const struct cli_spec spec = { .usage = usage, .opts = options, .tail = usage_tail, .width = 24 };

static struct project model;
static struct stats st;
static uint64_t *c_in, *c_used, *c_ignored, *c_rejected, *c_redraws, *c_snapshots;
static struct rejects *rej;
static int rej_to_file; /* rejects to RUNDIR/rejects.ndjson (dashboard on a terminal) */
static int stdin_flags = -1;
static int stdout_failed; /* a write to stdout failed and was logged */
static int map_failed;    /* a wafer's map could not be written (logged) */

/* The project's wafer_done hook: a finished wafer's map, before its details go. */
static void draw_finished(const struct project *p, const struct project_wafer *w, void *arg)
{
	(void)arg;
	if (svg_wafer_write(p, w, opt.rundir) != 0)
		map_failed = 1;
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

static void reject(const struct line_reader *lr, const char *reason, const char *msg,
		   const char *line, size_t avail, size_t len)
{
	struct reject_info ri = {
		.reason = reason, .msg = msg, .run = model.run, .seq = -1,
		.line = lr->lineno, .offset = lr->offset, .raw = line,
		.raw_len = avail, .len = len,
	};
	(*c_rejected)++;
	if (!rej) {
		char *path = rej_to_file ? xasprintf("%s/rejects.ndjson", opt.rundir) : NULL;
		rej = rejects_open(path);
		free(path);
		if (!rej)
			return;
	}
	rejects_write(rej, &ri);
}

/* One line of input into the model; counts it. */
static void take(const struct line_reader *lr, enum line_status s, const char *line, size_t len)
{
	(*c_in)++;
	if (s == LINE_TOO_LONG) {
		reject(lr, "too_long", "line longer than --max-line", line, lr->prefix_len, len);
		return;
	}
	if (s == LINE_CONTROL) {
		char msg[LINE_CONTROL_MSG];
		line_control_msg(line, lr->control_at, msg);
		reject(lr, LINE_CONTROL_REASON, msg, line, len, len);
		return;
	}
	switch (project_feed(&model, line, len)) {
	case PROJECT_USED:
		(*c_used)++;
		break;
	case PROJECT_IGNORED:
		(*c_ignored)++;
		break;
	case PROJECT_BAD:
		reject(lr, "json", "not a JSON object", line, len, len);
		break;
	}
}

/*
 * Read lines until the input would block, ends, a signal comes or the
 * redraw is due.  stdin is non-blocking, so the line reader's read(2)
 * returns EAGAIN instead of waiting.  Returns 1 at end of input, -1 on a
 * read error, else 0.
 */
static int drain(struct line_reader *lr, uint64_t due_ms, int timed)
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
			take(lr, s, line, len);
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

static int snapshot(int final)
{
	json_t *o = project_snapshot(&model, final);
	int rc = json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(o);
	if (rc == 0)
		rc = fputc('\n', stdout) == EOF ? -1 : 0;
	if (rc == 0)
		rc = fflush(stdout);
	if (rc != 0) {
		stdout_failed = 1;
		log_write_failed(LOG_ERROR, "standard output", errno, NULL);
		return -1;
	}
	(*c_snapshots)++;
	return 0;
}

static void feed_committed(void *arg, const char *line, size_t len)
{
	/* project_feed wants the line NUL-terminated; journal lines are not. */
	struct line_reader *lr = arg;
	char *copy = xmemdup(line, len);
	lr->lineno++;
	lr->control_at = line_control_at(copy, len);
	take(lr, lr->control_at < len ? LINE_CONTROL : LINE_OK, copy, len);
	free(copy);
}

/*
 * The committed events of DIR/journal/, checked by kerf-persist's own
 * reader: an uncommitted tail is left out (it was never acknowledged),
 * and a damaged journal is drawn up to the damage and reported.
 */
static int feed_journal(const char *dir)
{
	char *jdir = xasprintf("%s/journal", dir);
	struct journal_info ji;
	struct line_reader pos = { .fd = -1 };
	int rc;
	if (access(jdir, R_OK | X_OK) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot read '%s': %s", jdir, strerror(errno));
		free(jdir);
		return -2;
	}
	rc = journal_verify(jdir, feed_committed, &pos, &ji);
	if (rc == 1)
		log_msg(LOG_WARN, NULL, "'%s': uncommitted tail left out: %s", jdir, ji.err);
	else if (rc < 0)
		log_msg(LOG_ERROR, NULL, "'%s': %s", jdir, ji.err[0] ? ji.err : "cannot be read");
	journal_info_release(&ji);
	free(jdir);
	return rc < 0 ? -1 : 0;
}

static int svg_only(int nfiles, char **files)
{
	int rc = 0;
	if (nfiles == 0) {
		int j = feed_journal(opt.rundir);
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
		line_reader_init(&lr, fd, opt.max_line);
		while (drain(&lr, 0, 0) == 0 && !sig_stop)
			;
		line_reader_release(&lr);
		if (fd > 0)
			close(fd);
	}
	if (sig_stop)
		return KERF_EX_TEMPFAIL;
	{
		char *sp = xasprintf("%s/status.json", opt.rundir);
		project_status_read(&model, sp);
		free(sp);
	}
	if (svg_write_all(&model, opt.rundir) != 0 || map_failed)
		rc = KERF_EX_IOERR;
	return rc;
}

int main(int argc, char **argv)
{
	struct line_reader lr;
	struct tty *tty = NULL;
	enum mode mode;
	char *status_path;
	int eof = 0, failed = 0, rc;
	uint64_t due, v_seen = (uint64_t)-1, sv_seen = (uint64_t)-1;
	int quiet_stats;

	log_init(argv[0]);
	cli_parse(&spec, argc, argv, NULL);
	if (optind < argc && !opt.svg_only)
		cli_usage_error("unexpected argument '%s' (events are read from standard input)", argv[optind]);
	if (opt.svg_only && (opt.snapshots || opt.no_maps))
		cli_usage_error("--svg-only draws the maps only; it takes no --snapshots or --no-maps");
	if (!opt.rundir)
		opt.rundir = getenv("KERF_RUNDIR") && *getenv("KERF_RUNDIR") ? getenv("KERF_RUNDIR") : ".";
	sig_init();
	project_init(&model);
	if (!opt.no_maps)
		model.wafer_done = draw_finished;
	stats_init(&st, 0);
	c_in = stats_work(&st, "in", "lines");
	c_used = stats_counter(&st, "used");
	c_ignored = stats_counter(&st, "ignored");
	c_rejected = stats_counter(&st, "rejected");
	c_redraws = stats_counter(&st, "redraws");
	c_snapshots = stats_counter(&st, "snapshots");

	if (opt.svg_only) {
		rc = svg_only(argc - optind, argv + optind);
		stats_emit(&st, 1);
		project_release(&model);
		if (rejects_close(rej) != 0 && !rc)
			rc = KERF_EX_IOERR;
		if (fshut(stdout, "standard output") != KERF_EX_OK && !rc)
			rc = KERF_EX_IOERR;
		return rc;
	}

	mode = opt.snapshots ? MODE_SNAPSHOTS : isatty(1) ? MODE_TTY : MODE_SUMMARY;
	/* ncurses needs the real stdout (it asks for its descriptor). */
	if (mode != MODE_TTY)
		stdout_init();
	else
		setvbuf(stdout, NULL, _IOFBF, 64 * 1024);
	if (mode == MODE_TTY && !(tty = tty_open()))
		mode = MODE_SUMMARY;
	/* Log records on the dashboard's terminal would tear it: keep them for the end. */
	quiet_stats = mode == MODE_TTY && isatty(2);
	rej_to_file = quiet_stats;
	status_path = xasprintf("%s/status.json", opt.rundir);

	stdin_flags = fcntl(0, F_GETFL);
	if (stdin_flags >= 0 && fcntl(0, F_SETFL, stdin_flags | O_NONBLOCK) == 0)
		atexit(restore_stdin);
	else
		stdin_flags = -1;
	line_reader_init(&lr, 0, opt.max_line);
	lr.before_read = flush_stdout;

	due = mono_ms();
	while (!eof && !failed && !sig_stop) {
		uint64_t now = mono_ms();
		struct pollfd pfd = { .fd = 0, .events = POLLIN };
		int timeout, r;

		if (mode != MODE_SUMMARY && now >= due) {
			project_status_read(&model, status_path);
			project_tick(&model, now);
			if (mode == MODE_TTY) {
				tty_draw(tty, &model, opt.interval_ms);
				(*c_redraws)++;
			} else if (model.version != v_seen || model.status_version != sv_seen) {
				/* Coalesced: nothing new, nothing written. */
				v_seen = model.version;
				sv_seen = model.status_version;
				if (snapshot(0) != 0)
					failed = KERF_EX_IOERR;
			}
			due = now + opt.interval_ms;
		}
		if (!quiet_stats)
			stats_tick(&st);
		timeout = mode == MODE_SUMMARY ? 1000 : (int)(due > now ? due - now : 0);
		r = poll(&pfd, 1, timeout);
		if (r < 0 && errno != EINTR) {
			log_msg(LOG_ERROR, NULL, "cannot poll standard input: %s", strerror(errno));
			failed = KERF_EX_IOERR;
		}
		if (r > 0) {
			/* Come back for the redraw, or (summary) for the stats tick. */
			int d = drain(&lr, mode == MODE_SUMMARY ? now + 500 : due, 1);
			if (d > 0)
				eof = 1;
			else if (d < 0)
				failed = KERF_EX_IOERR;
		}
	}
	line_reader_release(&lr);
	restore_stdin();

	/* The end: last figures, maps, then the summary on the normal screen. */
	project_status_read(&model, status_path);
	project_tick(&model, mono_ms());
	if (tty) {
		tty_draw(tty, &model, opt.interval_ms);
		tty_close(tty);
	}
	if (!opt.no_maps && (svg_write_all(&model, opt.rundir) != 0 || map_failed) && !failed)
		failed = KERF_EX_IOERR;
	if (mode == MODE_SNAPSHOTS) {
		if (!stdout_failed && snapshot(1) != 0 && !failed)
			failed = KERF_EX_IOERR;
	} else {
		project_summary(&model, stdout);
		if (!opt.no_maps)
			printf("maps: %s/index.html\n", opt.rundir);
	}
	if (sig_stop && !eof)
		log_msg(LOG_INFO, json_pack("{s:i}", "signal", (int)sig_stop),
			"stopped by a signal before the end of input");
	stats_emit(&st, 1);
	free(status_path);
	project_release(&model);
	if (rejects_close(rej) != 0 && !failed)
		failed = KERF_EX_IOERR;
	rc = stdout_shut(stdout_failed);
	if (stdout_failed)
		return rc;
	if (failed)
		return failed;
	if (rc != KERF_EX_OK)
		return rc;
	return sig_stop && !eof ? KERF_EX_TEMPFAIL : KERF_EX_OK;
}

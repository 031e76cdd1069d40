/*
 * kerf-persist: durable, batched, idempotent storage of the event stream
 * in RUNDIR/journal/, a KLARF file per wafer and RUNDIR/summary.json.
 * Events go on to stdout only once their batch is durable.
 */
#include "kerf.h"
#include "journal.h"
#include "reject.h"
#include "summary.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: kerf-persist [-C RUNDIR] [--batch N] [--batch-ms T] [--fsync batch|none]\n"
	"                    [--segment-size SIZE] [--max-line N] [--downstream-optional]\n"
	"       kerf-persist --verify [-C RUNDIR]\n"
	"\n"
	"Store the event stream on stdin durably in RUNDIR/journal/ and pass each\n"
	"event on to stdout once its batch is durable.  Events whose id is already\n"
	"journaled are passed on but not stored again.  Writes RUNDIR/klarf/ at each\n"
	"wafer_end and RUNDIR/summary.json at the end of input.\n"
	"\n"
	"  -C, --rundir RUNDIR    the run directory (default $KERF_RUNDIR)\n"
	"      --batch N          close a batch at N events (default 1000)\n"
	"      --batch-ms T       ... or T after its first event (default 20ms)\n"
	"      --fsync POLICY     batch: fsync each batch (default); none: never\n"
	"      --segment-size SIZE\n"
	"                         start a new segment past SIZE bytes (default 64M)\n"
	"      --max-line N       reject lines longer than N bytes (default 64M)\n"
	"      --downstream-optional\n"
	"                         a closed stdout is logged once; persisting goes on\n"
	"      --verify           check every commit of RUNDIR's journal and exit\n"
	"  -h, --help             this text\n"
	"  -V, --version          the version\n";

/* A batch also closes at this many bytes, so die images cannot pile up. */
#define BATCH_BYTES_MAX (4u << 20)

struct persist {
	const char *rundir;
	struct journal *j;
	struct summary *sum;
	struct rejects *rej;
	struct stats st;
	uint64_t *c_in, *c_out, *c_journaled, *c_dup, *c_rej, *c_unsent, *c_batches;
	long batch;
	uint64_t batch_ms;
	int downstream_optional, downstream_gone;
	/* Lines to pass on at the next batch close, in input order. */
	char *obuf;
	size_t olen, ocap;
	uint64_t *tin;          /* arrival time of each, µs */
	size_t on, ocapn;
	uint64_t batch_t0;      /* ms when the pending batch got its first line */
	int run_logged;
};

static void flush_stdout(void *arg)
{
	(void)arg;
	fflush(stdout);
}

static void finish(struct persist *p, int code);

static void out_add(struct persist *p, const char *line, size_t len)
{
	if (p->olen + len + 1 > p->ocap) {
		while (p->olen + len + 1 > p->ocap)
			p->ocap = p->ocap ? p->ocap * 2 : 1 << 16;
		p->obuf = xrealloc(p->obuf, p->ocap);
	}
	memcpy(p->obuf + p->olen, line, len);
	p->obuf[p->olen + len] = '\n';
	p->olen += len + 1;
	if (p->on == p->ocapn) {
		p->ocapn = p->ocapn ? p->ocapn * 2 : 1024;
		p->tin = xrealloc(p->tin, p->ocapn * sizeof *p->tin);
	}
	if (p->on == 0)
		p->batch_t0 = mono_ms();
	p->tin[p->on++] = mono_us();
}

/* Stdout failed with errno e. */
static void downstream_failed(struct persist *p, int e)
{
	if (e == EPIPE && p->downstream_optional) {
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		log_msg(LOG_WARN, NULL, "downstream closed its input (%s); persisting goes on", strerror(e));
		p->downstream_gone = 1;
		/* What stdio still holds now drains into /dev/null. */
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			close(fd);
		}
		clearerr(stdout);
		return;
	}
	log_msg(LOG_ERROR, NULL, "cannot write to standard output: %s", strerror(e));
	p->downstream_gone = 1;
	finish(p, KERF_EX_IOERR);
}

/* Close the pending batch: make it durable, account for it, pass it on. */
static void close_batch(struct persist *p)
{
	const char *b, *e;
	size_t blen, i;
	uint64_t now;

	if (p->on == 0)
		return;
	if (journal_commit(p->j) != 0)
		finish(p, KERF_EX_IOERR);
	b = journal_last_batch(p->j, &blen);
	if (blen)
		++*p->c_batches;
	for (e = b + blen; b < e;) {
		const char *nl = memchr(b, '\n', (size_t)(e - b));
		if (summary_feed(p->sum, b, (size_t)(nl - b)) != 0)
			finish(p, KERF_EX_IOERR);
		b = nl + 1;
	}
	if (!p->downstream_gone) {
		if (fwrite(p->obuf, 1, p->olen, stdout) != p->olen || fflush(stdout) != 0)
			downstream_failed(p, errno);
	}
	if (p->downstream_gone)
		*p->c_unsent += p->on;
	else
		*p->c_out += p->on;
	now = mono_us();
	for (i = 0; i < p->on; i++)
		stats_latency(&p->st, now - p->tin[i]);
	p->olen = 0;
	p->on = 0;
}

static void reject(struct persist *p, struct line_reader *lr, const char *reason,
		   const char *msg, const char *line, size_t avail, uint64_t len)
{
	struct reject_info ri = { reason, msg, NULL, -1, lr->lineno, lr->offset, line, avail, len };
	const char *v;
	size_t vl;
	char *run = NULL;
	long seq;

	/* Name the run and seq when the line has them. */
	if (event_peek(line, avail, "run", &v, &vl))
		ri.run = run = xstrndup(v, vl);
	if (event_peek(line, avail, "seq", &v, &vl) && vl < 20) {
		char tmp[24];
		memcpy(tmp, v, vl);
		tmp[vl] = '\0';
		if (parse_long(tmp, 0, LONG_MAX, &seq) == 0)
			ri.seq = seq;
	}
	if (!p->rej) {
		char *path = xasprintf("%s/rejects.ndjson", p->rundir);
		p->rej = rejects_open(getenv("KERF_RUNDIR") ? NULL : path);
		free(path);
	}
	if (p->rej)
		rejects_write(p->rej, &ri);
	free(run);
	++*p->c_rej;
}

static void handle_line(struct persist *p, struct line_reader *lr, const char *line, size_t len)
{
	const char *v;
	size_t vl;
	uint64_t id;
	enum event_type t;

	++*p->c_in;
	if (!event_peek(line, len, "id", &v, &vl) || journal_parse_id(v, vl, &id) != 0) {
		reject(p, lr, "envelope", "no valid \"id\" (16 hex digits)", line, len, len);
		return;
	}
	if (!event_peek(line, len, "type", &v, &vl)) {
		reject(p, lr, "envelope", "no \"type\"", line, len, len);
		return;
	}
	if (!p->run_logged && event_peek(line, len, "run", &v, &vl)) {
		char *run = xstrndup(v, vl);
		log_set_run(run);
		free(run);
		p->run_logged = 1;
	}
	t = event_peek_type(line, len);
	if (journal_seen(p->j, id)) {
		++*p->c_dup;
	} else {
		journal_add(p->j, id, line, len);
		++*p->c_journaled;
	}
	out_add(p, line, len);
	/* The age check matters when input never pauses (a backlog). */
	if (t == EV_ALARM || p->on >= (size_t)p->batch || journal_pending_bytes(p->j) >= BATCH_BYTES_MAX ||
	    p->tin[p->on - 1] / 1000 >= p->batch_t0 + p->batch_ms)
		close_batch(p);
}

/* A whole line is waiting in the reader, so line_read will not block. */
static int line_ready(const struct line_reader *lr)
{
	return lr->eof || (lr->end > lr->start && !lr->discarding &&
			   memchr(lr->buf + lr->start, '\n', lr->end - lr->start));
}

static void replay_event(void *arg, const char *line, size_t len)
{
	struct persist *p = arg;
	if (summary_feed(p->sum, line, len) != 0)
		finish(p, KERF_EX_IOERR);
}

/* Exit: summary.json if the journal is sound, final stats, stdout check. */
static void finish(struct persist *p, int code)
{
	static int finishing;
	if (!finishing) {
		finishing = 1;
		/* Not after a failed commit: summary.json describes the journal. */
		if (code != KERF_EX_IOERR || !p->j || !journal_pending(p->j)) {
			if (summary_finish(p->sum) != 0 && code == KERF_EX_OK)
				code = KERF_EX_IOERR;
		}
	}
	stats_emit(&p->st, 1);
	if (rejects_close(p->rej) != 0 && code == KERF_EX_OK)
		code = KERF_EX_IOERR;
	p->rej = NULL;
	if (!p->downstream_gone) {
		int rc = fshut(stdout, "standard output");
		if (rc != KERF_EX_OK && code == KERF_EX_OK)
			code = rc;
	}
	journal_close(p->j);
	summary_free(p->sum);
	stats_release(&p->st);
	free(p->obuf);
	free(p->tin);
	exit(code);
}

/*
 * poll stdin, but without the race where SIGTERM lands between the loop's
 * check of sig_stop and the poll, which would then sleep its timeout:
 * the stop signals are blocked until ppoll unblocks them atomically.
 */
static int wait_input(struct pollfd *pfd, int timeout_ms)
{
	sigset_t block, old;
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
	int rc;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	if (sig_stop) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return 0;
	}
	rc = ppoll(pfd, 1, &ts, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static int verify(const char *rundir)
{
	char *dir = xasprintf("%s/journal", rundir);
	struct journal_info ji;
	int rc;

	if (access(dir, F_OK) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot open '%s': %s", dir, strerror(errno));
		free(dir);
		return KERF_EX_IOERR;
	}
	rc = journal_verify(dir, NULL, NULL, &ji);
	if (rc != 0) {
		log_msg(LOG_ERROR, json_pack("{sI sI}", "batches", (json_int_t)ji.batches,
					     "events", (json_int_t)ji.events),
			"journal '%s' does not verify: %s", dir, ji.err);
		journal_info_release(&ji);
		free(dir);
		return KERF_EX_DATAERR;
	}
	printf("journal '%s' verified: %llu segments, %llu batches, %llu events\n", dir,
	       (unsigned long long)ji.segments, (unsigned long long)ji.batches,
	       (unsigned long long)ji.events);
	journal_info_release(&ji);
	free(dir);
	return fshut(stdout, "standard output");
}

int main(int argc, char **argv)
{
	enum { OPT_BATCH = 256, OPT_BATCH_MS, OPT_FSYNC, OPT_SEGSIZE, OPT_MAXLINE, OPT_DOWNOPT, OPT_VERIFY };
	static const struct option opts[] = {
		{ "rundir", required_argument, NULL, 'C' },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "batch-ms", required_argument, NULL, OPT_BATCH_MS },
		{ "fsync", required_argument, NULL, OPT_FSYNC },
		{ "segment-size", required_argument, NULL, OPT_SEGSIZE },
		{ "max-line", required_argument, NULL, OPT_MAXLINE },
		{ "downstream-optional", no_argument, NULL, OPT_DOWNOPT },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct persist p = { 0 };
	struct journal_opts jo = { JOURNAL_FSYNC_BATCH, 64u << 20 };
	struct line_reader lr;
	uint64_t max_line = 64u << 20;
	int c, do_verify = 0, code;
	char *jdir;

	log_init(argv[0]);
	p.rundir = getenv("KERF_RUNDIR");
	p.batch = 1000;
	p.batch_ms = 20;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "C:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'C':
			p.rundir = optarg;
			break;
		case OPT_BATCH:
			if (parse_long(optarg, 1, 10000000, &p.batch) != 0)
				cli_usage_error("--batch: '%s' is not a number from 1 to 10000000", optarg);
			break;
		case OPT_BATCH_MS:
			if (parse_duration_ms(optarg, 1, &p.batch_ms) != 0 || p.batch_ms > 3600000)
				cli_usage_error("--batch-ms: '%s' is not a duration up to 1h", optarg);
			break;
		case OPT_FSYNC:
			if (strcmp(optarg, "batch") == 0)
				jo.fsync = JOURNAL_FSYNC_BATCH;
			else if (strcmp(optarg, "none") == 0)
				jo.fsync = JOURNAL_FSYNC_NONE;
			else
				cli_usage_error("--fsync: '%s' is not batch or none", optarg);
			break;
		case OPT_SEGSIZE:
			if (parse_size(optarg, &jo.segment_size) != 0 || jo.segment_size < 1)
				cli_usage_error("--segment-size: '%s' is not a size", optarg);
			break;
		case OPT_MAXLINE:
			if (parse_size(optarg, &max_line) != 0 || max_line < 64 || max_line > (1u << 30))
				cli_usage_error("--max-line: '%s' is not a size from 64 to 1G", optarg);
			break;
		case OPT_DOWNOPT:
			p.downstream_optional = 1;
			break;
		case OPT_VERIFY:
			do_verify = 1;
			break;
		case 'h':
			cli_help(usage);
		case 'V':
			cli_version();
		default:
			cli_usage_error("unrecognized option or missing argument: '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!p.rundir || !*p.rundir)
		cli_usage_error("no run directory: give -C RUNDIR or set KERF_RUNDIR");
	if (do_verify)
		return verify(p.rundir);

	sig_init();
	/* Past RLIMIT_FSIZE a write fails with EFBIG instead of killing us. */
	signal(SIGXFSZ, SIG_IGN);
	stdout_init();
	stats_init(&p.st, 0);
	p.c_in = stats_counter(&p.st, "in");
	p.c_out = stats_counter(&p.st, "out");
	p.c_journaled = stats_counter(&p.st, "journaled");
	p.c_dup = stats_counter(&p.st, "duplicate");
	p.c_rej = stats_counter(&p.st, "rejected");
	p.c_unsent = stats_counter(&p.st, "unsent");
	p.c_batches = stats_counter(&p.st, "batches");

	p.sum = summary_new(p.rundir);
	summary_set_recovering(p.sum, 1);
	jdir = xasprintf("%s/journal", p.rundir);
	p.j = journal_open(jdir, &jo, replay_event, &p, &code);
	free(jdir);
	if (!p.j) {
		summary_free(p.sum);
		stats_release(&p.st);
		return code;
	}
	summary_set_recovering(p.sum, 0);

	line_reader_init(&lr, STDIN_FILENO, (size_t)max_line);
	lr.before_read = flush_stdout;
	for (;;) {
		char *line;
		size_t len;
		enum line_status ls;

		if (sig_stop)
			break;
		if (!line_ready(&lr)) {
			/* Wake for the batch's deadline and for the stats. */
			int timeout = p.st.interval_ms < 60000 ? (int)p.st.interval_ms : 60000;
			struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
			if (p.on) {
				uint64_t now = mono_ms(), due = p.batch_t0 + p.batch_ms;
				if (now >= due) {
					close_batch(&p);
					continue;
				}
				if (due - now < (uint64_t)timeout)
					timeout = (int)(due - now);
			}
			fflush(stdout);
			if (wait_input(&pfd, timeout) <= 0) {
				stats_tick(&p.st);
				continue;
			}
		}
		ls = line_read(&lr, &line, &len);
		if (ls == LINE_INTR)
			continue;
		if (ls == LINE_EOF)
			break;
		if (ls == LINE_ERROR) {
			log_msg(LOG_ERROR, NULL, "cannot read standard input: %s", strerror(errno));
			close_batch(&p);
			line_reader_release(&lr);
			finish(&p, KERF_EX_IOERR);
		}
		if (ls == LINE_TOO_LONG) {
			++*p.c_in;
			reject(&p, &lr, "too_long", "line longer than --max-line", line, lr.prefix_len, len);
			continue;
		}
		handle_line(&p, &lr, line, len);
		stats_tick(&p.st);
	}
	close_batch(&p);
	line_reader_release(&lr);
	if (sig_stop) {
		log_msg(LOG_INFO, NULL, "stopped by signal %d before the end of input", (int)sig_stop);
		finish(&p, KERF_EX_TEMPFAIL);
	}
	finish(&p, KERF_EX_OK);
	return 0;
}

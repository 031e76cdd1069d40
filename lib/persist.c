/* persist.c: see persist.h. */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "stats.h"
#include "sig.h"
#include "line.h"
#include "event.h"
#include "cli.h"
#include "out.h"
#include "failpoint.h"
#include "persist.h"
#include "reject.h"
#include "summary.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

/* A batch also closes at this many bytes, so die images cannot pile up. */
#define BATCH_BYTES_MAX (4u << 20)

struct persist {
	const struct persist_opts *o;
	struct journal *j;
	struct summary *sum;
	struct rejects *rej;
	struct stats st;
	uint64_t *c_in, *c_out, *c_journaled, *c_dup, *c_rej, *c_unsent, *c_batches;
	int downstream_gone;
	int replay_failed;      /* a KLARF could not be written during recovery */
	/* Lines to pass on at the next batch close, in input order. */
	char *obuf;
	size_t olen, ocap;
	uint64_t *tin;          /* arrival time of each, µs */
	size_t on, ocapn;
	uint64_t batch_t0;      /* ms when the pending batch got its first line */
	int run_logged;
};

void persist_opts_init(struct persist_opts *o)
{
	memset(o, 0, sizeof *o);
	o->rundir = getenv("KERF_RUNDIR");
	o->batch = 1000;
	o->batch_ms = 20;
	o->journal.fsync = JOURNAL_FSYNC_BATCH;
	o->journal.segment_size = 64u << 20;
	o->max_line = KERF_MAX_LINE_DEFAULT;
}

static void flush_stdout(void *arg)
{
	(void)arg;
	fflush(stdout);
}

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

/* Stdout failed with errno e: 0 to go on, or the exit status. */
static int downstream_failed(struct persist *p, int e)
{
	if (e == EPIPE && p->o->downstream_optional) {
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		log_write_failed(LOG_WARN, "standard output", e, "persisting goes on");
		p->downstream_gone = 1;
		/* What stdio still holds now drains into /dev/null. */
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			close(fd);
		}
		clearerr(stdout);
		return 0;
	}
	log_write_failed(LOG_ERROR, "standard output", e, NULL);
	p->downstream_gone = 1;
	return KERF_EX_IOERR;
}

/* Close the pending batch: make it durable, account for it, pass it on.
 * 0, or the exit status. */
static int close_batch(struct persist *p)
{
	const char *b, *e;
	size_t blen, i;
	uint64_t now;

	if (p->on == 0)
		return 0;
	if (journal_commit(p->j) != 0)
		return KERF_EX_IOERR;
	b = journal_last_batch(p->j, &blen);
	if (blen)
		++*p->c_batches;
	for (e = b + blen; b < e;) {
		const char *nl = memchr(b, '\n', (size_t)(e - b));
		if (summary_feed(p->sum, b, (size_t)(nl - b)) != 0)
			return KERF_EX_IOERR;
		b = nl + 1;
	}
	if (!p->downstream_gone) {
		if (__builtin_expect(failpoint_armed, 0) && failpoint_due(FP_ACK_TORN)) {
			/* Half of the bytes: the last line passed on may be cut. */
			(void)!fwrite(p->obuf, 1, p->olen / 2, stdout);
			(void)fflush(stdout);
			failpoint_die(FP_ACK_TORN);
		}
		if (fwrite(p->obuf, 1, p->olen, stdout) != p->olen || fflush(stdout) != 0) {
			int rc = downstream_failed(p, errno);
			if (rc)
				return rc;
		}
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
	FAILPOINT(FP_ACK_DONE);
	return 0;
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
		char *path = xasprintf("%s/rejects.ndjson", p->o->rundir);
		p->rej = rejects_open(getenv("KERF_RUNDIR") ? NULL : path);
		free(path);
	}
	if (p->rej)
		rejects_write(p->rej, &ri);
	free(run);
	++*p->c_rej;
}

/* One input line: 0, or the exit status. */
static int handle_line(struct persist *p, struct line_reader *lr, const char *line, size_t len)
{
	const char *v;
	size_t vl;
	struct journal_key k;
	enum event_type t;
	int seen;

	++*p->c_in;
	if (journal_key_of(line, len, &k) != 0) {
		reject(p, lr, "envelope", "no valid \"id\" (16 hex digits)", line, len, len);
		return 0;
	}
	if (!event_peek(line, len, "type", &v, &vl)) {
		reject(p, lr, "envelope", "no \"type\"", line, len, len);
		return 0;
	}
	if (!p->run_logged && k.run) {
		char *run = xstrndup(k.run, k.runlen);
		log_set_run(run);
		free(run);
		p->run_logged = 1;
	}
	t = event_peek_type(line, len);
	seen = journal_seen(p->j, &k);
	if (seen < 0)
		return KERF_EX_IOERR;
	if (seen) {
		++*p->c_dup;
	} else {
		journal_add(p->j, &k, line, len);
		++*p->c_journaled;
	}
	out_add(p, line, len);
	/* The age check matters when input never pauses (a backlog). */
	if (t == EV_ALARM || p->on >= (size_t)p->o->batch || journal_pending_bytes(p->j) >= BATCH_BYTES_MAX ||
	    p->tin[p->on - 1] / 1000 >= p->batch_t0 + p->o->batch_ms)
		return close_batch(p);
	return 0;
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
	/* After a failure, the rest of the scan only rebuilds the index. */
	if (!p->replay_failed && summary_feed(p->sum, line, len) != 0)
		p->replay_failed = 1;
}

/* The end: summary.json if the journal is sound, final stats, stdout
 * check, everything released.  Returns the exit status. */
static int finish(struct persist *p, int code)
{
	/* Not after a failed commit: summary.json describes the journal. */
	if (code != KERF_EX_IOERR || !p->j || !journal_pending(p->j)) {
		if (summary_finish(p->sum) != 0 && code == KERF_EX_OK)
			code = KERF_EX_IOERR;
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
	return code;
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

int persist_verify(const char *rundir)
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

/* Read, journal and pass on until the end of input or a stop signal. */
static int run_loop(struct persist *p)
{
	struct line_reader lr;
	int rc = 0;

	line_reader_init(&lr, STDIN_FILENO, (size_t)p->o->max_line);
	lr.before_read = flush_stdout;
	for (;;) {
		char *line;
		size_t len;
		enum line_status ls;

		if (sig_stop)
			break;
		if (!line_ready(&lr)) {
			/* Wake for the batch's deadline and for the stats. */
			int timeout = p->st.interval_ms < 60000 ? (int)p->st.interval_ms : 60000;
			struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
			if (p->on) {
				uint64_t now = mono_ms(), due = p->batch_t0 + p->o->batch_ms;
				if (now >= due) {
					if ((rc = close_batch(p)) != 0)
						break;
					continue;
				}
				if (due - now < (uint64_t)timeout)
					timeout = (int)(due - now);
			}
			fflush(stdout);
			if (wait_input(&pfd, timeout) <= 0) {
				stats_tick(&p->st);
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
			close_batch(p);
			rc = KERF_EX_IOERR;
			break;
		}
		if (ls == LINE_TOO_LONG) {
			++*p->c_in;
			reject(p, &lr, "too_long", "line longer than --max-line", line, lr.prefix_len, len);
			continue;
		}
		if (ls == LINE_CONTROL) {
			char msg[LINE_CONTROL_MSG];
			++*p->c_in;
			line_control_msg(line, lr.control_at, msg);
			reject(p, &lr, LINE_CONTROL_REASON, msg, line, len, len);
			continue;
		}
		if ((rc = handle_line(p, &lr, line, len)) != 0)
			break;
		stats_tick(&p->st);
	}
	if (rc == 0)
		rc = close_batch(p);
	line_reader_release(&lr);
	if (rc == 0 && sig_stop) {
		log_msg(LOG_INFO, NULL, "stopped by signal %d before the end of input", (int)sig_stop);
		rc = KERF_EX_TEMPFAIL;
	}
	return rc;
}

int persist_run(const struct persist_opts *o)
{
	struct persist p;
	char *jdir;
	int code;

	memset(&p, 0, sizeof p);
	p.o = o;
	sig_init();
	/* Past RLIMIT_FSIZE a write fails with EFBIG instead of killing us. */
	signal(SIGXFSZ, SIG_IGN);
	stdout_init();
	stats_init(&p.st, 0);
	p.c_in = stats_work(&p.st, "in", "lines");
	STATS_COUNTERS(&p.st, { "out", &p.c_out }, { "journaled", &p.c_journaled }, { "duplicate", &p.c_dup },
		       { "rejected", &p.c_rej }, { "unsent", &p.c_unsent }, { "batches", &p.c_batches });

	p.sum = summary_new(o->rundir);
	summary_set_recovering(p.sum, 1);
	jdir = xasprintf("%s/journal", o->rundir);
	p.j = journal_open(jdir, &o->journal, replay_event, &p, &code);
	free(jdir);
	if (!p.j) {
		summary_free(p.sum);
		stats_release(&p.st);
		return code;
	}
	summary_set_recovering(p.sum, 0);
	if (p.replay_failed)
		return finish(&p, KERF_EX_IOERR);
	return finish(&p, run_loop(&p));
}

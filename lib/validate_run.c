/* validate_run.c: see validate_run.h. */
#include "validate_run.h"

#include "exitcode.h"
#include "line.h"
#include "log.h"
#include "out.h"
#include "reject.h"
#include "sig.h"
#include "stats.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* Rejects per reason code, for the stats records. */
#define REASONS_MAX 32

/* One run of kerf-validate. */
struct vrun {
	const struct validate_run_opts *o;
	struct validate v;
	struct line_reader lr;
	struct stats st;
	struct rejects *rj;
	uint64_t *n_in, *n_out, *n_rej, *n_gaps, *n_missing, *n_warn;
	struct {
		const char *reason[REASONS_MAX];
		uint64_t n[REASONS_MAX];
		int count;
	} reasons;
	int run_named;       /* the log records name the run */
	int out_failed;      /* a write to stdout failed and was logged */
	int out_failed_errno; /* the flush before a read failed with this */
};

void validate_run_opts_init(struct validate_run_opts *o)
{
	memset(o, 0, sizeof *o);
	validate_opts_default(&o->check);
}

static void count_reason(struct vrun *r, const char *reason)
{
	int i;
	for (i = 0; i < r->reasons.count; i++)
		if (r->reasons.reason[i] == reason || !strcmp(r->reasons.reason[i], reason))
			break;
	if (i == r->reasons.count) {
		if (r->reasons.count == REASONS_MAX)
			return;
		r->reasons.reason[r->reasons.count++] = reason;
	}
	r->reasons.n[i]++;
}

static json_t *reasons_json(void *arg)
{
	struct vrun *r = arg;
	json_t *o;
	if (r->reasons.count == 0)
		return NULL;
	o = json_object();
	for (int i = 0; i < r->reasons.count; i++)
		json_object_set_new(o, r->reasons.reason[i], json_integer((json_int_t)r->reasons.n[i]));
	return json_pack("{s:o}", "reasons", o);
}

/* Before each read(2), which may block: nothing waits in the buffer while
 * input is idle, and the stats tick at least every 64 KiB of input.  A
 * write error is seen at the next line or at the end. */
static void before_read(void *arg)
{
	struct vrun *r = arg;
	if (!r->out_failed_errno && fflush(stdout) != 0)
		r->out_failed_errno = errno;
	stats_tick(&r->st);
}

/* Stdout failed (logged once; EPIPE means downstream is gone). */
static int output_failed(struct vrun *r)
{
	log_write_failed(LOG_ERROR, "standard output", errno, NULL);
	r->out_failed = 1;
	return KERF_EX_IOERR;
}

static void seq_warning(const struct validate_result *res, uint64_t lineno)
{
	json_t *f = json_pack("{s:s?,s:I,s:I}", "run", res->run, "seq", (json_int_t)res->seq,
			      "line", (json_int_t)lineno);
	switch (res->seq_status) {
	case VSEQ_GAP:
		json_object_set_new(f, "missing_first", json_integer((json_int_t)res->gap_first));
		json_object_set_new(f, "missing_last", json_integer((json_int_t)res->gap_last));
		log_msg(LOG_WARN, f, "gap in sequence: seq %llu..%llu missing",
			(unsigned long long)res->gap_first, (unsigned long long)res->gap_last);
		break;
	case VSEQ_DUPLICATE:
		log_msg(LOG_WARN, f, "duplicate seq %lld passed on", (long long)res->seq);
		break;
	default:
		log_msg(LOG_WARN, f, "out-of-order seq %lld passed on", (long long)res->seq);
		break;
	}
}

/* A bad line: its reject record; 0, or the exit status that ends the run. */
static int reject(struct vrun *r, enum line_status ls, enum validate_verdict vd, const struct validate_result *res,
		  const char *line, size_t len)
{
	struct reject_info ri = {
		.reason = res->reason,
		.msg = res->msg,
		.run = res->run,
		.seq = res->seq,
		.line = r->lr.lineno,
		.offset = r->lr.offset,
		.raw = line,
		.raw_len = ls == LINE_TOO_LONG ? r->lr.prefix_len : len,
		.len = len,
	};
	++*r->n_rej;
	count_reason(r, res->reason);
	if (rejects_write(r->rj, &ri) != 0)
		return KERF_EX_IOERR; /* a reject that cannot be recorded would be a silent drop */
	if (r->o->strict || vd == VALIDATE_FATAL) {
		log_msg(LOG_ERROR,
			json_pack("{s:s,s:I,s:s?,s:I}", "reason", res->reason, "line", (json_int_t)r->lr.lineno,
				  "run", res->run, "seq", (json_int_t)res->seq),
			"line %llu: %s: %s", (unsigned long long)r->lr.lineno, res->reason, res->msg);
		return KERF_EX_DATAERR;
	}
	return KERF_EX_OK;
}

/* One line read: checked, then passed on or rejected; 0, or the exit status that ends the run. */
static int check(struct vrun *r, enum line_status ls, char *line, size_t len)
{
	struct validate_result res;
	enum validate_verdict vd;

	++*r->n_in;
	/* A LINE_CONTROL line gets validate_line's own not_json. */
	if (ls == LINE_TOO_LONG)
		vd = validate_too_long(&r->v, line, r->lr.prefix_len, len, &res);
	else
		vd = validate_line(&r->v, line, len, &res);
	if (res.seq_status == VSEQ_GAP) {
		++*r->n_gaps;
		*r->n_missing += res.gap_last - res.gap_first + 1;
	}
	if (res.seq_warn) {
		++*r->n_warn;
		seq_warning(&res, r->lr.lineno);
	}
	if (!r->run_named && res.run) {
		log_set_run(res.run);
		r->run_named = 1;
	}
	if (vd != VALIDATE_PASS)
		return reject(r, ls, vd, &res, line, len);
	if (out_line(stdout, line, len) != 0)
		return output_failed(r);
	++*r->n_out;
	return KERF_EX_OK;
}

/* Every line of standard input until its end, a stop signal or a failure. */
static int loop(struct vrun *r)
{
	for (;;) {
		enum line_status ls;
		char *line;
		size_t len;
		int rc;

		if (sig_stop)
			return KERF_EX_OK;
		ls = line_read(&r->lr, &line, &len);
		if (r->out_failed_errno) {
			errno = r->out_failed_errno;
			return output_failed(r);
		}
		if (ls == LINE_EOF)
			return KERF_EX_OK;
		if (ls == LINE_INTR)
			continue;
		if (ls == LINE_ERROR) {
			log_msg(LOG_ERROR, NULL, "cannot read standard input: %s", strerror(errno));
			return KERF_EX_IOERR;
		}
		if ((rc = check(r, ls, line, len)) != KERF_EX_OK)
			return rc;
	}
}

int validate_run(const struct validate_run_opts *o)
{
	struct vrun r = { .o = o, .run_named = getenv("KERF_RUN") != NULL };
	int rc, c;

	stdout_init();
	validate_init(&r.v, &o->check);
	sig_init();
	if (!(r.rj = rejects_open(o->rejects)))
		return KERF_EX_IOERR;
	stats_init(&r.st, 0);
	r.n_in = stats_work(&r.st, "in", "lines");
	STATS_COUNTERS(&r.st, { "out", &r.n_out }, { "rejected", &r.n_rej }, { "gaps", &r.n_gaps },
		       { "missing", &r.n_missing }, { "seq_warnings", &r.n_warn });
	r.st.extra = reasons_json;
	r.st.extra_arg = &r;
	line_reader_init(&r.lr, 0, o->check.max_line);
	r.lr.before_read = before_read;
	r.lr.before_read_arg = &r;

	rc = loop(&r);

	/* What was passed on reaches the pipe before the final stats say so. */
	if (!r.out_failed && fflush(stdout) != 0)
		rc = output_failed(&r);
	if (rc == KERF_EX_OK && sig_stop) {
		log_msg(LOG_INFO, NULL, "stopped by signal %d before end of input", (int)sig_stop);
		rc = KERF_EX_TEMPFAIL;
	}
	if (rc == KERF_EX_OK)
		validate_finish(&r.v);
	stats_emit(&r.st, 1);
	if (rejects_close(r.rj) != 0 && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	c = stdout_shut(r.out_failed);
	if (rc == KERF_EX_OK)
		rc = c;
	line_reader_release(&r.lr);
	validate_release(&r.v);
	stats_release(&r.st);
	return rc;
}

/*
 * kerf-validate: the gate between the machine and everything that trusts
 * its data.  Every line of standard input is checked (lib/validate.h);
 * good lines go to standard output as their original bytes, bad ones get
 * a reject record with a stable reason code.  in = out + rejected.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "stats.h"
#include "sig.h"
#include "line.h"
#include "cli.h"
#include "out.h"
#include "reject.h"
#include "validate.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static const char usage[] =
	"Usage: kerf-validate [-s] [-m SIZE] [-r FILE] [--on-gap POLICY]\n"
	"                     [--on-duplicate POLICY] [--on-order POLICY]\n"
	"Check every NDJSON event on standard input: strict JSON, the envelope,\n"
	"each event type's fields and ranges, die image checksums and each run's\n"
	"sequence.  Good lines go to standard output unchanged; each bad line gets\n"
	"a reject record with a stable reason code.\n"
	"\n";

/* Rejects per reason code, for the stats records. */
#define REASONS_MAX 32
static struct {
	const char *reason[REASONS_MAX];
	uint64_t n[REASONS_MAX];
	int count;
} reasons;

static void count_reason(const char *reason)
{
	int i;
	for (i = 0; i < reasons.count; i++)
		if (reasons.reason[i] == reason || !strcmp(reasons.reason[i], reason))
			break;
	if (i == reasons.count) {
		if (reasons.count == REASONS_MAX)
			return;
		reasons.reason[reasons.count++] = reason;
	}
	reasons.n[i]++;
}

static json_t *reasons_json(void *arg)
{
	json_t *o;
	(void)arg;
	if (reasons.count == 0)
		return NULL;
	o = json_object();
	for (int i = 0; i < reasons.count; i++)
		json_object_set_new(o, reasons.reason[i], json_integer((json_int_t)reasons.n[i]));
	return json_pack("{s:o}", "reasons", o);
}

/* Before each read(2), which may block: nothing waits in the buffer while
 * input is idle, and the stats tick at least every 64 KiB of input.  A
 * write error is seen at the next line or at the end. */
static int out_failed_errno;

static void before_read(void *arg)
{
	if (!out_failed_errno && fflush(stdout) != 0)
		out_failed_errno = errno;
	stats_tick(arg);
}

/* Stdout failed (logged once; EPIPE means downstream is gone). */
static int out_failed;

static int output_failed(void)
{
	log_write_failed(LOG_ERROR, "standard output", errno, NULL);
	out_failed = 1;
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

int main(int argc, char **argv)
{
	struct validate_opts opts;
	struct validate v;
	struct validate_result res;
	struct line_reader lr;
	struct stats st;
	struct rejects *rj;
	const char *rejects_path = NULL;
	uint64_t max_line;
	int strict = 0, c, rc = KERF_EX_OK, run_named = getenv("KERF_RUN") != NULL;
	const struct cli_opt options[] = {
		CLI_REJECTS('r', &rejects_path),
		CLI_MAX_LINE('m', &max_line),
		OPT_ENUM(0, "on-gap", "POLICY", &opts.on_gap, validate_policies,
			 "seqs missing in a run: warn (default), reject\nthe line after the gap, or fail"),
		OPT_ENUM(0, "on-duplicate", "POLICY", &opts.on_duplicate, validate_policies,
			 "a seq seen before: warn, reject (default) or fail"),
		OPT_ENUM(0, "on-order", "POLICY", &opts.on_order, validate_policies,
			 "a missing seq arriving late: warn, reject\n(default) or fail"),
		OPT_BOOL('s', "strict", &strict, "stop at the first bad line, exit 65"),
		OPT_HELP("print this help and exit"),
		OPT_VERSION('V', "print the version and exit"),
		OPT_END(),
	};
	const struct cli_spec spec = { .usage = usage, .opts = options, .width = 29 };
	uint64_t *n_in, *n_out, *n_rej, *n_gaps, *n_missing, *n_warn;

	log_init(argv[0]);
	stdout_init();
	validate_opts_default(&opts);
	max_line = opts.max_line;
	if (cli_parse(&spec, argc, argv, NULL) < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	opts.max_line = (size_t)max_line;

	validate_init(&v, &opts);
	sig_init();
	if (!(rj = rejects_open(rejects_path)))
		return KERF_EX_IOERR;
	stats_init(&st, 0);
	n_in = stats_work(&st, "in", "lines");
	n_out = stats_counter(&st, "out");
	n_rej = stats_counter(&st, "rejected");
	n_gaps = stats_counter(&st, "gaps");
	n_missing = stats_counter(&st, "missing");
	n_warn = stats_counter(&st, "seq_warnings");
	st.extra = reasons_json;
	line_reader_init(&lr, 0, opts.max_line);
	lr.before_read = before_read;
	lr.before_read_arg = &st;

	for (;;) {
		enum line_status ls;
		enum validate_verdict vd;
		char *line;
		size_t len;

		if (sig_stop)
			break;
		ls = line_read(&lr, &line, &len);
		if (out_failed_errno) {
			errno = out_failed_errno;
			rc = output_failed();
			break;
		}
		if (ls == LINE_EOF)
			break;
		if (ls == LINE_INTR) {
			if (sig_stop)
				break;
			continue;
		}
		if (ls == LINE_ERROR) {
			log_msg(LOG_ERROR, NULL, "cannot read standard input: %s", strerror(errno));
			rc = KERF_EX_IOERR;
			break;
		}
		++*n_in;
		/* A LINE_CONTROL line gets validate_line's own not_json. */
		if (ls == LINE_TOO_LONG)
			vd = validate_too_long(&v, line, lr.prefix_len, len, &res);
		else
			vd = validate_line(&v, line, len, &res);
		if (res.seq_status == VSEQ_GAP) {
			++*n_gaps;
			*n_missing += res.gap_last - res.gap_first + 1;
		}
		if (res.seq_warn) {
			++*n_warn;
			seq_warning(&res, lr.lineno);
		}
		if (!run_named && res.run) {
			log_set_run(res.run);
			run_named = 1;
		}
		if (vd == VALIDATE_PASS) {
			if (out_line(stdout, line, len) != 0) {
				rc = output_failed();
				break;
			}
			++*n_out;
		} else {
			struct reject_info ri = {
				.reason = res.reason,
				.msg = res.msg,
				.run = res.run,
				.seq = res.seq,
				.line = lr.lineno,
				.offset = lr.offset,
				.raw = line,
				.raw_len = ls == LINE_TOO_LONG ? lr.prefix_len : len,
				.len = len,
			};
			++*n_rej;
			count_reason(res.reason);
			if (rejects_write(rj, &ri) != 0) {
				/* A reject that cannot be recorded would be a silent drop. */
				rc = KERF_EX_IOERR;
				break;
			}
			if (strict || vd == VALIDATE_FATAL) {
				log_msg(LOG_ERROR,
					json_pack("{s:s,s:I,s:s?,s:I}", "reason", res.reason, "line",
						  (json_int_t)lr.lineno, "run", res.run, "seq",
						  (json_int_t)res.seq),
					"line %llu: %s: %s", (unsigned long long)lr.lineno, res.reason,
					res.msg);
				rc = KERF_EX_DATAERR;
				break;
			}
		}
	}

	/* What was passed on reaches the pipe before the final stats say so. */
	if (!out_failed && fflush(stdout) != 0)
		rc = output_failed();
	if (rc == KERF_EX_OK && sig_stop) {
		log_msg(LOG_INFO, NULL, "stopped by signal %d before end of input", (int)sig_stop);
		rc = KERF_EX_TEMPFAIL;
	}
	if (rc == KERF_EX_OK)
		validate_finish(&v);
	stats_emit(&st, 1);
	if (rejects_close(rj) != 0 && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	c = stdout_shut(out_failed);
	if (rc == KERF_EX_OK)
		rc = c;
	line_reader_release(&lr);
	validate_release(&v);
	stats_release(&st);
	return rc;
}

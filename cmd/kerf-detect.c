/*
 * kerf-detect: die-to-die defect detection on the die images of a kerf
 * event stream, in a bounded worker pool, with the output in input order.
 * The work is in lib/detect_stream.c (routing, rows, ordering),
 * lib/detect.c (the detection itself) and lib/pool.c (the threads).
 */
#include "kerf.h"
#include "detect_stream.h"
#include "reject.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
	"usage: kerf-detect [-j N] [--max-inflight N] [--k K] [--min-area PX]\n"
	"                   [--max-shift PX] [--keep-images] [--strict]\n"
	"                   [--max-line SIZE] [--rejects FILE]\n"
	"\n"
	"Read kerf events on stdin; write them to stdout with each die image\n"
	"replaced by its defect events and a die_done event, and a wafer_summary\n"
	"after each wafer_end.\n"
	"\n"
	"  -j, --jobs N          worker threads (default: the number of cores)\n"
	"      --max-inflight N  lines and dies held in memory at once (default 64,\n"
	"                        at least 4); a full pool stops reading stdin\n"
	"      --k K             seed threshold in sigmas of the differences (default 3.5)\n"
	"      --min-area PX     smallest defect kept, in pixels (default 3)\n"
	"      --max-shift PX    alignment search radius, in pixels (default 5)\n"
	"      --keep-images     pass die events on too (before their defects)\n"
	"      --strict          a rejected line is fatal (exit 65)\n"
	"      --max-line SIZE   longest input line (default 64M)\n"
	"      --rejects FILE    reject records (default $KERF_RUNDIR/rejects.ndjson,\n"
	"                        else stderr)\n"
	"  -h, --help            this text\n"
	"  -V, --version         the version\n";

enum { OPT_INFLIGHT = 256, OPT_K, OPT_MIN_AREA, OPT_SHIFT, OPT_KEEP, OPT_STRICT, OPT_MAX_LINE, OPT_REJECTS };

static const struct option longopts[] = {
	{"jobs", required_argument, NULL, 'j'},
	{"max-inflight", required_argument, NULL, OPT_INFLIGHT},
	{"k", required_argument, NULL, OPT_K},
	{"min-area", required_argument, NULL, OPT_MIN_AREA},
	{"max-shift", required_argument, NULL, OPT_SHIFT},
	{"keep-images", no_argument, NULL, OPT_KEEP},
	{"strict", no_argument, NULL, OPT_STRICT},
	{"max-line", required_argument, NULL, OPT_MAX_LINE},
	{"rejects", required_argument, NULL, OPT_REJECTS},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
	struct detect_stream_config cfg;
	struct detect_stream *ds;
	struct line_reader lr;
	struct stats st;
	const char *rejects_path = NULL;
	uint64_t max_line = 64 << 20;
	long v, cores = sysconf(_SC_NPROCESSORS_ONLN);
	int c, eof = 0, ioerr = 0, code;

	log_init(argv[0]);
	sig_init();
	memset(&cfg, 0, sizeof cfg);
	detect_params_default(&cfg.params);
	cfg.workers = cores > 0 ? (int)cores : 1;
	cfg.max_inflight = 64;

	while ((c = getopt_long(argc, argv, "j:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (parse_long(optarg, 1, 256, &v) < 0)
				cli_usage_error("-j wants a number of workers in 1..256, not '%s'", optarg);
			cfg.workers = (int)v;
			break;
		case OPT_INFLIGHT:
			if (parse_long(optarg, 4, 1 << 20, &v) < 0)
				cli_usage_error("--max-inflight wants a number in 4..1048576, not '%s'", optarg);
			cfg.max_inflight = (size_t)v;
			break;
		case OPT_K:
			if (parse_double(optarg, 0.5, 100, &cfg.params.k) < 0)
				cli_usage_error("--k wants a number of sigmas in 0.5..100, not '%s'", optarg);
			break;
		case OPT_MIN_AREA:
			if (parse_long(optarg, 1, 1 << 30, &cfg.params.min_area) < 0)
				cli_usage_error("--min-area wants a number of pixels >= 1, not '%s'", optarg);
			break;
		case OPT_SHIFT:
			if (parse_long(optarg, 0, 16, &v) < 0)
				cli_usage_error("--max-shift wants a number of pixels in 0..16, not '%s'", optarg);
			cfg.params.max_shift = (int)v;
			break;
		case OPT_KEEP:
			cfg.keep_images = 1;
			break;
		case OPT_STRICT:
			cfg.strict = 1;
			break;
		case OPT_MAX_LINE:
			if (parse_size(optarg, &max_line) < 0 || max_line < 64 || max_line > ((uint64_t)1 << 32))
				cli_usage_error("--max-line wants a size in 64..4G, not '%s'", optarg);
			break;
		case OPT_REJECTS:
			rejects_path = optarg;
			break;
		case 'h':
			cli_help(usage);
		case 'V':
			cli_version();
		default:
			cli_usage_error("unknown option");
		}
	}
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);

	stdout_init();
	stats_init(&st, 0);
	cfg.out = stdout;
	cfg.stats = &st;
	cfg.rej = rejects_open(rejects_path);
	if (!cfg.rej)
		return KERF_EX_IOERR;
	ds = detect_stream_new(&cfg);
	st.extra = detect_stream_stats;
	st.extra_arg = ds;

	/* Only the pool's writer thread touches stdout; it flushes whenever it
	 * has nothing ready, so no event waits in a buffer while input idles. */
	line_reader_init(&lr, 0, (size_t)max_line);
	while (!sig_stop) {
		char *line;
		size_t len;
		enum line_status ls = line_read(&lr, &line, &len);
		int r = 0;
		if (ls == LINE_EOF) {
			eof = 1;
			break;
		}
		if (ls == LINE_INTR)
			continue;
		if (ls == LINE_ERROR) {
			log_msg(LOG_ERROR, NULL, "cannot read standard input: %s", strerror(errno));
			ioerr = 1;
			break;
		}
		if (ls == LINE_TOO_LONG) {
			char msg[128];
			snprintf(msg, sizeof msg, "line of %zu bytes is longer than --max-line", len);
			r = detect_stream_reject(ds, "too_long", msg, lr.prefix, lr.prefix_len, len, lr.lineno,
						 lr.offset);
		} else if (ls == LINE_CONTROL) {
			char msg[LINE_CONTROL_MSG];
			line_control_msg(line, lr.control_at, msg);
			r = detect_stream_reject(ds, LINE_CONTROL_REASON, msg, line, len, len, lr.lineno, lr.offset);
		} else if (len > 0)
			r = detect_stream_line(ds, line, len, lr.lineno, lr.offset);
		if (r < 0)
			break;
	}
	if (!eof && sig_stop && !ioerr && !detect_stream_failed(ds))
		log_msg(LOG_INFO, NULL, "stopping on signal %d: finishing the dies already read", (int)sig_stop);
	code = detect_stream_end(ds);
	stats_emit(&st, 1);
	detect_stream_free(ds);
	line_reader_release(&lr);
	stats_release(&st);
	if (rejects_close(cfg.rej) < 0 && !code)
		code = KERF_EX_IOERR;
	if (code == KERF_EX_IOERR)
		fclose(stdout); /* the write error is logged already: once */
	else if (fshut(stdout, "standard output") != KERF_EX_OK && !code)
		code = KERF_EX_IOERR;
	if (!code && ioerr)
		code = KERF_EX_IOERR;
	if (!code && !eof)
		code = KERF_EX_TEMPFAIL;
	return code;
}

/*
 * kerf-detect: die-to-die defect detection on the die images of a kerf
 * event stream, in a bounded worker pool, with the output in input order.
 * The work is in lib/detect_stream.c (routing, rows, ordering),
 * lib/detect.c (the detection itself) and lib/pool.c (the threads).
 */
#include "exitcode.h"
#include "log.h"
#include "stats.h"
#include "sig.h"
#include "line.h"
#include "cli.h"
#include "out.h"
#include "detect_stream.h"
#include "reject.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

static const char usage[] =
	"usage: kerf-detect [-j N] [--max-inflight N] [--k K] [--min-area PX]\n"
	"                   [--max-shift PX] [--keep-images] [--strict]\n"
	"                   [--max-line SIZE] [--rejects FILE]\n"
	"\n"
	"Read kerf events on stdin; write them to stdout with each die image\n"
	"replaced by its defect events and a die_done event, and a wafer_summary\n"
	"after each wafer_end.\n"
	"\n";

int main(int argc, char **argv)
{
	struct detect_stream_config cfg;
	struct detect_stream *ds;
	struct line_reader lr;
	struct stats st;
	const char *rejects_path = NULL;
	uint64_t max_line = KERF_MAX_LINE_DEFAULT;
	long inflight = 64, cores = sysconf(_SC_NPROCESSORS_ONLN);
	int eof = 0, ioerr = 0, code;
	const char *order;
	const struct cli_opt opts[] = {
		OPT_INT('j', "jobs", "N", &cfg.workers, 1, 256, "worker threads (default: the number of cores)"),
		OPT_LONG(0, "max-inflight", "N", &inflight, 4, 1 << 20,
			 "lines and dies held in memory at once (default 64,\nat least 4); a full pool stops reading stdin"),
		OPT_DOUBLE(0, "k", "K", &cfg.params.k, 0.5, 100,
			   "seed threshold in sigmas of the differences (default 3.5)"),
		OPT_LONG(0, "min-area", "PX", &cfg.params.min_area, 1, 1 << 30,
			 "smallest defect kept, in pixels (default 3)"),
		OPT_INT(0, "max-shift", "PX", &cfg.params.max_shift, 0, 16,
			"alignment search radius, in pixels (default 5)"),
		OPT_BOOL(0, "keep-images", &cfg.keep_images, "pass die events on too (before their defects)"),
		OPT_BOOL(0, "strict", &cfg.strict, "a rejected line is fatal (exit 65)"),
		CLI_MAX_LINE(0, &max_line),
		CLI_REJECTS(0, &rejects_path),
		OPT_HELP("this text"),
		OPT_VERSION('V', "the version"),
		OPT_END(),
	};
	const struct cli_spec spec = { .usage = usage, .opts = opts, .width = 24 };

	log_init(argv[0]);
	sig_init();
	/*
	 * Every die allocates and frees the same buffers (its image, its
	 * differences, masks); glibc would hand them back to the kernel and
	 * fault them in again each time (madvise on a thread's heap, mmap
	 * for a large die's), which cost a third of the time at -j2.  Keep
	 * freed memory for the next die instead: the peak stays the same.
	 */
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	memset(&cfg, 0, sizeof cfg);
	detect_params_default(&cfg.params);
	cfg.workers = cores > 0 ? (int)cores : 1;
	if (cli_parse(&spec, argc, argv, NULL) < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	cfg.max_inflight = (size_t)inflight;
	order = getenv("KERF_DETECT_ORDER");
	if (order && *order) {
		if (strcmp(order, "newest-first") != 0)
			cli_usage_error("KERF_DETECT_ORDER must be newest-first, not '%s'", order);
		cfg.newest_first = 1;
	}

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

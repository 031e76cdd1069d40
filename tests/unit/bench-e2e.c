/*
 * bench-e2e: the end of a paced pipeline, for scripts/bench.  Reads kerf
 * events on stdin and, for each line that has an envelope time "t", takes
 * the wall-clock age of the event at the moment its line arrives (now - t).
 * With `kerf-acquire --sim --rate N` the time t is the wall clock when the
 * event was made, so this is the latency from acquisition to "persisted
 * and passed on" when bench-e2e reads kerf-persist's output.
 *
 * Usage: bench-e2e [--skip N] [REPORT]
 * The first N timed lines are left out (warm-up).  At end of input writes
 * one JSON line {"n","p50_ms","p99_ms","max_ms","mean_ms"} to REPORT
 * (default standard output) and exits 0; 65 when no line had a time.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "event.h"
#include "cli.h"
#include "out.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	char *line = NULL, tbuf[64];
	size_t cap = 0, n = 0, lcap = 0, skip = 0, seen = 0;
	ssize_t len;
	double *lat = NULL, sum = 0;
	const char *report = NULL;
	FILE *out = stdout;
	int i;

	log_init(argv[0]);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--skip") && i + 1 < argc)
			skip = strtoul(argv[++i], NULL, 10);
		else if (!report)
			report = argv[i];
		else
			cli_usage_error("usage: bench-e2e [--skip N] [REPORT]");
	}
	while ((len = getline(&line, &cap, stdin)) > 0) {
		struct timespec now, t;
		const char *v;
		size_t vlen;

		real_now(&now);
		if (!event_peek(line, (size_t)len, "t", &v, &vlen) || vlen >= sizeof tbuf)
			continue;
		memcpy(tbuf, v, vlen);
		tbuf[vlen] = '\0';
		if (event_time_parse(tbuf, &t) != 0)
			continue;
		if (seen++ < skip)
			continue;
		if (n == lcap)
			lat = xrealloc(lat, (lcap = lcap ? 2 * lcap : 4096) * sizeof *lat);
		lat[n] = (double)(now.tv_sec - t.tv_sec) * 1e3 + (double)(now.tv_nsec - t.tv_nsec) / 1e6;
		sum += lat[n++];
	}
	free(line);
	if (report && !(out = fopen(report, "w"))) {
		log_msg(LOG_ERROR, NULL, "cannot open '%s': %s", report, strerror(errno));
		return KERF_EX_IOERR;
	}
	if (n == 0) {
		fprintf(out, "{\"n\":0}\n");
		fclose(out);
		return KERF_EX_DATAERR;
	}
	qsort(lat, n, sizeof *lat, cmp_dbl);
	fprintf(out, "{\"n\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f}\n",
		n, lat[n / 2], lat[(size_t)((double)n * 0.99) < n ? (size_t)((double)n * 0.99) : n - 1],
		lat[n - 1], sum / (double)n);
	free(lat);
	return fshut(out, report ? report : "standard output");
}

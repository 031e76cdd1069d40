/*
 * project-flood: a writer for tests/project.bats that floods a pipe with
 * the lines of its standard input and measures how the reader keeps up.
 * Before every write(2) it samples how many bytes wait in the pipe
 * (FIONREAD on its own write end) and it times every write(2), so a
 * reader that leaves the pipe full shows as high fill and long writes.
 *
 * Usage: project-flood [--rate LINES_PER_S] [--report FILE] < in > pipe
 * Without --rate, as fast as the pipe takes.  The report is one JSON line:
 * {"lines","bytes","wall_ms","pipe_size","samples","fill_max","fill_mean",
 *  "fill_p95","full_samples","write_max_ms","write_total_ms"}
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "cli.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	double rate = 0;
	const char *report = NULL;
	char *data = NULL;
	size_t len = 0, cap = 0, nlines = 0, *ends = NULL, ncap = 0;
	int *fills = NULL;
	size_t nfill = 0, fcap = 0, full = 0;
	uint64_t t0, wmax = 0, wtotal = 0;
	int psize;
	FILE *rf;

	log_init(argv[0]);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rate") && i + 1 < argc)
			rate = atof(argv[++i]);
		else if (!strcmp(argv[i], "--report") && i + 1 < argc)
			report = argv[++i];
		else
			cli_usage_error("usage: project-flood [--rate N] [--report FILE]");
	}
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		ssize_t n;
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 1 << 20;
			data = xrealloc(data, cap);
		}
		n = read(0, data + len, cap - len);
		if (n < 0)
			return KERF_EX_IOERR;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			if (nlines == ncap) {
				ncap = ncap ? ncap * 2 : 4096;
				ends = xrealloc(ends, ncap * sizeof *ends);
			}
			ends[nlines++] = i + 1;
		}
	}
	psize = fcntl(1, F_GETPIPE_SZ);
	t0 = mono_us();
	for (size_t done = 0, off = 0; done < nlines;) {
		size_t upto = nlines, stop;
		if (rate > 0) {
			double el = (double)(mono_us() - t0) / 1e6;
			upto = (size_t)(el * rate) + 1;
			if (upto > nlines)
				upto = nlines;
			if (upto <= done) {
				struct timespec ts = { 0, 1000000 };
				nanosleep(&ts, NULL);
				continue;
			}
		} else if (upto - done > 256) {
			upto = done + 256;
		}
		stop = ends[upto - 1];
		while (off < stop) {
			int q = 0;
			uint64_t a, b;
			ssize_t n;
			if (psize > 0 && ioctl(1, FIONREAD, &q) == 0) {
				if (nfill == fcap) {
					fcap = fcap ? fcap * 2 : 4096;
					fills = xrealloc(fills, fcap * sizeof *fills);
				}
				fills[nfill++] = q;
				if (q >= psize - 4096)
					full++;
			}
			a = mono_us();
			n = write(1, data + off, stop - off);
			b = mono_us();
			if (n < 0)
				return KERF_EX_IOERR;
			off += (size_t)n;
			if (b - a > wmax)
				wmax = b - a;
			wtotal += b - a;
		}
		done = upto;
	}
	{
		uint64_t wall = mono_us() - t0;
		double mean = 0;
		int p95 = 0, max = 0;
		for (size_t i = 0; i < nfill; i++) {
			mean += fills[i];
			if (fills[i] > max)
				max = fills[i];
		}
		if (nfill) {
			mean /= (double)nfill;
			qsort(fills, nfill, sizeof *fills, cmp_int);
			p95 = fills[(nfill * 95) / 100];
		}
		rf = report ? fopen(report, "w") : stderr;
		if (!rf)
			return KERF_EX_IOERR;
		fprintf(rf, "{\"lines\":%zu,\"bytes\":%zu,\"wall_ms\":%.1f,\"pipe_size\":%d,\"samples\":%zu,"
			"\"fill_max\":%d,\"fill_mean\":%.0f,\"fill_p95\":%d,\"full_samples\":%zu,"
			"\"write_max_ms\":%.3f,\"write_total_ms\":%.1f}\n",
			nlines, len, (double)wall / 1000, psize, nfill, max, mean, p95, full,
			(double)wmax / 1000, (double)wtotal / 1000);
		if (report)
			fclose(rf);
	}
	free(data);
	free(ends);
	free(fills);
	return 0;
}

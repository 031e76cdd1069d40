/*
 * t-validate: kerf-validate's checks with die lines read in one pass
 * (die_fields_scan_event) against the same checks with every line parsed
 * by jansson (validate_opts.jansson_only).  Two validators take the same
 * lines in turn and must give the same result for each: verdict,
 * reason, message, run, seq, type, and the sequence's status, gap and
 * warning.
 *   t-validate lines    every line on stdin (a stream such as
 *                       kerf-acquire --sim writes) with the default
 *                       policies; then the lines before its first die
 *                       and byte mutations of that die (mutate.h)
 *   t-validate mutate   the die lines of mutate.h and their mutations,
 *                       after a run_start of their die size, then again
 *                       after one whose grid and die size they miss
 * The mutations are checked with every sequence policy warn, so that each
 * reaches the die's own checks, however many share its seq.  Prints
 * "compared N scanned S passed P differ D" (S: lines the first validator
 * read in one pass; P: of those, passed) and each difference on stderr;
 * exits 1 on any.  In lines mode "dies N scanned S" first: the die lines
 * on stdin, and how many of them were read in one pass.
 */
#include "util.h"
#include "log.h"
#include "validate.h"
#include "mutate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static struct {
	long compared, scanned, passed, differ;
} tally;

/* The validator under test (fast) and the reference (every line parsed). */
static struct validate fast, slow;
static int live;

static void start(const struct validate_opts *o)
{
	struct validate_opts ref = *o;

	if (live) {
		validate_release(&fast);
		validate_release(&slow);
	}
	ref.jansson_only = 1;
	validate_init(&fast, o);
	validate_init(&slow, &ref);
	live = 1;
}

static int same_str(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

static void differ(const char *what, const char *line, size_t len, const char *field,
		   const struct validate_result *a, const char *run_a, const struct validate_result *b)
{
	tally.differ++;
	fprintf(stderr, "t-validate: %s: %s differs: scanned %d\n  fast: %s %s '%s' run %s seq %lld\n"
		"  slow: %s %s '%s' run %s seq %lld\n  line: %.*s\n", what, field, fast.scanned,
		a->verdict == VALIDATE_PASS ? "pass" : "reject", a->reason ? a->reason : "-", a->msg,
		run_a ? run_a : "-", (long long)a->seq, b->verdict == VALIDATE_PASS ? "pass" : "reject",
		b->reason ? b->reason : "-", b->msg, b->run ? b->run : "-", (long long)b->seq,
		(int)(len < 600 ? len : 600), line);
}

/* One line through both validators; returns its verdict. */
static enum validate_verdict compare(const char *what, const char *line, size_t len)
{
	struct validate_result a, b;
	const char *field = NULL;
	char *run_a;
	int scanned;

	tally.compared++;
	validate_line(&fast, line, len, &a);
	scanned = fast.scanned;
	/* a.run may point into the parse, which the other's turn reuses. */
	run_a = a.run ? xstrdup(a.run) : NULL;
	validate_drop(&fast);
	validate_line(&slow, line, len, &b);
	if (a.verdict != b.verdict)
		field = "verdict";
	else if (!same_str(a.reason, b.reason))
		field = "reason";
	else if (strcmp(a.msg, b.msg))
		field = "msg";
	else if (!same_str(run_a, b.run))
		field = "run";
	else if (a.seq != b.seq)
		field = "seq";
	else if (a.type != b.type)
		field = "type";
	else if (a.seq_status != b.seq_status || a.gap_first != b.gap_first || a.gap_last != b.gap_last ||
		 a.seq_warn != b.seq_warn)
		field = "seq status";
	if (field)
		differ(what, line, len, field, &a, run_a, &b);
	validate_drop(&slow);
	tally.scanned += scanned;
	tally.passed += scanned && a.verdict == VALIDATE_PASS;
	free(run_a);
	return a.verdict;
}

static void try_line(const char *what, const char *line, size_t len, int take)
{
	(void)take;
	compare(what, line, len);
}

static struct validate_opts warn_opts;
static int misfit;  /* the run_start's grid and die size miss the dies */

/* A fresh pair of validators, and the run_start (sim-7, seq 1) of the dies to come. */
static void run_start(int w, int h)
{
	char *line = xasprintf("{\"v\":1,\"type\":\"run_start\",\"run\":\"sim-7\",\"seq\":1,"
			       "\"t\":\"2026-01-05T06:00:00.000000Z\",\"id\":\"2bfb2551de9856b7\","
			       "\"lot\":\"SIMLOT\",\"recipe\":\"sim-default\",\"tool\":\"kerf-sim\","
			       "\"source\":\"sim\",\"wafers\":1,\"diameter_mm\":300.0,\"edge_mm\":3.0,"
			       "\"pitch_um\":[10000.0,10000.0],\"origin_um\":[-150000.0,-150000.0],"
			       "\"cols\":%d,\"rows\":30,\"die_px\":[%d,%d],\"pixel_um\":156.25}",
			       misfit ? 11 : 30, misfit ? w + 1 : w, h);
	start(&warn_opts);
	if (compare("run_start", line, strlen(line)) != VALIDATE_PASS) {
		fprintf(stderr, "t-validate: the run_start is rejected\n");
		tally.differ++;
	}
	free(line);
}

static void mutate(void)
{
	mutate_size = run_start;
	mutate_dies();
	misfit = 1;
	mutate_dies();
}

static int is_die(const char *line, size_t len)
{
	return event_peek_type(line, len) == EV_DIE;
}

static void lines(void)
{
	char **line = NULL;
	size_t *len = NULL, n = 0, cap = 0, first = 0, bufcap = 0;
	struct validate_opts o;
	char *buf = NULL;
	ssize_t got;
	long dies = 0;

	while ((got = getline(&buf, &bufcap, stdin)) > 0) {
		if (n == cap) {
			cap = cap ? 2 * cap : 1024;
			line = xrealloc(line, cap * sizeof *line);
			len = xrealloc(len, cap * sizeof *len);
		}
		len[n] = (size_t)got - (buf[got - 1] == '\n');
		line[n] = xmalloc(len[n] + 1);
		memcpy(line[n], buf, len[n]);
		if (is_die(line[n], len[n]) && !dies++)
			first = n;
		n++;
	}
	validate_opts_default(&o);
	start(&o);
	for (size_t i = 0; i < n; i++)
		compare("a line on stdin", line[i], len[i]);
	printf("dies %ld scanned %ld\n", dies, tally.scanned);
	if (dies) {
		start(&warn_opts);
		for (size_t i = 0; i < first; i++)
			compare("a line before the first die", line[i], len[i]);
		mutate_sim_die(line[first], len[first]);
	}
	for (size_t i = 0; i < n; i++)
		free(line[i]);
	free_all(line, len, buf);
}

int main(int argc, char **argv)
{
	/* Forgetting a run (a mutated run id) is logged at warn. */
	setenv("KERF_LOG_LEVEL", "error", 1);
	log_init(argv[0]);
	mutate_try = try_line;
	validate_opts_default(&warn_opts);
	warn_opts.on_gap = warn_opts.on_duplicate = warn_opts.on_order = VALIDATE_WARN;
	if (argc == 2 && !strcmp(argv[1], "mutate"))
		mutate();
	else if (argc == 2 && !strcmp(argv[1], "lines"))
		lines();
	else {
		fprintf(stderr, "usage: t-validate mutate|lines\n");
		return 64;
	}
	if (live) {
		validate_release(&fast);
		validate_release(&slow);
	}
	printf("compared %ld scanned %ld passed %ld differ %ld\n", tally.compared, tally.scanned, tally.passed,
	       tally.differ);
	return tally.differ ? 1 : 0;
}

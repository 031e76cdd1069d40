/*
 * fuzz-validate: libFuzzer target for lib/validate.c.  The input is a
 * stream: it is cut at newlines like the line reader does, and each line
 * goes through validate_line (or validate_too_long past 4 KiB) with one
 * validator per input, so sequence tracking and run state are exercised
 * across lines.  Every line gets a buffer of its own exact size, so
 * AddressSanitizer sees any read past its end.  A second validator
 * parses every line with jansson (jansson_only) and must give each the
 * same result as the first, which reads die lines in one pass.
 */
#include "log.h"
#include "line.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define MAX_LINE 4096

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("KERF_LOG_LEVEL", "error", 1);
	log_init("fuzz-validate");
	return 0;
}

static int same_str(const char *a, const char *b)
{
	return a && b ? !strcmp(a, b) : a == b;
}

/* The reference validator's result for the line the first one gave a
 * (and its run, copied) must be the same. */
static void same(const struct validate_result *a, const char *run, const struct validate_result *b)
{
	if (a->verdict != b->verdict || !same_str(a->reason, b->reason) || strcmp(a->msg, b->msg) ||
	    !same_str(run, b->run) || a->seq != b->seq || a->type != b->type ||
	    a->seq_status != b->seq_status || a->gap_first != b->gap_first ||
	    a->gap_last != b->gap_last || a->seq_warn != b->seq_warn)
		abort();
}

static void check(const struct validate_result *res, enum validate_verdict vd)
{
	if (vd != res->verdict)
		abort();
	if (vd == VALIDATE_PASS && res->reason)
		abort();
	if (vd != VALIDATE_PASS && (!res->reason || !res->msg[0]))
		abort();
	if (res->seq_status == VSEQ_GAP && res->gap_first > res->gap_last)
		abort();
	if (res->run && strlen(res->run) > 1 << 20)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct validate_opts opts, ref_opts;
	struct validate v, ref;
	struct validate_result res, ref_res;
	const char *p = (const char *)data, *end = p + size;

	validate_opts_default(&opts);
	opts.max_line = MAX_LINE;
	/* The first byte picks the sequence policies, so all are reached. */
	if (size > 0 && data[0] < 32) {
		opts.on_gap = (enum validate_policy)(data[0] % 3);
		opts.on_duplicate = (enum validate_policy)(data[0] / 3 % 3);
		opts.on_order = (enum validate_policy)(data[0] / 9 % 3);
	}
	validate_init(&v, &opts);
	ref_opts = opts;
	ref_opts.jansson_only = 1;
	validate_init(&ref, &ref_opts);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		enum validate_verdict vd;
		if (len > MAX_LINE) {
			size_t n = len < LINE_PREFIX_MAX ? len : LINE_PREFIX_MAX;
			char *pre = malloc(n + 1);
			memcpy(pre, p, n);
			pre[n] = '\0';
			vd = validate_too_long(&v, pre, n, len, &res);
			check(&res, vd);
			free(pre);
		} else {
			char *line = malloc(len ? len : 1);
			memcpy(line, p, len);
			vd = validate_line(&v, line, len, &res);
			check(&res, vd);
			/* What passes is passed on byte for byte: it must be JSON. */
			if (vd == VALIDATE_PASS && memchr(line, '\0', len))
				abort();
			char *run = res.run ? strdup(res.run) : NULL;
			validate_drop(&v);
			validate_line(&ref, line, len, &ref_res);
			same(&res, run, &ref_res);
			validate_drop(&ref);
			free(run);
			free(line);
		}
		p += len + 1;
	}
	validate_finish(&v);
	validate_release(&v);
	validate_release(&ref);
	return 0;
}

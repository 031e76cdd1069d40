/*
 * fuzz-klarf: libFuzzer target for the KLARF reader and writer
 * (lib/klarf.c), the code kerf-acquire --klarf imports untrusted files
 * with.  The input is read as a file; when it parses, what klarf_write
 * makes of it must read back with the same wafers and defects (the
 * writer and reader agree), and after that one round trip, a second one
 * gives the same bytes (the writer only normalises blanks once).
 * A failed read must say why.
 *
 * Build: scripts/fuzz -b klarf.  Run: scripts/fuzz -t 60 klarf
 */
#include "log.h"
#include "klarf.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("KERF_LOG_LEVEL", "error", 1);
	log_init("fuzz-klarf");
	return 0;
}

/* Write k to memory; the buffer is the caller's to free. */
static char *write_mem(const struct klarf *k, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		abort();
	if (klarf_write(f, k) != 0)
		abort();
	if (fclose(f) != 0)
		abort();
	return buf;
}

static int read_mem(const char *buf, size_t len, struct klarf *k, char *err, size_t errlen)
{
	FILE *f;
	int rc;

	if (len == 0) /* fmemopen refuses a zero size */
		f = fopen("/dev/null", "r");
	else
		f = fmemopen((void *)buf, len, "r");
	if (!f)
		abort();
	rc = klarf_read(f, "fuzz", k, err, errlen);
	fclose(f);
	return rc;
}

static int same_num(double a, double b)
{
	/* Written with 10 significant digits: equal to that precision. */
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	if (isinf(a) || isinf(b))
		return a == b;
	return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct klarf k, back, back2;
	char err[512], err2[512];
	char *out, *out2, *out3;
	size_t len, len2, len3;

	if (read_mem((const char *)data, size, &k, err, sizeof err) != 0) {
		if (!err[0])
			abort(); /* a failure must say why */
		return 0;
	}
	/* A fixed timestamp, so that two writes can be compared. */
	if (!k.file_timestamp) {
		k.file_timestamp = strdup("01-01-26 00:00:00");
		if (!k.file_timestamp)
			abort();
	}
	out = write_mem(&k, &len);
	if (read_mem(out, len, &back, err2, sizeof err2) != 0) {
		fprintf(stderr, "fuzz-klarf: written file does not read back: %s\n%.*s\n", err2,
			(int)(len < 4000 ? len : 4000), out);
		abort();
	}
	if (back.nwafers != k.nwafers)
		abort();
	for (size_t i = 0; i < k.nwafers; i++) {
		const struct klarf_wafer *a = &k.wafers[i], *b = &back.wafers[i];
		if (a->ndefects != b->ndefects || a->ntest_plan != b->ntest_plan)
			abort();
		for (size_t j = 0; j < a->ndefects; j++) {
			const struct klarf_defect *x = &a->defects[j], *y = &b->defects[j];
			if (x->id != y->id || x->xindex != y->xindex || x->yindex != y->yindex ||
			    !same_num(x->xrel, y->xrel) || !same_num(x->yrel, y->yrel))
				abort();
		}
	}
	/* Once normalised, a round trip changes nothing. */
	out2 = write_mem(&back, &len2);
	if (read_mem(out2, len2, &back2, err2, sizeof err2) != 0)
		abort();
	out3 = write_mem(&back2, &len3);
	if (len3 != len2 || memcmp(out2, out3, len2) != 0) {
		fprintf(stderr, "fuzz-klarf: round trip differs\n--- before\n%.*s\n--- after\n%.*s\n",
			(int)(len2 < 4000 ? len2 : 4000), out2, (int)(len3 < 4000 ? len3 : 4000), out3);
		abort();
	}
	free(out);
	free(out2);
	free(out3);
	klarf_free(&back2);
	klarf_free(&back);
	klarf_free(&k);
	return 0;
}

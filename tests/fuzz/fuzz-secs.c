/*
 * fuzz-secs: libFuzzer target for the SECS-II codec and SML (lib/secs.c).
 * Every input is tried twice, as a message body and as SML text, and
 * what each side promises is checked:
 *
 * - a body that decodes encodes again, no longer than it was (lengths
 *   may have been given in more bytes than needed), and that encoding
 *   decodes to the same tree and encodes to the same bytes;
 * - its SML text is one line of printable ASCII (it goes into NDJSON
 *   logs), and that text, the indented text and the message form all
 *   parse back to the same tree under the same limits;
 * - text that parses encodes, decodes to the same tree, and formats to
 *   text that parses to it again.
 *
 * Trees are compared, not bytes: a non-canonical input re-encodes
 * shorter.  The limits are small so that the depth, item and size
 * checks are reached often.
 */
#include "log.h"
#include "secs.h"

#include <stdlib.h>
#include <string.h>

#include "banned.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct secs_limits lim = { 32, 4096, 65536 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("KERF_LOG_LEVEL", "error", 1);
	log_init("fuzz-secs");
	return 0;
}

static void parses_back(const struct secs_item *x, const char *text)
{
	struct secs_item *y;
	struct secs_error err;

	if (secs_sml_parse(text, strlen(text), &lim, &y, &err) != 0 || !secs_equal(x, y))
		abort();
	secs_free(y);
}

/* Exercise the accessors on every child of a list: they must never crash. */
static void read_all_ways(const struct secs_item *x)
{
	uint64_t u;
	int64_t v;
	double f;
	uint8_t b;
	int t;
	size_t n;

	for (size_t i = 0; i <= secs_count(x); i++) {
		const struct secs_item *c = secs_child(x, i);

		(void)secs_get_uint(c, UINT64_MAX, &u);
		(void)secs_get_int(c, INT64_MIN, INT64_MAX, &v);
		(void)secs_uint_at(c, i, &u);
		(void)secs_int_at(c, i, &v);
		(void)secs_float_at(c, 0, &f);
		(void)secs_get_byte(c, &b);
		(void)secs_get_bool(c, &t);
		(void)secs_get_str(c, &n);
		(void)secs_data(c, &n);
	}
}

static void sml_checks(const struct secs_item *x)
{
	struct secs_item *z;
	char *one = secs_sml(x, 0), *ind = secs_sml(x, SECS_SML_INDENT);
	char *msg = secs_sml_message(127, 255, 1, x, 0);
	unsigned s, f;
	int w;

	for (const char *p = one; *p; p++)
		if (*p < 0x20 || *p > 0x7E)
			abort();
	parses_back(x, one);
	parses_back(x, ind);
	if (secs_sml_parse_message(msg, strlen(msg), &lim, &s, &f, &w, &z, NULL) != 0 ||
	    s != 127 || f != 255 || w != 1 || !secs_equal(x, z))
		abort();
	secs_free(z);
	free(one);
	free(ind);
	free(msg);
}

/*
 * x encodes in at most max bytes; those bytes decode to x and encode
 * to the same bytes again; and its SML reads back to it.
 */
static void round_trip(const struct secs_item *x, size_t max)
{
	struct secs_item *y;
	unsigned char *enc, *enc2;
	size_t n, n2;

	if (secs_encode(x, &enc, &n, NULL) != 0 || n > max)
		abort();
	if (secs_decode(enc, n, &lim, &y, NULL) != 0 || !secs_equal(x, y))
		abort();
	if (secs_encode(y, &enc2, &n2, NULL) != 0 || n2 != n || memcmp(enc, enc2, n) != 0)
		abort();
	sml_checks(x);
	secs_free(y);
	free(enc);
	free(enc2);
}

/* A body that decodes re-encodes no longer than it was: lengths may use more bytes than needed. */
static void as_body(const uint8_t *data, size_t size)
{
	struct secs_item *x;

	if (secs_decode(data, size, &lim, &x, NULL) != 0)
		return;
	if ((x == NULL) != (size == 0))
		abort();
	round_trip(x, size);
	read_all_ways(x);
	secs_free(x);
}

static void as_text(const uint8_t *data, size_t size)
{
	struct secs_item *x;
	unsigned s, f;
	int w;

	if (secs_sml_parse_message((const char *)data, size, &lim, &s, &f, &w, &x, NULL) == 0) {
		if (s > 127 || f > 255)
			abort();
		secs_free(x);
	}
	if (secs_sml_parse((const char *)data, size, &lim, &x, NULL) != 0)
		return;
	round_trip(x, lim.max_bytes);
	read_all_ways(x);
	secs_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_body(data, size);
	as_text(data, size);
	return 0;
}

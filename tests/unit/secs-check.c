/*
 * secs-check: built-in checks of lib/secs.c that need many items or
 * exact bits, for tests/secs.bats.  Prints "ok NAME ..." and exits 0,
 * or names the failed check (file:line) and exits 1.
 *
 *   secs-check random N SEED   N random trees: decode(encode(x)) == x,
 *                              a loose (non-canonical) encoding decodes
 *                              to x and re-encodes canonically, and
 *                              parse(format(x)) == x in both SML modes
 *                              and in the message form
 *   secs-check floats N SEED   N random F4 and F8 bit patterns read back
 *                              from SML to the same bits (NaNs to a NaN)
 *   secs-check builders        every builder's bytes, range checks, NULL
 *   secs-check accessors       integers from every form, bounds, NULL
 *   secs-check toolong         3-byte lengths up to 0xFFFFFF, refused above
 */
#include "util.h"
#include "log.h"
#include "cli.h"
#include "secs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define CHECK(c)                                                                   \
	do {                                                                       \
		if (!(c)) {                                                        \
			fprintf(stderr, "secs-check: %s:%d: %s\n", __FILE__, __LINE__, #c); \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

static uint64_t rng_state;

/* xorshift64*: the same sequence for the same seed on every machine. */
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static const enum secs_format leaves[] = {
	SECS_B,  SECS_BOOLEAN, SECS_A,  SECS_J,  SECS_I8, SECS_I1, SECS_I2,
	SECS_I4, SECS_F8,      SECS_F4, SECS_U8, SECS_U1, SECS_U2, SECS_U4,
};

static unsigned elem_size(enum secs_format f)
{
	switch (f) {
	case SECS_I2: case SECS_U2: return 2;
	case SECS_I4: case SECS_U4: case SECS_F4: return 4;
	case SECS_I8: case SECS_U8: case SECS_F8: return 8;
	default: return 1;
	}
}

/* Mostly small items, some with 2-byte lengths, a rare one with 3. */
static struct secs_item *rand_item(int depth)
{
	enum secs_format f;
	struct secs_item *it;
	unsigned char *buf;
	size_t n, r = rnd() % 100;

	if (depth < 6 && r < 25) {
		it = secs_list(0);
		for (n = rnd() % 6; n > 0; n--)
			CHECK(secs_append(it, rand_item(depth + 1)) == 0);
		return it;
	}
	f = leaves[rnd() % (sizeof leaves / sizeof leaves[0])];
	n = r < 95 ? rnd() % 5 : r < 99 ? 200 + rnd() % 200 : 66000 + rnd() % 1000;
	n *= elem_size(f);
	buf = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)rnd();
	it = secs_raw(f, buf, n);
	CHECK(it != NULL);
	free(buf);
	return it;
}

struct bytes {
	unsigned char *p;
	size_t len, cap;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = 2 * (b->len + n);
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Like the encoder, but with a random number of length bytes (1..3) that fits. */
static void encode_loose(const struct secs_item *it, struct bytes *b)
{
	enum secs_format f = secs_format_of(it);
	size_t n = 0;
	const unsigned char *data = secs_data(it, &n);
	unsigned min, nlb;
	unsigned char hdr[4];

	if (f == SECS_L)
		n = secs_count(it);
	min = n <= 0xFF ? 1 : n <= 0xFFFF ? 2 : 3;
	nlb = min + (unsigned)(rnd() % (4 - min));
	hdr[0] = (unsigned char)(f << 2 | nlb);
	for (unsigned i = 0; i < nlb; i++)
		hdr[1 + i] = (unsigned char)(n >> (8 * (nlb - 1 - i)));
	put(b, hdr, 1 + nlb);
	if (f == SECS_L)
		for (size_t i = 0; i < n; i++)
			encode_loose(secs_child(it, i), b);
	else if (n)
		put(b, data, n);
}

static void sml_back(const struct secs_item *x, unsigned flags)
{
	struct secs_item *y;
	char *text = secs_sml(x, flags);

	CHECK(secs_sml_parse(text, strlen(text), NULL, &y, NULL) == 0);
	CHECK(secs_equal(x, y));
	CHECK((flags & SECS_SML_INDENT) || !strchr(text, '\n'));
	secs_free(y);
	free(text);
}

static void one_random(void)
{
	struct secs_item *x = rand_item(0), *y, *z;
	struct bytes loose = { 0 };
	unsigned char *enc, *enc2;
	size_t n, n2;
	unsigned s, f;
	int w;
	char *msg;

	CHECK(secs_encode(x, &enc, &n, NULL) == 0);
	CHECK(secs_decode(enc, n, NULL, &y, NULL) == 0);
	CHECK(secs_equal(x, y));
	secs_free(y);
	encode_loose(x, &loose);
	CHECK(secs_decode(loose.p, loose.len, NULL, &y, NULL) == 0);
	CHECK(secs_equal(x, y));
	CHECK(secs_encode(y, &enc2, &n2, NULL) == 0);
	CHECK(n2 == n && memcmp(enc, enc2, n) == 0);
	sml_back(x, 0);
	sml_back(x, SECS_SML_INDENT);
	msg = secs_sml_message(127, 255, 0, x, 0);
	CHECK(secs_sml_parse_message(msg, strlen(msg), NULL, &s, &f, &w, &z, NULL) == 0);
	CHECK(s == 127 && f == 255 && w == 0 && secs_equal(x, z));
	free(msg);
	secs_free(x), secs_free(y), secs_free(z);
	free(enc), free(enc2), free(loose.p);
}

static int check_random(long n)
{
	for (long i = 0; i < n; i++)
		one_random();
	CHECK(secs_equal(NULL, NULL));
	printf("ok random %ld\n", n);
	return 0;
}

/* Random bits through SML and back: exact, except that a NaN may change payload. */
static int check_floats(long n)
{
	struct secs_item *x, *y;
	unsigned char b[12];
	const unsigned char *d;
	size_t len;
	char *text;
	double v;

	for (long i = 0; i < n; i++) {
		uint64_t r = rnd();

		memcpy(b, &r, 8);
		r = rnd();
		memcpy(b + 8, &r, 4);
		x = secs_list(2, secs_raw(SECS_F8, b, 8), secs_raw(SECS_F4, b + 8, 4));
		text = secs_sml(x, 0);
		CHECK(secs_sml_parse(text, strlen(text), NULL, &y, NULL) == 0);
		CHECK(secs_equal(x, y));
		for (size_t k = 0; k < 2; k++) {
			d = secs_data(secs_child(y, k), &len);
			CHECK(secs_float_at(secs_child(y, k), 0, &v) == 0);
			CHECK(isnan(v) || memcmp(d, b + 8 * k, len) == 0);
		}
		secs_free(x), secs_free(y);
		free(text);
	}
	printf("ok floats %ld\n", n);
	return 0;
}

/* The encoding of a builder's item, as hex, compared with what E5 says. */
static void expect_hex(struct secs_item *it, const char *hex)
{
	unsigned char *enc;
	size_t n;
	char *got = xstrdup("");

	CHECK(it != NULL);
	CHECK(secs_encode(it, &enc, &n, NULL) == 0);
	for (size_t i = 0; i < n; i++) {
		char *t = xasprintf("%s%02x", got, enc[i]);
		free(got);
		got = t;
	}
	if (strcmp(got, hex) != 0)
		fprintf(stderr, "secs-check: got %s, want %s\n", got, hex);
	CHECK(strcmp(got, hex) == 0);
	free(got);
	free(enc);
	secs_free(it);
}

static void check_scalars(void)
{
	expect_hex(secs_u1(255), "a501ff");
	expect_hex(secs_u2(0x1234), "a9021234");
	expect_hex(secs_u4(1001), "b104000003e9");
	expect_hex(secs_u8(1), "a1080000000000000001");
	expect_hex(secs_i1(-1), "6501ff");
	expect_hex(secs_i2(-2), "6902fffe");
	expect_hex(secs_i4(-3), "7104fffffffd");
	expect_hex(secs_i8(INT64_MIN), "61088000000000000000");
	expect_hex(secs_f4(1.0f), "91043f800000");
	expect_hex(secs_f8(-2.0), "8108c000000000000000");
	expect_hex(secs_binary(0x84), "210184");
	expect_hex(secs_boolean(7), "250101");
	expect_hex(secs_ascii("LOT7"), "41044c4f5437");
	expect_hex(secs_ascii_n("a\0b", 3), "4103610062");
	expect_hex(secs_list(0), "0100");
	expect_hex(secs_id(255), "a501ff");
	expect_hex(secs_id(256), "a9020100");
	expect_hex(secs_id(65536), "b10400010000");
	expect_hex(secs_id(1ULL << 32), "a1080000000100000000");
	expect_hex(secs_list(2, secs_ascii("MDLN"), secs_ascii("SOFTREV")),
		   "010241044d444c4e4107534f4654524556");
}

static void check_arrays(void)
{
	struct secs_item *it = secs_empty(SECS_U2);

	CHECK(secs_add_uint(it, 65535) == 0);
	CHECK(secs_add_uint(it, 65536) == SECS_ERR_RANGE);
	CHECK(secs_add_int(it, -1) == SECS_ERR_RANGE);
	CHECK(secs_add_int(it, 7) == 0);
	CHECK(secs_add_float(it, 1.0) == SECS_ERR_TYPE);
	CHECK(secs_add_bytes(it, "x", 1) == SECS_ERR_TYPE);
	expect_hex(it, "a904ffff0007");
	it = secs_empty(SECS_I1);
	CHECK(secs_add_int(it, -128) == 0 && secs_add_int(it, 127) == 0);
	CHECK(secs_add_int(it, -129) == SECS_ERR_RANGE && secs_add_int(it, 128) == SECS_ERR_RANGE);
	CHECK(secs_add_uint(it, 128) == SECS_ERR_RANGE);
	expect_hex(it, "6502807f");
	it = secs_empty(SECS_I8);
	CHECK(secs_add_uint(it, (uint64_t)INT64_MAX + 1) == SECS_ERR_RANGE);
	CHECK(secs_add_int(it, INT64_MIN) == 0);
	expect_hex(it, "61088000000000000000");
	it = secs_empty(SECS_F4);
	CHECK(secs_add_float(it, 1e39) == SECS_ERR_RANGE);
	CHECK(secs_add_float(it, INFINITY) == 0);
	expect_hex(it, "91047f800000");
	it = secs_empty(SECS_B);
	CHECK(secs_add_bytes(it, "\x01\x02", 2) == 0);
	CHECK(secs_add_uint(it, 1) == SECS_ERR_TYPE);
	expect_hex(it, "21020102");
	expect_hex(secs_empty(SECS_A), "4100");
}

static int check_builders(void)
{
	struct secs_item *l;

	check_scalars();
	check_arrays();
	CHECK(secs_raw(SECS_U4, "abc", 3) == NULL);
	CHECK(secs_raw(SECS_L, "", 0) == NULL);
	CHECK(secs_raw((enum secs_format)077, "", 0) == NULL);
	CHECK(secs_empty((enum secs_format)077) == NULL);
	/* A failed builder anywhere inside makes the whole list NULL. */
	CHECK(secs_list(3, secs_u1(1), secs_raw(SECS_U2, "x", 1), secs_u1(2)) == NULL);
	l = secs_u1(1);
	CHECK(secs_append(l, secs_u1(2)) == SECS_ERR_TYPE);
	CHECK(secs_append(NULL, secs_u1(2)) == SECS_ERR_TYPE);
	secs_free(l);
	l = secs_list(0);
	CHECK(secs_append(l, NULL) == SECS_ERR_TYPE);
	CHECK(secs_append(l, secs_list(1, secs_u4(5))) == 0);
	expect_hex(l, "01010101b10400000005");
	secs_free(NULL);
	printf("ok builders\n");
	return 0;
}

static void check_ids(void)
{
	struct secs_item *forms[] = {
		secs_u1(42), secs_u2(42), secs_u4(42), secs_u8(42), secs_i1(42),
		secs_i2(42), secs_i4(42), secs_i8(42), secs_ascii("42"), secs_ascii("0042"),
	};
	uint64_t u;
	int64_t v;

	for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
		CHECK(secs_get_uint(forms[i], UINT32_MAX, &u) == 0 && u == 42);
		CHECK(secs_get_int(forms[i], 0, 100, &v) == 0 && v == 42);
		CHECK(secs_get_uint(forms[i], 41, &u) == SECS_ERR_RANGE);
		CHECK(secs_get_int(forms[i], 43, 100, &v) == SECS_ERR_RANGE);
		secs_free(forms[i]);
	}
}

static void check_numbers(void)
{
	struct secs_item *it;
	uint64_t u;
	int64_t v;

	it = secs_i4(-5);
	CHECK(secs_get_uint(it, UINT64_MAX, &u) == SECS_ERR_RANGE);
	CHECK(secs_get_int(it, -10, 10, &v) == 0 && v == -5);
	secs_free(it);
	it = secs_u8(UINT64_MAX);
	CHECK(secs_get_uint(it, UINT64_MAX, &u) == 0 && u == UINT64_MAX);
	CHECK(secs_get_int(it, INT64_MIN, INT64_MAX, &v) == SECS_ERR_RANGE);
	secs_free(it);
	it = secs_ascii("-9223372036854775808");
	CHECK(secs_get_int(it, INT64_MIN, INT64_MAX, &v) == 0 && v == INT64_MIN);
	CHECK(secs_get_uint(it, UINT64_MAX, &u) == SECS_ERR_TYPE);
	secs_free(it);
	it = secs_ascii("18446744073709551616");
	CHECK(secs_get_uint(it, UINT64_MAX, &u) == SECS_ERR_RANGE);
	secs_free(it);
	const char *bad[] = { "", "-", " 42", "42 ", "4x2", "+42", "0x2A" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		it = secs_ascii(bad[i]);
		CHECK(secs_get_uint(it, UINT64_MAX, &u) == SECS_ERR_TYPE);
		CHECK(secs_get_int(it, INT64_MIN, INT64_MAX, &v) == SECS_ERR_TYPE);
		secs_free(it);
	}
	it = secs_raw(SECS_U4, "\0\0\0\1\0\0\0\2", 8);
	CHECK(secs_get_uint(it, 10, &u) == SECS_ERR_TYPE);
	CHECK(secs_uint_at(it, 1, &u) == 0 && u == 2);
	CHECK(secs_uint_at(it, 2, &u) == SECS_ERR_INDEX);
	CHECK(secs_float_at(it, 0, &(double){ 0 }) == SECS_ERR_TYPE);
	secs_free(it);
	CHECK(secs_get_uint(NULL, 1, &u) == SECS_ERR_TYPE);
	CHECK(secs_get_uint(secs_child(NULL, 0), 1, &u) == SECS_ERR_TYPE);
}

static int check_accessors(void)
{
	struct secs_item *l = secs_list(4, secs_binary(0x84), secs_boolean(1), secs_ascii("LOT7"),
					secs_list(0));
	uint8_t b;
	int t;
	size_t n;

	check_ids();
	check_numbers();
	CHECK(secs_count(l) == 4 && secs_is(l, SECS_L) && !secs_is(NULL, SECS_L));
	CHECK(secs_child(l, 4) == NULL && secs_child(secs_child(l, 0), 0) == NULL);
	CHECK(secs_get_byte(secs_child(l, 0), &b) == 0 && b == 0x84);
	CHECK(secs_get_byte(secs_child(l, 1), &b) == SECS_ERR_TYPE);
	CHECK(secs_get_bool(secs_child(l, 1), &t) == 0 && t == 1);
	CHECK(secs_get_bool(secs_child(l, 0), &t) == SECS_ERR_TYPE);
	CHECK(strcmp(secs_get_str(secs_child(l, 2), &n), "LOT7") == 0 && n == 4);
	CHECK(secs_get_str(secs_child(l, 0), &n) == NULL && secs_get_str(NULL, NULL) == NULL);
	CHECK(secs_data(l, &n) == NULL && secs_count(secs_child(l, 3)) == 0);
	CHECK(secs_format_of(secs_child(l, 2)) == SECS_A);
	CHECK(strcmp(secs_format_name(SECS_BOOLEAN), "BOOLEAN") == 0);
	CHECK(secs_format_name((enum secs_format)077) == NULL);
	secs_free(l);
	printf("ok accessors\n");
	return 0;
}

/* The largest item E5 can carry takes 3 length bytes; one byte more is refused. */
static int check_toolong(void)
{
	struct secs_limits lim = { 4, 10, 0x1000004 };
	struct secs_item *it = secs_empty(SECS_B), *back;
	struct secs_error err;
	unsigned char *zero = xcalloc(SECS_LEN_MAX + 1, 1), *enc;
	size_t n;

	CHECK(secs_add_bytes(it, zero, SECS_LEN_MAX) == 0);
	CHECK(secs_encode(it, &enc, &n, &err) == 0 && n == SECS_LEN_MAX + 4);
	CHECK(memcmp(enc, "\x23\xff\xff\xff", 4) == 0);
	CHECK(secs_decode(enc, n, NULL, &back, &err) == SECS_ERR_SIZE);
	CHECK(secs_decode(enc, n, &lim, &back, &err) == 0 && secs_equal(it, back));
	secs_free(back);
	free(enc);
	CHECK(secs_add_bytes(it, zero, 1) == 0);
	CHECK(secs_encode(it, &enc, &n, &err) == SECS_ERR_TOOLONG && enc == NULL);
	printf("ok toolong %s\n", err.msg);
	secs_free(it);
	free(zero);
	return 0;
}

int main(int argc, char **argv)
{
	log_init("secs-check");
	if (argc == 4 && strcmp(argv[1], "random") == 0) {
		rng_state = strtoull(argv[3], NULL, 10) | 1;
		return check_random(strtol(argv[2], NULL, 10));
	}
	if (argc == 4 && strcmp(argv[1], "floats") == 0) {
		rng_state = strtoull(argv[3], NULL, 10) | 1;
		return check_floats(strtol(argv[2], NULL, 10));
	}
	if (argc == 2 && strcmp(argv[1], "builders") == 0)
		return check_builders();
	if (argc == 2 && strcmp(argv[1], "accessors") == 0)
		return check_accessors();
	if (argc == 2 && strcmp(argv[1], "toolong") == 0)
		return check_toolong();
	cli_usage_error("usage: secs-check random N SEED | floats N SEED | builders | accessors | toolong");
}

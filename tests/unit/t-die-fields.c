/*
 * t-die-fields: kerf-detect's one-pass die event reader (lib/die_fields.c)
 * against jansson, line by line.
 *   t-die-fields mutate   die lines built here and systematic mutations of
 *                         them: every truncation, every byte substituted,
 *                         inserted and deleted; members duplicated,
 *                         reordered, removed, of other types, escaped,
 *                         nested; numbers at and past the limits; trailing
 *                         bytes; whitespace
 *   t-die-fields lines    the die event lines on stdin (kerf-acquire --sim),
 *                         each of which must be taken, and byte mutations
 *                         of the first
 * Whenever die_fields_scan takes a line, json_loadb (flags 0, as
 * kerf-detect) must parse it, die_fields_from_json must read the same
 * values from the result, and image_from_fields must make the same image
 * or the same reject of both.  Whenever die_fields_scan_event (kerf-
 * validate's) takes a line, die_fields_scan must take it too, json_loadb
 * with JSON_REJECT_DUPLICATES must parse it into an object with the same
 * values, and the line must hold no raw control byte.  Prints "tried N
 * taken T declined D" (of die_fields_scan) and each disagreement on
 * stderr; exits 1 on any.
 */
#include "util.h"
#include "base64.h"
#include "die_fields.h"
#include "image.h"
#include "line.h"
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static struct {
	long tried, taken, declined, wrong;
} tally;

static void report(const char *what, const char *line, size_t len, const char *why)
{
	tally.wrong++;
	fprintf(stderr, "t-die-fields: %s: %s: %.*s\n", what, why, (int)(len < 600 ? len : 600), line);
}

/* Whether both readings make the same image, or the same reject. */
static int same_image(const struct image_fields *a, const struct image_fields *b)
{
	struct image ia, ib;
	const char *ra = "", *rb = "";
	char ma[256] = "", mb[256] = "";
	int x = image_from_fields(a, 0, 0, &ia, &ra, ma, sizeof ma);
	int y = image_from_fields(b, 0, 0, &ib, &rb, mb, sizeof mb);
	int same = x == y;
	if (same && x == 0)
		same = ia.w == ib.w && ia.h == ib.h && !memcmp(ia.px, ib.px, (size_t)ia.w * (size_t)ia.h);
	else if (same)
		same = !strcmp(ra, rb) && !strcmp(ma, mb);
	image_release(&ia);
	image_release(&ib);
	return same;
}

/*
 * The strict scanner on a copy of the line, which die_fields_scan took or
 * not (took); returns whether it took it.
 */
static int check_strict(const char *what, const char *line, size_t len, int took)
{
	struct die_fields a, b;
	json_error_t err;
	json_t *ev;
	char *copy = xmalloc(len + 1);

	memcpy(copy, line, len);
	if (!die_fields_scan_event(copy, len, &a)) {
		free(copy);
		return 0;
	}
	ev = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (!took)
		report(what, line, len, "taken by the strict scanner only");
	else if (!json_is_object(ev))
		report(what, line, len, "taken strictly, but jansson does not parse it (duplicates rejected)");
	else if (line_control_at(line, len) < len)
		report(what, line, len, "taken strictly, but it holds a raw control byte");
	else if (die_fields_from_json(ev, &b), !die_fields_equal(&a, &b))
		report(what, line, len, "taken strictly, but jansson reads other values");
	else if ((a.run && a.run[a.run_len]) || (a.img.data && a.img.data[a.img.data_len]))
		report(what, line, len, "taken strictly, but its strings are not terminated");
	json_decref(ev);
	free(copy);
	return 1;
}

/* Try one line; returns whether the scanner took it. */
static int check(const char *what, const char *line, size_t len)
{
	struct die_fields a, b;
	json_error_t err;
	json_t *ev;
	int took;

	tally.tried++;
	took = die_fields_scan(line, len, &a);
	check_strict(what, line, len, took);
	if (!took) {
		tally.declined++;
		return 0;
	}
	tally.taken++;
	ev = json_loadb(line, len, 0, &err);
	if (!ev) {
		report(what, line, len, "taken, but jansson does not parse it");
		return 1;
	}
	die_fields_from_json(ev, &b);
	if (!die_fields_equal(&a, &b))
		report(what, line, len, "taken, but jansson reads other values");
	else if (!same_image(&a.img, &b.img))
		report(what, line, len, "taken, but the image differs");
	json_decref(ev);
	return 1;
}

static void must_take(const char *what, const char *line, size_t len)
{
	if (!check(what, line, len))
		report(what, line, len, "a plain die line is declined");
}

/* Bytes that make or break JSON, and a few that change a value harmlessly. */
static const unsigned char interesting[] = {
	0x00, 0x01, '\t', '\n', '\r', 0x1f, ' ', '"', '\\', '/', '{', '}', '[', ']', ',', ':', '0', '1', '9',
	'-', '+', '.', 'e', 'E', 'a', 't', 'n', 'u', 'x', 'A', '=', 0x7f, 0x80, 0xc3, 0xff,
};

/*
 * Every truncation, and every interesting byte substituted and inserted
 * at every position, and every deletion; between from and to (a long
 * string) only at every every-th position.
 */
static void mutate_bytes(const char *what, const char *line, size_t len, size_t from, size_t to, size_t every)
{
	char *buf = xmalloc(len + 2);
	for (size_t i = 0; i < len; i++)
		check(what, line, i);
	for (size_t i = 0; i < len; i += i >= from && i < to ? every : 1) {
		for (size_t k = 0; k < sizeof interesting; k++) {
			memcpy(buf, line, len);
			buf[i] = (char)interesting[k];
			check(what, buf, len);
			memcpy(buf, line, i);
			buf[i] = (char)interesting[k];
			memcpy(buf + i + 1, line + i, len - i);
			check(what, buf, len + 1);
		}
		memcpy(buf, line, i);
		memcpy(buf + i, line + i + 1, len - i - 1);
		check(what, buf, len - 1);
	}
	free(buf);
}

/* ------------------------------------------------ lines built here */

struct member {
	const char *key;   /* as it stands between the quotes */
	const char *val;   /* JSON text */
};

enum { NBASE = 13 };

static char image_data[64], image_sum[19], image_path[] = "\"/nonexistent/kerf-t-die-fields\"";

/* A die of w x h pixels (w * h <= 36): the members kerf-acquire --sim writes. */
static void base_members(struct member *m, const char *w, const char *h)
{
	static const unsigned char px[36] = {1, 2, 3, 250, 251, 252, 0, 127, 128, 9, 10, 11, 12, 13, 14, 15, 16, 17,
					     18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35};
	size_t n = (size_t)(atoi(w) * atoi(h));
	char hx[17];
	image_data[0] = '"';
	base64_encode(px, n, image_data + 1);
	image_data[1 + base64_encoded_len(n)] = '"';
	image_data[2 + base64_encoded_len(n)] = '\0';
	hex64(kerf_xxh3(px, n), hx);
	snprintf(image_sum, sizeof image_sum, "\"%s\"", hx);
	m[0] = (struct member){"v", "1"};
	m[1] = (struct member){"type", "\"die\""};
	m[2] = (struct member){"run", "\"sim-7\""};
	m[3] = (struct member){"seq", "5"};
	m[4] = (struct member){"t", "\"2026-01-05T06:00:02.220000Z\""};
	m[5] = (struct member){"id", "\"f5c945d62c5b985d\""};
	m[6] = (struct member){"wafer", "\"W01\""};
	m[7] = (struct member){"col", "11"};
	m[8] = (struct member){"row", "1"};
	m[9] = (struct member){"w", w};
	m[10] = (struct member){"h", h};
	m[11] = (struct member){"data", image_data};
	m[12] = (struct member){"xxh3", image_sum};
}

/* The object of n members, with ws before and after every token. */
static char *object(const struct member *m, size_t n, const char *ws, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	if (!f)
		exit(70);
	fprintf(f, "%s{", ws);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%s\"%s\"%s:%s%s%s", i ? "," : "", ws, m[i].key, ws, ws, m[i].val, ws);
	fprintf(f, "}%s", ws);
	fclose(f);
	return buf;
}

static void check_object(const char *what, const struct member *m, size_t n, int take)
{
	size_t len;
	char *line = object(m, n, "", &len);
	if (take)
		must_take(what, line, len);
	else
		check(what, line, len);
	free(line);
}

/* Values every member is given in turn, beside its own. */
static const char *const values[] = {
	"0", "-0", "-1", "7", "1.0", "1.5", "-0.0", "64.0", "1e2", "1E+2", "-1e-2", "2e", "0e0",
	"123456789012345678", "-123456789012345678", "1234567890123456789", "9223372036854775807",
	"9223372036854775808", "-9223372036854775808", "-9223372036854775809", "99999999999999999999999",
	"0.0000000000000000000000000000000000000001", "0.00000000000000000000000000000000000000001",
	"01", "-01", "-", "+1", ".5", "1.", "--1", "0x10", "true", "false", "null", "tru", "nul", "truex", "nulll",
	"[]", "{}", "[1,2,[3,{\"a\":null}]]", "{\"x\":{\"y\":[true,false]}}", "[1,]", "[,1]", "{,}", "{\"a\"}",
	"{\"a\":}", "[1 2]", "\"\"", "\"x\"", "\"W\\u00301\"", "\"\\/\"", "\"a\\\"b\"", "\"a\\u0000b\"",
	"\"\\ud800\"", "\"\\ud83d\\ude00\"", "\"\\q\"", "\"caf\xc3\xa9\"", "\"\xff\"", "\"\xc3\"", "\"a\tb\"",
	"\"a\x7f" "b\"", "\"W01", "W01", "'W01'", "[1x2]", "[1:2]", "[\"a\"\"b\"]", "[1}", "{\"a\":1 \"b\":2}",
	"{\"a\" 1}", "{\"a\":1,}", "{1:2}", "[true false]", "[null,nulls]",
};

/* A JSON string's value escaped in place: char i of the string as \u00XX. */
static char *escape_at(const char *val, size_t i)
{
	size_t n = strlen(val);
	char *s = xmalloc(n + 6);
	memcpy(s, val, i);
	snprintf(s + i, 7, "\\u%04x", (unsigned char)val[i]);
	memcpy(s + i + 6, val + i + 1, n - i);
	return s;
}

/* Nesting depth levels deep: [[[...]]]. */
static char *nested(int depth)
{
	char *s = xmalloc((size_t)depth * 2 + 1);
	memset(s, '[', (size_t)depth);
	memset(s + depth, ']', (size_t)depth);
	s[depth * 2] = '\0';
	return s;
}

static void mutate_members(void)
{
	struct member base[NBASE], m[NBASE + 1];
	static const char *const spaces[] = {" ", "\t", "\r", "\n", " \t\r\n "};
	static const char *const after[] = {"x", " x", ",", "}", "{}", "[]", " 1", "\"\"", "\n\n", " \t"};
	char what[80];

	base_members(base, "2", "3");
	check_object("base", base, NBASE, 1);
	for (size_t k = 0; k < sizeof spaces / sizeof *spaces; k++) {
		size_t len;
		char *line = object(base, NBASE, spaces[k], &len);
		must_take("whitespace", line, len);
		free(line);
	}
	for (size_t k = 0; k < sizeof after / sizeof *after; k++) {
		size_t len;
		char *line = object(base, NBASE, "", &len), *more = xasprintf("%s%s", line, after[k]);
		check("after the object", more, strlen(more));
		free_all(line, more);
	}
	/* Reordered: reversed, and each member moved to the front. */
	for (size_t i = 0; i < NBASE; i++)
		m[i] = base[NBASE - 1 - i];
	check_object("reversed", m, NBASE, 1);
	for (size_t i = 0; i < NBASE; i++) {
		m[0] = base[i];
		for (size_t j = 0, k = 1; j < NBASE; j++)
			if (j != i)
				m[k++] = base[j];
		check_object("moved to the front", m, NBASE, 1);
	}
	for (size_t i = 0; i < NBASE; i++) {
		/* Removed. */
		for (size_t j = 0, k = 0; j < NBASE; j++)
			if (j != i)
				m[k++] = base[j];
		snprintf(what, sizeof what, "without %s", base[i].key);
		check_object(what, m, NBASE - 1, 0);
		/* Twice, the same and another value, first or last. */
		memcpy(m, base, sizeof base);
		m[NBASE] = base[i];
		snprintf(what, sizeof what, "%s twice", base[i].key);
		check_object(what, m, NBASE + 1, 0);
		for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
			m[NBASE].val = values[v];
			check_object(what, m, NBASE + 1, 0);
			m[i].val = values[v];
			m[NBASE].val = base[i].val;
			check_object(what, m, NBASE + 1, 0);
			m[i].val = base[i].val;
		}
		/* Another value, then each of its characters escaped. */
		memcpy(m, base, sizeof base);
		snprintf(what, sizeof what, "%s of another value", base[i].key);
		for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
			m[i].val = values[v];
			check_object(what, m, NBASE, 0);
		}
		snprintf(what, sizeof what, "%s escaped", base[i].key);
		for (size_t c = 1; base[i].val[0] == '"' && c + 1 < strlen(base[i].val); c++) {
			char *e = escape_at(base[i].val, c);
			m[i].val = e;
			check_object(what, m, NBASE, 0);
			free(e);
		}
		for (size_t c = 0; c < strlen(base[i].key); c++) {
			char *e = escape_at(base[i].key, c);
			m[i] = base[i];
			m[i].key = e;
			check_object("key escaped", m, NBASE, 0);
			free(e);
		}
		m[i] = base[i];
	}
	/* Members kerf-detect does not read, of every kind: taken alike. */
	memcpy(m, base, sizeof base);
	for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
		m[NBASE] = (struct member){"extra", values[v]};
		check_object("an extra member", m, NBASE + 1, 0);
		m[0].val = values[v];
		check_object("v of another value", m, NBASE, 0);
		m[0] = base[0];
	}
	for (int depth = 1; depth < 40; depth++) {
		char *s = nested(depth);
		m[NBASE] = (struct member){"extra", s};
		check_object("nested", m, NBASE + 1, depth < 30);
		free(s);
	}
	{
		char *s = nested(2100);
		m[NBASE] = (struct member){"extra", s};
		check_object("nested past jansson's limit", m, NBASE + 1, 0);
		free(s);
	}
	m[NBASE] = (struct member){"", "{\"run\":1,\"w\":[],\"data\":null}"};
	check_object("needed keys in a nested object", m, NBASE + 1, 1);
	m[NBASE] = (struct member){"Run", "\"x\""};
	check_object("a key like a needed one", m, NBASE + 1, 1);
	m[NBASE] = (struct member){"path", image_path};
	check_object("data and path", m, NBASE + 1, 1);
	m[11] = (struct member){"path", image_path};
	check_object("path", m, NBASE, 1);
	{
		size_t len;
		char *line = object(base, NBASE, "", &len), *arr = xasprintf("[%s]", line);
		check("in an array", arr, strlen(arr));
		free_all(line, arr);
	}
}

static void mutate(void)
{
	struct member base[NBASE];
	size_t len;
	char *line;

	mutate_members();
	base_members(base, "2", "3");
	line = object(base, NBASE, "", &len);
	mutate_bytes("bytes of a 2x3 die", line, len, 0, 0, 1);
	free(line);
	base_members(base, "6", "6");
	line = object(base, NBASE, "", &len);
	mutate_bytes("bytes of a 6x6 die", line, len, 0, 0, 1);
	free(line);
	line = object(base, NBASE, " ", &len);
	mutate_bytes("bytes of a die with spaces", line, len, 0, 0, 1);
	free(line);
	base[11] = (struct member){"path", image_path};
	line = object(base, NBASE, "", &len);
	mutate_bytes("bytes of a die by path", line, len, 0, 0, 1);
	free(line);
	base[0] = (struct member){"v", "[1.5,-0.25,{\"a\":[true,false,null]},[],{},\"x\",0]"};
	line = object(base, NBASE, "", &len);
	mutate_bytes("bytes of a die with nested values", line, len, 0, 0, 1);
	free(line);
}

static void lines(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long dies = 0;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n')
			n--;
		if (!memmem(line, (size_t)n, "\"type\":\"die\"", 12))
			continue;
		if (!dies++) {
			const char *data = memmem(line, (size_t)n, "\"data\":\"", 8);
			size_t from = data ? (size_t)(data - line) + 8 : 0;
			mutate_bytes("bytes of a sim die", line, (size_t)n, from, (size_t)n - 40, 101);
		}
		must_take("a sim die", line, (size_t)n);
		if (!check_strict("a sim die", line, (size_t)n, 1))
			report("a sim die", line, (size_t)n, "a plain die line is declined by the strict scanner");
	}
	free(line);
	printf("dies %ld\n", dies);
}

int main(int argc, char **argv)
{
	log_init(argv[0]);
	if (argc == 2 && !strcmp(argv[1], "mutate"))
		mutate();
	else if (argc == 2 && !strcmp(argv[1], "lines"))
		lines();
	else {
		fprintf(stderr, "usage: t-die-fields mutate|lines\n");
		return 64;
	}
	printf("tried %ld taken %ld declined %ld wrong %ld\n", tally.tried, tally.taken, tally.declined, tally.wrong);
	return tally.wrong ? 1 : 0;
}

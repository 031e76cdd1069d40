/*
 * mutate.h: die event lines and systematic mutations of them, for the
 * differential tests of the one-pass die readers (t-die-fields against
 * jansson, t-validate against kerf-validate's own jansson path).  Header
 * only, as each test is one .c file.
 *
 * A test points mutate_try at its check of one line (take: the line is a
 * plain die event, which kerf-detect's scanner must take) and, when it
 * needs to know, mutate_size at what is told the die size of the lines
 * that follow; then calls mutate_dies, or mutate_sim_die on a line of
 * its own.
 *
 * mutate_dies tries die lines built here and mutations of them: every
 * truncation, every byte substituted, inserted and deleted; members
 * duplicated, reordered, removed, of other types, escaped, nested;
 * numbers at and past the limits; trailing bytes; whitespace.
 */
#ifndef KERF_TESTS_MUTATE_H
#define KERF_TESTS_MUTATE_H

#include "base64.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void (*mutate_try)(const char *what, const char *line, size_t len, int take);
static void (*mutate_size)(int w, int h);

static void tell_size(int w, int h)
{
	if (mutate_size)
		mutate_size(w, h);
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
		mutate_try(what, line, i, 0);
	for (size_t i = 0; i < len; i += i >= from && i < to ? every : 1) {
		for (size_t k = 0; k < sizeof interesting; k++) {
			memcpy(buf, line, len);
			buf[i] = (char)interesting[k];
			mutate_try(what, buf, len, 0);
			memcpy(buf, line, i);
			buf[i] = (char)interesting[k];
			memcpy(buf + i + 1, line + i, len - i);
			mutate_try(what, buf, len + 1, 0);
		}
		memcpy(buf, line, i);
		memcpy(buf + i, line + i + 1, len - i - 1);
		mutate_try(what, buf, len - 1, 0);
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

static void try_object(const char *what, const struct member *m, size_t n, int take)
{
	size_t len;
	char *line = object(m, n, "", &len);
	mutate_try(what, line, len, take);
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
	try_object("base", base, NBASE, 1);
	for (size_t k = 0; k < sizeof spaces / sizeof *spaces; k++) {
		size_t len;
		char *line = object(base, NBASE, spaces[k], &len);
		mutate_try("whitespace", line, len, 1);
		free(line);
	}
	for (size_t k = 0; k < sizeof after / sizeof *after; k++) {
		size_t len;
		char *line = object(base, NBASE, "", &len), *more = xasprintf("%s%s", line, after[k]);
		mutate_try("after the object", more, strlen(more), 0);
		free_all(line, more);
	}
	/* Reordered: reversed, and each member moved to the front. */
	for (size_t i = 0; i < NBASE; i++)
		m[i] = base[NBASE - 1 - i];
	try_object("reversed", m, NBASE, 1);
	for (size_t i = 0; i < NBASE; i++) {
		m[0] = base[i];
		for (size_t j = 0, k = 1; j < NBASE; j++)
			if (j != i)
				m[k++] = base[j];
		try_object("moved to the front", m, NBASE, 1);
	}
	for (size_t i = 0; i < NBASE; i++) {
		/* Removed. */
		for (size_t j = 0, k = 0; j < NBASE; j++)
			if (j != i)
				m[k++] = base[j];
		snprintf(what, sizeof what, "without %s", base[i].key);
		try_object(what, m, NBASE - 1, 0);
		/* Twice, the same and another value, first or last. */
		memcpy(m, base, sizeof base);
		m[NBASE] = base[i];
		snprintf(what, sizeof what, "%s twice", base[i].key);
		try_object(what, m, NBASE + 1, 0);
		for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
			m[NBASE].val = values[v];
			try_object(what, m, NBASE + 1, 0);
			m[i].val = values[v];
			m[NBASE].val = base[i].val;
			try_object(what, m, NBASE + 1, 0);
			m[i].val = base[i].val;
		}
		/* Another value, then each of its characters escaped. */
		memcpy(m, base, sizeof base);
		snprintf(what, sizeof what, "%s of another value", base[i].key);
		for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
			m[i].val = values[v];
			try_object(what, m, NBASE, 0);
		}
		snprintf(what, sizeof what, "%s escaped", base[i].key);
		for (size_t c = 1; base[i].val[0] == '"' && c + 1 < strlen(base[i].val); c++) {
			char *e = escape_at(base[i].val, c);
			m[i].val = e;
			try_object(what, m, NBASE, 0);
			free(e);
		}
		for (size_t c = 0; c < strlen(base[i].key); c++) {
			char *e = escape_at(base[i].key, c);
			m[i] = base[i];
			m[i].key = e;
			try_object("key escaped", m, NBASE, 0);
			free(e);
		}
		m[i] = base[i];
	}
	/* Members kerf-detect does not read, of every kind: taken alike. */
	memcpy(m, base, sizeof base);
	for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
		m[NBASE] = (struct member){"extra", values[v]};
		try_object("an extra member", m, NBASE + 1, 0);
		m[0].val = values[v];
		try_object("v of another value", m, NBASE, 0);
		m[0] = base[0];
	}
	for (int depth = 1; depth < 40; depth++) {
		char *s = nested(depth);
		m[NBASE] = (struct member){"extra", s};
		try_object("nested", m, NBASE + 1, depth < 30);
		free(s);
	}
	{
		char *s = nested(2100);
		m[NBASE] = (struct member){"extra", s};
		try_object("nested past jansson's limit", m, NBASE + 1, 0);
		free(s);
	}
	m[NBASE] = (struct member){"", "{\"run\":1,\"w\":[],\"data\":null}"};
	try_object("needed keys in a nested object", m, NBASE + 1, 1);
	m[NBASE] = (struct member){"Run", "\"x\""};
	try_object("a key like a needed one", m, NBASE + 1, 1);
	m[NBASE] = (struct member){"path", image_path};
	try_object("data and path", m, NBASE + 1, 1);
	m[11] = (struct member){"path", image_path};
	try_object("path", m, NBASE, 1);
	{
		size_t len;
		char *line = object(base, NBASE, "", &len), *arr = xasprintf("[%s]", line);
		mutate_try("in an array", arr, strlen(arr), 0);
		free_all(line, arr);
	}
}

static void mutate_dies(void)
{
	struct member base[NBASE];
	size_t len;
	char *line;

	tell_size(2, 3);
	mutate_members();
	base_members(base, "2", "3");
	line = object(base, NBASE, "", &len);
	mutate_bytes("bytes of a 2x3 die", line, len, 0, 0, 1);
	free(line);
	tell_size(6, 6);
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

/* The bytes of a long die line (kerf-acquire --sim's): in its data, every 101st position only. */
static void mutate_sim_die(const char *line, size_t n)
{
	const char *data = memmem(line, n, "\"data\":\"", 8);
	size_t from = data ? (size_t)(data - line) + 8 : 0;
	mutate_bytes("bytes of a sim die", line, n, from, n > 40 ? n - 40 : 0, 101);
}

#endif

/*
 * t-secs: drive lib/secs.c for tests/secs.bats.
 *
 *   t-secs encode [-b]          SML (an item, or a message "S1F13 W <L>") on
 *                               stdin; the body's bytes as hex, 16 a line
 *                               (-b: raw bytes)
 *   t-secs decode [-b] [DEPTH ITEMS BYTES]
 *                               hex (-b: raw bytes) on stdin; "ok SML" or
 *                               "error CODE OFFSET: MESSAGE" (status 65)
 *   t-secs roundtrip            hex on stdin; checks decode, encode, SML
 *                               and parse against each other; "ok"
 *   t-secs sml [-i|-s] [DEPTH ITEMS BYTES]
 *                               SML on stdin, written back as SML (-i:
 *                               indented, -s: brief), or the error as for
 *                               decode
 *   t-secs get WHAT [ARGS]      SML item on stdin, read with an accessor:
 *                               uint MAX | int MIN MAX | byte | bool | str
 *                               | child I...; prints the value or
 *                               "error CODE"
 *
 * The built-in property checks (random round trips, builders, ...) are
 * in secs-check.c.
 * Hex input is pairs of hex digits; whitespace and '#' comments are
 * ignored.
 */
#include "util.h"
#include "log.h"
#include "cli.h"
#include "out.h"
#include "secs.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static unsigned char *read_all(size_t *len)
{
	unsigned char *buf = NULL;
	size_t n = 0, cap = 0, got;

	do {
		if (cap - n < 65536) {
			cap = cap ? 2 * cap : 65536;
			buf = xrealloc(buf, cap + 1);
		}
		got = fread(buf + n, 1, cap - n, stdin);
		n += got;
	} while (got > 0);
	if (ferror(stdin))
		exit(74);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex text to bytes, in place. */
static size_t unhex(unsigned char *s, size_t len)
{
	size_t out = 0;
	int hi = -1, v;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '#') {
			while (i < len && s[i] != '\n')
				i++;
			continue;
		}
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
			continue;
		if ((v = hexval(s[i])) < 0) {
			fprintf(stderr, "t-secs: bad hex digit at %zu\n", i);
			exit(64);
		}
		if (hi < 0) {
			hi = v;
		} else {
			s[out++] = (unsigned char)(hi << 4 | v);
			hi = -1;
		}
	}
	if (hi >= 0) {
		fprintf(stderr, "t-secs: odd number of hex digits\n");
		exit(64);
	}
	return out;
}

static void print_hex(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x%s", p[i], (i % 16 == 15 || i + 1 == n) ? "\n" : " ");
}

static int report(const struct secs_error *err)
{
	printf("error %s %zu: %s\n", secs_strerror(err->code), err->offset, err->msg);
	return 65;
}

/* Limits from three arguments, or the defaults. */
static const struct secs_limits *limits(int argc, char **argv, struct secs_limits *lim)
{
	if (argc < 3)
		return NULL;
	lim->max_depth = strtoul(argv[0], NULL, 10);
	lim->max_items = strtoul(argv[1], NULL, 10);
	lim->max_bytes = strtoul(argv[2], NULL, 10);
	return lim;
}

/* An item or a whole message, told apart by the first non-blank character. */
static int parse_any(const char *text, size_t len, const struct secs_limits *lim,
		     struct secs_item **it, char **header, struct secs_error *err)
{
	size_t i = strspn(text, " \t\r\n");
	unsigned s, f;
	int w, rc;

	*header = NULL;
	if (i < len && (text[i] == 'S' || text[i] == 's')) {
		rc = secs_sml_parse_message(text, len, lim, &s, &f, &w, it, err);
		if (rc == 0)
			*header = xasprintf("S%uF%u%s", s, f, w ? " W" : "");
		return rc;
	}
	return secs_sml_parse(text, len, lim, it, err);
}

static int cmd_encode(int argc, char **argv)
{
	int binary = argc > 0 && strcmp(argv[0], "-b") == 0, rc;
	struct secs_item *it = NULL;
	struct secs_error err;
	unsigned char *buf, *out = NULL;
	size_t len, n;
	char *header = NULL;

	buf = read_all(&len);
	rc = parse_any((char *)buf, len, NULL, &it, &header, &err);
	if (rc == 0)
		rc = secs_encode(it, &out, &n, &err);
	if (rc)
		rc = report(&err);
	else if (binary)
		fwrite(out, 1, n, stdout);
	else
		print_hex(out, n);
	free(out);
	free(header);
	secs_free(it);
	free(buf);
	return rc;
}

static int cmd_decode(int argc, char **argv)
{
	int binary = argc > 0 && strcmp(argv[0], "-b") == 0, rc;
	struct secs_limits lb;
	const struct secs_limits *lim = limits(argc - binary, argv + binary, &lb);
	struct secs_item *it;
	struct secs_error err;
	unsigned char *buf;
	size_t len;
	char *sml;

	buf = read_all(&len);
	if (!binary)
		len = unhex(buf, len);
	rc = secs_decode(buf, len, lim, &it, &err);
	free(buf);
	if (rc)
		return report(&err);
	sml = secs_sml(it, 0);
	printf("ok%s%s\n", it ? " " : "", sml);
	free(sml);
	secs_free(it);
	return 0;
}

static int cmd_sml(int argc, char **argv)
{
	int indent = argc > 0 && strcmp(argv[0], "-i") == 0, rc;
	int brief = argc > 0 && strcmp(argv[0], "-s") == 0;
	struct secs_limits lb;
	const struct secs_limits *lim = limits(argc - indent - brief, argv + indent + brief, &lb);
	unsigned flags = (indent ? SECS_SML_INDENT : 0) | (brief ? SECS_SML_BRIEF : 0);
	struct secs_item *it;
	struct secs_error err;
	char *header, *sml, *buf;
	size_t len;

	buf = (char *)read_all(&len);
	rc = parse_any(buf, len, lim, &it, &header, &err);
	free(buf);
	if (rc)
		return report(&err);
	sml = secs_sml(it, flags);
	if (header)
		printf("%s%s%s\n", header, it ? (indent ? "\n" : " ") : "", sml);
	else
		printf("%s\n", sml);
	free(sml);
	free(header);
	secs_free(it);
	return 0;
}

/* decode, encode, decode again; SML both ways and back; the message form. */
static int cmd_roundtrip(void)
{
	struct secs_item *a = NULL, *b = NULL, *c = NULL, *d = NULL, *e = NULL;
	struct secs_error err;
	unsigned char *buf, *enc = NULL;
	size_t len, n = 0;
	char *one = NULL, *ind = NULL, *msg = NULL;
	unsigned s = 0, f = 0;
	int w = 0, rc;

	buf = read_all(&len);
	len = unhex(buf, len);
	rc = secs_decode(buf, len, NULL, &a, &err);
	if (rc == 0) {
		one = secs_sml(a, 0);
		ind = secs_sml(a, SECS_SML_INDENT);
		msg = secs_sml_message(6, 11, 1, a, 0);
		if ((rc = secs_encode(a, &enc, &n, &err)) == 0 &&
		    (rc = secs_decode(enc, n, NULL, &b, &err)) == 0 &&
		    (rc = secs_sml_parse(one, strlen(one), NULL, &c, &err)) == 0 &&
		    (rc = secs_sml_parse(ind, strlen(ind), NULL, &d, &err)) == 0)
			rc = secs_sml_parse_message(msg, strlen(msg), NULL, &s, &f, &w, &e, &err);
	}
	if (rc) {
		rc = report(&err);
	} else {
		rc = secs_equal(a, b) && secs_equal(a, c) && secs_equal(a, d) && secs_equal(a, e) &&
		     s == 6 && f == 11 && w == 1 && n <= len && !strchr(one, '\n') ? 0 : 1;
		printf("%s\n", rc ? "mismatch" : "ok");
	}
	secs_free(a), secs_free(b), secs_free(c), secs_free(d), secs_free(e);
	free(one), free(ind), free(msg), free(enc), free(buf);
	return rc;
}

static struct secs_item *path(struct secs_item *it, int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		it = secs_child(it, strtoul(argv[i], NULL, 10));
	return it;
}

static int cmd_get(int argc, char **argv)
{
	struct secs_item *it, *sub;
	struct secs_error err;
	uint64_t u;
	int64_t v;
	uint8_t byte;
	int rc = SECS_ERR_TYPE, b;
	size_t len, n = 0;
	const char *s;
	char *buf = (char *)read_all(&len), *sml;

	if (argc < 1)
		cli_usage_error("usage: t-secs get uint MAX | int MIN MAX | byte | bool | str | child I...");
	rc = secs_sml_parse(buf, len, NULL, &it, &err);
	free(buf);
	if (rc)
		return report(&err);
	rc = SECS_ERR_TYPE;
	if (strcmp(argv[0], "uint") == 0 && argc == 2 &&
	    !(rc = secs_get_uint(it, strtoull(argv[1], NULL, 0), &u))) {
		printf("%" PRIu64 "\n", u);
	} else if (strcmp(argv[0], "int") == 0 && argc == 3 &&
		   !(rc = secs_get_int(it, strtoll(argv[1], NULL, 0), strtoll(argv[2], NULL, 0), &v))) {
		printf("%" PRId64 "\n", v);
	} else if (strcmp(argv[0], "byte") == 0 && !(rc = secs_get_byte(it, &byte))) {
		printf("%u\n", byte);
	} else if (strcmp(argv[0], "bool") == 0 && !(rc = secs_get_bool(it, &b))) {
		printf("%d\n", b);
	} else if (strcmp(argv[0], "str") == 0 && (s = secs_get_str(it, &n)) != NULL) {
		printf("%zu %s\n", n, s);
		rc = 0;
	} else if (strcmp(argv[0], "child") == 0) {
		sub = path(it, argc - 1, argv + 1);
		sml = secs_sml(sub, 0);
		printf("%s\n", sub ? sml : "none");
		free(sml);
		rc = 0;
	}
	if (rc)
		printf("error %s\n", secs_strerror(rc));
	secs_free(it);
	return rc ? 65 : 0;
}

int main(int argc, char **argv)
{
	int rc;

	log_init("t-secs");
	if (argc < 2)
		cli_usage_error("usage: t-secs encode|decode|roundtrip|sml|get ...");
	if (strcmp(argv[1], "encode") == 0)
		rc = cmd_encode(argc - 2, argv + 2);
	else if (strcmp(argv[1], "decode") == 0)
		rc = cmd_decode(argc - 2, argv + 2);
	else if (strcmp(argv[1], "roundtrip") == 0)
		rc = cmd_roundtrip();
	else if (strcmp(argv[1], "sml") == 0)
		rc = cmd_sml(argc - 2, argv + 2);
	else if (strcmp(argv[1], "get") == 0)
		rc = cmd_get(argc - 2, argv + 2);
	else
		cli_usage_error("usage: t-secs encode|decode|roundtrip|sml|get ...");
	if (rc == 0)
		rc = fshut(stdout, "standard output");
	return rc;
}

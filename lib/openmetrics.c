/* openmetrics.c: see openmetrics.h. */
#include "util.h"
#include "atomic.h"
#include "openmetrics.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

void om_init(struct om *m)
{
	memset(m, 0, sizeof *m);
}

static void put(struct om *m, const char *s, size_t n)
{
	m->buf = xgrow(m->buf, &m->cap, m->len + n + 1, 4096);
	memcpy(m->buf + m->len, s, n);
	m->len += n;
	m->buf[m->len] = '\0';
}

static void puts_om(struct om *m, const char *s)
{
	put(m, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3))) putf(struct om *m, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	assert(n >= 0 && (size_t)n < sizeof tmp);
	put(m, tmp, (size_t)n);
}

/* [a-zA-Z_] then [a-zA-Z0-9_]; a metric name may hold ':' too. */
static int valid_name(const char *s, int metric)
{
	if (!s || !*s)
		return 0;
	for (const char *p = s; *p; p++) {
		int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || (metric && *p == ':');
		if (!alpha && !(p > s && *p >= '0' && *p <= '9'))
			return 0;
	}
	return 1;
}

static int ends_with(const char *s, const char *end)
{
	size_t n = strlen(s), e = strlen(end);
	return n > e && s[n - e - 1] == '_' && !strcmp(s + n - e, end);
}

void om_family(struct om *m, const char *name, enum om_type type, const char *unit, const char *help)
{
	assert(!m->ended);
	assert(valid_name(name, 1));
	assert(!unit || (valid_name(unit, 0) && ends_with(name, unit)));
	m->name = name;
	m->type = type;
	m->unit = unit;
	m->help = help;
	m->header_done = 0;
}

/* The name the samples carry (and, in the text format, HELP and TYPE). */
static void put_name(struct om *m)
{
	puts_om(m, m->name);
	if (m->type == OM_COUNTER)
		puts_om(m, "_total");
}

/*
 * Backslash and newline escaped, as both formats do in HELP text and
 * label values; a double quote written as 'quote': \" in a label value,
 * ' in HELP text (OpenMetrics escapes it there, the text format refuses
 * the escape).
 */
static void put_escaped(struct om *m, const char *s, const char *quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_om(m, "\\\\");
		else if (*s == '\n')
			puts_om(m, "\\n");
		else if (*s == '"')
			puts_om(m, quote);
		else
			put(m, s, 1);
	}
}

static void header(struct om *m)
{
	if (m->header_done)
		return;
	m->header_done = 1;
	puts_om(m, "# HELP ");
	put_name(m);
	puts_om(m, " ");
	put_escaped(m, m->help ? m->help : "", "'");
	puts_om(m, "\n# TYPE ");
	put_name(m);
	puts_om(m, m->type == OM_COUNTER ? " counter\n" : " gauge\n");
	if (m->unit && m->type == OM_GAUGE) {
		puts_om(m, "# UNIT ");
		put_name(m);
		puts_om(m, " ");
		puts_om(m, m->unit);
		puts_om(m, "\n");
	}
}

/* The name, the labels, a blank: all of a sample but its value. */
static void sample_start(struct om *m, const char *const *labels)
{
	assert(m->name && !m->ended);
	header(m);
	put_name(m);
	if (labels && labels[0]) {
		puts_om(m, "{");
		for (size_t i = 0; labels[i]; i += 2) {
			assert(valid_name(labels[i], 0) && labels[i + 1]);
			if (i)
				puts_om(m, ",");
			puts_om(m, labels[i]);
			puts_om(m, "=\"");
			put_escaped(m, labels[i + 1], "\\\"");
			puts_om(m, "\"");
		}
		puts_om(m, "}");
	}
	puts_om(m, " ");
}

void om_sample(struct om *m, const char *const *labels, double value)
{
	sample_start(m, labels);
	if (isnan(value))
		puts_om(m, "NaN\n");
	else if (isinf(value))
		puts_om(m, value > 0 ? "+Inf\n" : "-Inf\n");
	else
		putf(m, "%.15g\n", value);
}

void om_sample_int(struct om *m, const char *const *labels, long long value)
{
	sample_start(m, labels);
	putf(m, "%lld\n", value);
}

const char *om_end(struct om *m, size_t *len)
{
	if (!m->ended)
		puts_om(m, "# EOF\n");
	m->ended = 1;
	*len = m->len;
	return m->buf;
}

int om_write_file(struct om *m, const char *path)
{
	size_t len;
	const char *text = om_end(m, &len);
	int rc = atomic_write(path, text, len, 0, FP_NONE, FP_NONE);
	/*
	 * A full disk has no room for the new file beside the old one, but
	 * the old one's blocks are enough for it.  A missing file tells a
	 * monitor less than a stale one that says a run still runs: give
	 * the blocks back and write again (a scrape in between finds no
	 * file, never half of one).
	 */
	if (rc != 0 && (errno == ENOSPC || errno == EDQUOT) && unlink(path) == 0)
		rc = atomic_write(path, text, len, 0, FP_NONE, FP_NONE);
	return rc;
}

void om_release(struct om *m)
{
	free(m->buf);
	om_init(m);
}

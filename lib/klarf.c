/*
 * klarf.c: see klarf.h.
 *
 * Reading goes in two passes: a tokenizer turns the whole file into words,
 * quoted strings and the punctuation ; { } , (each with its line number),
 * then a parser walks the tokens.  The flat formats (1.1, 1.2, 1.7) are a
 * sequence of statements "Keyword values... ;" where a statement ends at
 * ';' and not at a newline; 1.8 is nested Record/Field/List blocks in nm.
 * Both fill the same struct klarf in µm, so the writer and every caller see
 * one shape whatever the file was.
 */
#include "util.h"
#include "klarf.h"
#include "wafer.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "banned.h"

/* ---------------------------------------------------------------- tokens */

enum tok_kind { TK_WORD, TK_STRING, TK_SEMI, TK_LBRACE, TK_RBRACE, TK_COMMA, TK_EOF };

struct tok {
	enum tok_kind kind;
	char *s;       /* NUL-terminated copy for words and strings */
	size_t line;
};

struct reader {
	struct tok *t;
	size_t n, cap, pos;
	const char *name;
	char *err;
	size_t errlen;
	int failed;
};

static void push(struct reader *r, enum tok_kind k, const char *s, size_t len, size_t line)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		r->t = xrealloc(r->t, r->cap * sizeof *r->t);
	}
	r->t[r->n].kind = k;
	r->t[r->n].s = s ? xstrndup(s, len) : NULL;
	r->t[r->n].line = line;
	r->n++;
}

static void fail(struct reader *r, size_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct reader *r, size_t line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	if (r->failed)
		return;
	r->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r->err && r->errlen)
		snprintf(r->err, r->errlen, "line %zu: %s", line, msg);
}

/* The token that punctuation character c is on its own; TK_WORD for any other c. */
static enum tok_kind punct_kind(int c)
{
	static const char punct[] = ";{},";
	static const enum tok_kind kinds[] = { TK_SEMI, TK_LBRACE, TK_RBRACE, TK_COMMA };
	const char *p = c ? strchr(punct, c) : NULL;
	return p ? kinds[p - punct] : TK_WORD;
}

/* A character that ends a word: punctuation or the start of a string. */
static int is_punct(int c)
{
	return c == '"' || punct_kind(c) != TK_WORD;
}

static int tokenize(struct reader *r, const char *buf, size_t len)
{
	size_t i = 0, line = 1;
	while (i < len) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\n') {
			line++;
			i++;
		} else if (isspace(c) || c == '\0') {
			i++;
		} else if (c == '"') {
			size_t start = ++i, sline = line;
			while (i < len && buf[i] != '"') {
				if (buf[i] == '\n')
					line++;
				i++;
			}
			if (i >= len) {
				fail(r, sline, "unterminated string");
				return -1;
			}
			push(r, TK_STRING, buf + start, i - start, sline);
			i++;
		} else if (punct_kind(c) != TK_WORD) {
			push(r, punct_kind(c), NULL, 0, line);
			i++;
		} else {
			size_t start = i;
			while (i < len && !isspace((unsigned char)buf[i]) && !is_punct((unsigned char)buf[i]) && buf[i] != '\0')
				i++;
			push(r, TK_WORD, buf + start, i - start, line);
		}
	}
	push(r, TK_EOF, NULL, 0, line);
	return 0;
}

static struct tok *peek(struct reader *r)
{
	return &r->t[r->pos];
}

static struct tok *next(struct reader *r)
{
	struct tok *t = &r->t[r->pos];
	if (t->kind != TK_EOF)
		r->pos++;
	return t;
}

static int is_value(const struct tok *t)
{
	return t->kind == TK_WORD || t->kind == TK_STRING;
}

/* A number, or NA as NAN.  0 or -1. */
static int to_double(const char *s, double *out)
{
	char *end;
	if (!strcasecmp(s, "NA")) {
		*out = NAN;
		return 0;
	}
	*out = strtod(s, &end);
	if (end == s || *end != '\0' || !isfinite(*out))
		return -1;
	return 0;
}

static int to_long(const char *s, long *out)
{
	double d;
	if (to_double(s, &d) < 0 || isnan(d) || d != floor(d) || fabs(d) > 9e15)
		return -1;
	*out = (long)d;
	return 0;
}

/* A token as an error message quotes what came instead of a value. */
static const char *got(const struct tok *t)
{
	return is_value(t) ? t->s : t->kind == TK_SEMI ? ";" : t->kind == TK_EOF ? "end of file" : "punctuation";
}

/* The next token: a number into *d, or, when l is not NULL, an integer into *l. */
static int number_tok(struct reader *r, const char *what, double *d, long *l)
{
	struct tok *t = next(r);
	if (is_value(t) && (l ? to_long(t->s, l) : to_double(t->s, d)) == 0)
		return 0;
	fail(r, t->line, "%s: expected %s, got '%s'", what, l ? "an integer" : "a number", got(t));
	return -1;
}

static int num_tok(struct reader *r, const char *what, double *out)
{
	return number_tok(r, what, out, NULL);
}

static int long_tok(struct reader *r, const char *what, long *out)
{
	return number_tok(r, what, NULL, out);
}

/* Skip to just past the ';' that ends the statement. */
static int skip_statement(struct reader *r, size_t line, const char *kw)
{
	for (;;) {
		struct tok *t = next(r);
		if (t->kind == TK_SEMI)
			return 0;
		if (t->kind == TK_EOF) {
			fail(r, line, "statement '%s' has no ';'", kw);
			return -1;
		}
	}
}

static int expect_semi(struct reader *r, const char *kw)
{
	struct tok *t = next(r);
	if (t->kind != TK_SEMI) {
		fail(r, t->line, "%s: expected ';', got '%s'", kw, is_value(t) ? t->s : "punctuation");
		return -1;
	}
	return 0;
}

/* The values up to ';' joined by ' ' (caller frees); consumes the ';'. */
static char *join_statement(struct reader *r, const char *kw, size_t line)
{
	size_t cap = 64, len = 0;
	char *s = xmalloc(cap);
	s[0] = '\0';
	for (;;) {
		struct tok *t = next(r);
		size_t l;
		if (t->kind == TK_SEMI)
			return s;
		if (t->kind == TK_EOF || !is_value(t)) {
			fail(r, line, "statement '%s' has no ';'", kw);
			free(s);
			return NULL;
		}
		l = strlen(t->s);
		if (len + l + 2 > cap) {
			cap = (len + l + 2) * 2;
			s = xrealloc(s, cap);
		}
		if (len)
			s[len++] = ' ';
		memcpy(s + len, t->s, l + 1);
		len += l;
	}
}

/* ---------------------------------------------------------- common model */

static struct klarf_wafer *add_wafer(struct klarf *k, const char *id, size_t line)
{
	struct klarf_wafer *w;
	k->wafers = xrealloc(k->wafers, (k->nwafers + 1) * sizeof *k->wafers);
	w = &k->wafers[k->nwafers++];
	memset(w, 0, sizeof *w);
	w->wafer_id = xstrdup(id);
	w->line = line;
	return w;
}

static struct klarf_defect *add_defect(struct klarf_wafer *w)
{
	struct klarf_defect *d;
	if ((w->ndefects & (w->ndefects - 1)) == 0) /* grow at powers of two */
		w->defects = xrealloc(w->defects, (w->ndefects ? w->ndefects * 2 : 1) * sizeof *w->defects);
	d = &w->defects[w->ndefects++];
	d->id = 0;
	d->xrel = d->yrel = NAN;
	d->xindex = d->yindex = 0;
	d->xsize = d->ysize = d->area = d->dsize = NAN;
	d->classnumber = 0;
	d->test = 1;
	d->line = 0;
	return d;
}

static void add_plan(struct klarf_wafer *w, long x, long y)
{
	if ((w->ntest_plan & (w->ntest_plan - 1)) == 0) /* grow at powers of two, not by one */
		w->test_plan = xrealloc(w->test_plan, (w->ntest_plan ? w->ntest_plan * 2 : 1) * sizeof *w->test_plan);
	w->test_plan[w->ntest_plan][0] = x;
	w->test_plan[w->ntest_plan][1] = y;
	w->ntest_plan++;
}

static void add_class(struct klarf *k, long num, const char *name)
{
	k->classes = xrealloc(k->classes, (k->nclasses + 1) * sizeof *k->classes);
	k->classes[k->nclasses].num = num;
	k->classes[k->nclasses].name = xstrdup(name);
	k->nclasses++;
}

static void clear_classes(struct klarf *k)
{
	for (size_t i = 0; i < k->nclasses; i++)
		free(k->classes[i].name);
	free(k->classes);
	k->classes = NULL;
	k->nclasses = 0;
}

/* Columns of a defect row that kerf uses. */
enum col {
	C_OTHER, C_DEFECTID, C_XREL, C_YREL, C_XINDEX, C_YINDEX, C_XSIZE, C_YSIZE,
	C_DEFECTAREA, C_DSIZE, C_CLASSNUMBER, C_TEST, C_IMAGELIST,
};

static enum col col_of(const char *name)
{
	static const struct { const char *n; enum col c; } map[] = {
		{"DEFECTID", C_DEFECTID}, {"XREL", C_XREL}, {"YREL", C_YREL},
		{"XINDEX", C_XINDEX}, {"YINDEX", C_YINDEX}, {"XSIZE", C_XSIZE},
		{"YSIZE", C_YSIZE}, {"DEFECTAREA", C_DEFECTAREA}, {"DSIZE", C_DSIZE},
		{"CLASSNUMBER", C_CLASSNUMBER}, {"TEST", C_TEST}, {"IMAGELIST", C_IMAGELIST},
		{"IMAGEINFO", C_IMAGELIST},
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strcasecmp(name, map[i].n))
			return map[i].c;
	return C_OTHER;
}

static int check_spec(struct reader *r, const enum col *cols, size_t n, size_t line)
{
	static const struct { enum col c; const char *n; } req[] = {
		{C_DEFECTID, "DEFECTID"}, {C_XREL, "XREL"}, {C_YREL, "YREL"},
		{C_XINDEX, "XINDEX"}, {C_YINDEX, "YINDEX"},
	};
	for (size_t j = 0; j < sizeof req / sizeof req[0]; j++) {
		size_t i;
		for (i = 0; i < n && cols[i] != req[j].c; i++)
			;
		if (i == n) {
			fail(r, line, "defect record spec has no %s column", req[j].n);
			return -1;
		}
	}
	return 0;
}

/* Store one cell; scale converts the file's length unit to µm. */
static int set_cell(struct reader *r, struct klarf_defect *d, enum col c, const struct tok *t, double scale)
{
	double v;
	long l;
	const char *cn = NULL;
	switch (c) {
	case C_DEFECTID: cn = "DEFECTID"; break;
	case C_XINDEX: cn = "XINDEX"; break;
	case C_YINDEX: cn = "YINDEX"; break;
	case C_CLASSNUMBER: cn = "CLASSNUMBER"; break;
	case C_TEST: cn = "TEST"; break;
	default: break;
	}
	if (cn) {
		if (to_long(t->s, &l) < 0) {
			if ((c == C_CLASSNUMBER || c == C_TEST) && !strcasecmp(t->s, "NA"))
				return 0;
			fail(r, t->line, "%s value '%s' is not an integer", cn, t->s);
			return -1;
		}
		switch (c) {
		case C_DEFECTID: d->id = l; break;
		case C_XINDEX: d->xindex = l; break;
		case C_YINDEX: d->yindex = l; break;
		case C_CLASSNUMBER: d->classnumber = l; break;
		case C_TEST: d->test = l; break;
		default: break;
		}
		return 0;
	}
	if (c == C_OTHER || c == C_IMAGELIST)
		return 0;
	if (to_double(t->s, &v) < 0) {
		fail(r, t->line, "defect value '%s' is not a number", t->s);
		return -1;
	}
	switch (c) {
	case C_XREL: d->xrel = v * scale; break;
	case C_YREL: d->yrel = v * scale; break;
	case C_XSIZE: d->xsize = v * scale; break;
	case C_YSIZE: d->ysize = v * scale; break;
	case C_DSIZE: d->dsize = v * scale; break;
	case C_DEFECTAREA: d->area = v * scale * scale; break;
	default: break;
	}
	return 0;
}

/* --------------------------------------------------------- flat 1.1-1.7 */

struct flat {
	struct reader *r;
	struct klarf *k;
	const char *kw;          /* the statement's keyword, as the file spells it */
	size_t line;             /* the statement's line */
	int done;                /* EndOfFile was read */
	enum col *cols;
	size_t ncols;
	size_t spec_line;
	struct klarf_wafer *w;   /* the wafer being read */
	int w_has_list;
	char *result_ts;
};

static int flat_pair(struct reader *r, const char *kw, double out[2])
{
	if (num_tok(r, kw, &out[0]) < 0 || num_tok(r, kw, &out[1]) < 0)
		return -1;
	return expect_semi(r, kw);
}

/* Statement 'what' needs a wafer: 0 when there is one, else -1 (failed). */
static int flat_need_wafer(struct flat *fs, const char *what)
{
	if (fs->w)
		return 0;
	fail(fs->r, fs->line, "%s before any WaferID", what);
	return -1;
}

static int flat_end_of_file(struct flat *fs)
{
	fs->done = 1;
	return 0;
}

static int flat_file_version(struct flat *fs)
{
	long a, b;
	if (long_tok(fs->r, fs->kw, &a) < 0 || long_tok(fs->r, fs->kw, &b) < 0 ||
	    expect_semi(fs->r, fs->kw) < 0)
		return -1;
	free(fs->k->file_version);
	fs->k->file_version = xasprintf("%ld.%ld", a, b);
	return 0;
}

static int flat_wafer_id(struct flat *fs)
{
	struct reader *r = fs->r;
	struct tok *t = next(r);
	if (!is_value(t)) {
		fail(r, fs->line, "WaferID has no value");
		return -1;
	}
	if (fs->w && !fs->w_has_list) {
		fail(r, fs->w->line, "WaferID '%s' has no DefectList", fs->w->wafer_id);
		return -1;
	}
	fs->w = add_wafer(fs->k, t->s, fs->line);
	fs->w_has_list = 0;
	if (fs->result_ts)
		fs->w->result_timestamp = xstrdup(fs->result_ts);
	return expect_semi(r, fs->kw);
}

static int flat_record_spec(struct flat *fs)
{
	struct reader *r = fs->r;
	size_t line = fs->line;
	long n;
	if (long_tok(r, fs->kw, &n) < 0)
		return -1;
	if (n < 1 || n > 1000) {
		fail(r, line, "DefectRecordSpec count %ld is out of range", n);
		return -1;
	}
	free(fs->cols);
	fs->cols = xcalloc((size_t)n, sizeof *fs->cols);
	fs->ncols = (size_t)n;
	fs->spec_line = line;
	for (long i = 0; i < n; i++) {
		struct tok *t = next(r);
		if (t->kind != TK_WORD) {
			fail(r, line, "DefectRecordSpec names %ld columns, says %ld", i, n);
			return -1;
		}
		fs->cols[i] = col_of(t->s);
	}
	if (peek(r)->kind != TK_SEMI) {
		size_t extra = 0;
		while (is_value(&r->t[r->pos + extra]))
			extra++;
		fail(r, line, "DefectRecordSpec names %ld columns, says %ld", n + (long)extra, n);
		return -1;
	}
	next(r);
	return check_spec(r, fs->cols, fs->ncols, line);
}

/* The IMAGELIST cell of a row: a count, then that many (image number, type) pairs. */
static int flat_skip_imagelist(struct reader *r, struct tok *count, size_t row_line)
{
	long n;
	if (to_long(count->s, &n) < 0 || n < 0 || n > 100000) {
		fail(r, count->line, "IMAGELIST count '%s' is not a count", count->s);
		return -1;
	}
	for (long i = 0; i < 2 * n; i++) {
		if (!is_value(next(r))) {
			fail(r, row_line, "DefectList row ends inside its IMAGELIST of %ld images", n);
			return -1;
		}
	}
	return 0;
}

/* One row of a DefectList, its first token at the reader. */
static int flat_defect_row(struct flat *fs)
{
	struct reader *r = fs->r;
	size_t row_line = peek(r)->line;
	struct klarf_defect *d = add_defect(fs->w);
	d->line = row_line;
	for (size_t c = 0; c < fs->ncols; c++) {
		struct tok *t = next(r);
		if (!is_value(t)) {
			fail(r, row_line, "DefectList row has %zu values, DefectRecordSpec has %zu",
			     c, fs->ncols);
			return -1;
		}
		if (fs->cols[c] == C_IMAGELIST) {
			if (flat_skip_imagelist(r, t, row_line) < 0)
				return -1;
			continue;
		}
		if (set_cell(r, d, fs->cols[c], t, 1.0) < 0)
			return -1;
	}
	return 0;
}

static int flat_defect_list(struct flat *fs)
{
	struct reader *r = fs->r;
	if (flat_need_wafer(fs, "DefectList") < 0)
		return -1;
	if (!fs->cols) {
		fail(r, fs->line, "DefectList before DefectRecordSpec");
		return -1;
	}
	fs->w_has_list = 1;
	for (;;) {
		struct tok *t = peek(r);
		if (t->kind == TK_SEMI) {
			next(r);
			return 0;
		}
		if (!is_value(t)) {
			fail(r, t->line, "DefectList: unexpected %s", t->kind == TK_EOF ? "end of file" : "punctuation");
			return -1;
		}
		if (flat_defect_row(fs) < 0)
			return -1;
	}
}

static int flat_test_plan(struct flat *fs)
{
	long n;
	if (flat_need_wafer(fs, "SampleTestPlan") < 0 || long_tok(fs->r, fs->kw, &n) < 0)
		return -1;
	for (long i = 0; i < n; i++) {
		long x, y;
		if (long_tok(fs->r, fs->kw, &x) < 0 || long_tok(fs->r, fs->kw, &y) < 0)
			return -1;
		add_plan(fs->w, x, y);
	}
	return expect_semi(fs->r, fs->kw);
}

static int flat_class_lookup(struct flat *fs)
{
	struct reader *r = fs->r;
	long n;
	if (long_tok(r, fs->kw, &n) < 0)
		return -1;
	clear_classes(fs->k);
	for (long i = 0; i < n; i++) {
		long num;
		struct tok *t;
		if (long_tok(r, fs->kw, &num) < 0)
			return -1;
		t = next(r);
		if (!is_value(t)) {
			fail(r, t->line, "ClassLookup: class %ld has no name", num);
			return -1;
		}
		add_class(fs->k, num, t->s);
	}
	return expect_semi(r, fs->kw);
}

static int flat_sample_size(struct flat *fs)
{
	double one;
	if (num_tok(fs->r, fs->kw, &one) < 0 || num_tok(fs->r, fs->kw, &fs->k->sample_size_mm) < 0)
		return -1;
	return expect_semi(fs->r, fs->kw);
}

static int flat_die_pitch(struct flat *fs)
{
	return flat_pair(fs->r, fs->kw, fs->k->die_pitch);
}

static int flat_die_origin(struct flat *fs)
{
	return flat_pair(fs->r, fs->kw, fs->k->die_origin);
}

static int flat_center(struct flat *fs)
{
	if (flat_pair(fs->r, fs->kw, fs->k->center) < 0)
		return -1;
	if (fs->w) {
		fs->w->center[0] = fs->k->center[0];
		fs->w->center[1] = fs->k->center[1];
		fs->w->has_center = 1;
	}
	return 0;
}

static int flat_slot(struct flat *fs)
{
	long n;
	if (flat_need_wafer(fs, "Slot") < 0 || long_tok(fs->r, fs->kw, &n) < 0)
		return -1;
	fs->w->slot = n;
	return expect_semi(fs->r, fs->kw);
}

static int flat_area_per_test(struct flat *fs)
{
	double a;
	if (num_tok(fs->r, fs->kw, &a) < 0)
		return -1;
	if (fs->w)
		fs->w->area_per_test = a;
	return expect_semi(fs->r, fs->kw);
}

static int flat_result_timestamp(struct flat *fs)
{
	char *s = join_statement(fs->r, fs->kw, fs->line);
	if (!s)
		return -1;
	/* It belongs to the wafers that follow (and to the current one
	 * when that has none yet: some files give it after WaferID). */
	xstrset(&fs->result_ts, s);
	if (fs->w && !fs->w->result_timestamp)
		xstrset(&fs->w->result_timestamp, s);
	free(s);
	return 0;
}

/*
 * The statements kerf reads: a handler, or (fn NULL) a value kept as
 * text in the struct klarf field at off: the whole statement joined, or
 * with first, its first value alone (SetupID "name" date time: kerf
 * keeps the name only).  Any other statement is skipped.
 */
static const struct flat_keyword {
	const char *kw;
	int (*fn)(struct flat *fs);
	size_t off;
	int first;
} flat_keywords[] = {
	{ "EndOfFile", flat_end_of_file, 0, 0 },
	{ "FileVersion", flat_file_version, 0, 0 },
	{ "WaferID", flat_wafer_id, 0, 0 },
	{ "DefectRecordSpec", flat_record_spec, 0, 0 },
	{ "DefectList", flat_defect_list, 0, 0 },
	{ "SampleTestPlan", flat_test_plan, 0, 0 },
	{ "ClassLookup", flat_class_lookup, 0, 0 },
	{ "SampleSize", flat_sample_size, 0, 0 },
	{ "DiePitch", flat_die_pitch, 0, 0 },
	{ "DieOrigin", flat_die_origin, 0, 0 },
	{ "SampleCenterLocation", flat_center, 0, 0 },
	{ "Slot", flat_slot, 0, 0 },
	{ "AreaPerTest", flat_area_per_test, 0, 0 },
	{ "ResultTimestamp", flat_result_timestamp, 0, 0 },
	{ "FileTimestamp", NULL, offsetof(struct klarf, file_timestamp), 0 },
	{ "InspectionStationID", NULL, offsetof(struct klarf, station), 0 },
	{ "SampleType", NULL, offsetof(struct klarf, sample_type), 1 },
	{ "LotID", NULL, offsetof(struct klarf, lot_id), 1 },
	{ "DeviceID", NULL, offsetof(struct klarf, device_id), 1 },
	{ "SetupID", NULL, offsetof(struct klarf, setup_id), 1 },
	{ "StepID", NULL, offsetof(struct klarf, step_id), 1 },
	{ "OrientationMarkLocation", NULL, offsetof(struct klarf, orientation), 1 },
};

/* A statement kept as text (see flat_keywords). */
static int flat_text(struct flat *fs, const struct flat_keyword *e)
{
	size_t p0 = fs->r->pos;
	char *s = join_statement(fs->r, fs->kw, fs->line);
	if (!s)
		return -1;
	xstrset((char **)((char *)fs->k + e->off),
		e->first && is_value(&fs->r->t[p0]) ? fs->r->t[p0].s : s);
	free(s);
	return 0;
}

static int flat_statement(struct flat *fs)
{
	struct reader *r = fs->r;
	struct tok *kwt = next(r);

	fs->line = kwt->line;
	if (kwt->kind == TK_SEMI)
		return 0; /* an empty statement */
	if (kwt->kind == TK_EOF) {
		fail(r, fs->line, "missing EndOfFile");
		return -1;
	}
	if (kwt->kind != TK_WORD) {
		fail(r, fs->line, "expected a keyword, got %s", kwt->kind == TK_STRING ? "a string" : "punctuation");
		return -1;
	}
	fs->kw = kwt->s;
	for (size_t i = 0; i < sizeof flat_keywords / sizeof flat_keywords[0]; i++) {
		const struct flat_keyword *e = &flat_keywords[i];
		if (strcasecmp(fs->kw, e->kw))
			continue;
		return e->fn ? e->fn(fs) : flat_text(fs, e);
	}
	return skip_statement(r, fs->line, fs->kw);
}

static int read_flat(struct reader *r, struct klarf *k)
{
	struct flat fs;
	memset(&fs, 0, sizeof fs);
	fs.r = r;
	fs.k = k;
	while (!fs.done && !r->failed)
		if (flat_statement(&fs) < 0)
			break;
	if (!r->failed && fs.w && !fs.w_has_list)
		fail(r, fs.w->line, "WaferID '%s' has no DefectList", fs.w->wafer_id);
	if (!r->failed && k->nwafers == 0)
		fail(r, peek(r)->line, "no WaferID in the file");
	free(fs.cols);
	free(fs.result_ts);
	return r->failed ? -1 : 0;
}

/* ------------------------------------------------------------ nested 1.8 */

/*
 * 1.8: Record TYPE "name" { ... }, Field NAME N { v, v, ... },
 * List NAME { Columns N { type NAME, ... } Data N { row ; ... } }.
 * Lengths are nm and areas nm²; everything is converted to µm here.
 */
#define NM 1e-3

/* The wafer being read, by index: k->wafers moves when a wafer is added. */
struct nested {
	long wi;       /* -1: none */
	struct klarf_wafer *w;   /* &k->wafers[wi], refreshed by cur() */
};

static void cur(struct nested *ns, struct klarf *k)
{
	ns->w = ns->wi >= 0 ? &k->wafers[ns->wi] : NULL;
}

static int expect(struct reader *r, enum tok_kind k, const char *what)
{
	struct tok *t = next(r);
	if (t->kind != k) {
		fail(r, t->line, "expected %s, got '%s'", what,
		     is_value(t) ? t->s : t->kind == TK_EOF ? "end of file" :
		     t->kind == TK_SEMI ? ";" : t->kind == TK_LBRACE ? "{" : t->kind == TK_RBRACE ? "}" : ",");
		return -1;
	}
	return 0;
}

static void free_vals(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Field NAME N { v, v, ... }: the values into vals (caller frees each). */
static int field_values(struct reader *r, char ***vals, size_t *nvals)
{
	long n;
	*vals = NULL;
	*nvals = 0;
	if (long_tok(r, "Field", &n) < 0 || expect(r, TK_LBRACE, "'{'") < 0)
		return -1;
	while (peek(r)->kind != TK_RBRACE) {
		struct tok *t = next(r);
		if (t->kind == TK_COMMA)
			continue;
		if (!is_value(t)) {
			fail(r, t->line, "Field: unexpected %s", t->kind == TK_EOF ? "end of file" : "token");
			goto bad;
		}
		*vals = xrealloc(*vals, (*nvals + 1) * sizeof **vals);
		(*vals)[(*nvals)++] = xstrdup(t->s);
	}
	next(r);
	if ((size_t)n != *nvals) {
		fail(r, peek(r)->line, "Field says %ld values, has %zu", n, *nvals);
		goto bad;
	}
	return 0;
bad:
	free_vals(*vals, *nvals);
	*vals = NULL;
	*nvals = 0;
	return -1;
}

static int vals_pair(struct reader *r, size_t line, const char *name, char **v, size_t n, double out[2], double scale)
{
	if (n < 2 || to_double(v[0], &out[0]) < 0 || to_double(v[1], &out[1]) < 0) {
		fail(r, line, "Field %s: expected two numbers", name);
		return -1;
	}
	out[0] *= scale;
	out[1] *= scale;
	return 0;
}

static char *vals_join(char **v, size_t n)
{
	size_t len = 1;
	char *s, *p;
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	s = p = xmalloc(len);
	*p = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]);
		if (i)
			*p++ = ' ';
		memcpy(p, v[i], l + 1);
		p += l;
	}
	return s;
}

static int nested_field(struct reader *r, struct klarf *k, struct nested *ns, size_t line)
{
	struct tok *nt = next(r);
	char **v;
	size_t n;
	int rc = 0;
	const char *name;
	if (nt->kind != TK_WORD) {
		fail(r, nt->line, "Field has no name");
		return -1;
	}
	name = nt->s;
	if (field_values(r, &v, &n) < 0)
		return -1;
	if (!strcasecmp(name, "DiePitch"))
		rc = vals_pair(r, line, name, v, n, k->die_pitch, NM);
	else if (!strcasecmp(name, "DieOrigin"))
		rc = vals_pair(r, line, name, v, n, k->die_origin, NM);
	else if (!strcasecmp(name, "SampleCenterLocation")) {
		rc = vals_pair(r, line, name, v, n, k->center, NM);
		if (rc == 0 && ns->w) {
			ns->w->center[0] = k->center[0];
			ns->w->center[1] = k->center[1];
			ns->w->has_center = 1;
		}
	}
	else if (!strcasecmp(name, "SampleSize")) {
		double d;
		if (n < 1 || to_double(v[0], &d) < 0) {
			fail(r, line, "Field SampleSize: expected a number");
			rc = -1;
		} else {
			k->sample_size_mm = d * 1e-6;
		}
	} else if (!strcasecmp(name, "SlotNumber") && ns->w) {
		if (n < 1 || to_long(v[0], &ns->w->slot) < 0) {
			fail(r, line, "Field SlotNumber: expected an integer");
			rc = -1;
		}
	} else if (!strcasecmp(name, "AreaPerTest") && ns->w) {
		double a;
		if (n < 1 || to_double(v[0], &a) < 0) {
			fail(r, line, "Field AreaPerTest: expected a number");
			rc = -1;
		} else if (ns->w->area_per_test == 0) {
			ns->w->area_per_test = a * NM * NM;
		}
	} else if (!strcasecmp(name, "ResultTimestamp")) {
		char *s = vals_join(v, n);
		if (ns->w)
			xstrset(&ns->w->result_timestamp, s);
		free(s);
	} else {
		static const struct { const char *kw; size_t off; int first; } txt[] = {
			{"FileTimestamp", offsetof(struct klarf, file_timestamp), 0},
			{"InspectionStationID", offsetof(struct klarf, station), 0},
			{"SampleType", offsetof(struct klarf, sample_type), 1},
			{"DeviceID", offsetof(struct klarf, device_id), 1},
			{"RecipeID", offsetof(struct klarf, setup_id), 1},
			{"StepID", offsetof(struct klarf, step_id), 1},
			{"InspectionOrientation", offsetof(struct klarf, orientation), 1},
		};
		for (size_t i = 0; i < sizeof txt / sizeof txt[0]; i++) {
			if (strcasecmp(name, txt[i].kw) || n == 0)
				continue;
			if (txt[i].first) {
				xstrset((char **)((char *)k + txt[i].off), v[0]);
			} else {
				char *s = vals_join(v, n);
				xstrset((char **)((char *)k + txt[i].off), s);
				free(s);
			}
		}
	}
	free_vals(v, n);
	return rc;
}

/* One cell of a Data row: a value, or an ImageList "Images N { ... }". */
static int data_cell(struct reader *r, struct tok **cell)
{
	struct tok *t = next(r);
	if (!is_value(t))
		return -1;
	*cell = t;
	if (t->kind == TK_WORD && !strcmp(t->s, "Images")) {
		int depth = 0;
		next(r); /* the count */
		if (peek(r)->kind != TK_LBRACE)
			return -1;
		do {
			struct tok *b = next(r);
			if (b->kind == TK_LBRACE)
				depth++;
			else if (b->kind == TK_RBRACE)
				depth--;
			else if (b->kind == TK_EOF)
				return -1;
		} while (depth > 0);
	}
	return 0;
}

/* A List being read. */
struct nlist {
	const char *name;
	enum { L_OTHER, L_DEFECTS, L_PLAN, L_CLASSES } kind;
	char **colnames;         /* the Columns' names (the tokens') */
	size_t ncols;
	enum col *cols;          /* a DefectList's columns, during its Data */
	long rows;               /* rows read, in all its Data (one is expected) */
};

/* Columns N { type NAME, ... }, after the word Columns at line. */
static int list_columns(struct reader *r, struct nlist *l, size_t line)
{
	long n;
	if (long_tok(r, "Columns", &n) < 0 || expect(r, TK_LBRACE, "'{'") < 0)
		return -1;
	while (peek(r)->kind != TK_RBRACE) {
		struct tok *ty = next(r), *cn;
		if (ty->kind == TK_COMMA)
			continue;
		cn = next(r);
		if (ty->kind != TK_WORD || cn->kind != TK_WORD) {
			fail(r, ty->line, "Columns: expected 'type NAME'");
			return -1;
		}
		l->colnames = xrealloc(l->colnames, (l->ncols + 1) * sizeof *l->colnames);
		l->colnames[l->ncols++] = cn->s;
	}
	next(r);
	if ((size_t)n != l->ncols) {
		fail(r, line, "Columns says %ld columns, names %zu", n, l->ncols);
		return -1;
	}
	return 0;
}

/* A row of a SampleTestPlanList or a ClassLookupList: what it adds. */
static int list_row_use(struct reader *r, struct klarf *k, struct nested *ns,
			const struct nlist *l, struct tok *const *cells, size_t row_line)
{
	if (l->kind == L_PLAN && l->ncols >= 2) {
		long x, y;
		if (to_long(cells[0]->s, &x) < 0 || to_long(cells[1]->s, &y) < 0) {
			fail(r, row_line, "SampleTestPlanList: expected two integers");
			return -1;
		}
		add_plan(ns->w, x, y);
	} else if (l->kind == L_CLASSES && l->ncols >= 2) {
		long num;
		if (to_long(cells[0]->s, &num) < 0) {
			fail(r, row_line, "ClassLookupList: class number '%s' is not an integer", cells[0]->s);
			return -1;
		}
		add_class(k, num, cells[1]->s);
	}
	return 0;
}

/* One row of Data, "v v ... ;": a defect, a plan entry, a class, or nothing. */
static int list_row(struct reader *r, struct klarf *k, struct nested *ns, const struct nlist *l)
{
	size_t row_line = peek(r)->line;
	struct tok *cells[8] = {0};
	struct klarf_defect *d = l->kind == L_DEFECTS ? add_defect(ns->w) : NULL;
	if (d)
		d->line = row_line;
	for (size_t c = 0; c < l->ncols; c++) {
		struct tok *cell;
		if (data_cell(r, &cell) < 0) {
			fail(r, row_line, "%s row has %zu values, Columns has %zu", l->name, c, l->ncols);
			return -1;
		}
		if (c < 8)
			cells[c] = cell;
		if (d && set_cell(r, d, l->cols[c], cell, NM) < 0)
			return -1;
	}
	if (peek(r)->kind != TK_SEMI) {
		fail(r, row_line, "%s row has more than the %zu values of Columns", l->name, l->ncols);
		return -1;
	}
	next(r);
	return list_row_use(r, k, ns, l, cells, row_line);
}

/* Data N { row ; ... }, after the word Data at data_line. */
static int list_data(struct reader *r, struct klarf *k, struct nested *ns, struct nlist *l,
		     size_t data_line)
{
	long declared;
	int rc = -1;
	if (long_tok(r, "Data", &declared) < 0 || expect(r, TK_LBRACE, "'{'") < 0)
		return -1;
	if (l->kind == L_DEFECTS) {
		l->cols = xcalloc(l->ncols ? l->ncols : 1, sizeof *l->cols);
		for (size_t i = 0; i < l->ncols; i++)
			l->cols[i] = col_of(l->colnames[i]);
		if (check_spec(r, l->cols, l->ncols, data_line) < 0)
			goto out;
	}
	while (peek(r)->kind != TK_RBRACE) {
		if (list_row(r, k, ns, l) < 0)
			goto out;
		l->rows++;
	}
	next(r);
	if (l->rows != declared) {
		fail(r, data_line, "Data says %ld rows, has %ld", declared, l->rows);
		goto out;
	}
	rc = 0;
out:
	free(l->cols);
	l->cols = NULL;
	return rc;
}

static int nested_list(struct reader *r, struct klarf *k, struct nested *ns, size_t line)
{
	struct tok *nt = next(r);
	struct nlist l = { .kind = L_OTHER };
	int rc = -1;

	if (nt->kind != TK_WORD) {
		fail(r, nt->line, "List has no name");
		return -1;
	}
	l.name = nt->s;
	if (!strcasecmp(l.name, "DefectList"))
		l.kind = L_DEFECTS;
	else if (!strcasecmp(l.name, "SampleTestPlanList"))
		l.kind = L_PLAN;
	else if (!strcasecmp(l.name, "ClassLookupList"))
		l.kind = L_CLASSES;
	if ((l.kind == L_DEFECTS || l.kind == L_PLAN) && !ns->w) {
		fail(r, line, "List %s outside a WaferRecord", l.name);
		return -1;
	}
	if (expect(r, TK_LBRACE, "'{'") < 0)
		return -1;
	for (;;) {
		struct tok *t = next(r);
		if (t->kind == TK_RBRACE)
			break;
		if (t->kind == TK_WORD && !strcasecmp(t->s, "Columns")) {
			if (list_columns(r, &l, t->line) < 0)
				goto out;
		} else if (t->kind == TK_WORD && !strcasecmp(t->s, "Data")) {
			if (list_data(r, k, ns, &l, t->line) < 0)
				goto out;
		} else {
			fail(r, t->line, "List %s: expected Columns or Data", l.name);
			goto out;
		}
	}
	rc = 0;
out:
	free(l.colnames);
	return rc;
}

static int nested_record(struct reader *r, struct klarf *k, struct nested *ns, int depth);

static int nested_body(struct reader *r, struct klarf *k, struct nested *ns, int depth)
{
	if (expect(r, TK_LBRACE, "'{'") < 0)
		return -1;
	for (;;) {
		struct tok *t = next(r);
		if (t->kind == TK_RBRACE)
			return 0;
		if (t->kind != TK_WORD) {
			fail(r, t->line, "expected Record, Field or List, got %s",
			     t->kind == TK_EOF ? "end of file" : "punctuation");
			return -1;
		}
		if (!strcasecmp(t->s, "Record")) {
			if (nested_record(r, k, ns, depth + 1) < 0)
				return -1;
			cur(ns, k);
		} else if (!strcasecmp(t->s, "Field")) {
			if (nested_field(r, k, ns, t->line) < 0)
				return -1;
		} else if (!strcasecmp(t->s, "List")) {
			if (nested_list(r, k, ns, t->line) < 0)
				return -1;
		} else {
			fail(r, t->line, "expected Record, Field or List, got '%s'", t->s);
			return -1;
		}
	}
}

/* After the word "Record": TYPE ["name"] { body }. */
static int nested_record(struct reader *r, struct klarf *k, struct nested *ns, int depth)
{
	struct tok *ty = next(r), *nm = NULL;
	size_t line = ty->line;
	long saved = ns->wi;
	int rc;
	if (depth > 16) {
		fail(r, line, "records nested too deep");
		return -1;
	}
	if (ty->kind != TK_WORD) {
		fail(r, line, "Record has no type");
		return -1;
	}
	if (is_value(peek(r)))
		nm = next(r);
	if (!strcasecmp(ty->s, "FileRecord")) {
		xstrset(&k->file_version, nm ? nm->s : "1.8");
	} else if (!strcasecmp(ty->s, "LotRecord")) {
		xstrset(&k->lot_id, nm ? nm->s : "");
	} else if (!strcasecmp(ty->s, "WaferRecord")) {
		add_wafer(k, nm ? nm->s : "", line);
		ns->wi = (long)k->nwafers - 1;
	}
	cur(ns, k);
	rc = nested_body(r, k, ns, depth);
	if (!strcasecmp(ty->s, "WaferRecord")) {
		ns->wi = saved;
		cur(ns, k);
	}
	return rc;
}

static int read_nested(struct reader *r, struct klarf *k)
{
	struct nested ns = {-1, NULL};
	struct tok *t = next(r); /* "Record" */
	(void)t;
	if (nested_record(r, k, &ns, 0) < 0)
		return -1;
	t = next(r);
	if (!(t->kind == TK_WORD && !strcasecmp(t->s, "EndOfFile"))) {
		fail(r, t->line, "missing EndOfFile after the FileRecord");
		return -1;
	}
	if (k->nwafers == 0) {
		fail(r, t->line, "no WaferRecord in the file");
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ read */

int klarf_read(FILE *f, const char *name, struct klarf *out, char *err, size_t errlen)
{
	struct reader r;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	memset(out, 0, sizeof *out);
	memset(&r, 0, sizeof r);
	r.name = name;
	r.err = err;
	r.errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
	for (;;) {
		size_t got;
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 65536;
			buf = xrealloc(buf, cap);
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		if (err && errlen)
			snprintf(err, errlen, "cannot read '%s': %s", name ? name : "-", strerror(errno));
		free(buf);
		return -1;
	}
	rc = tokenize(&r, buf, len);
	free(buf);
	if (rc == 0) {
		struct tok *t = peek(&r);
		if (t->kind == TK_WORD && !strcasecmp(t->s, "Record"))
			rc = read_nested(&r, out);
		else
			rc = read_flat(&r, out);
	}
	for (size_t i = 0; i < r.n; i++)
		free(r.t[i].s);
	free(r.t);
	if (rc < 0 || r.failed) {
		klarf_free(out);
		return -1;
	}
	return 0;
}

void klarf_free(struct klarf *k)
{
	if (!k)
		return;
	free_all(k->file_version, k->file_timestamp, k->station, k->sample_type, k->lot_id,
	         k->device_id, k->setup_id, k->step_id, k->orientation);
	clear_classes(k);
	for (size_t i = 0; i < k->nwafers; i++) {
		free_all(k->wafers[i].wafer_id, k->wafers[i].result_timestamp,
		         k->wafers[i].test_plan, k->wafers[i].defects);
	}
	free(k->wafers);
	memset(k, 0, sizeof *k);
}

/* ----------------------------------------------------------------- write */

/* A quoted KLARF string: '"' cannot be escaped in KLARF, so it becomes '\''. */
static void put_quoted(FILE *f, const char *s)
{
	putc('"', f);
	for (; s && *s; s++)
		putc(*s == '"' || *s == '\n' || *s == '\r' ? '\'' : *s, f);
	putc('"', f);
}

/*
 * An unquoted value (timestamps, SampleType, OrientationMarkLocation):
 * what the reader would take for punctuation or a string, and control
 * characters, become '_', so a value read from a hostile file cannot
 * end the statement early when written back.
 */
static void put_bare(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		putc(is_punct(c) || (c < 0x20 && c != ' ') || c == 0x7f ? '_' : c, f);
	}
}

static void put_num(FILE *f, const char *fmt, double v)
{
	if (isnan(v))
		fputs("NA", f);
	else
		fprintf(f, fmt, v);
}

static int cmp_die(const void *a, const void *b)
{
	const long *x = a, *y = b;
	int c = CMP(x[0], y[0]);
	return c ? c : CMP(x[1], y[1]);
}

/* Dies with at least one defect. */
static size_t defective_dies(const struct klarf_wafer *w)
{
	long (*d)[2];
	size_t n = 0;
	if (!w->ndefects)
		return 0;
	d = xmalloc(w->ndefects * sizeof *d);
	for (size_t i = 0; i < w->ndefects; i++) {
		d[i][0] = w->defects[i].xindex;
		d[i][1] = w->defects[i].yindex;
	}
	qsort(d, w->ndefects, sizeof *d, cmp_die);
	for (size_t i = 0; i < w->ndefects; i++)
		if (i == 0 || cmp_die(d[i], d[i - 1]))
			n++;
	free(d);
	return n;
}

static const char *or(const char *s, const char *def)
{
	return s && *s ? s : def;
}

int klarf_write(FILE *f, const struct klarf *k)
{
	char now[32];
	const char *ts = k->file_timestamp;
	double area;

	if (!ts) {
		time_t t = time(NULL);
		struct tm tm;
		gmtime_r(&t, &tm);
		snprintf(now, sizeof now, "%02d-%02d-%02d %02d:%02d:%02d", tm.tm_mon + 1,
			 tm.tm_mday, tm.tm_year % 100, tm.tm_hour, tm.tm_min, tm.tm_sec);
		ts = now;
	}
	fputs("FileVersion 1 2;\n", f);
	fputs("FileTimestamp ", f);
	put_bare(f, ts);
	fputs(";\n", f);
	fputs("InspectionStationID", f);
	{
		/* The station's words, each quoted; always three of them. */
		char *st = xstrdup(or(k->station, "KERF SIM kerf"));
		char *save = NULL, *w = strtok_r(st, " ", &save);
		int n = 0;
		for (; w; w = strtok_r(NULL, " ", &save), n++) {
			putc(' ', f);
			put_quoted(f, w);
		}
		for (; n < 3; n++)
			fputs(" \"\"", f);
		free(st);
	}
	fputs(";\n", f);
	fputs("SampleType ", f);
	put_bare(f, or(k->sample_type, "WAFER"));
	fputs(";\n", f);
	for (size_t wi = 0; wi < k->nwafers; wi++) {
		const struct klarf_wafer *w = &k->wafers[wi];
		size_t ndefdie;
		long ndie = w->ndie > 0 ? w->ndie : (long)w->ntest_plan;
		double density;

		fputs("ResultTimestamp ", f);
		put_bare(f, or(w->result_timestamp, ts));
		fputs(";\n", f);
		if (wi == 0) {
			fputs("LotID ", f);
			put_quoted(f, or(k->lot_id, ""));
			fprintf(f, ";\nSampleSize 1 %.10g;\n", k->sample_size_mm > 0 ? k->sample_size_mm : 300.0);
			fputs("SetupID ", f);
			put_quoted(f, or(k->setup_id, ""));
			putc(' ', f);
			put_bare(f, ts);
			fputs(";\n", f);
			fputs("StepID ", f);
			put_quoted(f, or(k->step_id, ""));
			fputs(";\nDeviceID ", f);
			put_quoted(f, or(k->device_id, ""));
			fputs(";\nSampleOrientationMarkType NOTCH;\n", f);
			fputs("OrientationMarkLocation ", f);
			put_bare(f, or(k->orientation, "DOWN"));
			fputs(";\n", f);
			fprintf(f, "DiePitch %.10e %.10e;\n", k->die_pitch[0], k->die_pitch[1]);
			fprintf(f, "DieOrigin %.10e %.10e;\n", k->die_origin[0], k->die_origin[1]);
		}
		fputs("WaferID ", f);
		put_quoted(f, or(w->wafer_id, ""));
		fprintf(f, ";\nSlot %ld;\n", w->slot);
		fprintf(f, "SampleCenterLocation %.10e %.10e;\n", w->has_center ? w->center[0] : k->center[0],
			w->has_center ? w->center[1] : k->center[1]);
		if (wi == 0) {
			fprintf(f, "ClassLookup %zu", k->nclasses);
			for (size_t i = 0; i < k->nclasses; i++) {
				fprintf(f, "\n %ld ", k->classes[i].num);
				put_quoted(f, k->classes[i].name);
			}
			fputs(";\n", f);
		}
		fputs("InspectionTest 1;\n", f);
		fprintf(f, "SampleTestPlan %zu", w->ntest_plan);
		for (size_t i = 0; i < w->ntest_plan; i++)
			fprintf(f, "\n %ld %ld", w->test_plan[i][0], w->test_plan[i][1]);
		fputs(";\n", f);
		area = w->area_per_test > 0 ? w->area_per_test : k->die_pitch[0] * k->die_pitch[1];
		fprintf(f, "AreaPerTest %.10e;\n", area);
		fputs("DefectRecordSpec 11 DEFECTID XREL YREL XINDEX YINDEX XSIZE YSIZE "
		      "DEFECTAREA DSIZE CLASSNUMBER TEST ;\n", f);
		fputs("DefectList", f);
		for (size_t i = 0; i < w->ndefects; i++) {
			const struct klarf_defect *d = &w->defects[i];
			fprintf(f, "\n %ld ", d->id);
			put_num(f, "%.10g", d->xrel);
			putc(' ', f);
			put_num(f, "%.10g", d->yrel);
			fprintf(f, " %ld %ld ", d->xindex, d->yindex);
			put_num(f, "%.10g", d->xsize);
			putc(' ', f);
			put_num(f, "%.10g", d->ysize);
			putc(' ', f);
			put_num(f, "%.10g", d->area);
			putc(' ', f);
			put_num(f, "%.10g", d->dsize);
			fprintf(f, " %ld %ld", d->classnumber, d->test);
		}
		fputs(";\n", f);
		ndefdie = defective_dies(w);
		/* AreaPerTest is µm² per die. */
		density = wafer_density_cm2(w->ndefects, ndie, area);
		fputs("SummarySpec 5\n TESTNO NDEFECT DEFDENSITY NDIE NDEFDIE ;\n", f);
		fprintf(f, "SummaryList\n 1 %zu %.6e %ld %zu;\n", w->ndefects, density, ndie, ndefdie);
	}
	fputs("EndOfFile;\n", f);
	if (fflush(f) != 0 || ferror(f)) {
		if (!errno)
			errno = EIO;
		return -1;
	}
	return 0;
}

/*
 * die_fields.c: see die_fields.h.
 *
 * The scanner follows JSON's grammar as jansson's parser reads it
 * (json_loadb without flags: an object or array at the top, duplicate
 * keys allowed with the last one kept, whitespace being space, tab, LF
 * and CR) and declines wherever jansson's reading needs more than the
 * bytes themselves: a string's escapes, UTF-8 (which jansson checks
 * byte by byte), numbers near int64's or double's limits, and duplicate
 * members whose value we need.  What it takes, then, is the bytes of the
 * line: a string's value is the bytes between its quotes, an integer's
 * the digits' value.  A raw control byte outside a string is never
 * whitespace here, whatever jansson makes of it.
 *
 * kerf-validate's scanner (die_fields_scan_event, "strict" below) is the
 * same, for json_loadb with JSON_REJECT_DUPLICATES: a key twice at the
 * top is declined whatever it is, and a nested object, whose keys it
 * would have to follow at every depth, too.
 */
#include "die_fields.h"

#include <string.h>

#include "banned.h"

/*
 * Past these it declines.  jansson refuses nesting past 2048 levels;
 * an integer of at most 18 digits always fits the int64 jansson makes
 * of it (with 19 it may not, and jansson refuses it), and a number with
 * at most 18 + 40 digits and no exponent is always a finite double.
 */
enum { SCAN_MAX_DEPTH = 32, SCAN_MAX_INT_DIGITS = 18, SCAN_MAX_FRAC_DIGITS = 40 };

/* Past this many members at the top, the strict scanner declines. */
enum { SCAN_MAX_MEMBERS = 32 };

struct scan {
	const unsigned char *p, *end;
	bool strict;            /* die_fields_scan_event */
};

enum value_kind { V_STRING, V_INTEGER, V_OTHER };

struct value {
	enum value_kind kind;
	const char *str;        /* V_STRING: its bytes, between the quotes */
	size_t len;
	long long integer;      /* V_INTEGER */
};

/* The members it reads, and what each must be. */
enum member { M_RUN, M_T, M_WAFER, M_SEQ, M_COL, M_ROW, M_W, M_H, M_XXH3, M_DATA, M_PATH, M_V, M_TYPE, M_ID, M_COUNT };

#define MEMBER(key, kind) {key, sizeof key - 1, kind}
static const struct {
	const char *key;
	size_t len;
	enum value_kind kind;
} members[M_COUNT] = {
	[M_RUN] = MEMBER("run", V_STRING),     [M_T] = MEMBER("t", V_STRING),
	[M_WAFER] = MEMBER("wafer", V_STRING), [M_SEQ] = MEMBER("seq", V_INTEGER),
	[M_COL] = MEMBER("col", V_INTEGER),    [M_ROW] = MEMBER("row", V_INTEGER),
	[M_W] = MEMBER("w", V_INTEGER),        [M_H] = MEMBER("h", V_INTEGER),
	[M_XXH3] = MEMBER("xxh3", V_STRING),   [M_DATA] = MEMBER("data", V_STRING),
	[M_PATH] = MEMBER("path", V_STRING),   [M_V] = MEMBER("v", V_INTEGER),
	[M_TYPE] = MEMBER("type", V_STRING),   [M_ID] = MEMBER("id", V_STRING),
};

/* Every member before data and path must be there; one of those two
 * must; and for the strict scanner the envelope's others too. */
#define MUST_HAVE ((1u << M_DATA) - 1)
#define IMAGE_FROM (1u << M_DATA | 1u << M_PATH)
#define ENVELOPE (1u << M_V | 1u << M_TYPE | 1u << M_ID)

static bool at(const struct scan *s, unsigned char c)
{
	return s->p < s->end && *s->p == c;
}

static bool is_digit(const struct scan *s)
{
	return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* Whether 8 bytes hold a quote, a backslash, a control byte or a byte >= 0x80. */
static bool special8(uint64_t v)
{
	const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
	uint64_t quote = v ^ (ones * '"'), bslash = v ^ (ones * '\\');
	/* (x - ones) & ~x & high is non-zero exactly when a byte of x is 0,
	 * and (v - ones * 0x20) & ~v & high when a byte of v is below 0x20. */
	return ((quote - ones) & ~quote & high) | ((bslash - ones) & ~bslash & high) |
	       ((v - ones * 0x20) & ~v & high) | (v & high);
}

/*
 * A string, its opening quote read: its bytes, up to the closing quote,
 * which it steps over.  Eight bytes at a time while none is special
 * (base64 image data is most of a die line).
 */
static bool scan_string(struct scan *s, const char **str, size_t *len)
{
	const unsigned char *q = s->p;
	for (;;) {
		uint64_t v;
		while (s->end - q >= 8) {
			memcpy(&v, q, sizeof v);
			if (special8(v))
				break;
			q += 8;
		}
		if (q == s->end)
			return false;
		if (*q == '"')
			break;
		if (*q < 0x20 || *q >= 0x80 || *q == '\\')
			return false;
		q++;
	}
	*str = (const char *)s->p;
	*len = (size_t)(q - s->p);
	s->p = q + 1;
	return true;
}

/*
 * A number, as jansson's lexer reads one: -? (0 | [1-9][0-9]*) (. [0-9]+)?
 * (an exponent declined).  What follows it is the caller's to check.
 */
static bool scan_number(struct scan *s, struct value *v)
{
	bool neg = at(s, '-');
	long long n = 0;
	int digits = 0;

	if (neg)
		s->p++;
	if (at(s, '0')) {
		s->p++;
		if (is_digit(s))
			return false;
	} else {
		for (; is_digit(s); s->p++) {
			if (++digits > SCAN_MAX_INT_DIGITS)
				return false;
			n = n * 10 + (*s->p - '0');
		}
		if (!digits)
			return false;
	}
	v->kind = V_INTEGER;
	v->integer = neg ? -n : n;
	if (at(s, '.')) {
		s->p++;
		for (digits = 0; is_digit(s); s->p++)
			if (++digits > SCAN_MAX_FRAC_DIGITS)
				return false;
		if (!digits)
			return false;
		v->kind = V_OTHER;
	}
	return !at(s, 'e') && !at(s, 'E');
}

static bool scan_word(struct scan *s, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return false;
	s->p += n;
	return true;
}

static bool scan_value(struct scan *s, int depth, struct value *v);

/* Step over c, and the whitespace after it, if it is there. */
static bool eat(struct scan *s, unsigned char c)
{
	if (!at(s, c))
		return false;
	s->p++;
	skip_ws(s);
	return true;
}

/* The rest of an array, its '[' read. */
static bool scan_array(struct scan *s, int depth)
{
	struct value v;
	skip_ws(s);
	if (eat(s, ']'))
		return true;
	do {
		if (!scan_value(s, depth, &v))
			return false;
		skip_ws(s);
	} while (eat(s, ','));
	return eat(s, ']');
}

/* What the top-level object has given so far. */
struct capture {
	struct die_fields *f;
	unsigned seen;          /* 1 << enum member */
	bool strict;
	int nkeys;              /* strict: every key so far */
	struct {
		const char *key;
		size_t len;
	} keys[SCAN_MAX_MEMBERS];
};

/* Strict: whether key is new at the top (then it is remembered). */
static bool new_key(struct capture *c, const char *key, size_t klen)
{
	for (int i = 0; i < c->nkeys; i++)
		if (c->keys[i].len == klen && !memcmp(c->keys[i].key, key, klen))
			return false;
	if (c->nkeys == SCAN_MAX_MEMBERS)
		return false;
	c->keys[c->nkeys].key = key;
	c->keys[c->nkeys++].len = klen;
	return true;
}

/* A string member's value, NULL when it is not a string. */
static void take_string(const struct value *v, const char **str, size_t *len)
{
	*str = v->kind == V_STRING ? v->str : NULL;
	*len = v->kind == V_STRING ? v->len : 0;
}

static bool capture(struct capture *c, const char *key, size_t klen, const struct value *v)
{
	struct die_fields *f = c->f;
	int m;

	if (c->strict && !new_key(c, key, klen))
		return false;
	for (m = 0; m < M_COUNT; m++)
		if (members[m].len == klen && !memcmp(members[m].key, key, klen))
			break;
	if (m == M_COUNT)
		return true;
	/* Twice: jansson keeps the last; of another type: leave it to it.
	 * kerf-detect reads none of the envelope's v, type and id, so its
	 * scanner takes them as jansson (flags 0) does: the last one counts,
	 * and one of another type is none. */
	if (!(1u << m & ENVELOPE && !c->strict) && (c->seen & 1u << m || v->kind != members[m].kind))
		return false;
	c->seen |= 1u << m;
	switch ((enum member)m) {
	case M_RUN:
		f->run = v->str;
		f->run_len = v->len;
		break;
	case M_T:
		f->t = v->str;
		f->t_len = v->len;
		break;
	case M_WAFER:
		f->wafer = v->str;
		f->wafer_len = v->len;
		break;
	case M_SEQ:
		f->seq = v->integer;
		break;
	case M_COL:
		f->col = (long)v->integer;
		f->has_col = true;
		break;
	case M_ROW:
		f->row = (long)v->integer;
		f->has_row = true;
		break;
	case M_W:
		f->img.w = v->integer;
		break;
	case M_H:
		f->img.h = v->integer;
		break;
	case M_XXH3:
		f->img.xxh3 = v->str;
		f->img.xxh3_len = v->len;
		break;
	case M_DATA:
		f->img.data = v->str;
		f->img.data_len = v->len;
		break;
	case M_PATH:
		f->img.path = v->str;
		f->img.path_len = v->len;
		break;
	case M_V:
		f->has_v = v->kind == V_INTEGER;
		f->v = f->has_v ? v->integer : 0;
		break;
	case M_TYPE:
		take_string(v, &f->type, &f->type_len);
		break;
	case M_ID:
		take_string(v, &f->id, &f->id_len);
		break;
	case M_COUNT:
		break;
	}
	return true;
}

/* The rest of an object, its '{' read; the top-level one's members go to c. */
static bool scan_object(struct scan *s, int depth, struct capture *c)
{
	skip_ws(s);
	if (eat(s, '}'))
		return true;
	do {
		const char *key;
		size_t klen;
		struct value v;
		if (!at(s, '"'))
			return false;
		s->p++;
		if (!scan_string(s, &key, &klen))
			return false;
		skip_ws(s);
		if (!eat(s, ':') || !scan_value(s, depth, &v) || (c && !capture(c, key, klen, &v)))
			return false;
		skip_ws(s);
	} while (eat(s, ','));
	return eat(s, '}');
}

/* One value, at depth containers down. */
static bool scan_value(struct scan *s, int depth, struct value *v)
{
	v->kind = V_OTHER;
	if (s->p == s->end)
		return false;
	switch (*s->p) {
	case '"':
		s->p++;
		v->kind = V_STRING;
		return scan_string(s, &v->str, &v->len);
	case '{':
		s->p++;
		return !s->strict && depth < SCAN_MAX_DEPTH && scan_object(s, depth + 1, NULL);
	case '[':
		s->p++;
		return depth < SCAN_MAX_DEPTH && scan_array(s, depth + 1);
	case 't':
		return scan_word(s, "true");
	case 'f':
		return scan_word(s, "false");
	case 'n':
		return scan_word(s, "null");
	default:
		return scan_number(s, v);
	}
}

static int scan(const char *line, size_t len, struct die_fields *f, bool strict)
{
	struct scan s = {(const unsigned char *)line, (const unsigned char *)line + len, strict};
	struct capture c = {.f = f, .strict = strict};
	unsigned must = strict ? MUST_HAVE | ENVELOPE : MUST_HAVE;

	memset(f, 0, sizeof *f);
	skip_ws(&s);
	if (!eat(&s, '{') || !scan_object(&s, 1, &c))
		return 0;
	return s.p == s.end && (c.seen & must) == must && (c.seen & IMAGE_FROM);
}

int die_fields_scan(const char *line, size_t len, struct die_fields *f)
{
	return scan(line, len, f, false);
}

/* The string at str, in line, ends at its closing quote: a NUL there. */
static void terminate(char *line, const char *str, size_t len)
{
	if (str)
		line[str - line + len] = '\0';
}

int die_fields_scan_event(char *line, size_t len, struct die_fields *f)
{
	if (!scan(line, len, f, true))
		return 0;
	terminate(line, f->run, f->run_len);
	terminate(line, f->t, f->t_len);
	terminate(line, f->wafer, f->wafer_len);
	terminate(line, f->type, f->type_len);
	terminate(line, f->id, f->id_len);
	terminate(line, f->img.xxh3, f->img.xxh3_len);
	terminate(line, f->img.data, f->img.data_len);
	terminate(line, f->img.path, f->img.path_len);
	return 1;
}

static const char *string_member(const json_t *ev, const char *key, size_t *len)
{
	json_t *v = json_object_get(ev, key);
	*len = json_string_length(v);
	return json_string_value(v);
}

void die_fields_from_json(const json_t *ev, struct die_fields *f)
{
	json_t *seq = json_object_get(ev, "seq"), *col = json_object_get(ev, "col"), *row = json_object_get(ev, "row");
	json_t *v = json_object_get(ev, "v");

	memset(f, 0, sizeof *f);
	f->has_v = json_is_integer(v);
	f->v = json_integer_value(v);
	f->type = string_member(ev, "type", &f->type_len);
	f->id = string_member(ev, "id", &f->id_len);
	f->run = string_member(ev, "run", &f->run_len);
	f->t = string_member(ev, "t", &f->t_len);
	f->wafer = string_member(ev, "wafer", &f->wafer_len);
	f->seq = json_is_integer(seq) ? (int64_t)json_integer_value(seq) : -1;
	f->col = (long)json_integer_value(col);
	f->row = (long)json_integer_value(row);
	f->has_col = json_is_integer(col);
	f->has_row = json_is_integer(row);
	image_fields_from_json(ev, &f->img);
}

static bool same_string(const char *a, size_t alen, const char *b, size_t blen)
{
	if (!a || !b)
		return !a && !b;
	return alen == blen && !memcmp(a, b, alen);
}

bool die_fields_equal(const struct die_fields *a, const struct die_fields *b)
{
	const struct image_fields *x = &a->img, *y = &b->img;
	return a->has_v == b->has_v && a->v == b->v && same_string(a->type, a->type_len, b->type, b->type_len) &&
	       same_string(a->id, a->id_len, b->id, b->id_len) &&
	       same_string(a->run, a->run_len, b->run, b->run_len) && same_string(a->t, a->t_len, b->t, b->t_len) &&
	       same_string(a->wafer, a->wafer_len, b->wafer, b->wafer_len) && a->seq == b->seq &&
	       a->col == b->col && a->row == b->row && a->has_col == b->has_col && a->has_row == b->has_row &&
	       x->w == y->w && x->h == y->h && same_string(x->xxh3, x->xxh3_len, y->xxh3, y->xxh3_len) &&
	       same_string(x->data, x->data_len, y->data, y->data_len) &&
	       same_string(x->path, x->path_len, y->path, y->path_len);
}

/*
 * secs.c: SECS-II items, their binary encoding and SML text.
 *
 * A non-list item keeps its data exactly as on the wire (big-endian
 * numbers, raw bytes), so that encoding is a copy, equality a memcmp and
 * a float's bits survive a round trip untouched; the accessors convert
 * one element at a time.  The data always has a NUL after it, so that an
 * A can be handed out as a C string.
 *
 * Nothing here recurses over the tree: a hostile message may nest as
 * deep as its limits allow and a hand-built tree deeper still, so every
 * walk (encode, equal, format, free) keeps its own stack on the heap,
 * and decode and parse grow theirs only up to limits.max_depth.
 */
#include "util.h"
#include "secs.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "banned.h"

struct secs_item {
	enum secs_format fmt;
	size_t len; /* a list's items, or the data's bytes */
	size_t cap; /* allocated items, or data bytes including the NUL */
	union {
		struct secs_item **items;
		unsigned char *data;
	} u;
};

enum kind { K_LIST, K_BYTES, K_TEXT, K_INT, K_UINT, K_FLOAT };

static const struct fmtinfo {
	enum secs_format f;
	const char *name;
	unsigned size; /* bytes per element */
	enum kind kind;
} formats[] = {
	{ SECS_L, "L", 1, K_LIST },
	{ SECS_B, "B", 1, K_BYTES },
	{ SECS_BOOLEAN, "BOOLEAN", 1, K_BYTES },
	{ SECS_A, "A", 1, K_TEXT },
	{ SECS_J, "J", 1, K_TEXT },
	{ SECS_I8, "I8", 8, K_INT },
	{ SECS_I1, "I1", 1, K_INT },
	{ SECS_I2, "I2", 2, K_INT },
	{ SECS_I4, "I4", 4, K_INT },
	{ SECS_F8, "F8", 8, K_FLOAT },
	{ SECS_F4, "F4", 4, K_FLOAT },
	{ SECS_U8, "U8", 8, K_UINT },
	{ SECS_U1, "U1", 1, K_UINT },
	{ SECS_U2, "U2", 2, K_UINT },
	{ SECS_U4, "U4", 4, K_UINT },
};

#define NFORMATS (sizeof formats / sizeof formats[0])

static const struct fmtinfo *info(unsigned code)
{
	for (size_t i = 0; i < NFORMATS; i++)
		if ((unsigned)formats[i].f == code)
			return &formats[i];
	return NULL;
}

/* Every item in the tree has a known format, so this never fails. */
static const struct fmtinfo *info_of(const struct secs_item *it)
{
	return info(it->fmt);
}

const char *secs_format_name(enum secs_format f)
{
	const struct fmtinfo *fi = info(f);

	return fi ? fi->name : NULL;
}

const char *secs_strerror(enum secs_errcode code)
{
	static const char *const names[] = {
		[SECS_OK] = "ok",             [SECS_ERR_TRUNCATED] = "truncated",
		[SECS_ERR_FORMAT] = "format", [SECS_ERR_LENBYTES] = "length_bytes",
		[SECS_ERR_ELEMSIZE] = "element_size", [SECS_ERR_TRAILING] = "trailing",
		[SECS_ERR_CLAIM] = "claim",   [SECS_ERR_DEPTH] = "depth",
		[SECS_ERR_ITEMS] = "items",   [SECS_ERR_SIZE] = "size",
		[SECS_ERR_TOOLONG] = "too_long", [SECS_ERR_SYNTAX] = "syntax",
		[SECS_ERR_RANGE] = "range",   [SECS_ERR_COUNT] = "count",
		[SECS_ERR_TYPE] = "type",     [SECS_ERR_INDEX] = "index",
	};

	if ((unsigned)code < sizeof names / sizeof names[0] && names[code])
		return names[code];
	return "unknown";
}

static void err_clear(struct secs_error *err)
{
	if (err) {
		err->code = SECS_OK;
		err->offset = 0;
		err->msg[0] = '\0';
	}
}

static int fail(struct secs_error *err, enum secs_errcode code, size_t offset, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct secs_error *err, enum secs_errcode code, size_t offset, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->code = code;
		err->offset = offset;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return code;
}

/* ---- Items ---- */

/* A new item with room for cap items (a list) or cap data bytes. */
static struct secs_item *item_new(enum secs_format f, size_t cap)
{
	struct secs_item *it = xcalloc(1, sizeof *it);

	it->fmt = f;
	if (f == SECS_L) {
		it->cap = cap;
		it->u.items = cap ? xcalloc(cap, sizeof *it->u.items) : NULL;
	} else {
		it->cap = cap + 1;
		it->u.data = xmalloc(cap + 1);
		it->u.data[0] = '\0';
	}
	return it;
}

/* Room for 'more' data bytes (and the NUL) after the current ones. */
static void data_reserve(struct secs_item *it, size_t more)
{
	it->u.data = xgrow(it->u.data, &it->cap, it->len + more + 1, 0);
}

static void data_add(struct secs_item *it, const void *p, size_t n)
{
	data_reserve(it, n);
	if (n)
		memcpy(it->u.data + it->len, p, n);
	it->len += n;
	it->u.data[it->len] = '\0';
}

static void list_add(struct secs_item *list, struct secs_item *child)
{
	if (list->len == list->cap) {
		list->cap = list->cap ? 2 * list->cap : 4;
		list->u.items = xrealloc(list->u.items, list->cap * sizeof *list->u.items);
	}
	list->u.items[list->len++] = child;
}

void secs_free(struct secs_item *it)
{
	/* A worklist rather than recursion: the tree may be deeper than the stack. */
	struct secs_item **todo = NULL;
	size_t n = 0, cap = 0;

	while (it) {
		if (it->fmt == SECS_L) {
			if (n + it->len > cap) {
				cap = 2 * (n + it->len);
				todo = xrealloc(todo, cap * sizeof *todo);
			}
			if (it->len)
				memcpy(todo + n, it->u.items, it->len * sizeof *todo);
			n += it->len;
			free(it->u.items);
		} else {
			free(it->u.data);
		}
		free(it);
		it = n ? todo[--n] : NULL;
	}
	free(todo);
}

struct secs_item *secs_list(size_t n, ...)
{
	struct secs_item *list = item_new(SECS_L, n), *child;
	int failed = 0;
	va_list ap;

	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		child = va_arg(ap, struct secs_item *);
		if (child)
			list_add(list, child);
		else
			failed = 1;
	}
	va_end(ap);
	if (failed) {
		secs_free(list);
		return NULL;
	}
	return list;
}

int secs_append(struct secs_item *list, struct secs_item *child)
{
	if (!list || list->fmt != SECS_L || !child) {
		secs_free(child);
		return SECS_ERR_TYPE;
	}
	list_add(list, child);
	return 0;
}

struct secs_item *secs_empty(enum secs_format f)
{
	return info(f) ? item_new(f, 0) : NULL;
}

struct secs_item *secs_raw(enum secs_format f, const void *data, size_t len)
{
	const struct fmtinfo *fi = info(f);
	struct secs_item *it;

	if (!fi || fi->kind == K_LIST || len % fi->size != 0)
		return NULL;
	it = item_new(f, len);
	data_add(it, data, len);
	return it;
}

static void be_put(unsigned char *p, uint64_t v, unsigned size)
{
	for (unsigned i = size; i-- > 0; v >>= 8)
		p[i] = (unsigned char)(v & 0xFF);
}

static uint64_t be_get(const unsigned char *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v = v << 8 | p[i];
	return v;
}

/* Append one element of an integer or float format from its bits. */
static void add_bits(struct secs_item *it, uint64_t bits, unsigned size)
{
	unsigned char b[8];

	be_put(b, bits, size);
	data_add(it, b, size);
}

int secs_add_uint(struct secs_item *it, uint64_t v)
{
	const struct fmtinfo *fi = it ? info_of(it) : NULL;
	unsigned bits;

	if (!fi || (fi->kind != K_UINT && fi->kind != K_INT))
		return SECS_ERR_TYPE;
	bits = 8 * fi->size - (fi->kind == K_INT);
	if (bits < 64 && v >> bits != 0)
		return SECS_ERR_RANGE;
	add_bits(it, v, fi->size);
	return 0;
}

int secs_add_int(struct secs_item *it, int64_t v)
{
	const struct fmtinfo *fi = it ? info_of(it) : NULL;
	int64_t lim;

	if (!fi || (fi->kind != K_UINT && fi->kind != K_INT))
		return SECS_ERR_TYPE;
	if (fi->kind == K_UINT)
		return v < 0 ? SECS_ERR_RANGE : secs_add_uint(it, (uint64_t)v);
	if (fi->size < 8) {
		lim = (int64_t)1 << (8 * fi->size - 1);
		if (v < -lim || v >= lim)
			return SECS_ERR_RANGE;
	}
	add_bits(it, (uint64_t)v, fi->size);
	return 0;
}

int secs_add_float(struct secs_item *it, double v)
{
	float f = (float)v;
	uint32_t b4;
	uint64_t b8;

	if (!it || (it->fmt != SECS_F4 && it->fmt != SECS_F8))
		return SECS_ERR_TYPE;
	if (it->fmt == SECS_F8) {
		memcpy(&b8, &v, sizeof b8);
		add_bits(it, b8, 8);
		return 0;
	}
	if (isfinite(v) && !isfinite(f))
		return SECS_ERR_RANGE;
	memcpy(&b4, &f, sizeof b4);
	add_bits(it, b4, 4);
	return 0;
}

int secs_add_bytes(struct secs_item *it, const void *data, size_t len)
{
	const struct fmtinfo *fi = it ? info_of(it) : NULL;

	if (!fi || (fi->kind != K_BYTES && fi->kind != K_TEXT))
		return SECS_ERR_TYPE;
	data_add(it, data, len);
	return 0;
}

/* One-element builders: the value always fits, so they cannot fail. */
static struct secs_item *one_bits(enum secs_format f, uint64_t bits, unsigned size)
{
	struct secs_item *it = item_new(f, size);

	add_bits(it, bits, size);
	return it;
}

struct secs_item *secs_u1(uint8_t v)
{
	return one_bits(SECS_U1, v, 1);
}

struct secs_item *secs_u2(uint16_t v)
{
	return one_bits(SECS_U2, v, 2);
}

struct secs_item *secs_u4(uint32_t v)
{
	return one_bits(SECS_U4, v, 4);
}

struct secs_item *secs_u8(uint64_t v)
{
	return one_bits(SECS_U8, v, 8);
}

struct secs_item *secs_i1(int8_t v)
{
	return one_bits(SECS_I1, (uint64_t)(int64_t)v, 1);
}

struct secs_item *secs_i2(int16_t v)
{
	return one_bits(SECS_I2, (uint64_t)(int64_t)v, 2);
}

struct secs_item *secs_i4(int32_t v)
{
	return one_bits(SECS_I4, (uint64_t)(int64_t)v, 4);
}

struct secs_item *secs_i8(int64_t v)
{
	return one_bits(SECS_I8, (uint64_t)v, 8);
}

struct secs_item *secs_binary(uint8_t v)
{
	return one_bits(SECS_B, v, 1);
}

struct secs_item *secs_boolean(int v)
{
	return one_bits(SECS_BOOLEAN, v != 0, 1);
}

struct secs_item *secs_f4(float v)
{
	uint32_t b;

	memcpy(&b, &v, sizeof b);
	return one_bits(SECS_F4, b, 4);
}

struct secs_item *secs_f8(double v)
{
	uint64_t b;

	memcpy(&b, &v, sizeof b);
	return one_bits(SECS_F8, b, 8);
}

struct secs_item *secs_id(uint64_t v)
{
	if (v <= 0xFF)
		return secs_u1((uint8_t)v);
	if (v <= 0xFFFF)
		return secs_u2((uint16_t)v);
	if (v <= 0xFFFFFFFF)
		return secs_u4((uint32_t)v);
	return secs_u8(v);
}

struct secs_item *secs_ascii(const char *s)
{
	return secs_raw(SECS_A, s, strlen(s));
}

struct secs_item *secs_ascii_n(const char *s, size_t len)
{
	return secs_raw(SECS_A, s, len);
}

/* ---- Reading ---- */

int secs_is(const struct secs_item *it, enum secs_format f)
{
	return it && it->fmt == f;
}

enum secs_format secs_format_of(const struct secs_item *it)
{
	return it->fmt;
}

size_t secs_count(const struct secs_item *it)
{
	if (!it)
		return 0;
	return it->len / info_of(it)->size;
}

struct secs_item *secs_child(const struct secs_item *it, size_t i)
{
	if (!it || it->fmt != SECS_L || i >= it->len)
		return NULL;
	return it->u.items[i];
}

/*
 * Element i of an integer item as 64 bits, sign-extended for the I
 * formats (two's complement, as on the wire); *negative says whether an
 * I element is below zero.
 */
static int int_elem(const struct secs_item *it, size_t i, uint64_t *bits, int *negative)
{
	const struct fmtinfo *fi = it ? info_of(it) : NULL;
	unsigned width;

	if (!fi || (fi->kind != K_INT && fi->kind != K_UINT))
		return SECS_ERR_TYPE;
	if (i >= it->len / fi->size)
		return SECS_ERR_INDEX;
	width = 8 * fi->size;
	*bits = be_get(it->u.data + i * fi->size, fi->size);
	*negative = fi->kind == K_INT && (*bits >> (width - 1)) != 0;
	if (*negative && width < 64)
		*bits |= ~(uint64_t)0 << width;
	return 0;
}

/*
 * Element i's bits, as int_elem, when the value fits a uint64_t (is_signed
 * 0) or an int64_t (is_signed 1); SECS_ERR_RANGE when it does not.
 */
static int int_fits(const struct secs_item *it, size_t i, int is_signed, uint64_t *bits)
{
	int neg, rc = int_elem(it, i, bits, &neg);

	if (rc == 0 && (is_signed ? !neg && *bits > INT64_MAX : neg))
		rc = SECS_ERR_RANGE;
	return rc;
}

int secs_uint_at(const struct secs_item *it, size_t i, uint64_t *out)
{
	uint64_t v;
	int rc = int_fits(it, i, 0, &v);

	if (rc == 0)
		*out = v;
	return rc;
}

int secs_int_at(const struct secs_item *it, size_t i, int64_t *out)
{
	uint64_t v;
	int rc = int_fits(it, i, 1, &v);

	if (rc == 0)
		*out = (int64_t)v;
	return rc;
}

int secs_float_at(const struct secs_item *it, size_t i, double *out)
{
	uint32_t b4;
	float f;
	uint64_t b8;

	if (!it || (it->fmt != SECS_F4 && it->fmt != SECS_F8))
		return SECS_ERR_TYPE;
	if (i >= secs_count(it))
		return SECS_ERR_INDEX;
	if (it->fmt == SECS_F8) {
		b8 = be_get(it->u.data + 8 * i, 8);
		memcpy(out, &b8, sizeof b8);
	} else {
		b4 = (uint32_t)be_get(it->u.data + 4 * i, 4);
		memcpy(&f, &b4, sizeof f);
		*out = f;
	}
	return 0;
}

/*
 * The decimal number an A holds: digits only, after an optional '-'
 * when allow_neg.  Hosts get IDs as text from some tools, but a space,
 * a sign where none belongs or an empty string is not an ID.
 */
static int ascii_number(const struct secs_item *it, int allow_neg, uint64_t *mag, int *negative)
{
	const unsigned char *p = it->u.data;
	size_t n = it->len, i = 0;
	uint64_t v = 0;

	*negative = allow_neg && n > 0 && p[0] == '-';
	i = *negative;
	if (i == n)
		return SECS_ERR_TYPE;
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return SECS_ERR_TYPE;
		if (v > (UINT64_MAX - (p[i] - '0')) / 10)
			return SECS_ERR_RANGE;
		v = v * 10 + (p[i] - '0');
	}
	*mag = v;
	return 0;
}

int secs_get_uint(const struct secs_item *it, uint64_t max, uint64_t *out)
{
	uint64_t v;
	int neg, rc;

	if (secs_is(it, SECS_A))
		rc = ascii_number(it, 0, &v, &neg);
	else if (secs_count(it) != 1)
		return SECS_ERR_TYPE;
	else
		rc = secs_uint_at(it, 0, &v);
	if (rc)
		return rc;
	if (v > max)
		return SECS_ERR_RANGE;
	*out = v;
	return 0;
}

int secs_get_int(const struct secs_item *it, int64_t min, int64_t max, int64_t *out)
{
	uint64_t mag;
	int64_t v;
	int neg, rc;

	if (secs_is(it, SECS_A)) {
		rc = ascii_number(it, 1, &mag, &neg);
		if (rc)
			return rc;
		if (mag > (uint64_t)INT64_MAX + neg)
			return SECS_ERR_RANGE;
		/* -mag computed in unsigned arithmetic, so INT64_MIN is reachable. */
		v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	} else if (secs_count(it) != 1) {
		return SECS_ERR_TYPE;
	} else if ((rc = secs_int_at(it, 0, &v)) != 0) {
		return rc;
	}
	if (v < min || v > max)
		return SECS_ERR_RANGE;
	*out = v;
	return 0;
}

int secs_get_byte(const struct secs_item *it, uint8_t *out)
{
	if (!secs_is(it, SECS_B) || it->len != 1)
		return SECS_ERR_TYPE;
	*out = it->u.data[0];
	return 0;
}

int secs_get_bool(const struct secs_item *it, int *out)
{
	if (!secs_is(it, SECS_BOOLEAN) || it->len != 1)
		return SECS_ERR_TYPE;
	*out = it->u.data[0] != 0;
	return 0;
}

const char *secs_get_str(const struct secs_item *it, size_t *len)
{
	if (!secs_is(it, SECS_A))
		return NULL;
	if (len)
		*len = it->len;
	return (const char *)it->u.data;
}

const unsigned char *secs_data(const struct secs_item *it, size_t *len)
{
	if (!it || it->fmt == SECS_L)
		return NULL;
	if (len)
		*len = it->len;
	return it->u.data;
}

/* ---- Walking the tree ---- */

/*
 * A pre-order walk with its stack on the heap.  Only non-empty lists are
 * pushed, so 'closed' counts the lists whose last item came before the
 * item returned (and, at the end, every list still open).
 */
struct walk {
	struct wframe {
		const struct secs_item *list;
		size_t next;
	} *st;
	size_t depth, cap;
	const struct secs_item *root;
};

static void walk_init(struct walk *w, const struct secs_item *root)
{
	memset(w, 0, sizeof *w);
	w->root = root;
}

static const struct secs_item *walk_next(struct walk *w, size_t *closed, size_t *depth)
{
	const struct secs_item *it;
	struct wframe *f;

	*closed = 0;
	if (w->root) {
		it = w->root;
		w->root = NULL;
	} else {
		for (;;) {
			if (w->depth == 0)
				return NULL;
			f = &w->st[w->depth - 1];
			if (f->next < f->list->len) {
				it = f->list->u.items[f->next++];
				break;
			}
			w->depth--;
			(*closed)++;
		}
	}
	*depth = w->depth + 1;
	if (it->fmt == SECS_L && it->len > 0) {
		if (w->depth == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 16;
			w->st = xrealloc(w->st, w->cap * sizeof *w->st);
		}
		w->st[w->depth].list = it;
		w->st[w->depth].next = 0;
		w->depth++;
	}
	return it;
}

static void walk_release(struct walk *w)
{
	free(w->st);
}

/* Two floats are the same when their bits are, or when both are NaN. */
static int floats_equal(const struct secs_item *a, const struct secs_item *b)
{
	double x, y;

	for (size_t i = 0; i < secs_count(a); i++) {
		secs_float_at(a, i, &x);
		secs_float_at(b, i, &y);
		if (isnan(x) && isnan(y))
			continue;
		if (memcmp(a->u.data + i * info_of(a)->size, b->u.data + i * info_of(a)->size,
			   info_of(a)->size) != 0)
			return 0;
	}
	return 1;
}

static int node_equal(const struct secs_item *a, const struct secs_item *b)
{
	if (a->fmt != b->fmt || a->len != b->len)
		return 0;
	if (a->fmt == SECS_L)
		return 1;
	if (a->fmt == SECS_F4 || a->fmt == SECS_F8)
		return floats_equal(a, b);
	return memcmp(a->u.data, b->u.data, a->len) == 0;
}

int secs_equal(const struct secs_item *a, const struct secs_item *b)
{
	/* Counts fix the shape, so equal pre-order sequences mean equal trees. */
	struct walk wa, wb;
	const struct secs_item *x, *y;
	size_t closed, depth;
	int eq;

	walk_init(&wa, a);
	walk_init(&wb, b);
	for (;;) {
		x = walk_next(&wa, &closed, &depth);
		y = walk_next(&wb, &closed, &depth);
		if (!x || !y) {
			eq = x == y;
			break;
		}
		if (!node_equal(x, y)) {
			eq = 0;
			break;
		}
	}
	walk_release(&wa);
	walk_release(&wb);
	return eq;
}

/* ---- A growing byte buffer, for encode and SML ---- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_reserve(struct sbuf *b, size_t more)
{
	b->p = xgrow(b->p, &b->cap, b->len + more + 1, 64);
}

static void sb_add(struct sbuf *b, const void *s, size_t n)
{
	sb_reserve(b, n);
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static char *sb_finish(struct sbuf *b)
{
	sb_reserve(b, 0);
	b->p[b->len] = '\0';
	return b->p;
}

/* ---- Binary ---- */

static unsigned len_bytes(size_t n)
{
	return n <= 0xFF ? 1 : n <= 0xFFFF ? 2 : 3;
}

int secs_encode(const struct secs_item *it, unsigned char **out, size_t *len,
		struct secs_error *err)
{
	struct sbuf b = { 0 };
	struct walk w;
	const struct secs_item *x;
	size_t closed, depth;
	unsigned char hdr[4];
	unsigned nlb;
	int rc = 0;

	err_clear(err);
	walk_init(&w, it);
	while ((x = walk_next(&w, &closed, &depth)) != NULL) {
		if (x->len > SECS_LEN_MAX) {
			rc = fail(err, SECS_ERR_TOOLONG, b.len,
				  "%s item at byte %zu holds %zu %s, more than %u", info_of(x)->name,
				  b.len, x->len, x->fmt == SECS_L ? "items" : "bytes", SECS_LEN_MAX);
			break;
		}
		nlb = len_bytes(x->len);
		hdr[0] = (unsigned char)(x->fmt << 2 | nlb);
		be_put(hdr + 1, x->len, nlb);
		sb_add(&b, hdr, 1 + nlb);
		if (x->fmt != SECS_L)
			sb_add(&b, x->u.data, x->len);
	}
	walk_release(&w);
	if (rc) {
		free(b.p);
		*out = NULL;
		*len = 0;
		return rc;
	}
	*len = b.len;
	*out = (unsigned char *)sb_finish(&b);
	return 0;
}

static const struct secs_limits default_limits = SECS_LIMITS_DEFAULT;

struct dec {
	const unsigned char *p;
	size_t len, pos;
	struct secs_limits lim;
	struct secs_error *err;
	size_t items;   /* items read so far, this one included */
	size_t pending; /* items that open lists still claim, not yet read */
	struct dframe {
		struct secs_item *list;
		size_t left;
	} *st;
	size_t depth, cap;
};

/*
 * The header of the item at d->pos: format, length and the checks that
 * need only the header.  A list's claim is held against what is left:
 * each item takes at least 2 bytes, and so does each item the enclosing
 * lists still wait for, so nothing is allocated for items that cannot
 * be there.
 */
static int dec_header(struct dec *d, const struct fmtinfo **fip, size_t *length)
{
	size_t at = d->pos, left = d->len - d->pos, n = 0;
	unsigned fb, nlb;
	const struct fmtinfo *fi;

	/* The claim checks count 2 bytes an item, but a long item before
	 * can still eat the bytes its siblings need. */
	if (left == 0)
		return fail(d->err, SECS_ERR_TRUNCATED, at,
			    "the body ends at byte %zu with %zu more items due in its lists", at,
			    d->pending + 1);
	fb = d->p[at];
	nlb = fb & 3;
	fi = info(fb >> 2);
	if (!fi)
		return fail(d->err, SECS_ERR_FORMAT, at,
			    "unknown format code %03o (format byte 0x%02X) at byte %zu", fb >> 2, fb, at);
	if (nlb == 0)
		return fail(d->err, SECS_ERR_LENBYTES, at,
			    "%s item at byte %zu has 0 length bytes (format byte 0x%02X)", fi->name, at, fb);
	if (left < 1 + nlb)
		return fail(d->err, SECS_ERR_TRUNCATED, at,
			    "%s item at byte %zu needs %u length bytes but only %zu follow",
			    fi->name, at, nlb, left - 1);
	for (unsigned i = 0; i < nlb; i++)
		n = n << 8 | d->p[at + 1 + i];
	left -= 1 + nlb;
	if (d->depth + 1 > d->lim.max_depth)
		return fail(d->err, SECS_ERR_DEPTH, at, "item at byte %zu is nested deeper than %zu",
			    at, d->lim.max_depth);
	if (fi->kind == K_LIST && n + d->pending > left / 2 && d->pending == 0)
		return fail(d->err, SECS_ERR_CLAIM, at,
			    "list at byte %zu claims %zu items but only %zu bytes follow "
			    "(2 at least per item)", at, n, left);
	if (fi->kind == K_LIST && n + d->pending > left / 2)
		return fail(d->err, SECS_ERR_CLAIM, at,
			    "list at byte %zu claims %zu items but only %zu bytes follow "
			    "(2 at least per item, with %zu more due in enclosing lists)",
			    at, n, left, d->pending);
	if (d->items + d->pending + (fi->kind == K_LIST ? n : 0) > d->lim.max_items)
		return fail(d->err, SECS_ERR_ITEMS, at, "item at byte %zu makes more than %zu items",
			    at, d->lim.max_items);
	if (fi->kind != K_LIST && n % fi->size != 0)
		return fail(d->err, SECS_ERR_ELEMSIZE, at,
			    "%s item at byte %zu has %zu bytes, not a multiple of %u", fi->name, at, n,
			    fi->size);
	if (fi->kind != K_LIST && n > left)
		return fail(d->err, SECS_ERR_TRUNCATED, at,
			    "%s item at byte %zu claims %zu bytes but only %zu follow", fi->name, at, n,
			    left);
	*fip = fi;
	*length = n;
	d->pos += 1 + nlb;
	return 0;
}

/* Read one item and hang it in its list (or make it the root). */
static int dec_item(struct dec *d, struct secs_item **root)
{
	const struct fmtinfo *fi = NULL;
	struct secs_item *it;
	struct dframe *top = d->depth ? &d->st[d->depth - 1] : NULL;
	size_t n = 0;
	int rc;

	/* This item is one of those its list claimed: no longer pending. */
	d->items++;
	if (top)
		d->pending--;
	rc = dec_header(d, &fi, &n);
	if (rc)
		return rc;
	/*
	 * A list gets room for what its claim says only up to a small start;
	 * it grows as its items arrive, so memory follows the bytes that
	 * are really there, even when the claim checks above let a large
	 * claim through.
	 */
	it = item_new(fi->f, fi->kind == K_LIST && n > 16 ? 16 : n);
	if (fi->kind != K_LIST) {
		data_add(it, d->p + d->pos, n);
		d->pos += n;
	}
	if (top) {
		list_add(top->list, it);
		top->left--;
	} else {
		*root = it;
	}
	if (fi->kind == K_LIST && n > 0) {
		if (d->depth == d->cap) {
			d->cap = d->cap ? 2 * d->cap : 16;
			d->st = xrealloc(d->st, d->cap * sizeof *d->st);
		}
		d->st[d->depth].list = it;
		d->st[d->depth].left = n;
		d->depth++;
		d->pending += n;
	}
	while (d->depth > 0 && d->st[d->depth - 1].left == 0)
		d->depth--;
	return 0;
}

int secs_decode(const void *buf, size_t len, const struct secs_limits *lim,
		struct secs_item **out, struct secs_error *err)
{
	struct dec d = { .p = buf, .len = len, .lim = lim ? *lim : default_limits, .err = err };
	struct secs_item *root = NULL;
	int rc = 0;

	err_clear(err);
	*out = NULL;
	if (len == 0)
		return 0;
	if (len > d.lim.max_bytes)
		return fail(err, SECS_ERR_SIZE, 0, "message of %zu bytes is larger than the limit of %zu",
			    len, d.lim.max_bytes);
	do {
		rc = dec_item(&d, &root);
	} while (rc == 0 && d.depth > 0);
	if (rc == 0 && d.pos != len)
		rc = fail(err, SECS_ERR_TRAILING, d.pos, "%zu more bytes after the top item, from byte %zu",
			  len - d.pos, d.pos);
	free(d.st);
	if (rc) {
		secs_free(root);
		return rc;
	}
	*out = root;
	return 0;
}

/* ---- SML text ---- */

/* A and J: printable runs in quotes, every other byte as 0xNN. */
static void sml_text(struct sbuf *b, const unsigned char *p, size_t n)
{
	size_t i = 0, j;

	if (n == 0)
		sb_str(b, " \"\"");
	while (i < n) {
		for (j = i; j < n && p[j] >= 0x20 && p[j] < 0x7F && p[j] != '"'; j++)
			;
		if (j > i) {
			sb_str(b, " \"");
			sb_add(b, p + i, j - i);
			sb_str(b, "\"");
			i = j;
		} else {
			sb_printf(b, " 0x%02X", p[i++]);
		}
	}
}

/*
 * The fewest digits that read back to the same value, trying 6 (F4) or
 * 15 (F8) digits first: engineers read 0.1, not 0.10000000000000001,
 * and 100, not 1e+02; 9 or 17 digits always read back.  The buffer holds
 * the longest %.17g a double can give (24 bytes).
 */
static void sml_float(struct sbuf *b, double v, int is_f4)
{
	char tmp[40];
	int prec;

	if (isnan(v)) {
		sb_str(b, " nan");
		return;
	}
	if (isinf(v)) {
		sb_str(b, v < 0 ? " -inf" : " inf");
		return;
	}
	for (prec = is_f4 ? 6 : 15; prec < (is_f4 ? 9 : 17); prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (is_f4 ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
			break;
	}
	snprintf(tmp, sizeof tmp, "%.*g", prec, v);
	sb_printf(b, " %s", tmp);
}

static void sml_leaf(struct sbuf *b, const struct secs_item *it, unsigned flags)
{
	const struct fmtinfo *fi = info_of(it);
	size_t n = secs_count(it);
	uint64_t u;
	int64_t s;
	double f;

	if ((flags & SECS_SML_BRIEF) && n > SECS_SML_BRIEF_MAX) {
		sb_printf(b, "<%s [%zu] ...>", fi->name, n);
		return;
	}
	sb_printf(b, "<%s", fi->name);
	for (size_t i = 0; fi->kind != K_TEXT && i < n; i++) {
		unsigned char c = it->u.data[i];

		if (fi->kind == K_BYTES && it->fmt == SECS_BOOLEAN && c <= 1)
			sb_str(b, c ? " TRUE" : " FALSE");
		else if (fi->kind == K_BYTES)
			sb_printf(b, " 0x%02X", c);
		else if (fi->kind == K_UINT && secs_uint_at(it, i, &u) == 0)
			sb_printf(b, " %llu", (unsigned long long)u);
		else if (fi->kind == K_INT && secs_int_at(it, i, &s) == 0)
			sb_printf(b, " %lld", (long long)s);
		else if (fi->kind == K_FLOAT && secs_float_at(it, i, &f) == 0)
			sml_float(b, f, it->fmt == SECS_F4);
	}
	if (fi->kind == K_TEXT)
		sml_text(b, it->u.data, it->len);
	sb_str(b, ">");
}

static void sml_newline(struct sbuf *b, size_t depth)
{
	sb_str(b, "\n");
	for (size_t i = 1; i < depth; i++)
		sb_str(b, "  ");
}

/* Close 'closed' lists; the innermost sits at depth + closed - 1. */
static void sml_close(struct sbuf *b, size_t closed, size_t depth, unsigned flags)
{
	while (closed-- > 0) {
		if (flags & SECS_SML_INDENT)
			sml_newline(b, depth + closed);
		sb_str(b, ">");
	}
}

static void sml_append(struct sbuf *b, const struct secs_item *it, unsigned flags)
{
	struct walk w;
	const struct secs_item *x;
	size_t closed, depth;
	int first = 1;

	walk_init(&w, it);
	while ((x = walk_next(&w, &closed, &depth)) != NULL) {
		sml_close(b, closed, depth, flags);
		if (!first && (flags & SECS_SML_INDENT))
			sml_newline(b, depth);
		else if (!first)
			sb_str(b, " ");
		first = 0;
		if (x->fmt == SECS_L)
			sb_printf(b, "<L [%zu]%s", x->len, x->len ? "" : ">");
		else
			sml_leaf(b, x, flags);
	}
	sml_close(b, closed, 1, flags);
	walk_release(&w);
}

char *secs_sml(const struct secs_item *it, unsigned flags)
{
	struct sbuf b = { 0 };

	sml_append(&b, it, flags);
	return sb_finish(&b);
}

char *secs_sml_message(unsigned stream, unsigned function, int wbit,
		       const struct secs_item *body, unsigned flags)
{
	struct sbuf b = { 0 };

	sb_printf(&b, "S%uF%u%s", stream, function, wbit ? " W" : "");
	if (body) {
		if (flags & SECS_SML_INDENT)
			sml_newline(&b, 1);
		else
			sb_str(&b, " ");
		sml_append(&b, body, flags);
	}
	return sb_finish(&b);
}

/* ---- SML parsing ---- */

struct parser {
	const char *s;
	size_t len, pos;
	struct secs_limits lim;
	struct secs_error *err;
	size_t items; /* items made so far */
	size_t bytes; /* encoded size of the items closed so far */
	struct pframe {
		struct secs_item *list;
		size_t open_at;  /* offset of its '<' */
		size_t want;     /* its [n], when has_want */
		size_t want_at;  /* offset of the '[' */
		int has_want;
	} *st;
	size_t depth, cap;
};

/* Errors name a line and column (from 1), as an editor shows them. */
static int p_fail(struct parser *p, enum secs_errcode code, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int p_fail(struct parser *p, enum secs_errcode code, size_t at, const char *fmt, ...)
{
	size_t line = 1, col = 1;
	char what[SECS_MSG_MAX];
	va_list ap;

	for (size_t i = 0; i < at && i < p->len; i++, col++)
		if (p->s[i] == '\n') {
			line++;
			col = 0;
		}
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return fail(p->err, code, at, "line %zu, column %zu: %s", line, col, what);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_delim(char c)
{
	return is_space(c) || c == '<' || c == '>' || c == '"' || c == '[' || c == ']' || c == '.';
}

static void skip_space(struct parser *p)
{
	while (p->pos < p->len && is_space(p->s[p->pos]))
		p->pos++;
}

/*
 * The word at p->pos: a run of characters up to a delimiter.  A '.' is
 * part of a word when more of the word follows it, so that 1.5 and .5
 * are words, while the end marker in "S1F17 W." or "<U1 1>." is not.
 */
static size_t word(struct parser *p)
{
	size_t start = p->pos;

	while (p->pos < p->len) {
		char c = p->s[p->pos];

		if (c == '.' && p->pos + 1 < p->len && !is_delim(p->s[p->pos + 1])) {
			p->pos++;
			continue;
		}
		if (is_delim(c))
			break;
		p->pos++;
	}
	return p->pos - start;
}

/* Case-insensitive match of the n bytes at s with a whole name. */
static int word_is(const char *s, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

static const struct fmtinfo *info_by_name(const char *s, size_t n)
{
	if (word_is(s, n, "BOOL"))
		return info(SECS_BOOLEAN);
	for (size_t i = 0; i < NFORMATS; i++)
		if (word_is(s, n, formats[i].name))
			return &formats[i];
	return NULL;
}

/*
 * An unsigned number, decimal or 0x hex, all of the n bytes: 0,
 * SECS_ERR_SYNTAX or SECS_ERR_RANGE (more than 64 bits).
 */
static int number_u(const char *s, size_t n, uint64_t *out)
{
	unsigned base = 10, d;
	uint64_t v = 0;
	size_t i = 0;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == n)
		return SECS_ERR_SYNTAX;
	for (; i < n; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return SECS_ERR_SYNTAX;
		if (v > (UINT64_MAX - d) / base)
			return SECS_ERR_RANGE;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

/* A float as strtod reads it, the whole word; ERANGE matters only on overflow. */
static int number_f(const char *s, size_t n, int is_f4, double *out)
{
	char *copy = xstrndup(s, n), *end;
	double v;
	int rc = 0;

	errno = 0;
	v = is_f4 ? strtof(copy, &end) : strtod(copy, &end);
	if (end == copy || *end != '\0' || is_space(copy[0]))
		rc = SECS_ERR_SYNTAX;
	else if (errno == ERANGE && isinf(v))
		rc = SECS_ERR_RANGE;
	free(copy);
	*out = v;
	return rc;
}

/* One value word of a non-list item, appended to it. */
static int p_value(struct parser *p, struct secs_item *it, size_t at, size_t n)
{
	const struct fmtinfo *fi = info_of(it);
	const char *w = p->s + at;
	int neg = fi->kind != K_FLOAT && n > 1 && w[0] == '-';
	uint64_t u = 0;
	unsigned char byte;
	double f;
	int rc;

	if (fi->kind == K_FLOAT) {
		rc = number_f(w, n, it->fmt == SECS_F4, &f);
		if (rc == 0)
			rc = secs_add_float(it, f);
	} else if (it->fmt == SECS_BOOLEAN && (word_is(w, n, "TRUE") || word_is(w, n, "T") ||
					       word_is(w, n, "FALSE") || word_is(w, n, "F"))) {
		byte = w[0] == 'T' || w[0] == 't';
		rc = secs_add_bytes(it, &byte, 1);
	} else if ((rc = number_u(w + neg, n - neg, &u)) != 0) {
		/* not a number, or too big for any format */
	} else if (fi->kind == K_BYTES || fi->kind == K_TEXT) {
		byte = (unsigned char)u;
		rc = u > 0xFF || (neg && u) ? SECS_ERR_RANGE : secs_add_bytes(it, &byte, 1);
	} else if (neg) {
		rc = u > (uint64_t)INT64_MAX + 1 ? SECS_ERR_RANGE : secs_add_int(it, (int64_t)(0 - u));
	} else {
		rc = secs_add_uint(it, u);
	}
	if (rc == SECS_ERR_SYNTAX)
		return p_fail(p, rc, at, "'%.*s' is not a value of a %s item", (int)(n < 40 ? n : 40), w,
			      fi->name);
	if (rc)
		return p_fail(p, SECS_ERR_RANGE, at, "'%.*s' is out of range for %s",
			      (int)(n < 40 ? n : 40), w, fi->name);
	return 0;
}

/* A quoted string of an A or J: its bytes literally, no escapes. */
static int p_quoted(struct parser *p, struct secs_item *it)
{
	size_t at = p->pos, end;
	const char *q = memchr(p->s + at + 1, '"', p->len - at - 1);

	if (!q)
		return p_fail(p, SECS_ERR_SYNTAX, at, "string not closed");
	end = (size_t)(q - p->s);
	for (size_t i = at + 1; i < end; i++) {
		unsigned char c = (unsigned char)p->s[i];

		if (c < 0x20 || c == 0x7F)
			return p_fail(p, SECS_ERR_SYNTAX, i,
				      "control character 0x%02X in a string: write it as 0x%02X outside the quotes",
				      c, c);
	}
	secs_add_bytes(it, p->s + at + 1, end - at - 1);
	p->pos = end + 1;
	return 0;
}

/*
 * The size of an item is checked as it grows (its data can only add to
 * the message) and, exactly, when it closes: the encoded size is the sum
 * of every item's header and data, the same figure decode limits.
 */
static int p_size(struct parser *p, const struct secs_item *it, size_t at, int closing)
{
	size_t data = it->fmt == SECS_L ? 0 : it->len;
	size_t total = p->bytes + data + (closing ? 1 + len_bytes(it->len) : 0);

	if (it->len > SECS_LEN_MAX)
		return p_fail(p, SECS_ERR_TOOLONG, at, "%s item holds more than %u %s",
			      info_of(it)->name, SECS_LEN_MAX, it->fmt == SECS_L ? "items" : "bytes");
	if (total > p->lim.max_bytes)
		return p_fail(p, SECS_ERR_SIZE, at, "message would be larger than the limit of %zu bytes",
			      p->lim.max_bytes);
	if (closing)
		p->bytes = total;
	return 0;
}

/* The values of a non-list item up to and including its '>'. */
static int p_values(struct parser *p, struct secs_item *it, size_t open_at)
{
	size_t at, n;
	int rc;

	for (;;) {
		skip_space(p);
		at = p->pos;
		if (at == p->len)
			return p_fail(p, SECS_ERR_SYNTAX, open_at, "<%s not closed", info_of(it)->name);
		if (p->s[at] == '>') {
			p->pos++;
			return 0;
		}
		if (p->s[at] == '"' && info_of(it)->kind == K_TEXT)
			rc = p_quoted(p, it);
		else if ((n = word(p)) == 0)
			rc = p_fail(p, SECS_ERR_SYNTAX, at, "unexpected '%c' in a %s item", p->s[at],
				    info_of(it)->name);
		else
			rc = p_value(p, it, at, n);
		if (rc == 0)
			rc = p_size(p, it, at, 0);
		if (rc)
			return rc;
	}
}

/* An optional [n] after a format name. */
static int p_count(struct parser *p, int *has, size_t *want, size_t *at)
{
	size_t n;
	uint64_t v;
	int rc;

	skip_space(p);
	*has = 0;
	if (p->pos == p->len || p->s[p->pos] != '[')
		return 0;
	*at = p->pos++;
	skip_space(p);
	n = word(p);
	rc = n ? number_u(p->s + p->pos - n, n, &v) : SECS_ERR_SYNTAX;
	if (rc == 0 && v > SECS_LEN_MAX)
		rc = SECS_ERR_RANGE;
	skip_space(p);
	if (rc || p->pos == p->len || p->s[p->pos] != ']')
		return p_fail(p, rc == SECS_ERR_RANGE ? rc : SECS_ERR_SYNTAX, *at,
			      "a count is [n], n a number up to %u", SECS_LEN_MAX);
	p->pos++;
	*has = 1;
	*want = (size_t)v;
	return 0;
}

static int p_check_count(struct parser *p, const struct secs_item *it, int has, size_t want,
			 size_t at)
{
	if (has && secs_count(it) != want)
		return p_fail(p, SECS_ERR_COUNT, at, "[%zu] but the %s item has %zu", want,
			      info_of(it)->name, secs_count(it));
	return 0;
}

/* Hang a new item in the open list, or make it the root. */
static int p_attach(struct parser *p, struct secs_item *it, struct secs_item **root, size_t at)
{
	struct secs_item *list = p->depth ? p->st[p->depth - 1].list : NULL;

	if (!list) {
		*root = it;
		return 0;
	}
	list_add(list, it);
	return p_size(p, list, at, 0);
}

/* An item from its '<': a list is left open on the stack, anything else is read whole. */
static int p_item(struct parser *p, struct secs_item **root)
{
	size_t open_at = p->pos, want = 0, want_at = 0, n;
	const struct fmtinfo *fi;
	struct secs_item *it;
	int has, rc;

	p->pos++;
	skip_space(p);
	n = word(p);
	fi = info_by_name(p->s + p->pos - n, n);
	if (n == 0)
		return p_fail(p, SECS_ERR_SYNTAX, p->pos, "expected a format name after '<'");
	if (!fi)
		return p_fail(p, SECS_ERR_SYNTAX, p->pos - n, "unknown format '%.*s'",
			      (int)(n < 40 ? n : 40), p->s + p->pos - n);
	if (p->depth + 1 > p->lim.max_depth)
		return p_fail(p, SECS_ERR_DEPTH, open_at, "item nested deeper than %zu",
			      p->lim.max_depth);
	if (++p->items > p->lim.max_items)
		return p_fail(p, SECS_ERR_ITEMS, open_at, "more than %zu items", p->lim.max_items);
	if ((rc = p_count(p, &has, &want, &want_at)) != 0)
		return rc;
	it = item_new(fi->f, 0);
	if ((rc = p_attach(p, it, root, open_at)) != 0)
		return rc;
	if (fi->kind != K_LIST) {
		if ((rc = p_values(p, it, open_at)) != 0 ||
		    (rc = p_check_count(p, it, has, want, want_at)) != 0)
			return rc;
		return p_size(p, it, open_at, 1);
	}
	if (p->depth == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 16;
		p->st = xrealloc(p->st, p->cap * sizeof *p->st);
	}
	p->st[p->depth++] = (struct pframe){ it, open_at, want, want_at, has };
	return 0;
}

static int p_close(struct parser *p)
{
	struct pframe *f = &p->st[p->depth - 1];
	int rc;

	p->pos++;
	if ((rc = p_check_count(p, f->list, f->has_want, f->want, f->want_at)) != 0 ||
	    (rc = p_size(p, f->list, f->open_at, 1)) != 0)
		return rc;
	p->depth--;
	return 0;
}

/* Optional item, optional '.', then nothing but whitespace. */
static int p_body(struct parser *p, struct secs_item **root)
{
	int rc = 0;

	skip_space(p);
	if (p->pos < p->len && p->s[p->pos] == '<') {
		do {
			if (p->depth > 0) {
				skip_space(p);
				if (p->pos < p->len && p->s[p->pos] == '>') {
					rc = p_close(p);
					continue;
				}
				if (p->pos == p->len || p->s[p->pos] != '<')
					return p_fail(p, SECS_ERR_SYNTAX, p->pos == p->len ?
						      p->st[p->depth - 1].open_at : p->pos,
						      p->pos == p->len ? "<L not closed" : "expected '<' or '>'");
			}
			rc = p_item(p, root);
		} while (rc == 0 && p->depth > 0);
		if (rc)
			return rc;
		skip_space(p);
	}
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		skip_space(p);
	}
	if (p->pos < p->len)
		return p_fail(p, *root ? SECS_ERR_TRAILING : SECS_ERR_SYNTAX, p->pos,
			      *root ? "text after the top item" : "expected '<'");
	return 0;
}

static void p_init(struct parser *p, const char *text, size_t len, const struct secs_limits *lim,
		   struct secs_error *err)
{
	memset(p, 0, sizeof *p);
	p->s = text;
	p->len = len;
	p->lim = lim ? *lim : default_limits;
	p->err = err;
	err_clear(err);
}

static int p_finish(struct parser *p, int rc, struct secs_item *root, struct secs_item **out)
{
	free(p->st);
	if (rc) {
		secs_free(root);
		root = NULL;
	}
	*out = root;
	return rc;
}

int secs_sml_parse(const char *text, size_t len, const struct secs_limits *lim,
		   struct secs_item **out, struct secs_error *err)
{
	struct parser p;
	struct secs_item *root = NULL;
	int rc;

	p_init(&p, text, len, lim, err);
	rc = p_body(&p, &root);
	return p_finish(&p, rc, root, out);
}

/* 1 to 4 decimal digits from s[*i], or -1: stream and function are small. */
static long small_decimal(const char *s, size_t n, size_t *i)
{
	size_t start = *i;
	long v = 0;

	while (*i < n && *i - start < 4 && s[*i] >= '0' && s[*i] <= '9')
		v = v * 10 + (s[(*i)++] - '0');
	return *i == start ? -1 : v;
}

/* "S<stream>F<function>" in decimal, then an optional W, as words of their own. */
static int p_header(struct parser *p, unsigned *stream, unsigned *function, int *wbit)
{
	size_t at, n, i = 1;
	const char *w;
	long s = -1, f = -1;

	skip_space(p);
	at = p->pos;
	n = word(p);
	w = p->s + at;
	if (n > 0 && (w[0] == 'S' || w[0] == 's'))
		s = small_decimal(w, n, &i);
	if (s >= 0 && i < n && (w[i] == 'F' || w[i] == 'f')) {
		i++;
		f = small_decimal(w, n, &i);
	}
	if (s < 0 || f < 0 || i != n)
		return p_fail(p, SECS_ERR_SYNTAX, at, "expected SnFn, e.g. S1F13");
	if (s > 127 || f > 255)
		return p_fail(p, SECS_ERR_RANGE, at, "stream above 127 or function above 255");
	*stream = (unsigned)s;
	*function = (unsigned)f;
	skip_space(p);
	at = p->pos;
	n = word(p);
	*wbit = word_is(p->s + at, n, "W");
	if (n && !*wbit)
		return p_fail(p, SECS_ERR_SYNTAX, at, "expected W, an item or the end");
	return 0;
}

int secs_sml_parse_message(const char *text, size_t len, const struct secs_limits *lim,
			   unsigned *stream, unsigned *function, int *wbit,
			   struct secs_item **body, struct secs_error *err)
{
	struct parser p;
	struct secs_item *root = NULL;
	int rc;

	p_init(&p, text, len, lim, err);
	rc = p_header(&p, stream, function, wbit);
	if (rc == 0)
		rc = p_body(&p, &root);
	return p_finish(&p, rc, root, body);
}

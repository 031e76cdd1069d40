/*
 * secs.h: SECS-II messages (SEMI E5): the item tree, its binary encoding
 * (encode, and a strict decode bounded by struct secs_limits) and SML,
 * the text engineers read in logs (format, and a strict bounded parse).
 * It knows nothing of HSMS framing: a body here is the bytes after the
 * 10-byte header.
 *
 * Ownership, for the whole API: an item belongs to whoever holds the
 * pointer and is freed with secs_free, which frees its whole subtree.
 * secs_list and secs_append steal the items they are given (even when
 * they fail); every other function borrows its item arguments.  Every
 * function that returns a new item, byte buffer or string gives the
 * caller one to free (items with secs_free, the rest with free).
 * Pointers returned by accessors point into the item and live as long
 * as it does.  Accessors are safe on NULL (they fail, or return NULL or
 * 0), so that lookups can be chained: secs_get_uint(secs_child(body, 1),
 * ...) fails cleanly whatever shape the body has.  No item means an
 * empty body (a header-only message): encode, decode, format and parse
 * all treat NULL that way.
 */
#ifndef KERF_SECS_H
#define KERF_SECS_H

#include <stddef.h>
#include <stdint.h>

/* Format codes as E5 numbers them (octal); the wire byte is code << 2. */
enum secs_format {
	SECS_L = 000,       /* list; its length counts items */
	SECS_B = 010,       /* binary bytes */
	SECS_BOOLEAN = 011, /* bytes; non-zero is true */
	SECS_A = 020,       /* ASCII text */
	SECS_J = 021,       /* JIS-8 text */
	SECS_I8 = 030,
	SECS_I1 = 031,
	SECS_I2 = 032,
	SECS_I4 = 034,
	SECS_F8 = 040,
	SECS_F4 = 044,
	SECS_U8 = 050,
	SECS_U1 = 051,
	SECS_U2 = 052,
	SECS_U4 = 054,
};

/* The longest item E5 can encode: 3 length bytes (items of a list, else bytes). */
#define SECS_LEN_MAX 0xFFFFFFu

struct secs_item;

/*
 * Error codes: every failure has its own, so a caller (or a test) can
 * tell a hostile length claim from a truncated message.
 */
enum secs_errcode {
	SECS_OK = 0,
	SECS_ERR_TRUNCATED,   /* decode: the bytes end inside an item */
	SECS_ERR_FORMAT,      /* decode: unknown format code */
	SECS_ERR_LENBYTES,    /* decode: a format byte with 0 length bytes */
	SECS_ERR_ELEMSIZE,    /* decode: data length not a multiple of the element size */
	SECS_ERR_TRAILING,    /* bytes (or text) after the top item */
	SECS_ERR_CLAIM,       /* decode: a list claims more items than the bytes left can hold */
	SECS_ERR_DEPTH,       /* nesting deeper than limits.max_depth */
	SECS_ERR_ITEMS,       /* more items than limits.max_items */
	SECS_ERR_SIZE,        /* message larger than limits.max_bytes */
	SECS_ERR_TOOLONG,     /* an item longer than SECS_LEN_MAX */
	SECS_ERR_SYNTAX,      /* SML: not SML */
	SECS_ERR_RANGE,       /* a value out of range for its format or for the caller */
	SECS_ERR_COUNT,       /* SML: a [n] count that does not match */
	SECS_ERR_TYPE,        /* accessor: the item has another format or shape */
	SECS_ERR_INDEX,       /* accessor: index out of bounds */
};

#define SECS_MSG_MAX 160

/*
 * What went wrong and where: offset is a byte offset into the encoded
 * body (decode, encode) or into the SML text (parse).  msg says both in
 * words, e.g. "list at byte 0 claims 16777215 items but only 16 bytes
 * follow".  Functions that take a struct secs_error * fill it on every
 * call (code SECS_OK on success); passing NULL is allowed.
 */
struct secs_error {
	enum secs_errcode code;
	size_t offset;
	char msg[SECS_MSG_MAX];
};

/*
 * Bounds on what decode and parse build, checked before anything is
 * allocated for it, so that a tree takes at most about max_bytes plus
 * 100 bytes an item whatever the input claims (40 MiB with the
 * defaults).  max_depth counts items from the top one (a bare <U4 1>
 * has depth 1); items count lists too; max_bytes is the encoded body
 * size.  Defaults (SECS_LIMITS_DEFAULT, and what a NULL limits pointer
 * means): depth 64, 262144 items, 16 MiB.  Real messages carry bulk
 * data as arrays (one item), so the item limit is rarely what a real
 * tool meets.
 */
struct secs_limits {
	size_t max_depth;
	size_t max_items;
	size_t max_bytes;
};

#define SECS_LIMITS_DEFAULT { 64, 262144, 16777216 }

/* "U4", "BOOLEAN", ...; NULL for a value that is no format. */
const char *secs_format_name(enum secs_format f);
/* A short description of an error code ("truncated", "depth", ...). */
const char *secs_strerror(enum secs_errcode code);

/* ---- Building ---- */

/*
 * A list of the n items that follow (stolen).  If any of them is NULL
 * (a builder that failed), the others are freed and the result is NULL,
 * so that a failure anywhere in a nested builder expression shows at
 * the top.
 */
struct secs_item *secs_list(size_t n, ...);
/* Add child at the end of list.  Steals child.  0, or SECS_ERR_TYPE
 * when list is not a list or child is NULL (child is freed). */
int secs_append(struct secs_item *list, struct secs_item *child);

/* One-element items. */
struct secs_item *secs_u1(uint8_t v);
struct secs_item *secs_u2(uint16_t v);
struct secs_item *secs_u4(uint32_t v);
struct secs_item *secs_u8(uint64_t v);
struct secs_item *secs_i1(int8_t v);
struct secs_item *secs_i2(int16_t v);
struct secs_item *secs_i4(int32_t v);
struct secs_item *secs_i8(int64_t v);
struct secs_item *secs_f4(float v);
struct secs_item *secs_f8(double v);
struct secs_item *secs_binary(uint8_t v);
struct secs_item *secs_boolean(int v);  /* 1 when v is non-zero */
/* An ID as equipment sends one: U1, U2, U4 or U8, the smallest that holds v. */
struct secs_item *secs_id(uint64_t v);
/* A (text without its NUL); secs_ascii_n takes len bytes, NULs included. */
struct secs_item *secs_ascii(const char *s);
struct secs_item *secs_ascii_n(const char *s, size_t len);

/*
 * Arrays: secs_empty(f) is an item of format f with no elements (or an
 * empty list); the secs_add_* calls append one element each (or, for
 * secs_add_bytes, len bytes), checked against the format: 0,
 * SECS_ERR_TYPE (another kind of format) or SECS_ERR_RANGE (the value
 * does not fit).  secs_add_uint and secs_add_int work on every integer
 * format, secs_add_float on F4 (rounded to float; a finite value too
 * large for it is out of range) and F8, secs_add_bytes on B, BOOLEAN, A
 * and J.  secs_raw makes a non-list item from its data as on the wire
 * (big-endian numbers); NULL when f is L or not a format, or when len
 * is not a multiple of the element size.  Building does not stop at
 * SECS_LEN_MAX: secs_encode refuses what E5 cannot carry.
 */
struct secs_item *secs_empty(enum secs_format f);
int secs_add_uint(struct secs_item *it, uint64_t v);
int secs_add_int(struct secs_item *it, int64_t v);
int secs_add_float(struct secs_item *it, double v);
int secs_add_bytes(struct secs_item *it, const void *data, size_t len);
struct secs_item *secs_raw(enum secs_format f, const void *data, size_t len);

/* Free an item and everything in it.  Safe on NULL. */
void secs_free(struct secs_item *it);

/* ---- Reading ---- */

/* 1 when it is non-NULL and has format f. */
int secs_is(const struct secs_item *it, enum secs_format f);
/* The format; it must not be NULL. */
enum secs_format secs_format_of(const struct secs_item *it);
/* Items of a list, elements of an array (bytes of A, B, J); 0 for NULL. */
size_t secs_count(const struct secs_item *it);
/* Item i of a list; NULL when it is not a list or i is out of bounds. */
struct secs_item *secs_child(const struct secs_item *it, size_t i);

/*
 * A number as real hosts must accept it: a one-element item of any
 * integer format (U1..U8, I1..I8), or an A holding decimal digits only
 * (secs_get_int: with an optional leading '-').  The value must lie in
 * [0, max] (or [min, max]).  0, or SECS_ERR_TYPE (not such an item),
 * SECS_ERR_RANGE (a number outside the range).
 */
int secs_get_uint(const struct secs_item *it, uint64_t max, uint64_t *out);
int secs_get_int(const struct secs_item *it, int64_t min, int64_t max, int64_t *out);
/* Element i of an integer array (or of F4/F8 for secs_float_at): 0,
 * SECS_ERR_TYPE, SECS_ERR_INDEX or SECS_ERR_RANGE (a negative I for
 * secs_uint_at, a U8 over INT64_MAX for secs_int_at). */
int secs_uint_at(const struct secs_item *it, size_t i, uint64_t *out);
int secs_int_at(const struct secs_item *it, size_t i, int64_t *out);
int secs_float_at(const struct secs_item *it, size_t i, double *out);
/* The one byte of a one-element B: 0 or SECS_ERR_TYPE. */
int secs_get_byte(const struct secs_item *it, uint8_t *out);
/* The one value of a one-element BOOLEAN, as 0 or 1: 0 or SECS_ERR_TYPE. */
int secs_get_bool(const struct secs_item *it, int *out);
/*
 * The text of an A, NUL-terminated (it may hold NULs of its own: *len,
 * when len is not NULL, is its true length); NULL when it is not an A.
 */
const char *secs_get_str(const struct secs_item *it, size_t *len);
/* The data of any non-list item as on the wire; NULL for a list or NULL. */
const unsigned char *secs_data(const struct secs_item *it, size_t *len);

/*
 * 1 when a and b are the same tree (both NULL included).  Floats
 * compare by their bits, except that any two NaNs are equal: SML prints
 * every NaN as nan, so a NaN's payload does not survive text.
 */
int secs_equal(const struct secs_item *a, const struct secs_item *b);

/* ---- Binary ---- */

/*
 * Encode it (NULL: an empty body) into a new buffer *out of *len bytes,
 * each length in the fewest bytes that hold it.  0, or SECS_ERR_TOOLONG
 * for an item longer than SECS_LEN_MAX (*out is then NULL).
 */
int secs_encode(const struct secs_item *it, unsigned char **out, size_t *len,
		struct secs_error *err);

/*
 * Decode a whole body of len bytes into *out: NULL for an empty body.
 * Strict: exactly one top item, nothing after it, every length in
 * bounds.  Lengths need not be in their shortest form.  lim may be NULL
 * (defaults).  0, or an error code with *out NULL and err filled.
 */
int secs_decode(const void *buf, size_t len, const struct secs_limits *lim,
		struct secs_item **out, struct secs_error *err);

/* ---- SML ---- */

/*
 * SML text, e.g. <L [3] <U4 1> <A "LOT7"> <B 0x00>>.  One line by
 * default, fit for a log record; SECS_SML_INDENT puts each item on a
 * line of its own, indented two spaces per level.  Lists show their
 * count; B and BOOLEAN show bytes as 0xNN (BOOLEAN 0 and 1 as FALSE and
 * TRUE); floats print with the fewest digits that read back to the
 * same bits (nan, inf, -inf for the special values).  A and J text is
 * quoted, and every byte that is not printable ASCII, or is '"', is
 * written outside the quotes as 0xNN: "a\nb" is <A "a" 0x0A "b">; the
 * quotes hold no escapes.  NULL gives "".  Floats are written and read
 * in the C locale's notation, which kerf never changes (no setlocale).
 */
#define SECS_SML_INDENT 1u
/*
 * SECS_SML_BRIEF: a non-list item of more than SECS_SML_BRIEF_MAX
 * elements (bytes for A, B, J) is written as its format and count alone,
 * <B [4096] ...>, so that a trace of die images keeps its lines small.
 * Such text does not parse back.
 */
#define SECS_SML_BRIEF 2u
#define SECS_SML_BRIEF_MAX 64
char *secs_sml(const struct secs_item *it, unsigned flags);
/* "S6F11 W <L ...>": stream, function, " W" when wbit is set, the body. */
char *secs_sml_message(unsigned stream, unsigned function, int wbit,
		       const struct secs_item *body, unsigned flags);

/*
 * Parse SML text (len bytes, NUL not needed) into *out; whitespace
 * only means no item (*out NULL).  Accepted: format names in any case,
 * BOOL for BOOLEAN, an optional [n] after the name (it must match the
 * count), A and J as quoted strings and byte numbers, B and BOOLEAN as
 * numbers 0..255 (BOOLEAN also TRUE/FALSE/T/F), integers in decimal or
 * 0x hex, floats as strtod reads them, and a '.' after the top item.
 * Every value is checked against its format, and lim (NULL: defaults)
 * bounds depth, items and encoded size as for decode.  0, or an error
 * code with *out NULL and err naming the line and column.
 */
int secs_sml_parse(const char *text, size_t len, const struct secs_limits *lim,
		   struct secs_item **out, struct secs_error *err);
/* The same for a whole message, "S1F13 W <L ...>." (stream <= 127,
 * function <= 255; no item means a header-only message). */
int secs_sml_parse_message(const char *text, size_t len, const struct secs_limits *lim,
			   unsigned *stream, unsigned *function, int *wbit,
			   struct secs_item **body, struct secs_error *err);

#endif

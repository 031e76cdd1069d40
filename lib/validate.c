/*
 * validate.c: see validate.h.
 *
 * The hot path is one json_loadb per line and a handful of hash lookups
 * in the parsed object, or for a die event one pass over a copy of the
 * line (die_fields_scan_event) and the image's decoding and hash;
 * everything else (the per-run state, the image buffer, the copy) is
 * allocated once and reused, so the cost per line stays close to
 * jansson's own, and for a die well under it.  jansson's allocator is
 * wrapped to count the bytes it holds: a parse that would go past a
 * budget fails, because a short line such as [[],[],...] costs jansson
 * 40 to 70 times its length, and the line limit alone would not bound
 * memory.
 */
#include "util.h"
#include "log.h"
#include "line.h"
#include "event.h"
#include "cli.h"
#include "base64.h"
#include "validate.h"

#include <stddef.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/*
 * jansson's allocator.  While a line is parsed, jansson allocates from an
 * arena that is reset before the next line: a parse makes one small
 * allocation per value, key and hash table, and malloc/free for those
 * cost about a seventh of the time per line.  The arena is also the
 * memory budget: a parse that needs more than the budget fails with
 * jansson's out-of-memory error.  Outside a parse, and for memory that
 * is not the arena's, malloc and free.
 */

/* Under AddressSanitizer, memory of the arena not handed out is poisoned,
 * so a use of the last line's values after the reset is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>

#include "banned.h"
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_FIRST (256 * 1024)   /* kept between lines */
#define ARENA_BIG (64 * 1024)      /* larger blocks come from malloc */
#define ARENA_BIGS 64              /* at most this many of them at once */

struct chunk {
	struct chunk *next;
	size_t size, used;
	max_align_t data[];
};

static struct {
	struct chunk *head;    /* the chunk being filled; the first one is last */
	size_t total;          /* bytes in chunks and big blocks */
	size_t budget;         /* most bytes a parse may take */
	int on;                /* a parse is running */
	int failed;            /* an allocation failed during it */
	/* Big blocks (a long string and the buffer it is read into) are
	 * malloc'ed so that a buffer that grows does not leave its old
	 * copies in the arena; counted against the budget until freed. */
	void *big[ARENA_BIGS];
	size_t big_size[ARENA_BIGS];
	int nbig;
} arena;

static void *big_alloc(size_t n)
{
	void *p;
	if (arena.nbig == ARENA_BIGS || arena.total + n > arena.budget || !(p = malloc(n))) {
		arena.failed = 1;
		return NULL;
	}
	arena.big[arena.nbig] = p;
	arena.big_size[arena.nbig++] = n;
	arena.total += n;
	return p;
}

static void *jmalloc(size_t n)
{
	struct chunk *c = arena.head;
	if (!arena.on)
		return malloc(n);
	if (n >= ARENA_BIG)
		return big_alloc(n);
	n = (n + 15) & ~(size_t)15;
	if (!c || c->size - c->used < n) {
		size_t size = ARENA_FIRST;
		if (c && size < c->size * 2)
			size = c->size * 2;
		if (arena.total + size > arena.budget || !(c = malloc(sizeof *c + size))) {
			/* jansson does not always say why a parse failed. */
			arena.failed = 1;
			return NULL;
		}
		c->size = size;
		c->used = 0;
		POISON(c->data, size);
		c->next = arena.head;
		arena.head = c;
		arena.total += size;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	UNPOISON(p, n);
	return p;
}

static void jfree(void *p)
{
	if (!p)
		return;
	for (struct chunk *c = arena.head; c; c = c->next)
		if ((char *)p >= (char *)c->data && (char *)p < (char *)c->data + c->size)
			return;
	for (int i = arena.nbig - 1; i >= 0; i--) {
		if (arena.big[i] == p) {
			arena.total -= arena.big_size[i];
			arena.nbig--;
			arena.big[i] = arena.big[arena.nbig];
			arena.big_size[i] = arena.big_size[arena.nbig];
			break;
		}
	}
	free(p);
}

/* Before a parse: nothing in the arena is in use any more. */
static void arena_reset(size_t budget)
{
	while (arena.head && arena.head->next) {
		struct chunk *c = arena.head;
		arena.head = c->next;
		arena.total -= c->size;
		UNPOISON(c->data, c->size);
		free(c);
	}
	if (arena.head && arena.head->size > ARENA_FIRST) {
		arena.total -= arena.head->size;
		UNPOISON(arena.head->data, arena.head->size);
		free(arena.head);
		arena.head = NULL;
	}
	if (arena.head) {
		POISON(arena.head->data, arena.head->used);
		arena.head->used = 0;
	}
	arena.budget = budget;
}

static void arena_free(void)
{
	arena_reset(0);
	if (arena.head)
		UNPOISON(arena.head->data, arena.head->size);
	free(arena.head);
	arena.head = NULL;
	arena.total = 0;
}

/* ------------------------------------------------------------------ */
/* per-run state */

struct missing {
	uint64_t lo, hi;
};

struct validate_run {
	char id[VALIDATE_RUN_MAX + 1];
	size_t idlen;
	uint64_t stamp;       /* for least-recently-seen eviction */
	int seen;             /* a seq was tracked */
	uint64_t last;        /* the highest seq seen */
	int started, ended;
	uint64_t start_seq, end_seq;
	/* geometry from run_start */
	long long cols, rows, die_w, die_h;
	double pitch_x, pitch_y, pixel_um, radius_um;
	int nmiss;
	struct missing miss[VALIDATE_MISSING];
};

static struct validate_run *find_run(struct validate *v, const char *id, size_t len)
{
	struct validate_run *r = v->cur;
	int free_slot = -1, oldest = -1;

	if (!(r && r->idlen == len && !memcmp(r->id, id, len))) {
		r = NULL;
		for (int i = 0; i < VALIDATE_RUNS; i++) {
			struct validate_run *x = v->runs[i];
			if (!x) {
				if (free_slot < 0)
					free_slot = i;
				continue;
			}
			if (x->idlen == len && !memcmp(x->id, id, len)) {
				r = x;
				break;
			}
			if (oldest < 0 || x->stamp < v->runs[oldest]->stamp)
				oldest = i;
		}
	}
	if (!r) {
		int slot = free_slot;
		if (slot < 0) {
			/* Forgetting a run costs its later lines a no_run_start
			 * reject; only a stream of many interleaved runs gets here. */
			slot = oldest;
			log_msg(LOG_WARN, json_pack("{s:s%}", "forgotten", v->runs[slot]->id,
						    v->runs[slot]->idlen),
				"more than %d runs at once: forgetting the least recent", VALIDATE_RUNS);
			memset(v->runs[slot], 0, sizeof *v->runs[slot]);
		} else {
			v->runs[slot] = xcalloc(1, sizeof *v->runs[slot]);
		}
		r = v->runs[slot];
		memcpy(r->id, id, len);
		r->id[len] = '\0';
		r->idlen = len;
	}
	r->stamp = ++v->clock;
	v->cur = r;
	return r;
}

static void add_missing(struct validate_run *r, uint64_t lo, uint64_t hi)
{
	if (r->nmiss == VALIDATE_MISSING) {
		/* The oldest gap is forgotten: a late arrival from it will
		 * look like a duplicate rather than out of order. */
		memmove(&r->miss[0], &r->miss[1], (VALIDATE_MISSING - 1) * sizeof r->miss[0]);
		r->nmiss--;
	}
	r->miss[r->nmiss].lo = lo;
	r->miss[r->nmiss].hi = hi;
	r->nmiss++;
}

/* Remove seq from the missing ranges; 1 if it was missing. */
static int take_missing(struct validate_run *r, uint64_t seq)
{
	for (int i = 0; i < r->nmiss; i++) {
		struct missing *m = &r->miss[i];
		if (seq < m->lo || seq > m->hi)
			continue;
		if (m->lo == m->hi) {
			memmove(m, m + 1, (size_t)(r->nmiss - i - 1) * sizeof *m);
			r->nmiss--;
		} else if (seq == m->lo) {
			m->lo++;
		} else if (seq == m->hi) {
			m->hi--;
		} else {
			uint64_t hi = m->hi;
			m->hi = seq - 1;
			add_missing(r, seq + 1, hi);
		}
		return 1;
	}
	return 0;
}

static int is_derived(enum event_type t)
{
	return t == EV_DEFECT || t == EV_DIE_DONE || t == EV_WAFER_SUMMARY;
}

/*
 * Track seq in run r.  Events that kerf-detect derives from another
 * event carry that event's seq, so several of them may share the last
 * seq (and the first may carry the seq of a consumed die).
 */
static enum validate_seq seq_track(struct validate_run *r, uint64_t seq, enum event_type t,
				   struct validate_result *res)
{
	if (!r->seen) {
		r->seen = 1;
		r->last = seq;
		return VSEQ_OK;
	}
	if (seq > r->last) {
		enum validate_seq st = VSEQ_OK;
		if (seq - r->last > 1) {
			res->gap_first = r->last + 1;
			res->gap_last = seq - 1;
			add_missing(r, r->last + 1, seq - 1);
			st = VSEQ_GAP;
		}
		r->last = seq;
		return st;
	}
	if (seq == r->last && is_derived(t))
		return VSEQ_OK;
	return take_missing(r, seq) ? VSEQ_OUT_OF_ORDER : VSEQ_DUPLICATE;
}

/* ------------------------------------------------------------------ */
/* results */

static enum validate_verdict reject(struct validate_result *res, const char *reason,
				    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum validate_verdict reject(struct validate_result *res, const char *reason,
				    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->msg, sizeof res->msg, fmt, ap);
	va_end(ap);
	res->reason = reason;
	res->verdict = VALIDATE_REJECTED;
	return res->verdict;
}

/* Field checks return 0, or -1 having filled res. */
#define FAIL(...) (reject(res, __VA_ARGS__), -1)

/* The member k into *x, or -1 having filled res. */
static int need(const struct event_view *ev, const char *k, struct event_member *x,
		struct validate_result *res)
{
	if (!event_member(ev, k, x))
		return FAIL("missing_field", "missing field '%s'", k);
	return 0;
}

static int has(const struct event_view *ev, const char *k)
{
	struct event_member x;
	return event_member(ev, k, &x);
}

static int get_int(const struct event_view *ev, const char *k, long long min, long long max,
		   long long *out, struct validate_result *res)
{
	struct event_member x;
	long long n;
	if (need(ev, k, &x, res))
		return -1;
	if (x.kind != EVK_INTEGER)
		return FAIL("bad_field", "field '%s' must be an integer", k);
	n = x.integer;
	if (n < min || n > max)
		return FAIL("out_of_range", "field '%s' is %lld, outside %lld..%lld", k, n, min, max);
	if (out)
		*out = n;
	return 0;
}

static int num_value(const struct event_member *x, const char *k, double *out,
		     struct validate_result *res)
{
	if (x->kind != EVK_INTEGER && x->kind != EVK_REAL)
		return FAIL("bad_field", "field '%s' must be a number", k);
	*out = x->number;
	return 0;
}

static int get_num(const struct event_view *ev, const char *k, double min, double max, double *out,
		   struct validate_result *res)
{
	struct event_member x;
	double d;
	if (need(ev, k, &x, res) || num_value(&x, k, &d, res))
		return -1;
	if (!(d >= min && d <= max))
		return FAIL("out_of_range", "field '%s' is %.15g, outside %.15g..%.15g", k, d, min, max);
	if (out)
		*out = d;
	return 0;
}

static int get_bool(const struct event_view *ev, const char *k, struct validate_result *res)
{
	struct event_member x;
	if (need(ev, k, &x, res))
		return -1;
	if (x.kind != EVK_BOOL)
		return FAIL("bad_field", "field '%s' must be true or false", k);
	return 0;
}

/* A string; with idlen, a non-empty one of at most VALIDATE_RUN_MAX bytes. */
static int get_str(const struct event_view *ev, const char *k, int id, const char **out,
		   struct validate_result *res)
{
	struct event_member x;
	if (need(ev, k, &x, res))
		return -1;
	if (x.kind != EVK_STRING)
		return FAIL("bad_field", "field '%s' must be a string", k);
	if (id && (x.len == 0 || x.len > VALIDATE_RUN_MAX))
		return FAIL("bad_field", "field '%s' must be a string of 1 to %d bytes", k,
			    VALIDATE_RUN_MAX);
	if (out)
		*out = x.str;
	return 0;
}

static int enum_value(const struct event_member *x, const char *k, const char *const *names,
		      const char *list, struct validate_result *res)
{
	const char *s;
	if (x->kind != EVK_STRING)
		return FAIL("bad_field", "field '%s' must be a string", k);
	s = x->str;
	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i]))
			return 0;
	return FAIL("bad_field", "field '%s' is '%.40s', not one of %s", k, s, list);
}

static int get_enum(const struct event_view *ev, const char *k, const char *const *names,
		    const char *list, struct validate_result *res)
{
	struct event_member x;
	if (need(ev, k, &x, res))
		return -1;
	return enum_value(&x, k, names, list, res);
}

/* An array of n numbers (integers only with ints). */
static int get_array(const struct event_view *ev, const char *k, size_t n, int ints, double *out,
		     struct validate_result *res)
{
	struct event_member x;
	if (need(ev, k, &x, res))
		return -1;
	if (x.kind != EVK_ARRAY || json_array_size(x.json) != n)
		return FAIL("bad_field", "field '%s' must be an array of %zu %s", k, n,
			    ints ? "integers" : "numbers");
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(x.json, i);
		if (ints ? !json_is_integer(e) : !json_is_number(e))
			return FAIL("bad_field", "field '%s' must be an array of %zu %s", k, n,
				    ints ? "integers" : "numbers");
		out[i] = json_number_value(e);
	}
	return 0;
}

static int is_hex16(const char *s, size_t len)
{
	if (len != 16)
		return 0;
	for (int i = 0; i < 16; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* ------------------------------------------------------------------ */
/* ids: the same bytes event_id* hash, built without allocating */

struct idbuf {
	char b[3 * VALIDATE_RUN_MAX + 128];
	size_t n;
};

static void id_str(struct idbuf *ib, const char *s, size_t len)
{
	memcpy(ib->b + ib->n, s, len);
	ib->n += len;
}

static void id_int(struct idbuf *ib, long long v)
{
	char tmp[24];
	int i = sizeof tmp;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[--i] = '-';
	id_str(ib, tmp + i, sizeof tmp - (size_t)i);
}

/* A string member of at most VALIDATE_RUN_MAX bytes, else NULL. */
static const char *short_str(const struct event_view *ev, const char *k, size_t *len)
{
	struct event_member x;
	event_member(ev, k, &x);
	if (x.kind != EVK_STRING || x.len > VALIDATE_RUN_MAX)
		return NULL;
	*len = x.len;
	return x.str;
}

static int int_member(const struct event_view *ev, const char *k, long long *out)
{
	struct event_member x;
	event_member(ev, k, &x);
	if (x.kind != EVK_INTEGER)
		return 0;
	*out = x.integer;
	return 1;
}

/*
 * The id the event should carry.  0 when it cannot be computed because
 * an identity field is missing or malformed; the field checks reject
 * such a line later.
 */
static int expected_id(const struct event_view *ev, enum event_type t, const char *run, size_t runlen,
		       uint64_t seq, uint64_t *id)
{
	struct idbuf ib;
	const char *w;
	size_t wlen;
	long long col, row, index;

	ib.n = 0;
	id_str(&ib, run, runlen);
	id_str(&ib, "\n", 1);
	switch (t) {
	case EV_DEFECT:
		if (!(w = short_str(ev, "wafer", &wlen)) || !int_member(ev, "col", &col) ||
		    !int_member(ev, "row", &row) || !int_member(ev, "index", &index))
			return 0;
		id_str(&ib, "defect\n", 7);
		id_str(&ib, w, wlen);
		id_str(&ib, "\n", 1);
		id_int(&ib, col);
		id_str(&ib, "\n", 1);
		id_int(&ib, row);
		id_str(&ib, "\n", 1);
		id_int(&ib, index);
		break;
	case EV_DIE_DONE:
		id_str(&ib, "die_done\n", 9);
		id_int(&ib, (long long)seq);
		break;
	case EV_WAFER_SUMMARY:
		if (!(w = short_str(ev, "wafer", &wlen)))
			return 0;
		id_str(&ib, "wafer_summary\n", 14);
		id_str(&ib, w, wlen);
		break;
	default:
		id_int(&ib, (long long)seq);
		break;
	}
	*id = kerf_xxh3(ib.b, ib.n);
	return 1;
}

/* ------------------------------------------------------------------ */
/* per-type checks */

static const char *const states[] = { "idle", "ready", "executing", "paused", "stopping", NULL };
#define STATES "idle|ready|executing|paused|stopping"
static const char *const categories[] = { "safety", "irrecoverable", "warning", "attention",
					  "data_integrity", NULL };
#define CATEGORIES "safety|irrecoverable|warning|attention|data_integrity"
static const char *const statuses[] = { "completed", "stopped", "aborted", NULL };
#define STATUSES "completed|stopped|aborted"
static const char *const polarities[] = { "bright", "dark", NULL };
#define POLARITIES "bright|dark"

#define SLOT_MAX 25       /* a lot holds up to 25 wafers */
#define GRID_MAX 100000   /* dies per row or column */
#define PX_MAX 65536      /* pixels per die side */

static int check_run_start(struct validate_run *g, const struct event_view *ev, struct validate_result *res)
{
	double diam, edge, pitch[2], origin[2], px[2], pixel;
	long long cols, rows;

	if (get_str(ev, "lot", 1, NULL, res) || get_str(ev, "recipe", 0, NULL, res) ||
	    get_str(ev, "tool", 0, NULL, res) || get_str(ev, "source", 0, NULL, res) ||
	    get_int(ev, "wafers", 1, SLOT_MAX, NULL, res) ||
	    get_num(ev, "diameter_mm", 25, 450, &diam, res) ||
	    get_num(ev, "edge_mm", 0, diam / 2, &edge, res) ||
	    get_array(ev, "pitch_um", 2, 0, pitch, res) ||
	    get_array(ev, "origin_um", 2, 0, origin, res) ||
	    get_int(ev, "cols", 1, GRID_MAX, &cols, res) ||
	    get_int(ev, "rows", 1, GRID_MAX, &rows, res) ||
	    get_array(ev, "die_px", 2, 1, px, res) ||
	    get_num(ev, "pixel_um", 1e-6, 1e6, &pixel, res))
		return -1;
	double r_um = diam * 500;
	for (int i = 0; i < 2; i++) {
		const char *xy = i ? "y" : "x";
		if (!(pitch[i] > 0 && pitch[i] <= 2 * r_um))
			return FAIL("out_of_range", "field 'pitch_um' %s is %.15g, outside 0..%.15g",
				    xy, pitch[i], 2 * r_um);
		/* Die (0,0)'s lower-left corner: a grid that covers the wafer
		 * may start up to a pitch before its edge (kerf-acquire --sim's
		 * does, whenever the radius is not a multiple of the pitch). */
		if (!(origin[i] >= -r_um - pitch[i] && origin[i] <= r_um))
			return FAIL("out_of_range",
				    "field 'origin_um' %s is %.15g, outside the wafer (%.15g..%.15g)",
				    xy, origin[i], -r_um - pitch[i], r_um);
		if (!(px[i] >= 1 && px[i] <= PX_MAX))
			return FAIL("out_of_range", "field 'die_px' %s is %.15g, outside 1..%d", xy,
				    px[i], PX_MAX);
	}
	g->cols = cols;
	g->rows = rows;
	g->die_w = (long long)px[0];
	g->die_h = (long long)px[1];
	g->pitch_x = pitch[0];
	g->pitch_y = pitch[1];
	g->pixel_um = pixel;
	g->radius_um = r_um;
	return 0;
}

static int check_state(const struct event_view *ev, struct validate_result *res)
{
	struct event_member prev;
	if (get_enum(ev, "state", states, STATES, res))
		return -1;
	/* The first state change has no previous state. */
	if (event_member(ev, "prev", &prev) && prev.kind != EVK_NULL &&
	    enum_value(&prev, "prev", states, STATES, res))
		return -1;
	return 0;
}

static int check_alarm(const struct event_view *ev, struct validate_result *res)
{
	if (get_int(ev, "alid", 0, 4294967295LL, NULL, res) || get_str(ev, "text", 0, NULL, res) ||
	    get_bool(ev, "set", res) || get_enum(ev, "category", categories, CATEGORIES, res) ||
	    get_bool(ev, "critical", res))
		return -1;
	return 0;
}

static int check_cell(const struct validate_run *r, const struct event_view *ev, long long *col,
		      long long *row, struct validate_result *res)
{
	if (get_str(ev, "wafer", 1, NULL, res) || get_int(ev, "col", 0, INT64_MAX, col, res) ||
	    get_int(ev, "row", 0, INT64_MAX, row, res))
		return -1;
	if (*col >= r->cols || *row >= r->rows)
		return FAIL("out_of_range", "die (col %lld, row %lld) is outside the grid of %lld cols x %lld rows",
			    *col, *row, r->cols, r->rows);
	return 0;
}

static int check_wafer_mark(const struct validate_run *r, const struct event_view *ev, int start,
			    struct validate_result *res)
{
	if (get_str(ev, "wafer", 1, NULL, res) || get_int(ev, "slot", 1, SLOT_MAX, NULL, res) ||
	    (start && get_str(ev, "lot", 1, NULL, res)) ||
	    get_int(ev, "dies", 0, r->cols * r->rows, NULL, res))
		return -1;
	return 0;
}

static int check_run_end(const struct event_view *ev, struct validate_result *res)
{
	if (get_enum(ev, "status", statuses, STATUSES, res) ||
	    get_int(ev, "wafers", 0, SLOT_MAX, NULL, res) ||
	    get_int(ev, "dies", 0, INT64_MAX, NULL, res))
		return -1;
	return 0;
}

/* Decoded length of a base64 text, or -1 when it cannot be base64. */
static long long b64_len(const char *s, size_t n)
{
	if (n % 4)
		return -1;
	if (n == 0)
		return 0;
	return (long long)(n / 4 * 3) - (s[n - 1] == '=') - (s[n - 2] == '=');
}

static int check_die(struct validate *v, const struct validate_run *r, const struct event_view *ev,
		     struct validate_result *res)
{
	long long col, row, w, h;
	struct event_member data, path, x;
	const char *sum;

	if (check_cell(r, ev, &col, &row, res) ||
	    get_int(ev, "w", 1, PX_MAX, &w, res) || get_int(ev, "h", 1, PX_MAX, &h, res) ||
	    need(ev, "xxh3", &x, res))
		return -1;
	if (x.kind != EVK_STRING || !is_hex16(x.str, x.len))
		return FAIL("bad_field", "field 'xxh3' must be 16 lowercase hex digits");
	sum = x.str;
	int has_data = event_member(ev, "data", &data), has_path = event_member(ev, "path", &path);
	if (has_data && has_path)
		return FAIL("bad_field", "a die has 'data' or 'path', not both");
	if (!has_data && !has_path)
		return FAIL("missing_field", "missing field 'data' (or 'path')");
	if (has_path) {
		if (path.kind != EVK_STRING || path.len == 0)
			return FAIL("bad_field", "field 'path' must be a non-empty string");
	} else if (data.kind != EVK_STRING) {
		return FAIL("bad_field", "field 'data' must be a string");
	}
	if (w != r->die_w || h != r->die_h)
		return FAIL("image_size", "die image is %lldx%lld px, run_start says die_px [%lld,%lld]",
			    w, h, r->die_w, r->die_h);
	if (has_path)
		return 0;

	const char *b64 = data.str;
	size_t n = data.len;
	long long want = b64_len(b64, n);
	if (want < 0)
		return FAIL("bad_field", "field 'data' is not base64 (length %zu)", n);
	if (want != w * h)
		return FAIL("image_size", "field 'data' holds %lld bytes, w*h is %lld", want, w * h);
	if ((size_t)want > v->img_cap) {
		free(v->img);
		v->img_cap = (size_t)want;
		v->img = xmalloc(v->img_cap + 3);
	}
	if (base64_decode(b64, n, v->img) != want)
		return FAIL("bad_field", "field 'data' is not base64");
	char hx[17];
	hex64(kerf_xxh3(v->img, (size_t)want), hx);
	if (memcmp(hx, sum, 16) != 0)
		return FAIL("checksum", "pixels hash to %s, field 'xxh3' says %s", hx, sum);
	return 0;
}

static int check_defect(const struct validate_run *r, const struct event_view *ev,
			struct validate_result *res)
{
	long long col, row;
	double ext_x = fmax(r->pitch_x, (double)r->die_w * r->pixel_um);
	double ext_y = fmax(r->pitch_y, (double)r->die_h * r->pixel_um);
	/* A defect near a die's far corner may lie a die diagonal past
	 * the usable circle's edge. */
	double reach = r->radius_um + hypot(r->pitch_x, r->pitch_y);
	double wx, wy, d;
	struct event_member x;

	if (check_cell(r, ev, &col, &row, res) || get_int(ev, "index", 0, INT64_MAX, NULL, res) ||
	    get_num(ev, "x_um", 0, ext_x, NULL, res) || get_num(ev, "y_um", 0, ext_y, NULL, res) ||
	    get_num(ev, "wx_um", -reach, reach, &wx, res) ||
	    get_num(ev, "wy_um", -reach, reach, &wy, res))
		return -1;
	if (hypot(wx, wy) > reach)
		return FAIL("out_of_range", "defect at (%.15g,%.15g) um lies outside the wafer", wx, wy);
	/* What a KLARF import cannot fill is checked when present. */
	if (has(ev, "bbox")) {
		double b[4];
		if (get_array(ev, "bbox", 4, 1, b, res))
			return -1;
		if (!(b[0] >= 0 && b[0] <= b[2] && b[2] <= (double)r->die_w && b[1] >= 0 &&
		      b[1] <= b[3] && b[3] <= (double)r->die_h))
			return FAIL("out_of_range",
				    "field 'bbox' [%.0f,%.0f,%.0f,%.0f] is not inside the %lldx%lld px die",
				    b[0], b[1], b[2], b[3], r->die_w, r->die_h);
	}
	static const char *const nonneg[] = { "w_um", "h_um", "area_um2", NULL };
	for (int i = 0; nonneg[i]; i++)
		if (has(ev, nonneg[i]) && get_num(ev, nonneg[i], 0, INFINITY, NULL, res))
			return -1;
	if (has(ev, "area_px") && get_int(ev, "area_px", 0, r->die_w * r->die_h, NULL, res))
		return -1;
	if (event_member(ev, "polarity", &x) && enum_value(&x, "polarity", polarities, POLARITIES, res))
		return -1;
	if (event_member(ev, "contrast", &x) && num_value(&x, "contrast", &d, res))
		return -1;
	if (has(ev, "class") && get_str(ev, "class", 0, NULL, res))
		return -1;
	if (has(ev, "class_num") && get_int(ev, "class_num", 0, INT64_MAX, NULL, res))
		return -1;
	return 0;
}

static int check_die_done(const struct validate_run *r, const struct event_view *ev,
			  struct validate_result *res)
{
	long long col, row;
	if (check_cell(r, ev, &col, &row, res) || get_int(ev, "defects", 0, INT64_MAX, NULL, res))
		return -1;
	return 0;
}

static int check_wafer_summary(const struct validate_run *r, const struct event_view *ev,
			       struct validate_result *res)
{
	long long defects, dd;
	if (get_str(ev, "wafer", 1, NULL, res) || get_int(ev, "slot", 1, SLOT_MAX, NULL, res) ||
	    get_int(ev, "defects", 0, INT64_MAX, &defects, res) ||
	    get_int(ev, "defective_dies", 0, r->cols * r->rows, &dd, res) ||
	    get_num(ev, "density_cm2", 0, INFINITY, NULL, res) ||
	    get_str(ev, "signature", 1, NULL, res))
		return -1;
	if (dd > defects)
		return FAIL("out_of_range", "%lld defective dies but only %lld defects", dd, defects);
	return 0;
}

/* ------------------------------------------------------------------ */

const struct cli_choice validate_policies[] = {
	{ "warn", VALIDATE_WARN }, { "reject", VALIDATE_REJECT }, { "fail", VALIDATE_FAIL }, { NULL, 0 },
};

void validate_opts_default(struct validate_opts *o)
{
	memset(o, 0, sizeof *o);
	o->max_line = KERF_MAX_LINE_DEFAULT;
	o->on_gap = VALIDATE_WARN;
	o->on_duplicate = VALIDATE_REJECT;
	o->on_order = VALIDATE_REJECT;
}

/* jansson allocates through jmalloc and jfree, installed once per process. */
static pthread_once_t alloc_once = PTHREAD_ONCE_INIT;

static void install_alloc(void)
{
	json_set_alloc_funcs(jmalloc, jfree);
}

void validate_init(struct validate *v, const struct validate_opts *opts)
{
	memset(v, 0, sizeof *v);
	if (opts)
		v->opts = *opts;
	else
		validate_opts_default(&v->opts);
	pthread_once(&alloc_once, install_alloc);
}

void validate_drop(struct validate *v)
{
	json_decref(v->ev);
	v->ev = NULL;
}

void validate_release(struct validate *v)
{
	json_decref(v->ev);
	arena_free();
	free(v->copy);
	for (int i = 0; i < VALIDATE_RUNS; i++)
		free(v->runs[i]);
	free(v->img);
	memset(v, 0, sizeof *v);
}

int validate_finish(struct validate *v)
{
	int n = 0;
	for (int i = 0; i < VALIDATE_RUNS; i++) {
		struct validate_run *r = v->runs[i];
		if (!r || r->ended || !r->started)
			continue;
		log_msg(LOG_WARN, json_pack("{s:s%,s:I}", "run", r->id, r->idlen, "last_seq",
					    (json_int_t)r->last),
			"input ended before run '%s' ended", r->id);
		n++;
	}
	return n;
}

static void res_reset(struct validate_result *res)
{
	res->verdict = VALIDATE_PASS;
	res->reason = NULL;
	res->msg[0] = '\0';
	res->run = NULL;
	res->seq = -1;
	res->type = EV_UNKNOWN;
	res->seq_status = VSEQ_UNKNOWN;
	res->gap_first = res->gap_last = 0;
	res->seq_warn = 0;
}

enum validate_verdict validate_too_long(struct validate *v, const char *prefix, size_t prefix_len,
					uint64_t len, struct validate_result *res)
{
	const char *val;
	size_t n;

	res_reset(res);
	if (event_peek(prefix, prefix_len, "run", &val, &n) && n > 0 && n <= VALIDATE_RUN_MAX &&
	    prefix[val - prefix - 1] == '"' && !memchr(val, '\\', n)) {
		memcpy(v->run_buf, val, n);
		v->run_buf[n] = '\0';
		res->run = v->run_buf;
	}
	if (event_peek(prefix, prefix_len, "seq", &val, &n) && n > 0 && n < 19) {
		int64_t s = 0;
		size_t i;
		for (i = 0; i < n && val[i] >= '0' && val[i] <= '9'; i++)
			s = s * 10 + (val[i] - '0');
		if (i == n)
			res->seq = s;
	}
	return reject(res, "too_long", "line of %llu bytes is longer than the limit of %zu",
		      (unsigned long long)len, v->opts.max_line);
}

/* The exact form of 't': YYYY-MM-DDTHH:MM:SS, up to 9 fraction digits, Z. */
static int time_form(const char *t)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd";
	int i;
	for (i = 0; pat[i]; i++)
		if (pat[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != pat[i])
			return 0;
	if (t[i] == '.') {
		int d = 0;
		for (i++; t[i] >= '0' && t[i] <= '9'; i++)
			d++;
		if (d < 1 || d > 9)
			return 0;
	}
	return t[i] == 'Z' && t[i + 1] == '\0';
}

static int blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return 1;
}

static enum validate_policy policy_for(const struct validate *v, enum validate_seq st)
{
	switch (st) {
	case VSEQ_GAP:
		return v->opts.on_gap;
	case VSEQ_DUPLICATE:
		return v->opts.on_duplicate;
	default:
		return v->opts.on_order;
	}
}

/*
 * The line as JSON into v->ev: VALIDATE_PASS when it is an object, else
 * rejected (too complex, control bytes, not JSON, a duplicate key, not
 * an object).
 */
static enum validate_verdict parse_line(struct validate *v, const char *line, size_t len,
					struct validate_result *res)
{
	json_error_t err;
	json_t *ev;

	arena_reset(4 * v->opts.max_line + (1 << 20));
	arena.on = 1;
	arena.failed = 0;
	ev = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	arena.on = 0;
	v->ev = ev;
	if (!ev && (arena.failed || json_error_code(&err) == json_error_out_of_memory))
		return reject(res, "too_complex", "parsing the line would take more than %zu bytes of memory",
			      arena.budget);
	/* jansson drops a NUL right after a number or a literal, so
	 * {"x":1<NUL>} parses; the raw bytes, which are passed on, decide. */
	size_t bad = line_control_at(line, len);
	if (bad < len) {
		char msg[LINE_CONTROL_MSG];
		line_control_msg(line, bad, msg);
		return reject(res, LINE_CONTROL_REASON, "%s", msg);
	}
	if (!ev) {
		switch (json_error_code(&err)) {
		case json_error_duplicate_key:
			return reject(res, "duplicate_key", "at byte %d: %s", err.position, err.text);
		default:
			if (blank(line, len))
				return reject(res, "not_json", "empty line");
			return reject(res, "not_json", "at byte %d: %s", err.position, err.text);
		}
	}
	if (!json_is_object(ev))
		return reject(res, "not_object", "line is JSON but not an object");
	return res->verdict;
}

/*
 * A die event read in one pass from a copy of the line into v->die: 1
 * when die_fields_scan_event took it and its type is die, the only
 * members the event view then holds.  It takes only a line that
 * parse_line would pass, with the same members and values.  A line past
 * max_line (never one from the line reader) is left to the parse, whose
 * memory budget alone might refuse it.
 */
static int scan_die(struct validate *v, const char *line, size_t len)
{
	const char *type;
	size_t n;

	/* A look at the type first spares the copy and the pass over a
	 * line of another type. */
	if (v->opts.jansson_only || len > v->opts.max_line ||
	    !event_peek_str(line, len, "type", &type, &n) || n != 3 || memcmp(type, "die", 3))
		return 0;
	if (len >= v->copy_cap) {
		free(v->copy);
		v->copy_cap = len + 1;
		v->copy = xmalloc(v->copy_cap);
	}
	memcpy(v->copy, line, len);
	return die_fields_scan_event(v->copy, len, &v->die) && !strcmp(v->die.type, "die");
}

/*
 * The envelope into env and res (run, seq, type), with the length of its
 * run id: its fields, the time's form, a known type, and the id the
 * event's identity gives.
 */
static enum validate_verdict check_envelope(const struct event_view *ev, struct envelope *env,
					    size_t *runlen, struct validate_result *res)
{
	struct event_member x;
	uint64_t want;

	if (envelope_read(ev, env, res->msg, sizeof res->msg) != 0) {
		res->run = env->run;
		if (env->run && event_member(ev, "seq", &x) && x.kind == EVK_INTEGER && x.integer >= 0)
			res->seq = x.integer;
		res->reason = "envelope";
		res->verdict = VALIDATE_REJECTED;
		return res->verdict;
	}
	res->run = env->run;
	res->seq = (int64_t)env->seq;
	res->type = env->type;
	if (!time_form(env->t))
		return reject(res, "envelope", "field 't' must be an RFC 3339 UTC time "
			      "(YYYY-MM-DDTHH:MM:SS.ffffffZ)");
	event_member(ev, "run", &x);
	*runlen = x.len;
	if (*runlen > VALIDATE_RUN_MAX)
		return reject(res, "envelope", "field 'run' is longer than %d bytes", VALIDATE_RUN_MAX);
	if (env->type == EV_UNKNOWN)
		return reject(res, "unknown_type", "unknown event type '%.40s'", env->type_name);
	if (expected_id(ev, env->type, env->run, *runlen, env->seq, &want)) {
		char hx[17];
		hex64(want, hx);
		if (memcmp(hx, env->id, 16) != 0)
			return reject(res, "bad_id", "field 'id' is %s, the event's identity gives %s",
				      env->id, hx);
	}
	return res->verdict;
}

/*
 * The event's seq in its run: in order, or a gap, a duplicate or out of
 * order, which the policies make a warning (res->seq_warn, and the line
 * passes on), a rejection or the end (VALIDATE_FATAL).
 */
static enum validate_verdict check_seq(struct validate *v, struct validate_run *r,
				       const struct envelope *env, struct validate_result *res)
{
	enum validate_policy p;

	res->seq_status = seq_track(r, env->seq, env->type, res);
	if (res->seq_status == VSEQ_OK)
		return res->verdict;
	p = policy_for(v, res->seq_status);
	if (p == VALIDATE_WARN) {
		res->seq_warn = 1;
		return res->verdict;
	}
	switch (res->seq_status) {
	case VSEQ_GAP:
		reject(res, "gap", "seq %llu follows %llu: %llu..%llu missing",
		       (unsigned long long)env->seq,
		       (unsigned long long)res->gap_first - 1,
		       (unsigned long long)res->gap_first,
		       (unsigned long long)res->gap_last);
		break;
	case VSEQ_DUPLICATE:
		reject(res, "duplicate", "seq %llu was seen already (last seq %llu)",
		       (unsigned long long)env->seq, (unsigned long long)r->last);
		break;
	default:
		reject(res, "out_of_order", "seq %llu arrives after seq %llu",
		       (unsigned long long)env->seq, (unsigned long long)r->last);
		break;
	}
	if (p == VALIDATE_FAIL)
		res->verdict = VALIDATE_FATAL;
	return res->verdict;
}

/* A run_start: the first of its run (or a repeat of it), and its geometry kept. */
static enum validate_verdict track_run_start(struct validate_run *r, const struct event_view *ev,
						const struct envelope *env, struct validate_result *res)
{
	struct validate_run g;
	/* A repeat of the same run_start got past the duplicate
	 * policy already; a new one in a running run is out of order. */
	int again = r->started && env->seq == r->start_seq;
	if (r->ended && !again)
		return reject(res, "after_run_end", "run '%s' ended at seq %llu", r->id,
			      (unsigned long long)r->end_seq);
	if (r->started && !again)
		return reject(res, "out_of_order", "run '%s' already started at seq %llu",
			      r->id, (unsigned long long)r->start_seq);
	if (check_run_start(&g, ev, res) == 0 && !again) {
		r->started = 1;
		r->start_seq = env->seq;
		r->cols = g.cols;
		r->rows = g.rows;
		r->die_w = g.die_w;
		r->die_h = g.die_h;
		r->pitch_x = g.pitch_x;
		r->pitch_y = g.pitch_y;
		r->pixel_um = g.pixel_um;
		r->radius_um = g.radius_um;
	}
	return res->verdict;
}

/*
 * The event's own fields, by type (and where its run is: started, not
 * ended).  The check_* functions return -1 only after reject(), which
 * sets res->verdict: the verdict is the result, the -1 only stops the
 * run's state from changing (run_start, run_end).
 */
static enum validate_verdict check_body(struct validate *v, struct validate_run *r,
					const struct event_view *ev, const struct envelope *env,
					struct validate_result *res)
{
	switch (env->type) {
	case EV_STATE:
		check_state(ev, res);
		return res->verdict;
	case EV_ALARM:
		check_alarm(ev, res);
		return res->verdict;
	case EV_RUN_START:
		return track_run_start(r, ev, env, res);
	default:
		break;
	}
	if (!r->started)
		return reject(res, "no_run_start", "a %s event before run '%s' started",
			      env->type_name, r->id);
	/* Only a newer seq comes after the end: an older one is a
	 * duplicate or a late arrival, which the policies judged. */
	if (r->ended && env->seq > r->end_seq)
		return reject(res, "after_run_end", "a %s event after run '%s' ended at seq %llu",
			      env->type_name, r->id, (unsigned long long)r->end_seq);
	switch (env->type) {
	case EV_WAFER_START:
	case EV_WAFER_END:
		check_wafer_mark(r, ev, env->type == EV_WAFER_START, res);
		break;
	case EV_DIE:
		check_die(v, r, ev, res);
		break;
	case EV_RUN_END:
		if (check_run_end(ev, res) == 0 && !r->ended) {
			r->ended = 1;
			r->end_seq = env->seq;
		}
		break;
	case EV_DEFECT:
		check_defect(r, ev, res);
		break;
	case EV_DIE_DONE:
		check_die_done(r, ev, res);
		break;
	case EV_WAFER_SUMMARY:
		check_wafer_summary(r, ev, res);
		break;
	default:
		break;
	}
	return res->verdict;
}

enum validate_verdict validate_line(struct validate *v, const char *line, size_t len,
				    struct validate_result *res)
{
	struct event_view ev = {NULL, NULL};
	struct envelope env;
	struct validate_run *r;
	size_t runlen = 0;

	res_reset(res);
	validate_drop(v);
	if ((v->scanned = scan_die(v, line, len)))
		ev.die = &v->die;
	else if (parse_line(v, line, len, res) != VALIDATE_PASS)
		return res->verdict;
	else
		ev.obj = v->ev;
	if (check_envelope(&ev, &env, &runlen, res) != VALIDATE_PASS)
		return res->verdict;
	r = find_run(v, env.run, runlen);
	if (check_seq(v, r, &env, res) != VALIDATE_PASS)
		return res->verdict;
	return check_body(v, r, &ev, &env, res);
}

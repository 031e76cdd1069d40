/*
 * detect_stream.c: see detect_stream.h.
 *
 * Threads: the reader (detect_stream_line and the pool's stall callback),
 * the pool's workers (decode_task, detect_task) and the pool's writer
 * (emit, idle).  The locking rule, for every structure below:
 *
 *   One mutex, ds->mu, guards the wafer -> group -> die graph: its links
 *   and every field marked "mu".  A field marked "before publication" is
 *   written by the reader before the die is linked in under mu (or handed
 *   to the pool) and is read-only after; a field marked with a task is
 *   owned by that task while the die is in the state that runs it (see
 *   enum die_state: one task at a time per die), and published by the
 *   task's taking mu.  Tasks compute without mu and take it only to
 *   publish their result and schedule what it unblocks.  The writer
 *   never takes mu: it sees only items (struct item), which are handed
 *   over whole through pool_complete.  The pool's calls (pool_hold,
 *   pool_complete, pool_submit, pool_op_*) may be made under mu: the
 *   lock order is ds->mu, then the pool's own lock, and the pool calls
 *   back (emit, idle, stall) with no lock held.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "stats.h"
#include "event.h"
#include "detect_stream.h"
#include "die_fields.h"
#include "image.h"
#include "pool.h"
#include "wafer.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/*
 * A die's lifecycle.  Only die_set changes it, under ds->mu, and only
 * along die_next's transitions:
 *
 *   DECODING --decode_task--> WAITING --submit--> DETECTING --detect_task--> DONE
 *       \                       \
 *        --decode_task--> BAD     --resolve_group--> UNREFERENCED
 *
 * BAD, DONE and UNREFERENCED are final: the die's output is in its slot.
 * WAITING, DETECTING, DONE and UNREFERENCED have a decoded image (a
 * "good" die, which other dies may take as a reference).
 */
enum die_state {
	DIE_DECODING,       /* taken; its decode task is queued or running */
	DIE_BAD,            /* decoding failed: rejected */
	DIE_WAITING,        /* decoded; waits for its references to be known */
	DIE_DETECTING,      /* its detection task is queued or running */
	DIE_DONE,           /* detected: its defects and die_done are in its slot */
	DIE_UNREFERENCED,   /* decoded, but rejected with no_reference */
};

static const unsigned die_next[] = {
	[DIE_DECODING] = 1u << DIE_WAITING | 1u << DIE_BAD,
	[DIE_WAITING] = 1u << DIE_DETECTING | 1u << DIE_UNREFERENCED,
	[DIE_DETECTING] = 1u << DIE_DONE,
};

struct group;
struct wafer;

/*
 * Its image has a lifetime of its own, apart from the die's: refs counts
 * its users (the group's hold, the die's own detection, the detections
 * that took it as a reference); the last one to let go releases it.  An
 * image that outlives its die's output (a final state) counts as one of
 * the pool's holds (pool_hold) until then.
 */
struct die {
	struct detect_stream *ds;           /* before publication */
	struct group *g;                    /* mu; set when linked in, constant after */
	size_t pos;                         /* mu; likewise: its index in g->dies */
	uint64_t slot, lineno, offset;      /* before publication */
	/* The event's bytes: read by the task its state runs (decode; with
	 * --keep-images, detect too) or under mu while no task runs on it;
	 * freed under mu by the last task that needs them. */
	char *line;
	size_t len;                         /* before publication */
	enum die_state state;               /* mu; die_set only */
	int refs;                           /* mu; users of img */
	bool hold;                          /* mu; the group's use is one of refs */
	bool keep;                          /* mu; one the wafer's median may come from */
	/* Set under mu by decode_task; read without mu by whoever holds one
	 * of refs; released under mu when refs drops to 0. */
	struct image img;
	/* Set under mu by submit, read-only after (by its detect_task). */
	struct die *ref[DETECT_MAX_REFS];   /* the row's dies it is compared with */
	int nref;
	int median;                         /* and the wafer's median reference */
	struct detect_geom geom;            /* before publication */
	/* From the parsed event: written by decode_task before it takes mu,
	 * read-only after (seq: a first guess before publication). */
	char *run, *wafer, *t;
	int64_t seq;
	long col, row;
	/* The pool's, under its own lock; op.key before publication. */
	struct pool_op op;
};

/* A row's dies of one wafer, in arrival order.  Freed by gc, under mu. */
struct group {
	struct wafer *w;        /* set before it is linked in, constant after */
	char *row;              /* likewise; as peeked */
	struct die **dies;      /* mu; appended by the reader */
	size_t n, cap;          /* mu */
	int closed;             /* mu; no die will join it */
	int final;              /* mu; and so is its wafer: no die of the wafer will come */
	struct group *next;     /* mu; its wafer's groups, in order */
};

/* Freed by gc, under mu, once it is closed and its groups are gone. */
struct wafer {
	char *id;               /* set before it is linked in, constant after; as peeked */
	struct group *groups;   /* mu */
	struct group *open;     /* mu; the group a die of its row joins */
	/* Built once under mu (maybe_median); read without mu by the
	 * detect tasks submitted with median = 1 after that, which the
	 * wafer outlives. */
	struct image median;
	int closed;             /* mu; its wafer_end (or the end of input) came */
	struct wafer *next;     /* mu */
};

enum item_kind { IT_PASS, IT_DIE, IT_REJECT };

/* One slot's output: built by one thread, then owned by the writer (pool_complete). */
struct item {
	enum item_kind kind;
	char *buf;              /* bytes to write */
	size_t len;
	/* IT_DIE */
	char *wafer;
	struct detect_point *pts;
	size_t npts;
	long col, row;
	int kept_image;
	/* IT_PASS of a wafer_end: what its summary needs */
	int wafer_end;
	char *run, *t;
	uint64_t seq;
	long slot_no;
	long dies;              /* its "dies", -1 when absent */
	struct detect_geom geom;
	int have_geom;
	/* IT_REJECT */
	const char *reason;
	char *msg;
	int64_t rseq;
	uint64_t lineno, offset, full_len;
	int is_die;
};

/* Writer-side account of a wafer, for its summary.  Writer thread only. */
struct wacc {
	char *wafer;
	struct detect_point *pts;
	size_t n, cap;
	struct wafer_acct acct;  /* dies, defects, density (wafer.h) */
	struct wacc *next;
};

struct detect_stream {
	struct detect_stream_config cfg;  /* constant */
	struct pool *pool;      /* thread-safe; set and cleared with no other thread running */
	pthread_mutex_t mu;     /* see the locking rule at the top */
	struct wafer *wafers;   /* mu; open and closed wafers not yet freed */
	/* Reader thread only (from a run_start). */
	struct detect_geom geom;
	int have_geom;
	char *run;
	json_t *final_stats;    /* the pool's last numbers, once it and its threads are gone */
	/* Writer thread only. */
	struct wacc *acc;
	uint64_t *c_in, *c_passed, *c_consumed, *c_rejected, *c_dies, *c_defects, *c_die_done,
		*c_summaries, *c_write_err;
	int write_failed;
};

/* ------------------------------------------------------------ items */

static void item_free(struct item *it)
{
	if (!it)
		return;
	free_all(it->buf, it->wafer, it->pts, it->run, it->t, it->msg, it);
}

static struct item *reject_item(const char *run, const char *reason, const char *msg, int64_t seq, const char *line,
				size_t len, uint64_t full_len, uint64_t lineno, uint64_t offset, int is_die)
{
	struct item *it = xcalloc(1, sizeof *it);
	size_t keep = len < REJECT_RAW_MAX ? len : REJECT_RAW_MAX;
	it->kind = IT_REJECT;
	it->run = run ? xstrdup(run) : NULL;
	it->reason = reason;
	it->msg = xstrdup(msg);
	it->rseq = seq;
	it->buf = xmemdup(line, keep);
	it->len = keep;
	it->full_len = full_len;
	it->lineno = lineno;
	it->offset = offset;
	it->is_die = is_die;
	return it;
}

static struct wacc *wacc_get(struct detect_stream *ds, const char *wafer, int create)
{
	struct wacc *a;
	for (a = ds->acc; a; a = a->next)
		if (!strcmp(a->wafer, wafer))
			return a;
	if (!create)
		return NULL;
	a = xcalloc(1, sizeof *a);
	a->wafer = xstrdup(wafer);
	wafer_acct_init(&a->acct, 0);
	a->next = ds->acc;
	ds->acc = a;
	return a;
}

static void wacc_drop(struct detect_stream *ds, struct wacc *a)
{
	struct wacc **pp;
	for (pp = &ds->acc; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	free(a->wafer);
	free(a->pts);
	wafer_acct_release(&a->acct);
	free(a);
}

/* Writer thread: the output failed; say so once and end the program. */
static void write_failed(struct detect_stream *ds, int e)
{
	ds->write_failed = 1;
	log_write_failed(LOG_ERROR, "standard output", e, NULL);
	pool_fail(ds->pool, KERF_EX_IOERR);
}

static void write_bytes(struct detect_stream *ds, const char *buf, size_t len)
{
	if (ds->write_failed || !len)
		return;
	if (fwrite(buf, 1, len, ds->cfg.out) != len || ferror(ds->cfg.out))
		write_failed(ds, errno);
}

static void emit_summary(struct detect_stream *ds, struct item *it)
{
	const char *wafer = it->wafer;
	struct wacc *a;
	struct timespec ts = {0, 0};
	json_t *ev;
	size_t n;
	double density = 0;
	char *text;

	if (!wafer || !it->run)
		return;
	a = wacc_get(ds, wafer, 1);
	wafer_acct_end(&a->acct, it->dies);
	n = a->n;
	event_time_parse(it->t ? it->t : "", &ts);
	ev = event_new("wafer_summary", it->run, it->seq, &ts);
	event_set_id(ev, event_id_derived(it->run, "wafer_summary", wafer));
	json_object_set_new(ev, "wafer", json_string(wafer));
	if (it->slot_no >= 0)
		json_object_set_new(ev, "slot", json_integer(it->slot_no));
	json_object_set_new(ev, "dies", json_integer(wafer_acct_dies(&a->acct)));
	json_object_set_new(ev, "defects", json_integer((json_int_t)a->acct.defects));
	json_object_set_new(ev, "defective_dies", json_integer((json_int_t)a->acct.defective));
	if (it->have_geom)
		density = round(wafer_acct_density(&a->acct, it->geom.pitch_um[0] * it->geom.pitch_um[1]) * 10000) / 10000;
	json_object_set_new(ev, "density_cm2", json_real(density));
	json_object_set_new(ev, "signature",
			    json_string(it->have_geom ? detect_signature(a->pts, n, &it->geom)
						       : (n ? "random" : "none")));
	text = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(ev);
	write_bytes(ds, text, strlen(text));
	write_bytes(ds, "\n", 1);
	free(text);
	(*ds->c_summaries)++;
	wacc_drop(ds, a);
}

static void emit(void *arg, void *p)
{
	struct detect_stream *ds = arg;
	struct item *it = p;
	(*ds->c_in)++;
	switch (it->kind) {
	case IT_PASS:
		write_bytes(ds, it->buf, it->len);
		(*ds->c_passed)++;
		if (it->wafer_end)
			emit_summary(ds, it);
		break;
	case IT_DIE: {
		struct wacc *a = wacc_get(ds, it->wafer, 1);
		write_bytes(ds, it->buf, it->len);
		if (it->kept_image)
			(*ds->c_passed)++;
		else
			(*ds->c_consumed)++;
		(*ds->c_dies)++;
		(*ds->c_die_done)++;
		(*ds->c_defects) += it->npts;
		wafer_acct_die(&a->acct, it->col, it->row);
		wafer_acct_defect(&a->acct, it->col, it->row, (uint32_t)it->npts);
		if (a->n + it->npts > a->cap) {
			a->cap = (a->n + it->npts) * 2;
			a->pts = xrealloc(a->pts, a->cap * sizeof *a->pts);
		}
		if (it->npts)
			memcpy(a->pts + a->n, it->pts, it->npts * sizeof *it->pts);
		a->n += it->npts;
		break;
	}
	case IT_REJECT: {
		struct reject_info ri = {
			.reason = it->reason, .msg = it->msg, .run = it->run, .seq = it->rseq,
			.line = it->lineno, .offset = it->offset, .raw = it->buf, .raw_len = it->len,
			.len = it->full_len,
		};
		(*ds->c_rejected)++;
		if (rejects_write(ds->cfg.rej, &ri) < 0)
			(*ds->c_write_err)++;
		if (ds->cfg.strict) {
			log_msg(LOG_ERROR, json_pack("{s:s,s:I}", "reason", it->reason, "line", (json_int_t)it->lineno),
				"line %llu rejected in --strict mode: %s", (unsigned long long)it->lineno, it->msg);
			pool_fail(ds->pool, KERF_EX_DATAERR);
		}
		break;
	}
	}
	item_free(it);
}

static void discard(void *arg, void *p)
{
	(void)arg;
	item_free(p);
}

static void idle(void *arg)
{
	struct detect_stream *ds = arg;
	if (!ds->write_failed && fflush(ds->cfg.out) != 0)
		write_failed(ds, errno);
	stats_tick(ds->cfg.stats);
}

/* ------------------------------------------------- lifecycle, images */

/* Whether its output is in its slot (no task will run on it again). */
static bool die_final(const struct die *d)
{
	return d->state == DIE_BAD || d->state == DIE_DONE || d->state == DIE_UNREFERENCED;
}

/* Whether it was decoded: its image is (or was) a possible reference. */
static bool die_good(const struct die *d)
{
	return d->state != DIE_DECODING && d->state != DIE_BAD;
}

/* The one way to change a die's state.  Under ds->mu. */
static void die_set(struct die *d, enum die_state to)
{
	assert(d->state < sizeof die_next / sizeof *die_next && (die_next[d->state] >> to & 1));
	d->state = to;
}

/*
 * One user of its image lets go.  Under ds->mu.  An image still in use
 * when its die became final was counted as a pool hold (die_complete);
 * the last user gives that back.
 */
static void img_unref(struct detect_stream *ds, struct die *d)
{
	assert(d->refs > 0);
	if (--d->refs > 0)
		return;
	image_release(&d->img);
	if (die_final(d))
		pool_hold(ds->pool, -1);
}

/* The group lets go of its image (when it still held it).  Under ds->mu. */
static void drop_hold(struct detect_stream *ds, struct die *d)
{
	if (!d->hold)
		return;
	d->hold = false;
	img_unref(ds, d);
}

static void die_free(struct die *d)
{
	image_release(&d->img);
	free_all(d->line, d->run, d->wafer, d->t, d);
}

static void group_free(struct group *g)
{
	for (size_t i = 0; i < g->n; i++)
		die_free(g->dies[i]);
	free(g->dies);
	free(g->row);
	free(g);
}

/* Free the groups and wafers nobody needs any more.  Under ds->mu. */
static void gc(struct detect_stream *ds)
{
	struct wafer **wp = &ds->wafers;
	while (*wp) {
		struct wafer *w = *wp;
		struct group **gp = &w->groups;
		while (*gp) {
			struct group *g = *gp;
			int busy = !g->closed;
			for (size_t i = 0; !busy && i < g->n; i++)
				busy = !die_final(g->dies[i]) || g->dies[i]->refs > 0;
			if (busy) {
				gp = &g->next;
				continue;
			}
			*gp = g->next;
			if (w->open == g)
				w->open = NULL;
			group_free(g);
		}
		if (w->closed && !w->groups) {
			*wp = w->next;
			image_release(&w->median);
			free(w->id);
			free(w);
			continue;
		}
		wp = &w->next;
	}
}

/*
 * The die's output is in its slot: it enters its final state to.  Its
 * image may live on as a reference: then it counts as a pool hold until
 * its last user lets go (img_unref).  Under ds->mu.
 */
static void die_complete(struct detect_stream *ds, struct die *d, enum die_state to, struct item *it)
{
	die_set(d, to);
	assert(die_final(d));
	if (d->refs > 0) {
		assert(d->img.px);
		pool_hold(ds->pool, 1);
	}
	pool_complete(ds->pool, d->slot, it);
}

/* Reject the die: to is DIE_BAD (from decoding) or DIE_UNREFERENCED.  Under ds->mu. */
static void die_reject(struct detect_stream *ds, struct die *d, enum die_state to, const char *reason,
		       const char *msg)
{
	struct item *it = reject_item(d->run, reason, msg, d->seq, d->line ? d->line : "", d->line ? d->len : 0,
				      d->len, d->lineno, d->offset, 1);
	log_msg(LOG_WARN, json_pack("{s:s,s:s,s:I}", "reason", reason, "key", d->op.key, "line",
				    (json_int_t)d->lineno),
		"die '%s' rejected: %s", d->op.key, msg);
	pool_op_end(ds->pool, &d->op, 1, msg);
	die_complete(ds, d, to, it);
}

/* ----------------------------------------------------------- detect */

static void render_die(struct detect_stream *ds, struct die *d, const struct detect_result *r, struct item *it)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct timespec ts = {0, 0};
	char seqs[24];
	json_t *ev;

	if (!f) {
		log_msg(LOG_ERROR, NULL, "internal error: open_memstream: %s", strerror(errno));
		exit(KERF_EX_SOFTWARE);
	}
	event_time_parse(d->t, &ts);
	if (ds->cfg.keep_images && d->line) {
		fwrite(d->line, 1, d->len, f);
		putc('\n', f);
		it->kept_image = 1;
	}
	it->pts = r->n ? xcalloc(r->n, sizeof *it->pts) : NULL;
	for (size_t i = 0; i < r->n; i++) {
		json_t *de = detect_defect_event(d->run, (uint64_t)d->seq, &ts, d->wafer, d->col, d->row, (long)i,
						 &r->blobs[i], &d->geom, &ds->cfg.params);
		it->pts[i].wx = json_real_value(json_object_get(de, "wx_um"));
		it->pts[i].wy = json_real_value(json_object_get(de, "wy_um"));
		it->pts[i].class_num = (int)json_integer_value(json_object_get(de, "class_num"));
		event_write(f, de);
		json_decref(de);
	}
	it->npts = r->n;
	ev = event_new("die_done", d->run, (uint64_t)d->seq, &ts);
	snprintf(seqs, sizeof seqs, "%lld", (long long)d->seq);
	event_set_id(ev, event_id_derived(d->run, "die_done", seqs));
	json_object_set_new(ev, "wafer", json_string(d->wafer));
	json_object_set_new(ev, "col", json_integer(d->col));
	json_object_set_new(ev, "row", json_integer(d->row));
	json_object_set_new(ev, "defects", json_integer((json_int_t)r->n));
	if (r->dropped)
		json_object_set_new(ev, "dropped", json_integer((json_int_t)r->dropped));
	{
		json_t *sg = json_array();
		for (int i = 0; i < r->nref; i++)
			json_array_append_new(sg, json_real(round(r->sigma[i] * 100) / 100));
		json_object_set_new(ev, "sigma", sg);
	}
	event_write(f, ev);
	json_decref(ev);
	if (fclose(f) != 0) {
		log_msg(LOG_ERROR, NULL, "internal error: cannot render die '%s'", d->op.key);
		exit(KERF_EX_SOFTWARE);
	}
	it->buf = buf;
	it->len = len;
}

static void detect_task(void *arg)
{
	struct die *d = arg;
	struct detect_stream *ds = d->ds;
	struct wafer *w = d->g->w;
	const struct image *refs[DETECT_MAX_REFS];
	int nref = 0;
	struct detect_result res;
	struct item *it;

	const char *fault = getenv("KERF_DETECT_FAULT");

	pool_op_active(ds->pool, &d->op);
	/* The references cannot change under us: they hold a reference each. */
	for (int i = 0; i < d->nref; i++)
		refs[nref++] = &d->ref[i]->img;
	if (d->median)
		refs[nref++] = &w->median;
	/* KERF_DETECT_FAULT=KEY makes the die KEY fail as an internal error
	 * would (for the tests: a worker must never fail silently). */
	if ((fault && !strcmp(fault, d->op.key)) || detect_die(&d->img, refs, nref, &ds->cfg.params, &res) < 0) {
		log_msg(LOG_ERROR, json_pack("{s:s,s:I}", "key", d->op.key, "seq", (json_int_t)d->seq),
			"internal error: detection failed on die '%s'", d->op.key);
		pool_op_end(ds->pool, &d->op, 1, "internal error");
		pool_fail(ds->pool, KERF_EX_SOFTWARE);
		return;
	}
	it = xcalloc(1, sizeof *it);
	it->kind = IT_DIE;
	it->wafer = xstrdup(d->wafer);
	it->col = d->col;
	it->row = d->row;
	render_die(ds, d, &res, it);
	detect_result_release(&res);

	pthread_mutex_lock(&ds->mu);
	if (d->line && ds->cfg.keep_images) {
		free(d->line);
		d->line = NULL;
	}
	for (int i = 0; i < d->nref; i++)
		img_unref(ds, d->ref[i]);
	img_unref(ds, d);
	pool_op_end(ds->pool, &d->op, 0, NULL);
	die_complete(ds, d, DIE_DONE, it);
	gc(ds);
	pthread_mutex_unlock(&ds->mu);
}

/* ---------------------------------------------------------- schedule */

/* Detect d against refs (and the median): each of them gets one more user.  Under ds->mu. */
static void submit(struct detect_stream *ds, struct die *d, struct die **refs, int n, int median)
{
	die_set(d, DIE_DETECTING);
	d->nref = n;
	d->median = median;
	d->refs++;
	for (int i = 0; i < n; i++) {
		d->ref[i] = refs[i];
		refs[i]->refs++;
	}
	pool_submit(ds->pool, detect_task, d);
}

/*
 * The (up to DETECT_MAX_REFS) nearest good dies of position pos in its
 * row, nearest first, the left one first at the same distance.  Returns
 * -1 while that choice is not final (a die in the way is still being
 * decoded, or the row is open and may still bring one), else the number
 * found.
 */
static int pick(const struct group *g, size_t pos, struct die **out)
{
	int k = 0;
	for (long dist = 1; k < DETECT_MAX_REFS; dist++) {
		long l = (long)pos - dist, r = (long)pos + dist;
		if (l < 0 && r >= (long)g->n && g->closed)
			break;
		if (l >= 0) {
			struct die *e = g->dies[l];
			if (e->state == DIE_DECODING)
				return -1;
			if (die_good(e))
				out[k++] = e;
			if (k == DETECT_MAX_REFS)
				break;
		}
		if (r < (long)g->n) {
			struct die *e = g->dies[r];
			if (e->state == DIE_DECODING)
				return -1;
			if (die_good(e))
				out[k++] = e;
		} else if (!g->closed) {
			return -1;
		}
	}
	return k;
}

/*
 * The wafer's median reference: from its first three good dies in
 * arrival order (whatever their rows), so that it never depends on which
 * worker finished first.  Until it is built, every good die that may
 * still turn out to be one of those three keeps its image (die->keep;
 * see may_drop): each good die before the third one known to be good,
 * whether or not dies before it are still being decoded.  A die still
 * being decoded may turn out bad and so make the fourth good die one of
 * the three; that die must not have let go of its image meanwhile.  So
 * at most three images are kept for it, plus those already marked.
 */
static void maybe_median(struct detect_stream *ds, struct wafer *w)
{
	struct die *good[3];
	int k = 0, decoding = 0;
	if (w->median.px)
		return;
	for (struct group *g = w->groups; g && k < 3; g = g->next)
		for (size_t i = 0; i < g->n && k < 3; i++) {
			struct die *e = g->dies[i];
			if (e->state == DIE_DECODING) {
				decoding = 1;
			} else if (die_good(e)) {
				e->keep = true;
				good[k++] = e;
			}
		}
	if (k == 3 && !decoding)
		detect_median3(&good[0]->img, &good[1]->img, &good[2]->img, ds->cfg.params.max_shift, &w->median);
}

/*
 * Whether the wafer's median may still come: it is not built, and either
 * the wafer is still open or a die before its third good one is still
 * being decoded.  A die with no partner in its row waits for it rather
 * than being rejected because a worker happened to be slow.
 */
static int median_pending(const struct wafer *w)
{
	int k = 0;
	if (w->median.px)
		return 0;
	for (const struct group *g = w->groups; g; g = g->next)
		for (size_t i = 0; i < g->n; i++) {
			if (g->dies[i]->state == DIE_DECODING)
				return 1;
			if (die_good(g->dies[i]) && ++k == 3)
				return 1;
		}
	return !w->closed;
}

/*
 * Whether the group may let go of a die's image once no die of its row
 * can still choose it: yes unless the wafer's median may still be built
 * from it.
 */
static bool may_drop(const struct wafer *w, const struct die *d)
{
	return !d->keep || w->median.px || !median_pending(w);
}

static void resolve_wafer(struct detect_stream *ds, struct wafer *w);

static int resolve_group(struct detect_stream *ds, struct group *g)
{
	int waiting_median = 0, had = g->w->median.px != NULL;
	size_t u = g->n;

	maybe_median(ds, g->w);
	if (!had && g->w->median.px) {
		/* Rows of the wafer may have waited for it. */
		resolve_wafer(ds, g->w);
		return 0;
	}
	for (size_t i = 0; i < g->n; i++) {
		struct die *d = g->dies[i], *refs[DETECT_MAX_REFS];
		int n;
		if (d->state != DIE_WAITING) {
			if (d->state == DIE_DECODING && u == g->n)
				u = i;
			continue;
		}
		n = pick(g, i, refs);
		if (n < 0) {
			if (u == g->n)
				u = i;
			continue;
		}
		if (n >= 2) {
			submit(ds, d, refs, n, 0);
		} else if (g->w->median.px) {
			submit(ds, d, refs, n, 1);
		} else if (g->final && !median_pending(g->w) && n == 1) {
			submit(ds, d, refs, 1, 0);
		} else if (g->final && !median_pending(g->w)) {
			die_reject(ds, d, DIE_UNREFERENCED, "no_reference", "no other good die in its row and no median reference");
			drop_hold(ds, d);
		} else {
			waiting_median = 1;
			if (u == g->n)
				u = i;
		}
	}
	/* Let go of images no die still to come can choose: everything left
	 * of the DETECT_MAX_REFS-th good die before the first unresolved one. */
	if (g->closed && u == g->n && !waiting_median) {
		for (size_t i = 0; i < g->n; i++)
			if (may_drop(g->w, g->dies[i]))
				drop_hold(ds, g->dies[i]);
	} else {
		int k = 0;
		long q = -1;
		for (long i = (long)u - 1; i >= 0; i--)
			if (die_good(g->dies[i]) && ++k == DETECT_MAX_REFS) {
				q = i;
				break;
			}
		for (long i = 0; i < q; i++)
			if (may_drop(g->w, g->dies[i]))
				drop_hold(ds, g->dies[i]);
	}
	return waiting_median;
}

static void resolve_wafer(struct detect_stream *ds, struct wafer *w)
{
	for (struct group *g = w->groups; g; g = g->next)
		resolve_group(ds, g);
}

static void close_wafer(struct detect_stream *ds, struct wafer *w, int final)
{
	for (struct group *g = w->groups; g; g = g->next) {
		g->closed = 1;
		if (final)
			g->final = 1;
	}
	w->open = NULL;
	if (final)
		w->closed = 1;
	resolve_wafer(ds, w);
}

static void close_all(struct detect_stream *ds)
{
	pthread_mutex_lock(&ds->mu);
	for (struct wafer *w = ds->wafers; w; w = w->next)
		close_wafer(ds, w, 1);
	gc(ds);
	pthread_mutex_unlock(&ds->mu);
}

static void stall(void *arg)
{
	struct detect_stream *ds = arg;
	log_msg(LOG_DEBUG, NULL, "pool full with rows waiting for input: closing them");
	close_all(ds);
}

static char *json_strdup(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? xstrdup(s) : NULL;
}

/* A member's string, NUL-terminated; caller frees.  NULL when it has none. */
static char *field_dup(const char *s, size_t len)
{
	return s ? xstrndup(s, len) : NULL;
}

/*
 * Decode the die's event into its fields and *img.  The line is read in
 * one pass when die_fields_scan takes it, else parsed with jansson; what
 * follows is the same either way.  Returns 0, or -1 with the reject's
 * reason and message.
 */
static int decode_die(struct die *d, struct image *img, const char **reason, char *msg, size_t msglen)
{
	struct die_fields f;
	json_t *ev = NULL;
	int r = -1;

	if (!die_fields_scan(d->line, d->len, &f)) {
		json_error_t err;
		ev = json_loadb(d->line, d->len, 0, &err);
		if (!ev) {
			*reason = "bad_image";
			snprintf(msg, msglen, "die event is not JSON: %s", err.text);
			return -1;
		}
		die_fields_from_json(ev, &f);
	}
	d->run = field_dup(f.run, f.run_len);
	d->t = field_dup(f.t, f.t_len);
	d->wafer = field_dup(f.wafer, f.wafer_len);
	d->seq = f.seq;
	d->col = f.col;
	d->row = f.row;
	if (!d->run || !d->t || !d->wafer || d->seq < 0 || !f.has_col || !f.has_row) {
		*reason = "bad_die";
		snprintf(msg, msglen, "die event lacks run, seq, t, wafer, col or row");
	} else {
		r = image_from_fields(&f.img, d->geom.die_w, d->geom.die_h, img, reason, msg, msglen);
	}
	json_decref(ev);
	return r;
}

static void decode_task(void *arg)
{
	struct die *d = arg;
	struct detect_stream *ds = d->ds;
	const char *reason = NULL;
	char msg[256];
	struct image img = {0, 0, NULL};
	int ok = decode_die(d, &img, &reason, msg, sizeof msg) == 0;

	pthread_mutex_lock(&ds->mu);
	if (ok) {
		d->img = img;
		die_set(d, DIE_WAITING);
		d->refs = 1;
		d->hold = true;
		if (!ds->cfg.keep_images) {
			free(d->line);
			d->line = NULL;
		}
	} else {
		die_reject(ds, d, DIE_BAD, reason, msg);
		free(d->line);
		d->line = NULL;
	}
	/* In a closed wafer this die may have been what other rows' lone dies
	 * were waiting for (the median, or the news that there will be none). */
	if (d->g->w->closed)
		resolve_wafer(ds, d->g->w);
	else
		resolve_group(ds, d->g);
	gc(ds);
	pthread_mutex_unlock(&ds->mu);
}

/* ------------------------------------------------------------ reader */

static int reserve(struct detect_stream *ds, uint64_t *slot)
{
	return pool_reserve(ds->pool, slot);
}

/* A member's bytes as they stand on the line (a string's escapes kept); caller frees. */
static char *peek_raw(const char *line, size_t len, const char *key)
{
	const char *v;
	size_t n;
	if (!event_peek(line, len, key, &v, &n))
		return NULL;
	return xstrndup(v, n);
}

static int64_t peek_seq(const char *line, size_t len)
{
	char *s = peek_raw(line, len, "seq");
	long v;
	int64_t r = -1;
	if (s && parse_long(s, 0, LONG_MAX, &v) == 0)
		r = v;
	free(s);
	return r;
}

static struct wafer *open_wafer(struct detect_stream *ds, const char *id)
{
	struct wafer *w;
	for (w = ds->wafers; w; w = w->next)
		if (!w->closed && !strcmp(w->id, id))
			return w;
	w = xcalloc(1, sizeof *w);
	w->id = xstrdup(id);
	w->next = ds->wafers;
	ds->wafers = w;
	return w;
}

static int take_die(struct detect_stream *ds, const char *line, size_t len, uint64_t lineno, uint64_t offset)
{
	char *wid = peek_raw(line, len, "wafer"), *row = peek_raw(line, len, "row"), *col = peek_raw(line, len, "col");
	int64_t seq = peek_seq(line, len);
	uint64_t slot;
	struct die *d;
	struct wafer *w;
	struct group *g;
	char key[96];

	if (reserve(ds, &slot) < 0) {
		free(wid);
		free(row);
		free(col);
		return -1;
	}
	snprintf(key, sizeof key, "%s/%s,%s", wid ? wid : "?", col ? col : "?", row ? row : "?");
	if (!ds->have_geom || !wid || !row || !col) {
		const char *reason = ds->have_geom ? "bad_die" : "no_run_start";
		const char *msg = ds->have_geom ? "die event lacks wafer, col or row"
						: "die before a run_start with the geometry";
		log_msg(LOG_WARN, json_pack("{s:s,s:s,s:I}", "reason", reason, "key", key, "line", (json_int_t)lineno),
			"die '%s' rejected: %s", key, msg);
		pool_complete(ds->pool, slot, reject_item(ds->run, reason, msg, seq, line, len, len, lineno, offset, 1));
		free(wid);
		free(row);
		free(col);
		return 0;
	}
	free(col);
	d = xcalloc(1, sizeof *d);
	d->ds = ds;
	d->slot = slot;
	d->lineno = lineno;
	d->offset = offset;
	d->line = xmemdup(line, len);
	d->len = len;
	d->seq = seq;
	d->geom = ds->geom;
	pool_op_begin(ds->pool, &d->op, key);

	pthread_mutex_lock(&ds->mu);
	w = open_wafer(ds, wid);
	g = w->open;
	if (g && strcmp(g->row, row) != 0) {
		g->closed = 1;
		resolve_group(ds, g);
		g = NULL;
	}
	if (!g) {
		struct group **gp;
		g = xcalloc(1, sizeof *g);
		g->w = w;
		g->row = row;
		row = NULL;
		for (gp = &w->groups; *gp; gp = &(*gp)->next)
			;
		*gp = g;
		w->open = g;
	}
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 16;
		g->dies = xrealloc(g->dies, g->cap * sizeof *g->dies);
	}
	d->g = g;
	d->pos = g->n;
	g->dies[g->n++] = d;
	pthread_mutex_unlock(&ds->mu);
	free(wid);
	free(row);
	pool_submit(ds->pool, decode_task, d);
	return 0;
}

static struct item *pass_item(const char *line, size_t len)
{
	struct item *it = xcalloc(1, sizeof *it);
	it->kind = IT_PASS;
	it->buf = xmalloc(len + 1);
	memcpy(it->buf, line, len);
	it->buf[len] = '\n';
	it->len = len + 1;
	return it;
}

static void take_run_start(struct detect_stream *ds, const char *line, size_t len)
{
	json_error_t err;
	json_t *ev = json_loadb(line, len, 0, &err);
	char msg[200];
	struct detect_geom g;
	if (!ev) {
		log_msg(LOG_WARN, NULL, "run_start is not JSON: %s", err.text);
		return;
	}
	if (detect_geom_from_run_start(ev, &g, msg, sizeof msg) < 0) {
		log_msg(LOG_WARN, NULL, "%s: its dies will be rejected", msg);
		ds->have_geom = 0;
	} else {
		ds->geom = g;
		ds->have_geom = 1;
	}
	free(ds->run);
	ds->run = json_strdup(ev, "run");
	if (ds->run)
		log_set_run(ds->run);
	json_decref(ev);
}

static struct item *wafer_end_item(struct detect_stream *ds, const char *line, size_t len)
{
	struct item *it = pass_item(line, len);
	json_t *ev = json_loadb(line, len, 0, NULL);
	json_t *seq, *slot, *dies;
	if (!ev)
		return it;
	seq = json_object_get(ev, "seq");
	slot = json_object_get(ev, "slot");
	dies = json_object_get(ev, "dies");
	it->wafer_end = 1;
	it->wafer = json_strdup(ev, "wafer");
	it->run = json_strdup(ev, "run");
	it->t = json_strdup(ev, "t");
	it->seq = json_is_integer(seq) ? (uint64_t)json_integer_value(seq) : 0;
	it->slot_no = json_is_integer(slot) ? (long)json_integer_value(slot) : -1;
	it->dies = json_is_integer(dies) ? (long)json_integer_value(dies) : -1;
	it->geom = ds->geom;
	it->have_geom = ds->have_geom;
	json_decref(ev);
	return it;
}

int detect_stream_line(struct detect_stream *ds, const char *line, size_t len, uint64_t lineno, uint64_t offset)
{
	enum event_type type = event_peek_type(line, len);
	uint64_t slot;
	struct item *it;

	if (type == EV_DIE)
		return take_die(ds, line, len, lineno, offset);
	if (reserve(ds, &slot) < 0)
		return -1;
	switch (type) {
	case EV_RUN_START:
		take_run_start(ds, line, len);
		it = pass_item(line, len);
		break;
	case EV_WAFER_END: {
		char *wid = peek_raw(line, len, "wafer");
		it = wafer_end_item(ds, line, len);
		if (wid) {
			pthread_mutex_lock(&ds->mu);
			for (struct wafer *w = ds->wafers; w; w = w->next)
				if (!w->closed && !strcmp(w->id, wid))
					close_wafer(ds, w, 1);
			gc(ds);
			pthread_mutex_unlock(&ds->mu);
		}
		free(wid);
		break;
	}
	case EV_RUN_END:
		close_all(ds);
		it = pass_item(line, len);
		break;
	default:
		it = pass_item(line, len);
		break;
	}
	pool_complete(ds->pool, slot, it);
	return 0;
}

int detect_stream_reject(struct detect_stream *ds, const char *reason, const char *msg, const char *raw,
			 size_t raw_len, uint64_t full_len, uint64_t lineno, uint64_t offset)
{
	uint64_t slot;
	if (reserve(ds, &slot) < 0)
		return -1;
	pool_complete(ds->pool, slot, reject_item(ds->run, reason, msg, -1, raw, raw_len, full_len, lineno, offset, 0));
	return 0;
}

/* ------------------------------------------------------------- life */

struct detect_stream *detect_stream_new(const struct detect_stream_config *cfg)
{
	struct detect_stream *ds = xcalloc(1, sizeof *ds);
	struct pool_config pc = {
		.workers = cfg->workers, .max_inflight = cfg->max_inflight, .emit = emit, .discard = discard,
		.idle = idle, .stall = stall, .arg = ds, .newest_first = cfg->newest_first,
	};
	struct stats *s = cfg->stats;
	ds->cfg = *cfg;
	pthread_mutex_init(&ds->mu, NULL);
	ds->c_in = stats_counter(s, "in");
	ds->c_passed = stats_counter(s, "out");
	ds->c_consumed = stats_counter(s, "consumed");
	ds->c_rejected = stats_counter(s, "rejected");
	ds->c_dies = stats_work(s, "dies", "dies");
	ds->c_die_done = stats_counter(s, "die_done");
	ds->c_defects = stats_counter(s, "defects");
	ds->c_summaries = stats_counter(s, "wafer_summaries");
	ds->c_write_err = stats_counter(s, "reject_write_errors");
	ds->pool = pool_new(&pc);
	return ds;
}

json_t *detect_stream_stats(void *arg)
{
	struct detect_stream *ds = arg;
	if (!ds->pool)
		return ds->final_stats ? json_deep_copy(ds->final_stats) : NULL;
	return pool_stats_json(ds->pool);
}

int detect_stream_failed(struct detect_stream *ds)
{
	return ds->pool ? pool_failed(ds->pool) : 0;
}

int detect_stream_end(struct detect_stream *ds)
{
	int code;
	if (!ds->pool)
		return 0;
	/* After a failure nothing more is written: do not finish the rows. */
	if (!pool_failed(ds->pool)) {
		close_all(ds);
		pool_drain(ds->pool);
	}
	code = pool_failed(ds->pool);
	/* Stop the threads, so that the caller's final stats and the close
	 * of stdout race with nobody. */
	ds->final_stats = pool_stats_json(ds->pool);
	pool_free(ds->pool);
	ds->pool = NULL;
	if (!code && !ds->write_failed && fflush(ds->cfg.out) != 0) {
		log_write_failed(LOG_ERROR, "standard output", errno, NULL);
		code = KERF_EX_IOERR;
	}
	return code;
}

void detect_stream_free(struct detect_stream *ds)
{
	if (!ds)
		return;
	pool_free(ds->pool);
	ds->pool = NULL;
	while (ds->wafers) {
		struct wafer *w = ds->wafers;
		ds->wafers = w->next;
		while (w->groups) {
			struct group *g = w->groups;
			w->groups = g->next;
			group_free(g);
		}
		image_release(&w->median);
		free(w->id);
		free(w);
	}
	while (ds->acc)
		wacc_drop(ds, ds->acc);
	json_decref(ds->final_stats);
	free(ds->run);
	pthread_mutex_destroy(&ds->mu);
	free(ds);
}

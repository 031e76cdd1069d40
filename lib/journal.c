/* journal.c: see journal.h. */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "event.h"
#include "failpoint.h"
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

#define COMMIT_PREFIX "{\"commit\":"
#define SEG_FMT "seg-%08" PRIu64 ".ndjson"

/* A set of 64-bit ids: open addressing, linear probing; 0 kept apart. */
struct idset {
	uint64_t *slot;
	size_t cap, n;
	int has_zero;
	size_t init;           /* first capacity, a power of two; 0: 1 << 14 */
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static int idset_has(const struct idset *s, uint64_t id)
{
	size_t i;
	if (id == 0)
		return s->has_zero;
	if (!s->cap)
		return 0;
	for (i = mix(id) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (s->slot[i] == id)
			return 1;
	return 0;
}

static void idset_put_nogrow(struct idset *s, uint64_t id)
{
	size_t i;
	for (i = mix(id) & (s->cap - 1); s->slot[i]; i = (i + 1) & (s->cap - 1))
		if (s->slot[i] == id)
			return;
	s->slot[i] = id;
	s->n++;
}

/* 1 if added, 0 if it was there. */
static int idset_add(struct idset *s, uint64_t id)
{
	if (id == 0) {
		int had = s->has_zero;
		s->has_zero = 1;
		return !had;
	}
	if (idset_has(s, id))
		return 0;
	if ((s->n + 1) * 2 > s->cap) {
		struct idset ns = { 0 };
		size_t i;
		ns.cap = s->cap ? s->cap * 2 : s->init ? s->init : 1 << 14;
		ns.slot = xcalloc(ns.cap, sizeof *ns.slot);
		for (i = 0; i < s->cap; i++)
			if (s->slot[i])
				idset_put_nogrow(&ns, s->slot[i]);
		free(s->slot);
		s->slot = ns.slot;
		s->cap = ns.cap;
	}
	idset_put_nogrow(s, id);
	return 1;
}

static void idset_free(struct idset *s)
{
	free(s->slot);
	memset(s, 0, sizeof *s);
}

/* ---- the index ---- */

/* Seqs as sorted, disjoint, non-adjacent closed intervals. */
struct ival {
	uint64_t lo, hi;
};

struct ivset {
	struct ival *v;
	size_t n, cap;
};

/* Index of the first interval with lo > s (0..n). */
static size_t ivset_after(const struct ivset *s, uint64_t x)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->v[mid].lo > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int ivset_has(const struct ivset *s, uint64_t x)
{
	size_t i;
	if (s->n && x >= s->v[s->n - 1].lo)
		return x <= s->v[s->n - 1].hi;
	i = ivset_after(s, x);
	return i > 0 && x <= s->v[i - 1].hi;
}

/* x < 2^63, so x + 1 never wraps. */
static void ivset_add(struct ivset *s, uint64_t x)
{
	size_t i;
	struct ival *prev, *next;

	/* The live case: at or just past the end of the last interval. */
	if (s->n && x >= s->v[s->n - 1].lo) {
		if (x <= s->v[s->n - 1].hi + 1) {
			if (x > s->v[s->n - 1].hi)
				s->v[s->n - 1].hi = x;
			return;
		}
		i = s->n;
	} else {
		i = ivset_after(s, x);
	}
	prev = i > 0 ? &s->v[i - 1] : NULL;
	next = i < s->n ? &s->v[i] : NULL;
	if (prev && x <= prev->hi)
		return;
	if (prev && x == prev->hi + 1) {
		prev->hi = x;
		if (next && next->lo == x + 1) {
			prev->hi = next->hi;
			memmove(next, next + 1, (s->n - i - 1) * sizeof *next);
			s->n--;
		}
		return;
	}
	if (next && next->lo == x + 1) {
		next->lo = x;
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		s->v = xrealloc(s->v, s->cap * sizeof *s->v);
	}
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
	s->v[i].lo = s->v[i].hi = x;
	s->n++;
}

/* What the index knows of one run. */
struct runidx {
	char *run;             /* the raw bytes of "run", as on the line */
	size_t runlen;
	uint64_t hash;
	struct ivset seqs;     /* every seq journaled in this run */
	uint64_t top;          /* the highest of them */
	struct idset top_ids;  /* the ids journaled at seq top */
};

struct index {
	struct runidx *runs;
	size_t nruns, capruns;
	size_t *tab;           /* open addressing on the run's hash: index + 1 */
	size_t tabcap;
	size_t last;           /* the run looked up last */
	struct idset loose;    /* ids of events without a "run" or a usable "seq" */
	struct idset exact;    /* every id, while events arrive again */
	int has_exact;
	size_t exact_built;    /* ids in it when it was built */
	uint64_t quiet;        /* answers without the exact set since it was last needed */
	uint64_t builds;
};

#define TOP_IDS_CAP 16

static void idset_reset(struct idset *s)
{
	if (s->cap <= 4 * TOP_IDS_CAP) {
		if (s->cap)
			memset(s->slot, 0, s->cap * sizeof *s->slot);
		s->n = 0;
		s->has_zero = 0;
	} else {
		idset_free(s);
	}
	s->init = TOP_IDS_CAP;
}

static void index_free(struct index *x)
{
	for (size_t i = 0; i < x->nruns; i++) {
		free(x->runs[i].run);
		free(x->runs[i].seqs.v);
		idset_free(&x->runs[i].top_ids);
	}
	free(x->runs);
	free(x->tab);
	idset_free(&x->loose);
	idset_free(&x->exact);
	memset(x, 0, sizeof *x);
}

static void tab_put(size_t *tab, size_t cap, uint64_t hash, size_t idx)
{
	size_t i;
	for (i = mix(hash) & (cap - 1); tab[i]; i = (i + 1) & (cap - 1))
		;
	tab[i] = idx + 1;
}

/* The run's entry; NULL when it is not known and !create. */
static struct runidx *run_get(struct index *x, const char *run, size_t len, int create)
{
	uint64_t h;
	size_t i;
	struct runidx *r;

	if (x->nruns) {
		r = &x->runs[x->last];
		if (r->runlen == len && memcmp(r->run, run, len) == 0)
			return r;
	}
	h = kerf_xxh3(run, len);
	if (x->tabcap)
		for (i = mix(h) & (x->tabcap - 1); x->tab[i]; i = (i + 1) & (x->tabcap - 1)) {
			r = &x->runs[x->tab[i] - 1];
			if (r->hash == h && r->runlen == len && memcmp(r->run, run, len) == 0) {
				x->last = x->tab[i] - 1;
				return r;
			}
		}
	if (!create)
		return NULL;
	if (x->nruns == x->capruns) {
		x->capruns = x->capruns ? x->capruns * 2 : 4;
		x->runs = xrealloc(x->runs, x->capruns * sizeof *x->runs);
	}
	if ((x->nruns + 1) * 2 > x->tabcap) {
		size_t cap = x->tabcap ? x->tabcap * 2 : 16;
		free(x->tab);
		x->tab = xcalloc(cap, sizeof *x->tab);
		x->tabcap = cap;
		for (i = 0; i < x->nruns; i++)
			tab_put(x->tab, cap, x->runs[i].hash, i);
	}
	r = &x->runs[x->nruns];
	memset(r, 0, sizeof *r);
	r->run = xmalloc(len ? len : 1);
	memcpy(r->run, run, len);
	r->runlen = len;
	r->hash = h;
	r->top_ids.init = TOP_IDS_CAP;
	tab_put(x->tab, x->tabcap, h, x->nruns);
	x->last = x->nruns;
	return &x->runs[x->nruns++];
}

/* Note a journaled (or pending) event. */
static void index_note(struct index *x, const struct journal_key *k)
{
	struct runidx *r;

	if (x->has_exact)
		idset_add(&x->exact, k->id);
	if (!k->run || !k->has_seq) {
		if (!x->loose.cap)
			x->loose.init = 256;
		idset_add(&x->loose, k->id);
		return;
	}
	r = run_get(x, k->run, k->runlen, 1);
	if (!r->seqs.n || k->seq > r->top) {
		r->top = k->seq;
		idset_reset(&r->top_ids);
	}
	if (k->seq == r->top)
		idset_add(&r->top_ids, k->id);
	ivset_add(&r->seqs, k->seq);
}

/*
 * 1 journaled, 0 not, -1 when the answer needs the exact set (the
 * event's seq is one the run has journaled below its highest) and it is
 * not there.
 */
static int index_lookup(struct index *x, const struct journal_key *k)
{
	struct runidx *r;

	if (!k->run || !k->has_seq)
		return idset_has(&x->loose, k->id);
	r = run_get(x, k->run, k->runlen, 0);
	if (!r || !r->seqs.n || k->seq > r->top)
		return 0;
	if (k->seq == r->top)
		return idset_has(&r->top_ids, k->id);
	if (!ivset_has(&r->seqs, k->seq))
		return 0;
	x->quiet = 0;
	if (!x->has_exact)
		return -1;
	return idset_has(&x->exact, k->id);
}

int journal_parse_id(const char *s, size_t len, uint64_t *id)
{
	uint64_t v = 0;
	size_t i;
	if (len != 16)
		return -1;
	for (i = 0; i < 16; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint64_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint64_t)(c - 'A' + 10);
		else
			return -1;
	}
	*id = v;
	return 0;
}

/* A seq: decimal digits, below 2^63. */
static int parse_seq(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;
	if (len == 0 || len > 19)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >> 63)
		return -1;
	*out = v;
	return 0;
}

int journal_key_of(const char *line, size_t len, struct journal_key *k)
{
	const char *v;
	size_t vl;

	memset(k, 0, sizeof *k);
	if (!event_peek(line, len, "id", &v, &vl) || journal_parse_id(v, vl, &k->id) != 0)
		return -1;
	if (event_peek(line, len, "run", &v, &vl)) {
		k->run = v;
		k->runlen = vl;
	}
	if (event_peek(line, len, "seq", &v, &vl) && parse_seq(v, vl, &k->seq) == 0)
		k->has_seq = 1;
	return 0;
}

void journal_info_release(struct journal_info *ji)
{
	free(ji->tail_segment);
	ji->tail_segment = NULL;
}

/* ---- scanning ---- */

static int is_commit_line(const char *line, size_t len)
{
	const char *v;
	size_t vl;
	return len >= sizeof COMMIT_PREFIX - 1 &&
	       memcmp(line, COMMIT_PREFIX, sizeof COMMIT_PREFIX - 1) == 0 &&
	       !event_peek(line, len, "type", &v, &vl);
}

struct commit_rec {
	uint64_t n, count, bytes, xxh3;
};

static int parse_commit(const char *line, size_t len, struct commit_rec *c, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *o = json_loadb(line, len, 0, &jerr), *v;
	const char *h;
	int rc = -1;

	if (!o) {
		snprintf(why, whylen, "commit record is not valid JSON: %s", jerr.text);
		return -1;
	}
#define GETU(name, dst)                                                                  \
	v = json_object_get(o, name);                                                    \
	if (!json_is_integer(v) || json_integer_value(v) < 0) {                          \
		snprintf(why, whylen, "commit record lacks a valid \"%s\"", name);       \
		goto out;                                                                \
	}                                                                                \
	dst = (uint64_t)json_integer_value(v);
	GETU("commit", c->n)
	GETU("count", c->count)
	GETU("bytes", c->bytes)
#undef GETU
	v = json_object_get(o, "xxh3");
	h = json_string_value(v);
	if (!h || journal_parse_id(h, strlen(h), &c->xxh3) != 0) {
		snprintf(why, whylen, "commit record lacks a valid \"xxh3\"");
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

struct scanner {
	struct idset *ids;     /* every id (verify, the exact set), or NULL */
	struct index *idx;     /* the index (open), or NULL */
	journal_event_fn fn;
	void *arg;
	int strict_dups;       /* a duplicate id is damage (verify) */
	uint64_t dups;
	struct journal_info *ji;
};

static uint64_t seg_number(const char *name)
{
	uint64_t n = 0;
	const char *p;
	char want[64];
	if (strncmp(name, "seg-", 4) != 0)
		return 0;
	for (p = name + 4; *p >= '0' && *p <= '9'; p++)
		n = n * 10 + (uint64_t)(*p - '0');
	snprintf(want, sizeof want, SEG_FMT, n);
	return strcmp(want, name) == 0 ? n : 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The segment numbers in dir, sorted; -1 on error (errno). */
static int list_segments(const char *dir, uint64_t **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t cap = 16;
	if (!d)
		return -1;
	*n = 0;
	*out = xmalloc(cap * sizeof **out);
	while ((e = readdir(d))) {
		uint64_t s = seg_number(e->d_name);
		if (!s)
			continue;
		if (*n == cap)
			*out = xrealloc(*out, (cap *= 2) * sizeof **out);
		(*out)[(*n)++] = s;
	}
	closedir(d);
	qsort(*out, *n, sizeof **out, cmp_u64);
	return 0;
}

/* Hand the committed events of buf[0..len) to the scanner. */
static int deliver(struct scanner *sc, const char *path, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)(nl - p);
		struct journal_key k;
		if (journal_key_of(p, n, &k) == 0) {
			if (sc->idx)
				index_note(sc->idx, &k);
			if (sc->ids && !idset_add(sc->ids, k.id)) {
				sc->dups++;
				if (sc->strict_dups) {
					char hx[17];
					hex64(k.id, hx);
					snprintf(sc->ji->err, sizeof sc->ji->err,
						 "'%s': id %s is journaled twice", path, hx);
					return -1;
				}
			}
		} else if (sc->strict_dups) {
			snprintf(sc->ji->err, sizeof sc->ji->err,
				 "'%s': a committed event has no valid \"id\"", path);
			return -1;
		}
		if (sc->fn)
			sc->fn(sc->arg, p, n);
		p = nl + 1;
	}
	return 0;
}

/*
 * Scan one segment.  Returns 0 if it is whole; 1 if it ends in an
 * uncommitted tail (ji->tail_*); -1 if damaged (ji->err).  *good gets the
 * offset where its committed data ends.
 */
static int scan_segment(struct scanner *sc, const char *path, uint64_t *good)
{
	struct journal_info *ji = sc->ji;
	/* A segment is a file of our own, never a link planted to elsewhere. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *buf = NULL;
	size_t size, off = 0, batch_start = 0;
	uint64_t count = 0;
	int rc = 0;

	*good = 0;
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(ji->err, sizeof ji->err, "cannot open '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size = (size_t)st.st_size;
	if (size == 0) {
		close(fd);
		return 0;
	}
	buf = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (buf == MAP_FAILED) {
		snprintf(ji->err, sizeof ji->err, "cannot map '%s': %s", path, strerror(errno));
		return -1;
	}
	while (off < size) {
		const char *line = buf + off;
		const char *nl = memchr(line, '\n', size - off);
		size_t n;
		struct commit_rec c;
		char why[256];
		if (!nl)
			break; /* an incomplete last line: the tail */
		n = (size_t)(nl - line);
		if (!is_commit_line(line, n)) {
			count++;
			off += n + 1;
			continue;
		}
		if (parse_commit(line, n, &c, why, sizeof why) != 0)
			goto bad;
		if (c.n != ji->last_commit + 1) {
			snprintf(why, sizeof why, "commit %" PRIu64 " follows commit %" PRIu64, c.n, ji->last_commit);
			goto bad;
		}
		if (c.count != count || c.bytes != off - batch_start) {
			snprintf(why, sizeof why,
				 "commit %" PRIu64 " says %" PRIu64 " events in %" PRIu64
				 " bytes, the batch has %" PRIu64 " in %zu",
				 c.n, c.count, c.bytes, count, off - batch_start);
			goto bad;
		}
		if (kerf_xxh3(buf + batch_start, off - batch_start) != c.xxh3) {
			snprintf(why, sizeof why, "commit %" PRIu64 ": checksum mismatch", c.n);
			goto bad;
		}
		if (deliver(sc, path, buf + batch_start, off - batch_start) != 0) {
			rc = -1;
			goto out;
		}
		ji->last_commit = c.n;
		ji->batches++;
		ji->events += count;
		ji->bytes += off - batch_start;
		off += n + 1;
		batch_start = off;
		count = 0;
		continue;
bad:
		/*
		 * A commit that does not check.  If a later complete commit
		 * record follows, this is damage inside the journal and not a
		 * torn tail: refuse to cut away committed batches.
		 */
		{
			size_t o2 = off + n + 1;
			int later = 0;
			while (o2 < size) {
				const char *l2 = buf + o2;
				const char *nl2 = memchr(l2, '\n', size - o2);
				if (!nl2)
					break;
				if (is_commit_line(l2, (size_t)(nl2 - l2))) {
					later = 1;
					break;
				}
				o2 += (size_t)(nl2 - l2) + 1;
			}
			if (later) {
				snprintf(ji->err, sizeof ji->err, "'%s' at byte %zu: %s", path, off, why);
				rc = -1;
				goto out;
			}
		}
		break;
	}
	*good = batch_start;
	if (batch_start < size) {
		const char *p;
		ji->tail_bytes = size - batch_start;
		ji->tail_lines = 0;
		for (p = buf + batch_start; p < buf + size; p++)
			if (*p == '\n')
				ji->tail_lines++;
		if (buf[size - 1] != '\n')
			ji->tail_lines++;
		free(ji->tail_segment);
		ji->tail_segment = xstrdup(path);
		ji->tail_offset = batch_start;
		rc = 1;
	}
out:
	munmap(buf, size);
	return rc;
}

/*
 * Scan every segment.  *segs and *nsegs get the segment numbers, *last_good
 * the committed length of the last one.  0 whole, 1 tail, -1 damaged.
 */
static int scan_all(const char *dir, struct scanner *sc, uint64_t **segs, size_t *nsegs, uint64_t *last_good)
{
	struct journal_info *ji = sc->ji;
	size_t i;
	int rc = 0;

	*last_good = 0;
	if (list_segments(dir, segs, nsegs) != 0) {
		snprintf(ji->err, sizeof ji->err, "cannot read '%s': %s", dir, strerror(errno));
		return -1;
	}
	ji->segments = *nsegs;
	for (i = 0; i < *nsegs; i++) {
		char *path = xasprintf("%s/" SEG_FMT, dir, (*segs)[i]);
		rc = scan_segment(sc, path, last_good);
		if (rc == 1 && i + 1 < *nsegs) {
			snprintf(ji->err, sizeof ji->err,
				 "'%s' has %" PRIu64 " uncommitted bytes and is not the last segment",
				 path, ji->tail_bytes);
			rc = -1;
		}
		free(path);
		if (rc < 0)
			return -1;
	}
	return rc;
}

int journal_verify(const char *dir, journal_event_fn fn, void *arg, struct journal_info *ji)
{
	struct idset ids = { 0 };
	struct scanner sc = { &ids, NULL, fn, arg, 1, 0, ji };
	uint64_t *segs = NULL, last_good;
	size_t nsegs = 0;
	int rc;

	memset(ji, 0, sizeof *ji);
	rc = scan_all(dir, &sc, &segs, &nsegs, &last_good);
	if (rc == 1)
		snprintf(ji->err, sizeof ji->err,
			 "'%s' ends in an uncommitted tail of %" PRIu64 " bytes after commit %" PRIu64,
			 ji->tail_segment, ji->tail_bytes, ji->last_commit);
	free(segs);
	idset_free(&ids);
	return rc;
}

/* ---- writing ---- */

struct journal {
	char *dir;
	struct journal_opts o;
	int dirfd, fd;
	uint64_t seg;          /* current segment number */
	char *seg_path;
	uint64_t seg_size;     /* committed bytes in it */
	uint64_t commit_no;
	uint64_t commits;      /* since open */
	struct index idx;
	char *buf;             /* pending batch, then its commit record */
	size_t len, cap;
	size_t count;
	size_t last_len;       /* event bytes of the batch just committed */
	int committed;         /* buf holds a committed batch */
};

static void buf_reserve(struct journal *j, size_t more)
{
	if (j->len + more <= j->cap)
		return;
	while (j->cap < j->len + more)
		j->cap = j->cap ? j->cap * 2 : 1 << 16;
	j->buf = xrealloc(j->buf, j->cap);
}

static int open_segment(struct journal *j, uint64_t n, int create)
{
	free(j->seg_path);
	j->seg = n;
	j->seg_path = xasprintf("%s/" SEG_FMT, j->dir, n);
	j->fd = open(j->seg_path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0), 0644);
	if (j->fd < 0) {
		log_msg(LOG_ERROR, NULL, "cannot open '%s': %s", j->seg_path, strerror(errno));
		return -1;
	}
	if (create && j->o.fsync == JOURNAL_FSYNC_BATCH && fsync(j->dirfd) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot sync '%s': %s", j->dir, strerror(errno));
		return -1;
	}
	return 0;
}

static void fsync_parent(const char *dir)
{
	char *parent = xstrdup(dir), *slash = strrchr(parent, '/');
	int fd;
	if (slash == parent)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else {
		free(parent);
		parent = xstrdup(".");
	}
	fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(parent);
}

struct journal *journal_open(const char *dir, const struct journal_opts *o,
			     journal_event_fn fn, void *arg, int *code)
{
	struct journal *j = xcalloc(1, sizeof *j);
	struct journal_info ji;
	struct scanner sc;
	uint64_t *segs = NULL, last_good = 0;
	size_t nsegs = 0;
	struct stat st;
	int rc, existed = stat(dir, &st) == 0;

	memset(&ji, 0, sizeof ji);
	j->dir = xstrdup(dir);
	j->o = *o;
	j->fd = -1;
	*code = KERF_EX_IOERR;
	if (mkdir_p(dir, 0755) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot create '%s': %s", dir, strerror(errno));
		goto fail;
	}
	if (!existed)
		fsync_parent(dir);
	/* Not through a symbolic link planted at RUNDIR/journal. */
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (j->dirfd < 0) {
		log_msg(LOG_ERROR, NULL, "cannot open '%s': %s", dir, strerror(errno));
		goto fail;
	}
	if (flock(j->dirfd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			*code = KERF_EX_TEMPFAIL;
			log_msg(LOG_ERROR, NULL, "'%s' is in use by another kerf-persist", dir);
		} else {
			log_msg(LOG_ERROR, NULL, "cannot lock '%s': %s", dir, strerror(errno));
		}
		goto fail;
	}

	sc = (struct scanner){ NULL, &j->idx, fn, arg, 0, 0, &ji };
	rc = scan_all(dir, &sc, &segs, &nsegs, &last_good);
	if (rc < 0) {
		*code = KERF_EX_DATAERR;
		log_msg(LOG_ERROR, NULL, "journal is damaged: %s; not a torn tail, so nothing is cut away "
			"(check it with kerf-persist --verify)", ji.err);
		goto fail;
	}
	if (rc == 1) {
		int tfd = open(ji.tail_segment, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (tfd < 0 || ftruncate(tfd, (off_t)ji.tail_offset) != 0 || fsync(tfd) != 0) {
			log_msg(LOG_ERROR, NULL, "cannot truncate '%s': %s", ji.tail_segment, strerror(errno));
			if (tfd >= 0)
				close(tfd);
			goto fail;
		}
		close(tfd);
		log_msg(LOG_WARN,
			json_pack("{ss sI sI sI sI}", "segment", ji.tail_segment,
				  "offset", (json_int_t)ji.tail_offset,
				  "dropped_bytes", (json_int_t)ji.tail_bytes,
				  "dropped_lines", (json_int_t)ji.tail_lines,
				  "last_commit", (json_int_t)ji.last_commit),
			"recovery: cut an uncommitted tail of %" PRIu64 " bytes (%" PRIu64
			" lines) from '%s' after commit %" PRIu64,
			ji.tail_bytes, ji.tail_lines, ji.tail_segment, ji.last_commit);
	}
	if (ji.batches || nsegs)
		log_msg(LOG_INFO,
			json_pack("{sI sI sI sI}", "segments", (json_int_t)nsegs,
				  "batches", (json_int_t)ji.batches, "events", (json_int_t)ji.events,
				  "last_commit", (json_int_t)ji.last_commit),
			"recovery: journal '%s' verified", dir);
	j->commit_no = ji.last_commit;
	if (nsegs) {
		if (open_segment(j, segs[nsegs - 1], 0) != 0)
			goto fail;
		j->seg_size = last_good;
		if (j->seg_size >= j->o.segment_size) {
			close(j->fd);
			if (open_segment(j, j->seg + 1, 1) != 0)
				goto fail;
			j->seg_size = 0;
		}
	} else if (open_segment(j, 1, 1) != 0) {
		goto fail;
	}
	free(segs);
	journal_info_release(&ji);
	return j;
fail:
	free(segs);
	journal_info_release(&ji);
	journal_close(j);
	return NULL;
}

/*
 * Build the exact set: every id of the journal (read again from the
 * segments) and of the pending batch.
 */
static int build_exact(struct journal *j)
{
	struct index *x = &j->idx;
	struct journal_info ji;
	struct scanner sc;
	uint64_t *segs = NULL, last_good;
	size_t nsegs = 0;
	int rc;

	memset(&ji, 0, sizeof ji);
	idset_free(&x->exact);
	sc = (struct scanner){ &x->exact, NULL, NULL, NULL, 0, 0, &ji };
	rc = scan_all(j->dir, &sc, &segs, &nsegs, &last_good);
	free(segs);
	if (rc != 0) {
		log_msg(LOG_ERROR, NULL, "cannot read the journal '%s' again: %s", j->dir,
			rc > 0 ? "it has an uncommitted tail" : ji.err);
		journal_info_release(&ji);
		idset_free(&x->exact);
		errno = EIO;
		return -1;
	}
	journal_info_release(&ji);
	if (!j->committed) {
		const char *p = j->buf, *end = j->buf + j->len;
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			struct journal_key k;
			if (journal_key_of(p, (size_t)(nl - p), &k) == 0)
				idset_add(&x->exact, k.id);
			p = nl + 1;
		}
	}
	x->has_exact = 1;
	x->exact_built = x->exact.n;
	x->quiet = 0;
	x->builds++;
	log_msg(LOG_INFO, json_pack("{sI sI}", "ids", (json_int_t)(x->exact.n + (size_t)x->exact.has_zero),
				    "events", (json_int_t)ji.events),
		"events already journaled are arriving again: looking them up among all %zu ids "
		"of the journal while they do", x->exact.n + (size_t)x->exact.has_zero);
	return 0;
}

int journal_seen(struct journal *j, const struct journal_key *k)
{
	struct index *x = &j->idx;
	int rc = index_lookup(x, k);

	if (rc < 0) {
		if (build_exact(j) != 0)
			return -1;
		return idset_has(&x->exact, k->id);
	}
	/* Long enough without needing it to have paid for building it
	 * again (reading what it was built from and the events since):
	 * give the memory back. */
	if (x->has_exact && ++x->quiet > (uint64_t)x->exact_built + JOURNAL_QUIET_MIN) {
		log_msg(LOG_INFO, json_pack("{sI}", "ids", (json_int_t)x->exact.n),
			"no event already journaled among the last %" PRIu64 ": the set of all ids is let go",
			x->quiet);
		idset_free(&x->exact);
		x->has_exact = 0;
		x->quiet = 0;
	}
	return rc;
}

void journal_add(struct journal *j, const struct journal_key *k, const char *line, size_t len)
{
	if (j->committed) {
		j->len = 0;
		j->committed = 0;
	}
	buf_reserve(j, len + 1);
	memcpy(j->buf + j->len, line, len);
	j->buf[j->len + len] = '\n';
	j->len += len + 1;
	j->count++;
	index_note(&j->idx, k);
}

size_t journal_pending(const struct journal *j)
{
	return j->committed ? 0 : j->count;
}

size_t journal_pending_bytes(const struct journal *j)
{
	return j->committed ? 0 : j->len;
}

/*
 * The failpoints inside a commit before its one write: each leaves in the
 * segment what a crash at that moment could leave (half of the batch, a
 * record cut in its middle; the events without their commit record), then
 * kills the process.
 */
static void commit_failpoints(struct journal *j, size_t events_len)
{
	if (failpoint_due(FP_JOURNAL_TORN)) {
		(void)write_all(j->fd, j->buf, events_len / 2);
		failpoint_die(FP_JOURNAL_TORN);
	}
	if (failpoint_due(FP_JOURNAL_UNCOMMITTED)) {
		(void)write_all(j->fd, j->buf, events_len);
		failpoint_die(FP_JOURNAL_UNCOMMITTED);
	}
}

int journal_commit(struct journal *j)
{
	char rec[128];
	int n, e;
	size_t events_len = j->len;

	if (j->committed || j->count == 0) {
		/* Nothing new: journal_last_batch must not offer the old batch. */
		j->last_len = 0;
		return 0;
	}
	n = snprintf(rec, sizeof rec, "{\"commit\":%" PRIu64 ",\"count\":%zu,\"bytes\":%zu,\"xxh3\":\"",
		     j->commit_no + 1, j->count, events_len);
	hex64(kerf_xxh3(j->buf, events_len), rec + n);
	n += 16;
	n += snprintf(rec + n, sizeof rec - (size_t)n, "\"}\n");
	buf_reserve(j, (size_t)n);
	memcpy(j->buf + j->len, rec, (size_t)n);
	j->len += (size_t)n;

	if (__builtin_expect(failpoint_armed, 0))
		commit_failpoints(j, events_len);
	if (write_all(j->fd, j->buf, j->len) == 0) {
		FAILPOINT(FP_JOURNAL_UNSYNCED);
		if (j->o.fsync != JOURNAL_FSYNC_BATCH || fdatasync(j->fd) == 0)
			e = 0;
		else
			e = errno ? errno : EIO;
	} else {
		e = errno ? errno : EIO;
	}
	if (e) {
		log_msg(LOG_ERROR, json_pack("{sI}", "commit", (json_int_t)(j->commit_no + 1)),
			"cannot write '%s': %s", j->seg_path, strerror(e));
		/* Cut the partial batch off now if we can; the next open would. */
		if (ftruncate(j->fd, (off_t)j->seg_size) == 0)
			(void)fdatasync(j->fd);
		errno = e;
		return -1;
	}
	FAILPOINT(FP_JOURNAL_SYNCED);
	j->seg_size += j->len;
	j->commit_no++;
	j->commits++;
	j->last_len = events_len;
	j->count = 0;
	j->committed = 1;
	if (j->seg_size >= j->o.segment_size) {
		close(j->fd);
		j->fd = -1;
		if (open_segment(j, j->seg + 1, 1) != 0)
			return -1;
		j->seg_size = 0;
	}
	return 0;
}

const char *journal_last_batch(const struct journal *j, size_t *len)
{
	*len = j->committed ? j->last_len : 0;
	return j->buf;
}

uint64_t journal_commits(const struct journal *j)
{
	return j->commits;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd > 0)
		close(j->dirfd);
	index_free(&j->idx);
	free_all(j->buf, j->seg_path, j->dir, j);
}

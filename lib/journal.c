/* journal.c: see journal.h. */
#include "kerf.h"
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMMIT_PREFIX "{\"commit\":"
#define SEG_FMT "seg-%08" PRIu64 ".ndjson"

/* A set of 64-bit ids: open addressing, linear probing; 0 kept apart. */
struct idset {
	uint64_t *slot;
	size_t cap, n;
	int has_zero;
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
		ns.cap = s->cap ? s->cap * 2 : 1 << 14;
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
	struct idset *ids;
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
		const char *v;
		size_t vl;
		uint64_t id;
		if (event_peek(p, n, "id", &v, &vl) && journal_parse_id(v, vl, &id) == 0) {
			if (!idset_add(sc->ids, id)) {
				sc->dups++;
				if (sc->strict_dups) {
					snprintf(sc->ji->err, sizeof sc->ji->err,
						 "'%s': id %.16s is journaled twice", path, v);
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
	struct scanner sc = { &ids, fn, arg, 1, 0, ji };
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
	struct idset ids;
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

	sc = (struct scanner){ &j->ids, fn, arg, 0, 0, &ji };
	rc = scan_all(dir, &sc, &segs, &nsegs, &last_good);
	if (rc < 0) {
		*code = KERF_EX_DATAERR;
		log_msg(LOG_ERROR, NULL, "journal is damaged: %s; not a torn tail, so nothing is cut away "
			"(check it with kerf-persist --verify)", ji.err);
		goto fail;
	}
	if (sc.dups)
		log_msg(LOG_WARN, json_pack("{sI}", "duplicates", (json_int_t)sc.dups),
			"journal '%s' holds %" PRIu64 " duplicate ids", dir, sc.dups);
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

int journal_seen(const struct journal *j, uint64_t id)
{
	return idset_has(&j->ids, id);
}

void journal_add(struct journal *j, uint64_t id, const char *line, size_t len)
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
	idset_add(&j->ids, id);
}

size_t journal_pending(const struct journal *j)
{
	return j->committed ? 0 : j->count;
}

size_t journal_pending_bytes(const struct journal *j)
{
	return j->committed ? 0 : j->len;
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

	if (write_all(j->fd, j->buf, j->len) != 0 ||
	    (j->o.fsync == JOURNAL_FSYNC_BATCH && fdatasync(j->fd) != 0)) {
		e = errno;
		log_msg(LOG_ERROR, json_pack("{sI}", "commit", (json_int_t)(j->commit_no + 1)),
			"cannot write '%s': %s", j->seg_path, strerror(e));
		/* Cut the partial batch off now if we can; the next open would. */
		if (ftruncate(j->fd, (off_t)j->seg_size) == 0)
			(void)fdatasync(j->fd);
		errno = e;
		return -1;
	}
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
	idset_free(&j->ids);
	free(j->buf);
	free(j->seg_path);
	free(j->dir);
	free(j);
}

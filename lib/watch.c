/*
 * watch.c: kerf watch.  One event loop over poll(2): an inotify
 * descriptor for the drop directories (none in polling mode), a signalfd
 * for SIGCHLD and the stop signals, and a tick that drives the settle
 * rule.  The watcher is the one writer of its state: the ledger (a
 * journal in OUTDIR/.watch/journal, one event and one commit record per
 * change, so each line is checksummed and a torn tail is cut by
 * journal_open's recovery), OUTDIR/inputs.tsv (derived from the ledger,
 * rewritten whole and atomically), and the snapshots in
 * OUTDIR/.watch/in/NAME that the jobs run.  A job is `kerf reprocess -o
 * OUTDIR --task N`, the same job a reprocess batch runs.
 *
 * A file goes seen -> pending -> running -> done | failed; only the last
 * four are in the ledger (watch.taken, watch.start, watch.end).  Its
 * identity is its content: (xxh3-64, size).  The scheduler keeps one FIFO
 * per key (the tool), runs one job per key, at most o->jobs in all, and
 * takes the next job round-robin over the keys with work waiting.
 */
#include "exitcode.h"
#include "failpoint.h"
#include "util.h"
#include "log.h"
#include "atomic.h"
#include "journal.h"
#include "klarf.h"
#include "openmetrics.h"
#include "reprocess.h"
#include "runstate.h"
#include "status_metrics.h"
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "banned.h"

/* A name in a drop directory: the "seen" state, in memory only. */
struct seen {
	char *path;
	int dir;                 /* its drop directory, an index of o->dirs */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	uint64_t since;          /* mono_ms when it was first seen as it is */
	int judged;              /* taken or found taken, as it is */
	int closed;              /* inotify: closed after writing or moved in */
	int present;             /* found by the current scan */
};

enum wstate { W_PENDING, W_RUNNING, W_DONE, W_FAILED };

/* A taken file; it[i] is task i + 1, the line i + 1 of inputs.tsv. */
struct item {
	uint64_t hash, size;
	char *path;              /* where it was dropped */
	size_t key;              /* index of w->k */
	enum wstate state;
	int64_t taken_ms;        /* the wall clock when it was taken (ms) */
};

/* A key's FIFO of items waiting (pending, or cut by a restart). */
struct wkey {
	char *name;
	size_t *q, head, len, cap;
	int active;              /* a job of this key runs */
};

struct job {
	pid_t pid;
	size_t item;
};

struct watcher {
	const struct watch_opts *o;
	char *out, *wdir, *self;
	char **dirs;             /* the drop directories, absolute */
	int lockfd, inofd, sigfd;
	int *wd;                 /* inotify watch of each drop directory */
	int rescan;              /* list the directories at the next tick */
	struct journal *j;
	uint64_t seq;            /* the ledger's last seq */
	int ledger_bad;          /* a ledger event could not be read back */
	struct item *it;
	struct rp_entry *e;      /* inputs.tsv, parallel to it */
	size_t n;
	struct wkey *k;
	size_t nk, rr;           /* rr: the key to look at first */
	struct job *jobs;
	int active;
	struct seen *s;
	size_t ns;
	int stops;               /* stop signals and commands received */
	int jobs_max;            /* -j, or the last "jobs N" */
	int paused;
	char *deferred;          /* why no job may start now, or NULL */
	const char *deferred_by; /* its kind: "defer-if" or "min-free" (static), or NULL */
	json_t *metrics_st;      /* the state OUTDIR/metrics.prom was last written from */
	int metrics_warned;      /* a failure to write it was logged */
	int ctlfd;               /* the control socket, listening; -1: none */
	char *ctlpath;
	int failed;              /* a global failure: the exit code, else 0 */
};

static uint64_t tick_ms(const struct watch_opts *o)
{
	uint64_t t = o->settle_ms / 4;
	return t < 20 ? 20 : t > 1000 ? 1000 : t;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	real_now(&ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Names that tools write under before renaming into place. */
static int ignored_name(const char *base)
{
	size_t l = strlen(base);
	static const char *const ends[] = { ".tmp", ".part", "~", NULL };
	if (base[0] == '.' || strstr(base, ".tmp."))
		return 1;
	for (const char *const *x = ends; *x; x++) {
		size_t xl = strlen(*x);
		if (l >= xl && !strcmp(base + l - xl, *x))
			return 1;
	}
	return 0;
}

/* ---- the ledger ---- */

static const char *const state_name[] = { "pending", "running", "done", "failed" };

/*
 * Append one ledger event (ev is stolen) and commit it: durable on
 * return 0.  Its id hashes "watch:" and its seq, so that ids are unique
 * as journal_verify requires.
 */
static int ledger_put(struct watcher *w, json_t *ev)
{
	json_t *rec = json_object();
	char key[40], id[17];
	char *line;
	struct journal_key jk;
	int rc;

	w->seq++;
	int kl = snprintf(key, sizeof key, "watch:%" PRIu64, w->seq);
	hex64(kerf_xxh3(key, (size_t)kl), id);
	json_object_set_new(rec, "id", json_string(id));
	json_object_set_new(rec, "run", json_string("watch"));
	json_object_set_new(rec, "seq", json_integer((json_int_t)w->seq));
	json_object_update(rec, ev);
	json_decref(ev);
	line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(rec);
	if (!line || journal_key_of(line, strlen(line), &jk) != 0) {
		free(line);
		log_msg(LOG_ERROR, NULL, "cannot make a ledger record");
		w->failed = KERF_EX_SOFTWARE;
		return -1;
	}
	journal_add(w->j, &jk, line, strlen(line));
	rc = journal_commit(w->j);
	free(line);
	if (rc != 0)
		w->failed = KERF_EX_IOERR;
	return rc;
}

static size_t key_get(struct watcher *w, const char *name)
{
	for (size_t i = 0; i < w->nk; i++)
		if (!strcmp(w->k[i].name, name))
			return i;
	w->k = xrealloc(w->k, (w->nk + 1) * sizeof *w->k);
	memset(&w->k[w->nk], 0, sizeof *w->k);
	w->k[w->nk].name = xstrdup(name);
	return w->nk++;
}

static void key_push(struct wkey *k, size_t item)
{
	if (k->head + k->len == k->cap) {
		if (k->head) {
			memmove(k->q, k->q + k->head, k->len * sizeof *k->q);
			k->head = 0;
		} else {
			k->cap = k->cap ? 2 * k->cap : 8;
			k->q = xrealloc(k->q, k->cap * sizeof *k->q);
		}
	}
	k->q[k->head + k->len++] = item;
}

/* The snapshot a job runs: a stream file, or a directory of one KLARF file. */
static char *snapshot_dir(const struct watcher *w, const char *name)
{
	return xasprintf("%s/in/%s", w->wdir, name);
}

/* Add taken item number n + 1 (the caller has its ledger line). */
static void item_add(struct watcher *w, uint64_t hash, uint64_t size, const char *path,
		     const char *key, const char *name, int klarf, int64_t taken_ms)
{
	char *dir = snapshot_dir(w, name);
	w->it = xrealloc(w->it, (w->n + 1) * sizeof *w->it);
	w->e = xrealloc(w->e, (w->n + 1) * sizeof *w->e);
	w->it[w->n] = (struct item){ hash, size, xstrdup(path), key_get(w, key), W_PENDING, taken_ms };
	w->e[w->n].name = xstrdup(name);
	w->e[w->n].path = klarf ? xstrdup(dir) : xasprintf("%s/stream.ndjson", dir);
	free(dir);
	w->n++;
}

/* The task an event names: its item, or NULL (logged). */
static struct item *task_item(struct watcher *w, const json_t *ev)
{
	json_int_t t = json_integer_value(json_object_get(ev, "task"));
	if (t < 1 || (size_t)t > w->n)
		return NULL;
	return &w->it[t - 1];
}

/* journal_open's callback: one committed ledger event, read back. */
static void ledger_event(void *arg, const char *line, size_t len)
{
	struct watcher *w = arg;
	json_t *ev = json_loadb(line, len, 0, NULL);
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
	struct item *it;
	int ok = 1;

	if (seq > 0 && (uint64_t)seq > w->seq)
		w->seq = (uint64_t)seq;
	if (type && !strcmp(type, "watch.taken")) {
		const char *hash = json_string_value(json_object_get(ev, "hash"));
		const char *path = json_string_value(json_object_get(ev, "path"));
		const char *key = json_string_value(json_object_get(ev, "key"));
		const char *name = json_string_value(json_object_get(ev, "name"));
		const char *kind = json_string_value(json_object_get(ev, "kind"));
		json_int_t task = json_integer_value(json_object_get(ev, "task"));
		uint64_t h;
		ok = hash && path && key && name && kind && (size_t)task == w->n + 1 &&
		     journal_parse_id(hash, strlen(hash), &h) == 0;
		if (ok)
			item_add(w, h, (uint64_t)json_integer_value(json_object_get(ev, "size")), path, key,
				 name, !strcmp(kind, "klarf"), json_integer_value(json_object_get(ev, "ms")));
	} else if (type && !strcmp(type, "watch.start")) {
		ok = (it = task_item(w, ev)) != NULL;
		if (ok)
			it->state = W_RUNNING;
	} else if (type && !strcmp(type, "watch.end")) {
		ok = (it = task_item(w, ev)) != NULL;
		if (ok && !strcmp(json_string_value(json_object_get(ev, "outcome")) ?: "", "stopped"))
			it->state = W_PENDING;
		else if (ok)
			it->state = json_integer_value(json_object_get(ev, "exit_code")) == 0 ? W_DONE : W_FAILED;
	} else {
		ok = 0;
	}
	if (!ok) {
		log_msg(LOG_ERROR, NULL, "the ledger holds a record kerf watch cannot read: %.*s", (int)len, line);
		w->ledger_bad = 1;
	}
	json_decref(ev);
}

/*
 * A job ended with code.  One that the watcher's own stop aborted
 * (stopped) is not the file's failure: its outcome is "stopped" and the
 * file is pending again, to run from the start at the next start.
 */
static int ledger_end(struct watcher *w, size_t i, int code, int stopped)
{
	struct item *it = &w->it[i];
	it->state = stopped ? W_PENDING : code == 0 ? W_DONE : W_FAILED;
	return ledger_put(w, json_pack("{ss sI ss si}", "type", "watch.end", "task", (json_int_t)(i + 1),
				       "outcome", stopped ? "stopped" : state_name[it->state], "exit_code", code));
}

/*
 * A run the ledger says started but not ended was cut by the watcher's
 * death, unless its job got as far as its record in results.ndjson
 * (written last, so then it had ended): take the end from the record.
 */
static void settle_cut_runs(struct watcher *w)
{
	char *path = xasprintf("%s/results.ndjson", w->out);
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;

	while (f && getline(&line, &cap, f) > 0) {
		json_t *rec = json_loads(line, 0, NULL);
		struct rp_result r;
		if (rp_result_read(rec, &r) == 0 && r.task.set && r.task.v >= 1 && (size_t)r.task.v <= w->n &&
		    r.name && !strcmp(r.name, w->e[r.task.v - 1].name) && w->it[r.task.v - 1].state == W_RUNNING) {
			int code = r.exit_code.set ? (int)r.exit_code.v : KERF_EX_SOFTWARE;
			if (code == 0 && (!r.outcome || strcmp(r.outcome, "completed")))
				code = KERF_EX_FAILED;
			ledger_end(w, (size_t)r.task.v - 1, code, 0);
		}
		json_decref(rec);
	}
	free(line);
	if (f)
		fclose(f);
	free(path);
	for (size_t i = 0; i < w->n; i++)
		if (w->it[i].state == W_RUNNING) {
			log_msg(LOG_WARN, json_pack("{ss sI}", "name", w->e[i].name, "task", (json_int_t)(i + 1)),
				"'%s' was cut mid-run; it runs again from the start", w->e[i].name);
			w->it[i].state = W_PENDING;
		}
	for (size_t i = 0; i < w->n; i++)
		if (w->it[i].state == W_PENDING)
			key_push(&w->k[w->it[i].key], i);
}

/* ---- taking a file ---- */

/* Read a whole file; NULL when it cannot be read (errno set). */
static char *slurp(const char *path, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	char *buf = NULL;
	size_t n = 0, cap = 0;
	ssize_t r;

	if (fd < 0)
		return NULL;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	do {
		if (n == cap) {
			cap = cap ? 2 * cap : (size_t)st->st_size + 1;
			buf = xrealloc(buf, cap);
		}
		r = read(fd, buf + n, cap - n);
		if (r > 0)
			n += (size_t)r;
	} while (r > 0 || (r < 0 && errno == EINTR));
	if (r < 0) {
		int e = errno;
		free(buf);
		close(fd);
		errno = e;
		return NULL;
	}
	/* Judge by what was read, as it was when reading ended. */
	fstat(fd, st);
	close(fd);
	*len = n;
	return buf;
}

static int is_stream(const char *buf, size_t len)
{
	size_t i = 0;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	return i < len && buf[i] == '{';
}

int watch_key_init(struct watch_key *k, const char *rule, char *err, size_t errlen)
{
	int rc;
	memset(k, 0, sizeof *k);
	k->rule = rule;
	if (!strcmp(rule, "dir")) {
		k->dir = 1;
		return 0;
	}
	if ((rc = regcomp(&k->re, rule, REG_EXTENDED)) != 0) {
		regerror(rc, &k->re, err, errlen);
		return -1;
	}
	k->has_re = 1;
	return 0;
}

void watch_key_release(struct watch_key *k)
{
	if (k->has_re)
		regfree(&k->re);
	k->has_re = 0;
}

/* The base name of a drop directory, the key of last resort.  Caller frees. */
static char *dir_key(const char *dir)
{
	const char *b = strrchr(dir, '/');
	return xstrdup(b && b[1] ? b + 1 : dir);
}

/*
 * The key a --key regex gives path: its first capture group, or the
 * whole match when it has none; NULL when it does not match, or matches
 * no text.  Caller frees.
 */
static char *regex_key(const struct watch_key *r, const char *path)
{
	regmatch_t m[2];
	const regmatch_t *x = &m[r->re.re_nsub > 0];
	if (regexec(&r->re, path, 2, m, 0) != 0 || x->rm_so < 0 || x->rm_eo <= x->rm_so)
		return NULL;
	return xstrndup(path + x->rm_so, (size_t)(x->rm_eo - x->rm_so));
}

/*
 * The tool a file came from: a KLARF's InspectionStationID, a stream's
 * run_start tool, else the drop directory's base name.  Caller frees.
 */
static char *tool_key(const char *buf, size_t len, int stream, const char *dir)
{
	char *key = NULL;
	if (stream) {
		const char *nl = memchr(buf, '\n', len);
		json_t *ev = json_loadb(buf, nl ? (size_t)(nl - buf) : len, 0, NULL);
		const char *type = json_string_value(json_object_get(ev, "type"));
		const char *tool = json_string_value(json_object_get(ev, "tool"));
		if (type && !strcmp(type, "run_start") && tool && *tool)
			key = xstrdup(tool);
		json_decref(ev);
	} else {
		FILE *f = fmemopen((void *)buf, len, "r");
		struct klarf k;
		char err[256];
		memset(&k, 0, sizeof k);
		if (f && klarf_read(f, "", &k, err, sizeof err) == 0 && k.station && *k.station)
			key = xstrdup(k.station);
		klarf_free(&k);
		if (f)
			fclose(f);
	}
	return key ? key : dir_key(dir);
}

/*
 * The key of the file at path, dropped in dir, of content buf: what
 * --key says, else (and when its regex does not match: logged, once per
 * file taken) its tool.  Caller frees.
 */
static char *key_of(const struct watcher *w, const char *path, const char *dir, const char *buf, size_t len,
		    int stream)
{
	const struct watch_key *r = w->o->key;
	char *key;
	if (r && r->dir)
		return dir_key(dir);
	if (r && (key = regex_key(r, path)))
		return key;
	key = tool_key(buf, len, stream, dir);
	if (r)
		log_msg(LOG_WARN, json_pack("{ss ss}", "path", path, "key", key),
			"'%s' does not match --key '%s': its key is '%s', as without --key", path, r->rule, key);
	return key;
}

/* Empty a snapshot directory of what an attempt cut before its ledger line left. */
static void empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			char *p = xasprintf("%s/%s", dir, de->d_name);
			unlink(p);
			free(p);
		}
	if (d)
		closedir(d);
}

/* The stat identity that says a file is still as it was judged. */
static int same_as(const struct seen *s, const struct stat *st)
{
	return s->dev == st->st_dev && s->ino == st->st_ino && s->size == st->st_size &&
	       s->mtime.tv_sec == st->st_mtim.tv_sec && s->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void seen_set(struct seen *s, const struct stat *st)
{
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->size = st->st_size;
	s->mtime = st->st_mtim;
	s->since = mono_ms();
	s->judged = 0;
}

/*
 * Take a complete file: hash it, drop it if its content was taken
 * before, else snapshot it, write watch.taken, rewrite inputs.tsv and
 * queue it under its key.  A file that changed while it was read is not
 * complete after all: it waits to settle again.
 */
static void take(struct watcher *w, struct seen *s)
{
	struct stat st;
	size_t len = 0;
	char *buf = slurp(s->path, &len, &st);
	uint64_t hash;

	if (!buf) {
		if (errno != ENOENT)
			log_msg(LOG_WARN, NULL, "cannot read '%s': %s", s->path, strerror(errno));
		s->judged = 1;
		return;
	}
	if (!same_as(s, &st) && !s->closed) {
		seen_set(s, &st);
		free(buf);
		return;
	}
	seen_set(s, &st);
	s->judged = 1;
	s->closed = 0;
	/* An empty file is a tool that has created its file and not yet
	 * written it: wait for it to change. */
	if (len == 0) {
		free(buf);
		return;
	}
	hash = kerf_xxh3(buf, len);
	for (size_t i = 0; i < w->n; i++)
		if (w->it[i].hash == hash && w->it[i].size == len) {
			log_msg(LOG_INFO, json_pack("{ss ss}", "path", s->path, "name", w->e[i].name),
				"'%s' already taken as '%s' (the same content)", s->path, w->e[i].name);
			free(buf);
			return;
		}

	int stream = is_stream(buf, len);
	const char *base = strrchr(s->path, '/') + 1;
	char *key = key_of(w, s->path, w->dirs[s->dir], buf, len, stream);
	char *fname = reprocess_file_name(base);
	char *name = reprocess_unique_name(w->e, w->n, fname);
	char *dir = snapshot_dir(w, name);
	char *snap = xasprintf("%s/%s", dir, stream ? "stream.ndjson" : base);
	char hx[17];

	hex64(hash, hx);
	if (mkdir_p(dir, 0777) != 0 || (empty_dir(dir), atomic_write_file(snap, buf, len)) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", snap, strerror(errno));
		w->failed = KERF_EX_IOERR;
	}
	if (!w->failed)
		FAILPOINT(FP_WATCH_SNAPSHOT);
	if (!w->failed &&
	    ledger_put(w, json_pack("{ss ss sI ss ss ss ss sI sI}", "type", "watch.taken", "hash", hx,
					   "size", (json_int_t)len, "path", s->path, "kind",
					   stream ? "stream" : "klarf", "key", key, "name", name, "task",
					   (json_int_t)(w->n + 1), "ms", (json_int_t)wall_ms())) == 0) {
		FAILPOINT(FP_WATCH_TAKEN);
		item_add(w, hash, len, s->path, key, name, !stream, wall_ms());
		if (reprocess_write_inputs(w->out, w->e, w->n) != 0)
			w->failed = KERF_EX_IOERR;
		key_push(&w->k[w->it[w->n - 1].key], w->n - 1);
		log_msg(LOG_INFO, json_pack("{ss ss ss sI}", "path", s->path, "name", name, "key", key, "task",
					    (json_int_t)w->n),
			"took '%s' as '%s' (key '%s')", s->path, name, key);
	}
	free(snap);
	free(dir);
	free(name);
	free(fname);
	free(key);
	free(buf);
}

/* ---- following the directories ---- */

static struct seen *seen_get(struct watcher *w, int dir, const char *base, int create)
{
	char *path = xasprintf("%s/%s", w->dirs[dir], base);
	for (size_t i = 0; i < w->ns; i++)
		if (!strcmp(w->s[i].path, path)) {
			free(path);
			return &w->s[i];
		}
	if (!create) {
		free(path);
		return NULL;
	}
	w->s = xrealloc(w->s, (w->ns + 1) * sizeof *w->s);
	memset(&w->s[w->ns], 0, sizeof *w->s);
	w->s[w->ns].path = path;
	w->s[w->ns].dir = dir;
	return &w->s[w->ns++];
}

static void seen_drop(struct watcher *w, struct seen *s)
{
	free(s->path);
	*s = w->s[--w->ns];
}

/* List the drop directories: new and changed files start to settle. */
static void scan(struct watcher *w)
{
	for (size_t i = 0; i < w->ns; i++)
		w->s[i].present = 0;
	for (int d = 0; d < w->o->ndirs; d++) {
		DIR *dp = opendir(w->dirs[d]);
		struct dirent *de;
		if (!dp) {
			log_msg(LOG_WARN, NULL, "cannot list '%s': %s", w->dirs[d], strerror(errno));
			continue;
		}
		while ((de = readdir(dp))) {
			struct stat st;
			struct seen *s;
			if (ignored_name(de->d_name) || fstatat(dirfd(dp), de->d_name, &st, 0) != 0 ||
			    !S_ISREG(st.st_mode))
				continue;
			s = seen_get(w, d, de->d_name, 1);
			s->present = 1;
			if (s->since == 0 || !same_as(s, &st))
				seen_set(s, &st);
		}
		closedir(dp);
	}
	for (size_t i = w->ns; i-- > 0;)
		if (!w->s[i].present)
			seen_drop(w, &w->s[i]);
}

/* Take each file that is complete: closed, or settled. */
static void judge(struct watcher *w)
{
	uint64_t now = mono_ms();
	for (size_t i = 0; i < w->ns && !w->failed; i++) {
		struct seen *s = &w->s[i];
		if (!s->judged && (s->closed || now - s->since >= w->o->settle_ms))
			take(w, s);
	}
}

static void inotify_read(struct watcher *w)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;

	while ((len = read(w->inofd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			int d;
			p += sizeof *ev + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				w->rescan = 1;
				continue;
			}
			for (d = 0; d < w->o->ndirs && w->wd[d] != ev->wd; d++)
				;
			if (d == w->o->ndirs || !ev->len || ignored_name(ev->name))
				continue;
			if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
				struct seen *s = seen_get(w, d, ev->name, 0);
				if (s)
					seen_drop(w, s);
			} else {
				struct seen *s = seen_get(w, d, ev->name, 1);
				struct stat st;
				if (stat(s->path, &st) == 0 && S_ISREG(st.st_mode)) {
					seen_set(s, &st);
					s->closed = 1;
				} else {
					seen_drop(w, s);
				}
			}
		}
	}
}

/* ---- jobs ---- */

static void start_job(struct watcher *w, struct wkey *k, sigset_t *orig)
{
	size_t i = k->q[k->head];
	char task[24];
	pid_t pid;

	if (ledger_put(w, json_pack("{ss sI}", "type", "watch.start", "task", (json_int_t)(i + 1))) != 0)
		return;
	FAILPOINT(FP_WATCH_STARTED);
	k->head++;
	k->len--;
	k->active = 1;
	w->it[i].state = W_RUNNING;
	snprintf(task, sizeof task, "%zu", i + 1);
	pid = fork();
	if (pid == 0) {
		char *argv[] = { w->self, "reprocess", "-o", w->out, "--task", task, NULL };
		setpgid(0, 0);
		/* The job dies with the watcher, without a record: the
		 * restarted watcher runs it again from the start. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigprocmask(SIG_SETMASK, orig, NULL);
		execv(argv[0], argv);
		log_msg(LOG_ERROR, NULL, "cannot run '%s': %s", argv[0], strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		log_msg(LOG_ERROR, NULL, "cannot fork: %s", strerror(errno));
		ledger_end(w, i, KERF_EX_SOFTWARE, 0);
		k->active = 0;
		return;
	}
	setpgid(pid, pid);
	w->jobs = xrealloc(w->jobs, (size_t)(w->active + 1) * sizeof *w->jobs);
	w->jobs[w->active++] = (struct job){ pid, i };
	log_msg(LOG_INFO, json_pack("{ss sI si}", "name", w->e[i].name, "task", (json_int_t)(i + 1), "pid", (int)pid),
		"started '%s' (task %zu)", w->e[i].name, i + 1);
}

/*
 * Whether the surroundings defer every start: the --defer-if file
 * exists, or OUTDIR has less than --min-free free.  w->deferred gets the
 * reason (NULL: none) and w->deferred_by its kind; a change of kind is
 * logged once (the free space in the reason changes at every write).
 * True when deferred.
 */
static int deferred(struct watcher *w)
{
	char *why = NULL;
	const char *by = NULL;
	uint64_t avail;
	if (w->o->defer_if && access(w->o->defer_if, F_OK) == 0) {
		why = xasprintf("'%s' exists", w->o->defer_if);
		by = "defer-if";
	} else if (w->o->min_free && free_bytes(w->out, &avail) == 0 && avail < w->o->min_free) {
		why = xasprintf("%" PRIu64 " bytes free in '%s', under --min-free %" PRIu64, avail, w->out,
				w->o->min_free);
		by = "min-free";
	}
	if (by && by != w->deferred_by)
		log_msg(LOG_WARN, json_pack("{ss ss}", "reason", why, "by", by), "deferring every start: %s", why);
	else if (!by && w->deferred_by)
		log_msg(LOG_INFO, NULL, "no longer deferring: starting again");
	free(w->deferred);
	w->deferred = why;
	w->deferred_by = by;
	return why != NULL;
}

/* Start jobs while there is room: round-robin over the keys with work waiting. */
static void schedule(struct watcher *w, sigset_t *orig)
{
	if (deferred(w))
		return;
	while (!w->stops && !w->paused && !w->failed && w->active < w->jobs_max) {
		size_t i, pick = w->nk;
		for (i = 0; i < w->nk && pick == w->nk; i++) {
			size_t c = (w->rr + i) % w->nk;
			struct wkey *k = &w->k[c];
			if (k->active || !k->len)
				continue;
			/* A run cut by a restart may still be ending: its
			 * directory stays locked until it has. */
			char *rundir = xasprintf("%s/%s", w->out, w->e[k->q[k->head]].name);
			pid_t holder = runstate_lock_holder(rundir);
			free(rundir);
			if (holder <= 0)
				pick = c;
		}
		if (pick == w->nk)
			return;
		w->rr = (pick + 1) % w->nk;
		start_job(w, &w->k[pick], orig);
	}
}

static void reap(struct watcher *w)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int j = 0; j < w->active; j++) {
			if (w->jobs[j].pid != pid)
				continue;
			size_t i = w->jobs[j].item;
			int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			w->jobs[j] = w->jobs[--w->active];
			w->k[w->it[i].key].active = 0;
			/* Aborted by our second stop: its run ended cancelled. */
			int stopped = w->stops >= 2 && code == KERF_EX_CANCELLED;
			FAILPOINT(FP_WATCH_ENDED);
			ledger_end(w, i, code, stopped);
			log_msg(code ? LOG_WARN : LOG_INFO,
				json_pack("{ss sI si}", "name", w->e[i].name, "task", (json_int_t)(i + 1), "exit_code", code),
				"'%s' %s (exit %d)%s", w->e[i].name, stopped ? "stopped" : state_name[w->it[i].state],
				code, stopped ? ": it runs again from the start at the next start" : "");
			break;
		}
	}
}

/* ---- the control channel: OUTDIR/.watch/ctl ---- */

/*
 * The watcher's state as the status command answers it: the limits and
 * flags, and per key its files pending, running, done and failed and
 * the age of its oldest pending file at 'now' (wall clock, ms).  A new
 * reference.
 */
static json_t *status_json(const struct watcher *w, int64_t now)
{
	json_t *keys = json_array();
	for (size_t k = 0; k < w->nk; k++) {
		size_t count[4] = { 0 };
		int64_t oldest = -1;
		for (size_t i = 0; i < w->n; i++) {
			if (w->it[i].key != k)
				continue;
			count[w->it[i].state]++;
			if (w->it[i].state == W_PENDING && (oldest < 0 || w->it[i].taken_ms < oldest))
				oldest = w->it[i].taken_ms;
		}
		json_array_append_new(keys, json_pack("{ss sI sI sI sI so}", "key", w->k[k].name,
						      "pending", (json_int_t)count[W_PENDING],
						      "running", (json_int_t)count[W_RUNNING],
						      "done", (json_int_t)count[W_DONE],
						      "failed", (json_int_t)count[W_FAILED],
						      "oldest_pending_ms",
						      oldest < 0 ? json_null() : json_integer(now - oldest)));
	}
	return json_pack("{ss si si sb sb so so sI so}", "outdir", w->out, "jobs", w->jobs_max, "running", w->active,
			 "paused", w->paused, "stopping", w->stops > 0, "deferred",
			 w->deferred ? json_string(w->deferred) : json_null(), "deferred_by",
			 w->deferred_by ? json_string(w->deferred_by) : json_null(), "taken", (json_int_t)w->n, "keys",
			 keys);
}

static void on_stop(struct watcher *w);

/*
 * One command: status, jobs N, pause, resume or stop.  The answer is a
 * JSON object (a new reference): the state after the command, or
 * {"error": why}.
 */
static json_t *ctl_command(struct watcher *w, const char *cmd)
{
	char *end;
	long n;

	if (!strncmp(cmd, "jobs ", 5)) {
		errno = 0;
		n = strtol(cmd + 5, &end, 10);
		if (errno || end == cmd + 5 || *end || n < 1 || n > 1000000)
			return json_pack("{ss}", "error", "jobs takes a whole number from 1");
		w->jobs_max = (int)n;
		log_msg(LOG_INFO, json_pack("{si}", "jobs", w->jobs_max), "jobs at once: %d", w->jobs_max);
	} else if (!strcmp(cmd, "pause")) {
		if (!w->paused)
			log_msg(LOG_INFO, NULL, "paused: starting nothing new");
		w->paused = 1;
	} else if (!strcmp(cmd, "resume")) {
		if (w->paused)
			log_msg(LOG_INFO, NULL, "resumed");
		w->paused = 0;
	} else if (!strcmp(cmd, "stop")) {
		on_stop(w);
	} else if (strcmp(cmd, "status")) {
		return json_pack("{ss}", "error", "unknown command");
	}
	return status_json(w, wall_ms());
}

/*
 * The address of the control socket wdir/ctl (wdir: OUTDIR/.watch).  A
 * path too long for sun_path (108 bytes) goes through the directory's
 * descriptor instead, /proc/self/fd/N/ctl, which names the same file:
 * *dirfd is then that descriptor, to be closed once the socket is bound
 * or connected (else -1).  0, or -1 with errno.
 */
static int ctl_addr(const char *wdir, struct sockaddr_un *sa, int *dirfd)
{
	char *path = xasprintf("%s/ctl", wdir);
	size_t len = strlen(path);

	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	*dirfd = -1;
	if (len < sizeof sa->sun_path)
		memcpy(sa->sun_path, path, len + 1);
	free(path);
	if (len < sizeof sa->sun_path)
		return 0;
	if ((*dirfd = open(wdir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/ctl", *dirfd);
	return 0;
}

/* Listen on OUTDIR/.watch/ctl (a socket a watcher killed left is replaced:
 * the lock says no other watcher runs). */
static int ctl_listen(struct watcher *w)
{
	struct sockaddr_un sa;
	int dirfd, rc = -1;

	w->ctlpath = xasprintf("%s/ctl", w->wdir);
	unlink(w->ctlpath);
	if (ctl_addr(w->wdir, &sa, &dirfd) == 0 &&
	    (w->ctlfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) >= 0 &&
	    bind(w->ctlfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(w->ctlfd, 8) == 0)
		rc = 0;
	else
		log_msg(LOG_ERROR, NULL, "cannot listen on '%s': %s", w->ctlpath, strerror(errno));
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}

/*
 * Answer the clients waiting.  A client writes one line and reads one
 * line back; one that does not write within a second is dropped, so a
 * stuck client cannot stall the watcher for long.
 */
static void ctl_serve(struct watcher *w)
{
	int c;
	while ((c = accept4(w->ctlfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		struct timeval tv = { 1, 0 };
		char buf[256];
		size_t n = 0;
		ssize_t r;
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		while (n < sizeof buf - 1 && (r = read(c, buf + n, sizeof buf - 1 - n)) > 0) {
			n += (size_t)r;
			if (memchr(buf, '\n', n))
				break;
		}
		buf[n] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		json_t *ans = ctl_command(w, buf);
		char *txt = json_dumps(ans, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (txt) {
			(void)write_all(c, txt, strlen(txt));
			(void)write_all(c, "\n", 1);
		}
		free(txt);
		json_decref(ans);
		close(c);
	}
}

void watch_status_print(const json_t *st)
{
	const json_t *k;
	size_t i;
	printf("%s: jobs %d, %d running, %d taken%s%s\n", json_string_value(json_object_get(st, "outdir")),
	       (int)json_integer_value(json_object_get(st, "jobs")),
	       (int)json_integer_value(json_object_get(st, "running")),
	       (int)json_integer_value(json_object_get(st, "taken")),
	       json_is_true(json_object_get(st, "paused")) ? ", paused" : "",
	       json_is_true(json_object_get(st, "stopping")) ? ", stopping" : "");
	if (json_is_string(json_object_get(st, "deferred")))
		printf("deferred: %s\n", json_string_value(json_object_get(st, "deferred")));
	printf("%-24s %8s %8s %8s %8s %12s\n", "KEY", "PENDING", "RUNNING", "DONE", "FAILED", "OLDEST");
	json_array_foreach(json_object_get(st, "keys"), i, k) {
		const json_t *age = json_object_get(k, "oldest_pending_ms");
		char oldest[32] = "-";
		if (json_is_integer(age))
			snprintf(oldest, sizeof oldest, "%.1fs", (double)json_integer_value(age) / 1000);
		printf("%-24s %8d %8d %8d %8d %12s\n", json_string_value(json_object_get(k, "key")),
		       (int)json_integer_value(json_object_get(k, "pending")),
		       (int)json_integer_value(json_object_get(k, "running")),
		       (int)json_integer_value(json_object_get(k, "done")),
		       (int)json_integer_value(json_object_get(k, "failed")), oldest);
	}
}

/* The per-key counts of a status answer, as metric families. */
static const struct {
	const char *member, *name, *help;
	enum om_type type;
} key_counts[] = {
	{ "pending", "kerf_watch_files_pending", "Files taken and waiting for their run, by key.", OM_GAUGE },
	{ "running", "kerf_watch_files_running", "Files whose run is running, by key.", OM_GAUGE },
	{ "done", "kerf_watch_files_done", "Files whose run completed, by key.", OM_COUNTER },
	{ "failed", "kerf_watch_files_failed", "Files whose run ended otherwise, by key (not retried).", OM_COUNTER },
};

/* A member of st that is true or false as 1 or 0, labelled with the outdir. */
static void flag_metric(struct om *m, const char *const *labels, const json_t *st, const char *member,
			const char *name, const char *help)
{
	om_family(m, name, OM_GAUGE, NULL, help);
	om_sample_int(m, labels, json_is_true(json_object_get(st, member)));
}

void watch_metrics(struct om *m, const json_t *st)
{
	const char *out = json_string_value(json_object_get(st, "outdir"));
	const char *ol[] = { "outdir", out ? out : "", NULL };
	const char *by = json_string_value(json_object_get(st, "deferred_by"));
	const json_t *keys = json_object_get(st, "keys"), *k;
	size_t i;

	for (size_t c = 0; c < sizeof key_counts / sizeof *key_counts; c++) {
		om_family(m, key_counts[c].name, key_counts[c].type, NULL, key_counts[c].help);
		json_array_foreach(keys, i, k) {
			const char *kl[] = { ol[0], ol[1], "key", json_string_value(json_object_get(k, "key")), NULL };
			om_sample_int(m, kl, json_integer_value(json_object_get(k, key_counts[c].member)));
		}
	}
	om_family(m, "kerf_watch_oldest_pending_age_seconds", OM_GAUGE, "seconds",
		  "How long the key's oldest pending file has waited since it was taken.");
	json_array_foreach(keys, i, k) {
		const json_t *age = json_object_get(k, "oldest_pending_ms");
		const char *kl[] = { ol[0], ol[1], "key", json_string_value(json_object_get(k, "key")), NULL };
		if (json_is_integer(age))
			om_sample(m, kl, (double)json_integer_value(age) / 1000.0);
	}
	om_family(m, "kerf_watch_files_taken", OM_COUNTER, NULL, "Files taken (each complete file of new content).");
	om_sample_int(m, ol, json_integer_value(json_object_get(st, "taken")));
	om_family(m, "kerf_watch_jobs_limit", OM_GAUGE, NULL, "Runs allowed at once in all (-j, or the last jobs N).");
	om_sample_int(m, ol, json_integer_value(json_object_get(st, "jobs")));
	om_family(m, "kerf_watch_jobs_running", OM_GAUGE, NULL, "Runs running.");
	om_sample_int(m, ol, json_integer_value(json_object_get(st, "running")));
	flag_metric(m, ol, st, "paused", "kerf_watch_paused", "1 while paused: no run starts until resume.");
	flag_metric(m, ol, st, "stopping", "kerf_watch_stopping",
		    "1 once stopping: no run starts, the watcher exits when the running ones end.");
	om_family(m, "kerf_watch_deferred", OM_GAUGE, NULL,
		  "1 while every start is deferred (--defer-if, --min-free).");
	om_sample_int(m, ol, by != NULL);
	om_family(m, "kerf_watch_deferred_info", OM_GAUGE, NULL,
		  "1 while deferred, labelled with the reason: defer-if or min-free.");
	if (by) {
		const char *rl[] = { ol[0], ol[1], "reason", by, NULL };
		om_sample_int(m, rl, 1);
	}
}

int watch_control(const char *outdir, const char *cmd, json_t **answer)
{
	struct sockaddr_un sa;
	char *wdir = xasprintf("%s/.watch", outdir);
	char *line = NULL;
	size_t cap = 0;
	int fd = -1, dirfd, rc = KERF_EX_OK;
	FILE *f = NULL;
	json_t *ans = NULL;

	*answer = NULL;
	if (ctl_addr(wdir, &sa, &dirfd) != 0 || (fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		log_msg(LOG_ERROR, NULL, "no kerf watch follows into '%s': %s", outdir, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	if (dirfd >= 0)
		close(dirfd);
	free(wdir);
	if (fd < 0)
		return KERF_EX_UNAVAILABLE;
	if (write_all(fd, cmd, strlen(cmd)) != 0 || write_all(fd, "\n", 1) != 0 || !(f = fdopen(fd, "r")) ||
	    getline(&line, &cap, f) <= 0 || !(ans = json_loads(line, 0, NULL))) {
		log_msg(LOG_ERROR, NULL, "no answer from the kerf watch of '%s'", outdir);
		rc = KERF_EX_UNAVAILABLE;
	} else if (json_object_get(ans, "error")) {
		log_msg(LOG_ERROR, NULL, "'%s': %s", cmd, json_string_value(json_object_get(ans, "error")));
		rc = KERF_EX_USAGE;
	} else {
		*answer = json_incref(ans);
	}
	json_decref(ans);
	free(line);
	if (f)
		fclose(f);
	else
		close(fd);
	return rc;
}

/*
 * Rewrite OUTDIR/metrics.prom when the state it shows has changed: a
 * file, a job, a command, a deferral, or, while files wait, a second of
 * their age (so that the age a monitor reads is at most about a second
 * old).  A failure is logged once.
 */
static void metrics_update(struct watcher *w)
{
	json_t *st = status_json(w, wall_ms() / 1000 * 1000);
	char *path;
	struct om m;

	if (w->metrics_st && json_equal(st, w->metrics_st)) {
		json_decref(st);
		return;
	}
	json_decref(w->metrics_st);
	w->metrics_st = st;
	path = xasprintf("%s/" STATUS_METRICS_FILE, w->out);
	om_init(&m);
	watch_metrics(&m, st);
	if (om_write_file(&m, path) != 0 && !w->metrics_warned) {
		log_msg(LOG_WARN, NULL, "cannot write '%s': %s", path, strerror(errno));
		w->metrics_warned = 1;
	}
	om_release(&m);
	free(path);
}

/* ---- start, loop, end ---- */

static int setup(struct watcher *w)
{
	struct journal_opts jo = { JOURNAL_FSYNC_BATCH, 64u << 20 };
	int code;
	char *p;

	if (mkdir_p(w->o->outdir, 0777) != 0 || !(w->out = realpath(w->o->outdir, NULL))) {
		log_msg(LOG_ERROR, NULL, "cannot create '%s': %s", w->o->outdir, strerror(errno));
		return KERF_EX_IOERR;
	}
	w->dirs = xcalloc((size_t)w->o->ndirs, sizeof *w->dirs);
	for (int d = 0; d < w->o->ndirs; d++) {
		struct stat st;
		if (!(w->dirs[d] = realpath(w->o->dirs[d], NULL)) || stat(w->dirs[d], &st) != 0 ||
		    !S_ISDIR(st.st_mode)) {
			log_msg(LOG_ERROR, NULL, "'%s' is not a directory%s%s", w->o->dirs[d],
				w->dirs[d] ? "" : ": ", w->dirs[d] ? "" : strerror(errno));
			return KERF_EX_USAGE;
		}
	}
	w->wdir = xasprintf("%s/.watch", w->out);
	p = xasprintf("%s/lock", w->wdir);
	if (mkdir_p(w->wdir, 0777) != 0 ||
	    (w->lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0666)) < 0) {
		log_msg(LOG_ERROR, NULL, "cannot open '%s': %s", p, strerror(errno));
		free(p);
		return KERF_EX_IOERR;
	}
	if (flock(w->lockfd, LOCK_EX | LOCK_NB) != 0) {
		log_msg(LOG_ERROR, NULL, "'%s' is in use by another kerf watch", w->o->outdir);
		free(p);
		return KERF_EX_TEMPFAIL;
	}
	free(p);
	/* Ours now (the lock is held): a temporary a crash left. */
	atomic_write_cleanup(w->out, STATUS_METRICS_FILE);
	p = xasprintf("%s/journal", w->wdir);
	w->j = journal_open(p, &jo, ledger_event, w, &code);
	free(p);
	if (!w->j)
		return code;
	if (w->ledger_bad)
		return KERF_EX_DATAERR;
	settle_cut_runs(w);
	if (w->failed)
		return w->failed;
	if (reprocess_write_inputs(w->out, w->e, w->n) != 0)
		return KERF_EX_IOERR;
	w->self = self_path();
	if (!w->self) {
		log_msg(LOG_ERROR, NULL, "cannot find kerf's own executable");
		return KERF_EX_SOFTWARE;
	}
	w->inofd = -1;
	if (!w->o->poll) {
		w->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (w->inofd < 0)
			log_msg(LOG_WARN, NULL, "inotify is unavailable (%s); polling", strerror(errno));
	}
	w->wd = xcalloc((size_t)w->o->ndirs, sizeof *w->wd);
	for (int d = 0; w->inofd >= 0 && d < w->o->ndirs; d++) {
		w->wd[d] = inotify_add_watch(w->inofd, w->dirs[d],
					     IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR);
		if (w->wd[d] < 0) {
			log_msg(LOG_WARN, NULL, "cannot watch '%s' (%s); polling", w->dirs[d], strerror(errno));
			close(w->inofd);
			w->inofd = -1;
		}
	}
	w->jobs_max = w->o->jobs;
	if (ctl_listen(w) != 0)
		return KERF_EX_IOERR;
	w->rescan = 1;
	log_msg(LOG_INFO, json_pack("{si ss sI}", "dirs", w->o->ndirs, "mode", w->inofd >= 0 ? "inotify" : "poll",
				    "taken", (json_int_t)w->n),
		"watching %d director%s into '%s'", w->o->ndirs, w->o->ndirs == 1 ? "y" : "ies", w->out);
	return KERF_EX_OK;
}

static void release(struct watcher *w)
{
	for (size_t i = 0; i < w->n; i++) {
		free(w->it[i].path);
		free(w->e[i].name);
		free(w->e[i].path);
	}
	for (size_t i = 0; i < w->nk; i++) {
		free(w->k[i].name);
		free(w->k[i].q);
	}
	for (size_t i = 0; i < w->ns; i++)
		free(w->s[i].path);
	for (int d = 0; w->dirs && d < w->o->ndirs; d++)
		free(w->dirs[d]);
	free_all(w->dirs, w->it, w->e, w->k, w->s, w->jobs, w->wd, w->self, w->wdir, w->out);
	journal_close(w->j);
	if (w->inofd >= 0)
		close(w->inofd);
	if (w->sigfd >= 0)
		close(w->sigfd);
	if (w->ctlfd >= 0) {
		close(w->ctlfd);
		unlink(w->ctlpath);
	}
	free_all(w->ctlpath, w->deferred);
	json_decref(w->metrics_st);
	if (w->lockfd >= 0)
		close(w->lockfd);
}

/* A stop signal or command: the first stops taking work, each later one
 * aborts the jobs' runs as kerf stop --abort does: SIGQUIT, which a job
 * (kerf reprocess --task) passes on to its kerf run. */
static void on_stop(struct watcher *w)
{
	if (w->stops++ == 0) {
		log_msg(LOG_INFO, json_pack("{si}", "active", w->active),
			"stopping: starting nothing new, waiting for %d running job%s", w->active,
			w->active == 1 ? "" : "s");
		return;
	}
	for (int j = 0; j < w->active; j++)
		kill(-w->jobs[j].pid, SIGQUIT);
}

int watch_main(const struct watch_opts *o)
{
	struct watcher w;
	sigset_t mask, orig;
	int rc;

	memset(&w, 0, sizeof w);
	w.o = o;
	w.lockfd = w.inofd = w.sigfd = w.ctlfd = -1;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &orig);
	w.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	rc = w.sigfd < 0 ? KERF_EX_SOFTWARE : setup(&w);
	while (rc == KERF_EX_OK && !w.failed && !(w.stops && w.active == 0)) {
		struct pollfd pfd[3] = { { w.sigfd, POLLIN, 0 }, { w.ctlfd, POLLIN, 0 }, { w.inofd, POLLIN, 0 } };
		struct signalfd_siginfo si;

		if (w.rescan || w.inofd < 0) {
			scan(&w);
			w.rescan = 0;
		}
		judge(&w);
		schedule(&w, &orig);
		if (w.failed || (w.stops && w.active == 0))
			break;
		if (poll(pfd, 3, (int)tick_ms(o)) < 0 && errno != EINTR) {
			log_msg(LOG_ERROR, NULL, "poll: %s", strerror(errno));
			rc = KERF_EX_SOFTWARE;
		}
		while (read(w.sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
			if (si.ssi_signo == SIGCHLD)
				reap(&w);
			else
				on_stop(&w);
		}
		if (w.inofd >= 0)
			inotify_read(&w);
		if (w.ctlfd >= 0)
			ctl_serve(&w);
		metrics_update(&w);
	}
	if (rc == KERF_EX_OK)
		metrics_update(&w);
	if (rc == KERF_EX_OK)
		rc = w.failed;
	release(&w);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return rc;
}

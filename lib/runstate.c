/* runstate.c: see runstate.h. */
#include "util.h"
#include "log.h"
#include "event.h"
#include "atomic.h"
#include "filelock.h"
#include "runstate.h"
#include "status_doc.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

static const char *const state_names[RS__COUNT] = {
	"idle", "preparing", "running", "pausing", "paused", "resuming", "stop-requested",
	"stopping", "completed", "failed", "cancelled", "timed-out",
};

static const char *const event_names[RSE__COUNT] = {
	"prepare", "ready", "pause", "paused", "resume", "resumed", "stop", "stop_confirmed",
	"cmd_refused", "cmd_timed_out", "abort", "fault", "alarm", "timeout", "not_ready", "done_ok",
	"done_failed", "done_cancelled", "done_timeout",
};

/*
 * The transitions.  A missing entry (0, since RS_IDLE is never a
 * target) means the event is refused in that state.  The entries are
 * offset by one so that the zero of an unset slot is "refused".
 *
 * Run state follows the tool, not the request: pause, resume and stop
 * move to pausing, resuming and stop-requested, and only the tool's
 * confirmation (paused, resumed, stop_confirmed) moves on to paused,
 * running and stopping.  A refused or timed-out command goes back:
 * pausing to running, resuming to paused, stop-requested to the settled
 * state (RS_SETTLED), the one the tool was last known to be in, since a
 * stop may come while a pause or the readiness is still pending, and
 * their confirmations (ready, paused, resumed) settle it meanwhile.
 * The tool may finish the lot while a command is pending (done_ok).
 * A failed readiness check (not_ready) ends preparation, a stop
 * requested while preparing included.
 * Stopping accepts fault, alarm, abort and timeout again: the run is
 * already winding down, the supervisor decides which cause wins.
 */
#define T(s) ((signed char)((s) + 1))
#define ENDING(next) \
	[RSE_ABORT] = T(next), [RSE_FAULT] = T(next), [RSE_ALARM] = T(next), [RSE_TIMEOUT] = T(next)
static const signed char table[RS__COUNT][RSE__COUNT] = {
	[RS_IDLE] = {
		[RSE_PREPARE] = T(RS_PREPARING),
	},
	[RS_PREPARING] = {
		[RSE_READY] = T(RS_RUNNING),
		[RSE_NOT_READY] = T(RS_STOPPING),
		[RSE_STOP] = T(RS_STOP_REQUESTED),
		ENDING(RS_STOPPING),
		[RSE_DONE_FAILED] = T(RS_FAILED),
	},
	[RS_RUNNING] = {
		[RSE_PAUSE] = T(RS_PAUSING),
		[RSE_STOP] = T(RS_STOP_REQUESTED),
		ENDING(RS_STOPPING),
		[RSE_DONE_OK] = T(RS_COMPLETED),
	},
	[RS_PAUSING] = {
		[RSE_PAUSED] = T(RS_PAUSED),
		[RSE_CMD_REFUSED] = T(RS_RUNNING),
		[RSE_CMD_TIMED_OUT] = T(RS_RUNNING),
		[RSE_STOP] = T(RS_STOP_REQUESTED),
		ENDING(RS_STOPPING),
		[RSE_DONE_OK] = T(RS_COMPLETED),
	},
	[RS_PAUSED] = {
		[RSE_RESUME] = T(RS_RESUMING),
		[RSE_STOP] = T(RS_STOP_REQUESTED),
		ENDING(RS_STOPPING),
		[RSE_DONE_OK] = T(RS_COMPLETED),
	},
	[RS_RESUMING] = {
		[RSE_RESUMED] = T(RS_RUNNING),
		[RSE_CMD_REFUSED] = T(RS_PAUSED),
		[RSE_CMD_TIMED_OUT] = T(RS_PAUSED),
		[RSE_STOP] = T(RS_STOP_REQUESTED),
		ENDING(RS_STOPPING),
		[RSE_DONE_OK] = T(RS_COMPLETED),
	},
	[RS_STOP_REQUESTED] = {
		[RSE_STOP_CONFIRMED] = T(RS_STOPPING),
		[RSE_CMD_REFUSED] = T(RS_SETTLED),
		[RSE_CMD_TIMED_OUT] = T(RS_SETTLED),
		[RSE_READY] = T(RS_STOP_REQUESTED),
		[RSE_NOT_READY] = T(RS_STOPPING),
		[RSE_PAUSED] = T(RS_STOP_REQUESTED),
		[RSE_RESUMED] = T(RS_STOP_REQUESTED),
		ENDING(RS_STOPPING),
		[RSE_DONE_OK] = T(RS_COMPLETED),
	},
	[RS_STOPPING] = {
		ENDING(RS_STOPPING),
		[RSE_DONE_FAILED] = T(RS_FAILED),
		[RSE_DONE_CANCELLED] = T(RS_CANCELLED),
		[RSE_DONE_TIMEOUT] = T(RS_TIMED_OUT),
	},
	/* completed, failed, cancelled, timed-out: final, nothing allowed */
};
#undef ENDING
#undef T

const char *runstate_state_name(enum runstate_state s)
{
	return (unsigned)s < RS__COUNT ? state_names[s] : "?";
}

int runstate_state_parse(const char *name)
{
	return name_index(name, state_names, RS__COUNT);
}

const char *runstate_event_name(enum runstate_event e)
{
	return (unsigned)e < RSE__COUNT ? event_names[e] : "?";
}

int runstate_is_final(enum runstate_state s)
{
	return s == RS_COMPLETED || s == RS_FAILED || s == RS_CANCELLED || s == RS_TIMED_OUT;
}

int runstate_next(enum runstate_state s, enum runstate_event e)
{
	if ((unsigned)s >= RS__COUNT || (unsigned)e >= RSE__COUNT)
		return -1;
	return table[s][e] - 1;
}

int runstate_settles(enum runstate_event e)
{
	switch (e) {
	case RSE_PREPARE: return RS_PREPARING;
	case RSE_READY: return RS_RUNNING;
	case RSE_PAUSED: return RS_PAUSED;
	case RSE_RESUMED: return RS_RUNNING;
	default: return -1;
	}
}

static void now_str(char out[40])
{
	struct timespec ts;
	real_now(&ts);
	event_time_fmt(&ts, out);
}

int runstate_open(struct runstate *rs, const char *dir, const char *run,
		  char *err, size_t errlen, pid_t *holder)
{
	char *path;

	memset(rs, 0, sizeof *rs);
	rs->lock_fd = rs->timeline_fd = -1;
	if (holder)
		*holder = 0;
	if (mkdir_p(dir, 0777) != 0) {
		snprintf(err, errlen, "cannot create run directory '%s': %s", dir, strerror(errno));
		return -1;
	}
	path = xasprintf("%s/lock", dir);
	rs->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (rs->lock_fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		free(path);
		return -1;
	}
	if (filelock_take(rs->lock_fd, 0) != 0) {
		int e = errno;
		if (e == EAGAIN || e == EACCES) {
			pid_t h = holder ? filelock_holder(rs->lock_fd) : 0;
			if (h > 0)
				*holder = h;
			snprintf(err, errlen, "run directory '%s' is in use by another kerf run", dir);
			close(rs->lock_fd);
			rs->lock_fd = -1;
			free(path);
			return -2;
		}
		snprintf(err, errlen, "cannot lock '%s': %s", path, strerror(e));
		close(rs->lock_fd);
		rs->lock_fd = -1;
		free(path);
		return -1;
	}
	free(path);
	/* Ours now: a status.json temporary here was left by a crash. */
	atomic_write_cleanup(dir, "status.json");
	/* The pid in the lock file is for people; programs use F_GETLK. */
	{
		char buf[32];
		int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
		if (ftruncate(rs->lock_fd, 0) == 0)
			(void)!pwrite(rs->lock_fd, buf, (size_t)n, 0);
	}
	path = xasprintf("%s/timeline.ndjson", dir);
	rs->timeline_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (rs->timeline_fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		free(path);
		runstate_close(rs);
		return -1;
	}
	free(path);
	rs->dir = xstrdup(dir);
	rs->run = xstrdup(run);
	rs->state = rs->settled = RS_IDLE;
	rs->start_ms = rs->since_ms = mono_ms();
	now_str(rs->started);
	memcpy(rs->since, rs->started, sizeof rs->since);
	return 0;
}

void runstate_note(struct runstate *rs, const char *kind, json_t *fields)
{
	char t[40];
	json_t *rec = json_object();
	char *s;

	now_str(t);
	json_object_set_new(rec, "t", json_string(t));
	json_object_set_new(rec, "ms", json_integer((json_int_t)(mono_ms() - rs->start_ms)));
	json_object_set_new(rec, "run", json_string(rs->run));
	json_object_set_new(rec, "kind", json_string(kind));
	if (fields)
		json_object_update_missing(rec, fields);
	s = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (s && rs->timeline_fd >= 0) {
		size_t n = strlen(s);
		s[n] = '\n';
		if (write_all(rs->timeline_fd, s, n + 1) != 0)
			log_msg(LOG_WARN, NULL, "cannot append to '%s/timeline.ndjson': %s",
				rs->dir, strerror(errno));
	}
	free(s);
	json_decref(rec);
	json_decref(fields);
}

int runstate_fire(struct runstate *rs, enum runstate_event e, json_t *fields)
{
	int next = runstate_next(rs->state, e);
	json_t *f = fields ? fields : json_object();

	json_object_set_new(f, "event", json_string(runstate_event_name(e)));
	json_object_set_new(f, "from", json_string(runstate_state_name(rs->state)));
	if (next < 0) {
		runstate_note(rs, "refused", f);
		return -1;
	}
	if (next == RS_SETTLED)
		next = (int)rs->settled;
	if (runstate_settles(e) >= 0)
		rs->settled = (enum runstate_state)runstate_settles(e);
	/* Where a refused stop would go back to, when that is not where
	 * the run is. */
	if (rs->settled != (enum runstate_state)next && !runstate_is_final((enum runstate_state)next))
		json_object_set_new(f, "settled", json_string(runstate_state_name(rs->settled)));
	json_object_set_new(f, "to", json_string(runstate_state_name((enum runstate_state)next)));
	if ((enum runstate_state)next != rs->state) {
		rs->state = (enum runstate_state)next;
		rs->since_ms = mono_ms();
		now_str(rs->since);
	}
	runstate_note(rs, "transition", f);
	return 0;
}

/* Blanks from 'from' up to 'to' (the last one a newline), at the file's offset 'from'. */
static int pad_blank(int fd, off_t from, off_t to)
{
	char blank[512];
	memset(blank, ' ', sizeof blank);
	while (from < to) {
		size_t n = to - from > (off_t)sizeof blank ? sizeof blank : (size_t)(to - from);
		if (from + (off_t)n == to)
			blank[n - 1] = '\n';
		if (write_all(fd, blank, n) != 0)
			return -1;
		from += (off_t)n;
	}
	return 0;
}

/*
 * The last resort when the file system is full (or the file size limit
 * reached): no room for a new file beside status.json, but the old one's
 * blocks are there, its reserve included.  Overwrite it in place,
 * compact, when the new text fits in the old file's blocks (so that no
 * new block is needed and a failure cannot leave a mix of old and new).
 * A shorter text is padded with blanks to the old length, never cut:
 * cutting the file would give back the reserve beyond its end, and the
 * next, longer status (the final one, with its outcome) would not fit.
 * Readers may catch it mid-write; better than a status that stays wrong.
 */
static int rewrite_in_place(const char *path, const char *data, size_t len, int durable)
{
	off_t room;
	struct stat st;
	struct rlimit rl;
	int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC), e, over;

	if (fd < 0)
		return -1;
	/* Past RLIMIT_FSIZE it would fail part way: do not start. */
	over = getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)len > rl.rlim_cur;
	if (over || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (off_t)len > (room = st.st_size > (off_t)st.st_blocks * 512 ? st.st_size : (off_t)st.st_blocks * 512)) {
		e = over ? EFBIG : errno ? errno : ENOSPC;
		close(fd);
		errno = e;
		return -1;
	}
	if (lseek(fd, 0, SEEK_SET) != 0 || write_all(fd, data, len) != 0 || pad_blank(fd, (off_t)len, st.st_size) != 0 ||
	    (durable && fsync(fd) != 0)) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

/*
 * Blocks kept for status.json beyond its size (fallocate KEEP_SIZE), so
 * that the in-place rewrite above has room for the final status, with
 * its outcome, however full the disk gets meanwhile.  A new status.json
 * gets its reserve before it replaces the old one (atomic_write_reserved),
 * so that there is never a moment when neither holds one.
 */
#define STATUS_RESERVE (64 * 1024)

json_t *runstate_status_doc(struct runstate *rs, const json_t *body)
{
	char now[40];
	json_t *o = json_object();

	now_str(now);
	json_object_set_new(o, STATUS_V, json_integer(1));
	json_object_set_new(o, STATUS_RUN, json_string(rs->run));
	json_object_set_new(o, STATUS_RUNDIR, json_string(rs->dir));
	json_object_set_new(o, STATUS_PID, json_integer((json_int_t)getpid()));
	json_object_set_new(o, STATUS_STATE, json_string(runstate_state_name(rs->state)));
	json_object_set_new(o, STATUS_SINCE, json_string(rs->since));
	json_object_set_new(o, STATUS_STARTED, json_string(rs->started));
	json_object_set_new(o, STATUS_UPDATED, json_string(now));
	json_object_set_new(o, STATUS_ELAPSED_MS, json_integer((json_int_t)(mono_ms() - rs->start_ms)));
	if (body)
		json_object_update_missing(o, (json_t *)body);
	return o;
}

int runstate_write_status(struct runstate *rs, const json_t *doc, int durable)
{
	char *s, *path;
	int rc;

	s = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	if (!s)
		return -1;
	path = xasprintf("%s/status.json", rs->dir);
	{
		size_t n = strlen(s);
		s[n] = '\n';
		/* Atomic for readers; fsynced only when durable. */
		rc = atomic_write_reserved(path, s, n + 1, durable, STATUS_RESERVE, FP_STATUS_BEFORE_RENAME,
					   FP_STATUS_AFTER_RENAME);
	}
	if (rc != 0 && (errno == ENOSPC || errno == EDQUOT || errno == EFBIG)) {
		int e = errno;
		char *c = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
		if (c) {
			size_t n = strlen(c);
			c[n] = '\n';
			rc = rewrite_in_place(path, c, n + 1, durable);
			free(c);
		}
		if (rc == 0 && !rs->in_place_warned) {
			/* Once: the disk stays full for every tick after. */
			log_msg(LOG_WARN, NULL, "'%s' rewritten in place: %s", path, strerror(e));
			rs->in_place_warned = 1;
		}
		errno = e;
	}
	if (rc != 0)
		log_msg(LOG_WARN, NULL, "cannot write '%s': %s", path, strerror(errno));
	free(path);
	free(s);
	return rc;
}

void runstate_close(struct runstate *rs)
{
	if (rs->timeline_fd >= 0)
		close(rs->timeline_fd);
	rs->timeline_fd = -1;
	if (rs->lock_fd >= 0)
		close(rs->lock_fd);
	rs->lock_fd = -1;
	free(rs->dir);
	free(rs->run);
	rs->dir = rs->run = NULL;
}

pid_t runstate_lock_holder(const char *dir)
{
	char *path = xasprintf("%s/lock", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	pid_t pid;

	free(path);
	if (fd < 0)
		return -1;
	pid = filelock_holder(fd);
	close(fd);
	return pid;
}

/*
 * supervise_watch.c: readiness checks (kerf's own and the stages'),
 * queue and progress samples, and the stall and ready watchdogs.
 */
#include "util.h"
#include "log.h"
#include "supervise.h"
#include "supervise_int.h"
#include "status_doc.h"
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/ioctl.h>

#include "banned.h"

static const char *const ck_names[] = { "pending", "running", "ok", "failed", "skipped", "timeout", "cancelled" };

static json_t *check_json(struct supervisor *sv, const struct sv_check *k)
{
	json_t *o = json_pack("{s:s, s:s}", STATUS_CHECK_CHECK, k->name, STATUS_CHECK_OUTCOME, ck_names[k->st]);
	if (k->ms >= 0)
		json_object_set_new(o, STATUS_CHECK_DURATION_MS, json_integer((json_int_t)k->ms));
	if (k->stage >= 0)
		json_object_set_new(o, STATUS_CHECK_STAGE, json_string(sv->st[k->stage].name));
	if (k->reason)
		json_object_set_new(o, STATUS_CHECK_REASON, json_string(k->reason));
	return o;
}

json_t *sv_checks_json(struct supervisor *sv)
{
	json_t *a = json_array();
	for (int i = 0; i < sv->p->nchecks; i++)
		json_array_append_new(a, check_json(sv, &sv->p->checks[i]));
	return a;
}

/* Bytes of its log still in the pipe; read before its wchar, so that
 * everything counted here was written before wchar was sampled. */
static int log_inflight(struct sv_stage *s)
{
	int inflight = 0;
	if (s->errfd >= 0)
		ioctl(s->errfd, FIONREAD, &inflight);
	return inflight;
}

/* Bytes the first stage wrote other than its log: its output so far. */
static uint64_t produced(struct sv_stage *s, int inflight)
{
	uint64_t log = s->err_bytes + (uint64_t)inflight;
	return s->wchar > log ? s->wchar - log : 0;
}

void sv_sample(struct supervisor *sv, int note)
{
	json_t *arr = note ? json_array() : NULL;
	uint64_t now = mono_ms();
	for (int i = 0; i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		uint64_t r = 0, w = 0, mark;
		if (!s->started || s->exited)
			continue;
		int inflight = i == 0 ? log_inflight(s) : 0;
		if (i > 0)
			s->q_ok = queue_fill(s->pid, 0, &s->q_bytes, &s->q_cap) == 0;
		if (queue_io(s->pid, &r, &w) == 0) {
			s->io_ok = 1;
			s->rchar = r;
			s->wchar = w;
			/* Progress without stats: what a consumer read, what
			 * the producer wrote other than its log. */
			mark = i > 0 ? r : produced(s, inflight);
			/* A stage that reports stats is judged by its counters
			 * alone: a wrapper script's rchar also grows with every
			 * child it reaps. */
			if (mark != s->io_mark && !s->counters) {
				s->io_mark = mark;
				s->progress_ms = now;
			}
		}
		if (arr) {
			json_t *o = json_pack("{s:s}", "stage", s->name);
			if (s->q_ok) {
				json_object_set_new(o, "q", json_integer(s->q_bytes));
				json_object_set_new(o, "qcap", json_integer(s->q_cap));
			}
			if (s->counters)
				json_object_set_new(o, "counters", json_incref(s->counters));
			json_array_append_new(arr, o);
		}
	}
	if (arr)
		runstate_note(sv->p->rs, "sample", json_pack("{s:o}", "stages", arr));
}

/* Machine ready: the first stage has produced output (or finished). */
int sv_ready(struct supervisor *sv)
{
	struct sv_stage *s = &sv->st[0];
	uint64_t r, w;
	int inflight;
	if (s->exited)
		return 1;
	if (sv->n > 1) {
		long b, c;
		if (queue_fill(sv->st[1].pid, 0, &b, &c) == 0 && b > 0)
			return 1;
	}
	inflight = log_inflight(s);
	if (queue_io(s->pid, &r, &w) == 0) {
		s->wchar = w;
		return produced(s, inflight) > 0;
	}
	return 0;
}

/* A stage is stalled when it has had input waiting (or, for the first
 * stage, room to write) and made no progress for --stall; a stage whose
 * output queue is at least half full is waiting for its consumer and is
 * not blamed.  The most downstream stalled stage is named. */
int sv_stalled(struct supervisor *sv)
{
	uint64_t now = mono_ms();
	for (int i = sv->n - 1; i >= 0; i--) {
		struct sv_stage *s = &sv->st[i];
		if (!s->started || s->exited)
			continue;
		if (now - s->progress_ms < sv->opt.stall_ms)
			continue;
		if (i > 0 && (!s->q_ok || s->q_bytes == 0))
			continue;
		/* Paused, or pausing, or stopping: the first stage may rest. */
		if (i == 0 && sv->p->rs->state != RS_RUNNING)
			continue;
		if (i + 1 < sv->n && !sv->st[i + 1].exited && sv->st[i + 1].q_ok &&
		    sv->st[i + 1].q_bytes * 2 >= sv->st[i + 1].q_cap)
			continue;
		return i;
	}
	return -1;
}

void sv_timeout(struct supervisor *sv, const char *what, int stage, const char *msg)
{
	char how[64];
	log_msg(LOG_ERROR, NULL, "%s", msg);
	if (stage >= 0 && !strcmp(what, "ready_timeout"))
		snprintf(how, sizeof how, "no output in %llu ms", (unsigned long long)sv->opt.ready_ms);
	else if (stage >= 0)
		snprintf(how, sizeof how, "no progress for %llu ms",
			 (unsigned long long)(mono_ms() - sv->st[stage].progress_ms));
	sv_set_cause(sv, C_TIMEOUT, what, stage, stage >= 0 ? how : NULL, msg);
	sv_teardown(sv, what);
	sv_fire(sv, RSE_TIMEOUT, json_pack("{s:s}", "what", what));
}

int sv_ck_final(enum ck_state st)
{
	return st != CK_PENDING && st != CK_RUNNING;
}

struct sv_check *sv_check_get(struct supervisor *sv, const char *name, int stage)
{
	struct sv_private *p = sv->p;
	struct sv_check *k;

	for (int i = 0; i < p->nchecks; i++)
		if (!strcmp(p->checks[i].name, name))
			return &p->checks[i];
	if (p->nchecks == SV_CHECKS_MAX || strlen(name) >= sizeof k->name)
		return NULL;
	k = &p->checks[p->nchecks++];
	memset(k, 0, sizeof *k);
	snprintf(k->name, sizeof k->name, "%s", name);
	k->stage = stage;
	k->st = CK_PENDING;
	k->ms = -1;
	return k;
}

static void check_failed(struct supervisor *sv, struct sv_check *k);

/*
 * A check's new outcome: a timeline "check" record, and a failure ends
 * preparation.  A check over is over: what a stage says of it later (a
 * reconnected tool checked again, a check kerf cut) changes nothing.
 * ms < 0: the time since kerf first heard of the check.
 */
void sv_check_set(struct supervisor *sv, const char *name, int stage, enum ck_state st, int64_t ms,
		  const char *reason)
{
	struct sv_check *k = sv_check_get(sv, name, stage);
	uint64_t now = mono_ms();

	if (!k || sv_ck_final(k->st) || (st == k->st && !sv_ck_final(st)))
		return;
	if (k->st == CK_PENDING && !k->start_ms)
		k->start_ms = now;
	if (st == CK_RUNNING && k->st == CK_PENDING)
		k->start_ms = now;
	k->st = st;
	if (sv_ck_final(st))
		k->ms = ms >= 0 ? ms : (int64_t)(now - k->start_ms);
	free(k->reason);
	k->reason = reason ? xstrdup(reason) : NULL;
	runstate_note(sv->p->rs, "check", check_json(sv, k));
	if (st == CK_FAILED)
		check_failed(sv, k);
}

/* Every check not over yet: running ones become 'running_to', pending ones cancelled. */
void sv_checks_close(struct supervisor *sv, enum ck_state running_to, const char *why)
{
	struct sv_private *p = sv->p;
	for (int i = 0; i < p->nchecks; i++) {
		struct sv_check *k = &p->checks[i];
		if (!sv_ck_final(k->st))
			sv_check_set(sv, k->name, k->stage, k->st == CK_RUNNING ? running_to : CK_CANCELLED, -1, why);
	}
}

/* The first failed check ends preparation: it is the cause, the others are cancelled. */
static void check_failed(struct supervisor *sv, struct sv_check *k)
{
	struct sv_private *p = sv->p;
	char msg[256], why[64];

	if (!sv_preparing(sv) || p->cause != C_NONE)
		return;
	snprintf(msg, sizeof msg, "readiness check '%s' failed%s%s", k->name, k->reason ? ": " : "",
		 k->reason ? k->reason : "");
	log_msg(LOG_ERROR, log_is_json() ? json_pack("{s:s}", "check", k->name) : NULL, "%s", msg);
	snprintf(p->cause_check, sizeof p->cause_check, "%s", k->name);
	sv_set_cause(sv, C_PREP, "preparation", -1, NULL, msg);
	snprintf(why, sizeof why, "check '%s' failed first", k->name);
	sv_checks_close(sv, CK_CANCELLED, why);
	if (p->pl) {
		sv_teardown(sv, "not_ready");
		sv_fire(sv, RSE_NOT_READY, json_pack("{s:s}", "check", k->name));
	}
	sv_write_status(sv, 0);
}

/* A stage's check record: {"check", "outcome", "ms", "reason"}. */
void sv_check_heard(struct supervisor *sv, int stage, json_t *rec)
{
	const char *name = json_string_value(json_object_get(rec, "check"));
	const char *out = json_string_value(json_object_get(rec, "outcome"));
	json_t *ms = json_object_get(rec, "ms");
	int st;

	for (st = 0; st < (int)(sizeof ck_names / sizeof ck_names[0]); st++)
		if (!strcmp(ck_names[st], out))
			break;
	/* A stage may say pending, running, ok, failed or skipped; kerf alone cuts and cancels. */
	if (st > CK_SKIPPED)
		return;
	sv_check_set(sv, name, stage, (enum ck_state)st, json_is_integer(ms) ? json_integer_value(ms) : -1,
		  json_string_value(json_object_get(rec, "reason")));
	if (st != CK_FAILED)
		sv_write_status(sv, 0);
}

/* The check preparation still waits on: the earliest running one other
 * than machine_ready, else any pending one, else machine_ready; NULL
 * when every check is over. */
struct sv_check *sv_check_waited(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	struct sv_check *w = NULL, *pend = NULL, *mr = NULL;
	for (int i = 0; i < p->nchecks; i++) {
		struct sv_check *k = &p->checks[i];
		if (sv_ck_final(k->st))
			continue;
		if (!strcmp(k->name, "machine_ready"))
			mr = k;
		else if (k->st == CK_PENDING && !pend)
			pend = k;
		else if (k->st == CK_RUNNING && (!w || k->start_ms < w->start_ms))
			w = k;
	}
	return w ? w : pend ? pend : mr;
}

/* Every check but machine_ready passed (ok or skipped). */
int sv_checks_passed(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	for (int i = 0; i < p->nchecks; i++)
		if (strcmp(p->checks[i].name, "machine_ready") && p->checks[i].st != CK_OK &&
		    p->checks[i].st != CK_SKIPPED)
			return 0;
	return 1;
}

/*
 * kerf's own checks, before anything is launched (the stages need
 * both): the run directory writable with --min-free bytes free, and
 * every stage's program found.  The stages' own checks (kerf-acquire's
 * tool checks) run once they are launched, beside machine_ready.
 */
int sv_prepare(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	char *probe = xasprintf("%s/.probe.%ld", p->rs->dir, (long)getpid());
	char msg[512] = "";
	uint64_t t0 = mono_us(), avail;
	int fd, ok = 1;

	sv_check_get(sv, "rundir", -1);
	sv_check_get(sv, "programs", -1);
	sv_check_set(sv, "rundir", -1, CK_RUNNING, -1, NULL);
	fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(msg, sizeof msg, "run directory '%s' is not writable: %s", p->rs->dir, strerror(errno));
		ok = 0;
	} else {
		close(fd);
		unlink(probe);
	}
	free(probe);
	if (ok && sv->opt.min_free) {
		if (free_bytes(p->rs->dir, &avail) != 0) {
			snprintf(msg, sizeof msg, "cannot tell the free space of '%s': %s", p->rs->dir, strerror(errno));
			ok = 0;
		} else if (avail < sv->opt.min_free) {
			snprintf(msg, sizeof msg, "run directory '%s' has %llu bytes free, below --min-free %llu",
				 p->rs->dir, (unsigned long long)avail, (unsigned long long)sv->opt.min_free);
			ok = 0;
		}
	}
	sv_check_set(sv, "rundir", -1, ok ? CK_OK : CK_FAILED, (int64_t)((mono_us() - t0) / 1000), ok ? NULL : msg);
	if (!ok)
		return -1;
	t0 = mono_us();
	sv_check_set(sv, "programs", -1, CK_RUNNING, -1, NULL);
	for (int i = 0; ok && i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		s->path = supervise_resolve(s->argv[0]);
		if (!s->path) {
			snprintf(msg, sizeof msg, "stage '%s': program '%s' not found or not executable",
				 s->name, s->argv[0]);
			ok = 0;
		}
	}
	sv_check_set(sv, "programs", -1, ok ? CK_OK : CK_FAILED, (int64_t)((mono_us() - t0) / 1000), ok ? NULL : msg);
	return ok ? 0 : -1;
}

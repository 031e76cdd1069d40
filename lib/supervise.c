/*
 * supervise.c: see supervise.h.
 *
 * The run is one event loop over poll(2): a signalfd for the operator's
 * signals, one pidfd per stage (readable when it exits), one stderr pipe
 * per stage, and a timeout that serves the tick, the grace period, the
 * deadline and the readiness wait.  SIGCHLD stays blocked for the whole
 * run, so libpipeline's own handler never reaps a stage behind our back:
 * exited stages stay zombies, waitid(WNOWAIT) reads their status, and
 * pipeline_wait_all reaps them all at the end.
 *
 * The stages share a process group whose leader is a small "holder"
 * process forked before them.  It makes joining the group race-free
 * (the group exists before the first stage is forked) and it guards the
 * run: it blocks reading a pipe whose only writer is kerf, and when kerf
 * dies, however it dies, the read returns end of file and the holder
 * SIGKILLs the whole group, grandchildren included.  Each stage also has
 * PR_SET_PDEATHSIG.
 */
#include "kerf.h"
#include "supervise.h"
#include "blame.h"
#include "queue.h"
#include "reject.h"
#include "svcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pipeline.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Recent commands in status.json's "commands", for `kerf pause` to find
 * its own. */
#define SV_RECENT_COMMANDS 16

enum cause_kind { C_NONE, C_FAULT, C_ALARM, C_OPERATOR, C_TIMEOUT, C_PREP };

/* A readiness check (kerf(7), "Preparation"): kerf's own, or one a stage
 * reports in its log ({"check", "outcome", "ms", "reason"}). */
enum ck_state { CK_PENDING, CK_RUNNING, CK_OK, CK_FAILED, CK_SKIPPED, CK_TIMEOUT, CK_CANCELLED };
static const char *const ck_names[] = { "pending", "running", "ok", "failed", "skipped", "timeout", "cancelled" };
#define SV_CHECKS_MAX 32

struct sv_check {
	char name[32];
	int stage;             /* the stage that reports it, -1 kerf's own */
	enum ck_state st;
	uint64_t start_ms;     /* when it was first heard of (kerf's clock) */
	int64_t ms;            /* its duration, -1 not known */
	char *reason;
};

struct hook {
	int err_w;
	pid_t pgid;
	pid_t parent;
};

struct sv_private {
	struct runstate *rs;
	pipeline *pl;
	int sigfd;
	int log_fd;
	pid_t holder;
	int life_w;
	/* The cause of the run's end, once there is one. */
	enum cause_kind cause;
	char cause_what[32];    /* fault, alarm, operator_stop, abort, stall, deadline, ... */
	int cause_stage;        /* index, -1 none */
	char cause_how[64];     /* "exit 2", "signal KILL" */
	char cause_msg[256];
	uint64_t cause_us;      /* when the cause was noticed */
	uint64_t cause_exit_us; /* the failing stage's exit */
	int stops;              /* operator stop signals received */
	int tearing;            /* SIGTERM sent to the group */
	uint64_t kill_at;       /* when to SIGKILL, 0 none */
	int killed;
	int degraded;
	int paused_by_stop;     /* a foreign first stage was SIGSTOPped */
	uint64_t next_tick;
	uint64_t all_exited_us;
	unsigned batch;         /* how many times check_exits found exits */
	/* Commands to the tool (lib/svcmd.h). */
	struct svc_list cmds;
	int reports;            /* the first stage reports commands: 1 yes, 0 no, -1 not known yet */
	int awaiting;           /* the command a pausing, resuming or stop-requested run waits on */
	int pending_end;        /* the command still pending when the outcome was decided */
	/* Readiness checks. */
	struct sv_check checks[SV_CHECKS_MAX];
	int nchecks;
	char cause_check[32];   /* the check named as the cause, "" none */
};

static const char *sig_name(int sig)
{
	const char *s = sigabbrev_np(sig);
	return s ? s : "?";
}

static long sys_pidfd_open(pid_t pid)
{
	return syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_signal(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

void supervise_init(struct supervisor *sv)
{
	memset(sv, 0, sizeof *sv);
	sv->opt.grace_ms = 3000;
	sv->opt.ready_ms = 30000;
	sv->opt.tick_ms = 500;
	sv->opt.echo = SV_ECHO_WARN;
}

struct sv_stage *supervise_add(struct supervisor *sv, char *const argv[], int optional)
{
	struct sv_stage *s;
	const char *base;
	int argc = 0, same = 0;

	if (sv->n == sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 8;
		sv->st = xrealloc(sv->st, (size_t)sv->cap * sizeof *sv->st);
	}
	s = &sv->st[sv->n++];
	memset(s, 0, sizeof *s);
	while (argv[argc])
		argc++;
	s->argv = xcalloc((size_t)argc + 1, sizeof *s->argv);
	for (int i = 0; i < argc; i++)
		s->argv[i] = xstrdup(argv[i]);
	s->argc = argc;
	s->optional = optional;
	base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	for (int i = 0; i < sv->n - 1; i++) {
		const char *b = strrchr(sv->st[i].argv[0], '/');
		if (!strcmp(b ? b + 1 : sv->st[i].argv[0], base))
			same++;
	}
	s->name = same ? xasprintf("%s#%d", base, same + 1) : xstrdup(base);
	s->is_acquire = !strcmp(base, "kerf-acquire");
	s->pidfd = s->errfd = s->err_w = -1;
	return s;
}

char **supervise_split(const char *s, int *argc, char *err, size_t errlen)
{
	char **v = xcalloc(strlen(s) / 2 + 2, sizeof *v);
	char *w = xmalloc(strlen(s) + 1);
	int n = 0;

	while (*s) {
		size_t len = 0;
		int have = 0;
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (!*s)
			break;
		while (*s && *s != ' ' && *s != '\t' && *s != '\n') {
			have = 1;
			if (*s == '\'') {
				const char *e = strchr(s + 1, '\'');
				if (!e) {
					snprintf(err, errlen, "unterminated ' quote");
					goto fail;
				}
				memcpy(w + len, s + 1, (size_t)(e - s - 1));
				len += (size_t)(e - s - 1);
				s = e + 1;
			} else if (*s == '"') {
				s++;
				while (*s && *s != '"') {
					if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
						s++;
					w[len++] = *s++;
				}
				if (*s != '"') {
					snprintf(err, errlen, "unterminated \" quote");
					goto fail;
				}
				s++;
			} else if (*s == '\\' && s[1]) {
				w[len++] = s[1];
				s += 2;
			} else {
				w[len++] = *s++;
			}
		}
		if (have)
			v[n++] = xstrndup(w, len);
	}
	free(w);
	if (n == 0) {
		snprintf(err, errlen, "empty command");
		free(v);
		return NULL;
	}
	v[n] = NULL;
	if (argc)
		*argc = n;
	return v;
fail:
	free(w);
	v[n] = NULL;
	supervise_free_argv(v);
	return NULL;
}

void supervise_free_argv(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

static int executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *supervise_resolve(const char *prog)
{
	char *dir, *path;
	const char *env;

	if (!*prog)
		return NULL;
	if (strchr(prog, '/'))
		return executable(prog) ? xstrdup(prog) : NULL;
	dir = self_dir();
	if (dir) {
		path = xasprintf("%s/%s", dir, prog);
		free(dir);
		if (executable(path))
			return path;
		free(path);
	}
	env = getenv("PATH");
	if (!env)
		env = "/usr/local/bin:/usr/bin:/bin";
	while (*env) {
		const char *c = strchr(env, ':');
		size_t len = c ? (size_t)(c - env) : strlen(env);
		path = len ? xasprintf("%.*s/%s", (int)len, env, prog) : xasprintf("./%s", prog);
		if (executable(path))
			return path;
		free(path);
		env += len;
		if (*env == ':')
			env++;
	}
	return NULL;
}

/* ---- timeline and status helpers ---- */

static json_t *stage_ref(const struct sv_stage *s)
{
	return json_pack("{s:s, s:I}", "stage", s->name, "pid", (json_int_t)s->pid);
}

static void how_str(const struct sv_stage *s, char *out, size_t len)
{
	if (s->sig)
		snprintf(out, len, "signal %s", sig_name(s->sig));
	else
		snprintf(out, len, "exit %d", s->code);
}

static const char *cause_kind_name(enum cause_kind c)
{
	switch (c) {
	case C_FAULT: return "fault";
	case C_ALARM: return "alarm";
	case C_OPERATOR: return "operator";
	case C_TIMEOUT: return "timeout";
	case C_PREP: return "preparation";
	default: return "none";
	}
}

static json_t *cause_json(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	json_t *c;
	if (p->cause == C_NONE)
		return json_null();
	c = json_pack("{s:s, s:s}", "kind", cause_kind_name(p->cause), "what", p->cause_what);
	if (p->cause_stage >= 0) {
		json_object_set_new(c, "stage", json_string(sv->st[p->cause_stage].name));
		json_object_set_new(c, "how", json_string(p->cause_how));
	}
	if (p->cause_check[0])
		json_object_set_new(c, "check", json_string(p->cause_check));
	if (p->cause_msg[0])
		json_object_set_new(c, "msg", json_string(p->cause_msg));
	/* Why the stage failed, in its own words ("cannot write ...: No
	 * space left on device"), when it logged an error. */
	if (p->cause_stage >= 0 && sv->st[p->cause_stage].last_error)
		json_object_set_new(c, "error", json_string(sv->st[p->cause_stage].last_error));
	return c;
}

static json_t *stage_json(struct supervisor *sv, int i)
{
	struct sv_stage *s = &sv->st[i];
	json_t *o = json_object(), *argv = json_array();
	const char *state = !s->started ? "pending" : s->exited ? "exited" : "running";

	if (s->started && !s->exited && i == 0 && sv->p->rs->state == RS_PAUSED)
		state = "paused";
	json_object_set_new(o, "name", json_string(s->name));
	for (int a = 0; a < s->argc; a++)
		json_array_append_new(argv, json_string(s->argv[a]));
	json_object_set_new(o, "argv", argv);
	json_object_set_new(o, "optional", json_boolean(s->optional));
	json_object_set_new(o, "pid", s->pid ? json_integer(s->pid) : json_null());
	json_object_set_new(o, "state", json_string(state));
	if (s->exited) {
		json_object_set_new(o, "exit", s->sig ? json_null() : json_integer(s->code));
		json_object_set_new(o, "signal", s->sig ? json_string(sig_name(s->sig)) : json_null());
		json_object_set_new(o, "verdict", json_string(blame_verdict_name(s->verdict)));
	}
	json_object_set_new(o, "counters", s->counters ? json_incref(s->counters) : json_object());
	if (s->link)
		json_object_set(o, "link", s->link);
	if (i > 0) {
		json_t *q = json_object();
		if (s->q_ok) {
			json_object_set_new(q, "bytes", json_integer(s->q_bytes));
			json_object_set_new(q, "cap", json_integer(s->q_cap));
			json_object_set_new(q, "fill", json_real(s->q_cap ? (double)s->q_bytes / (double)s->q_cap : 0));
		}
		json_object_set_new(o, "queue", q);
	}
	if (s->io_ok)
		json_object_set_new(o, "io", json_pack("{s:I, s:I}", "rchar", (json_int_t)s->rchar,
						       "wchar", (json_int_t)s->wchar));
	if (s->started && !s->exited && s->progress_ms)
		json_object_set_new(o, "progress_age_ms",
				    json_integer((json_int_t)(mono_ms() - s->progress_ms)));
	return o;
}

static int exit_code_of(struct supervisor *sv)
{
	switch (sv->p->cause) {
	case C_NONE: return KERF_EX_OK;
	case C_ALARM: return KERF_EX_ALARM;
	case C_OPERATOR: return KERF_EX_CANCELLED;
	case C_TIMEOUT: return KERF_EX_TIMEOUT;
	default: return KERF_EX_FAILED;
	}
}

static json_t *outcome_json(struct supervisor *sv, int final)
{
	struct sv_private *p = sv->p;
	json_t *o = json_object(), *deg = json_array();
	for (int i = 0; i < sv->n; i++)
		if (sv->st[i].verdict == BLAME_DEGRADED || (sv->st[i].optional && !sv->st[i].path))
			json_array_append_new(deg, json_string(sv->st[i].name));
	json_object_set_new(o, "state", json_string(runstate_state_name(p->rs->state)));
	json_object_set_new(o, "exit_code", final ? json_integer(exit_code_of(sv)) : json_null());
	json_object_set_new(o, "cause", cause_json(sv));
	json_object_set_new(o, "degraded", json_boolean(p->degraded));
	json_object_set_new(o, "degraded_stages", deg);
	json_object_set_new(o, "pending_command", p->pending_end ? svc_json(svc_get(&p->cmds, p->pending_end))
								 : json_null());
	return o;
}

static json_t *check_json(struct supervisor *sv, const struct sv_check *k)
{
	json_t *o = json_pack("{s:s, s:s}", "check", k->name, "outcome", ck_names[k->st]);
	if (k->ms >= 0)
		json_object_set_new(o, "duration_ms", json_integer((json_int_t)k->ms));
	if (k->stage >= 0)
		json_object_set_new(o, "stage", json_string(sv->st[k->stage].name));
	if (k->reason)
		json_object_set_new(o, "reason", json_string(k->reason));
	return o;
}

static json_t *checks_json(struct supervisor *sv)
{
	json_t *a = json_array();
	for (int i = 0; i < sv->p->nchecks; i++)
		json_array_append_new(a, check_json(sv, &sv->p->checks[i]));
	return a;
}

static void write_status(struct supervisor *sv, int final)
{
	json_t *body = json_object(), *stages = json_array();
	for (int i = 0; i < sv->n; i++)
		json_array_append_new(stages, stage_json(sv, i));
	json_object_set_new(body, "outcome", outcome_json(sv, final));
	json_object_set_new(body, "final", json_boolean(final));
	json_object_set_new(body, "command", sv->p->cmds.n ? svc_json(svc_get(&sv->p->cmds, sv->p->cmds.n))
							  : json_null());
	json_object_set_new(body, "commands", svc_recent_json(&sv->p->cmds, SV_RECENT_COMMANDS));
	json_object_set_new(body, "stages", stages);
	json_object_set_new(body, "checks", checks_json(sv));
	json_object_set_new(body, "options",
			    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
				      "grace_ms", (json_int_t)sv->opt.grace_ms,
				      "deadline_ms", (json_int_t)sv->opt.deadline_ms,
				      "stall_ms", (json_int_t)sv->opt.stall_ms,
				      "ready_ms", (json_int_t)sv->opt.ready_ms,
				      "tick_ms", (json_int_t)sv->opt.tick_ms,
				      "min_free", (json_int_t)sv->opt.min_free));
	runstate_write_status(sv->p->rs, body, final);
	json_decref(body);
}

static void fire(struct supervisor *sv, enum runstate_event e, json_t *fields)
{
	enum runstate_state before = sv->p->rs->state;
	runstate_fire(sv->p->rs, e, fields);
	if (sv->p->rs->state != before)
		write_status(sv, runstate_is_final(sv->p->rs->state));
}

/* ---- signals to stages ---- */

static void signal_stage(struct supervisor *sv, int i, int sig, const char *why)
{
	struct sv_stage *s = &sv->st[i];
	json_t *f;
	if (!s->started || s->exited || s->pidfd < 0)
		return;
	if (sys_pidfd_signal(s->pidfd, sig) != 0)
		return;
	if (sig == SIGTERM || sig == SIGKILL)
		s->signalled = sig;
	f = stage_ref(s);
	json_object_set_new(f, "sig", json_string(sig_name(sig)));
	json_object_set_new(f, "why", json_string(why));
	runstate_note(sv->p->rs, "signal_sent", f);
}

static int live_stages(struct supervisor *sv)
{
	int n = 0;
	for (int i = 0; i < sv->n; i++)
		if (sv->st[i].started && !sv->st[i].exited)
			n++;
	return n;
}

/* SIGTERM to the whole group, SIGKILL after the grace period. */
static void teardown(struct supervisor *sv, const char *why)
{
	struct sv_private *p = sv->p;
	if (p->tearing)
		return;
	p->tearing = 1;
	for (int i = 0; i < sv->n; i++)
		if (sv->st[i].started && !sv->st[i].exited)
			sv->st[i].signalled = SIGTERM;
	if (p->holder > 0) {
		kill(-p->holder, SIGTERM);
		/* A stage stopped by pause must wake up to die. */
		kill(-p->holder, SIGCONT);
	}
	runstate_note(p->rs, "signal_sent",
		      json_pack("{s:s, s:s, s:s, s:I}", "target", "group", "sig", "TERM",
				"why", why, "grace_ms", (json_int_t)sv->opt.grace_ms));
	p->kill_at = mono_ms() + sv->opt.grace_ms;
}

static void kill_all(struct supervisor *sv, const char *why)
{
	struct sv_private *p = sv->p;
	json_t *left = json_array();
	for (int i = 0; i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		if (s->started && !s->exited) {
			json_array_append_new(left, json_string(s->name));
			s->signalled = SIGKILL;
			sys_pidfd_signal(s->pidfd, SIGKILL);
		}
	}
	if (p->holder > 0)
		kill(-p->holder, SIGKILL);
	p->killed = 1;
	p->kill_at = 0;
	runstate_note(p->rs, "signal_sent",
		      json_pack("{s:s, s:s, s:s, s:o}", "target", "group", "sig", "KILL",
				"why", why, "stages", left));
}

static void set_cause(struct supervisor *sv, enum cause_kind k, const char *what, int stage,
		      const char *how, const char *msg)
{
	struct sv_private *p = sv->p;
	/* The first cause wins, except that a fault or a critical alarm
	 * while the operator's stop drains the pipeline is worse than the
	 * stop: events may be lost, the tool needs attention. */
	if (p->cause != C_NONE && !(p->cause == C_OPERATOR && (k == C_FAULT || k == C_ALARM)))
		return;
	p->cause = k;
	snprintf(p->cause_what, sizeof p->cause_what, "%s", what);
	p->cause_stage = stage;
	p->cause_how[0] = '\0';
	if (stage >= 0 && how)
		snprintf(p->cause_how, sizeof p->cause_how, "%s", how);
	else if (stage >= 0) {
		how_str(&sv->st[stage], p->cause_how, sizeof p->cause_how);
		p->cause_exit_us = sv->st[stage].exit_us;
	}
	snprintf(p->cause_msg, sizeof p->cause_msg, "%s", msg ? msg : "");
	p->cause_us = mono_us();
	runstate_note(p->rs, "cause", json_pack("{s:o}", "cause", cause_json(sv)));
}

/* ---- commands to the tool ---- */

#define NO_REPORTS "the first stage does not report commands"

static int read_stderr(struct supervisor *sv, int i);
static void close_stderr(struct sv_stage *s);
static void check_heard(struct supervisor *sv, int stage, json_t *rec);

static int transitional(enum runstate_state s)
{
	return s == RS_PAUSING || s == RS_RESUMING || s == RS_STOP_REQUESTED;
}

/* The command a pausing, resuming or stop-requested run waits on. */
static struct svc *awaited(struct supervisor *sv)
{
	return transitional(sv->p->rs->state) ? svc_get(&sv->p->cmds, sv->p->awaiting) : NULL;
}

/* Preparing, or a stop requested while preparing: the readiness wait goes on. */
static int preparing(struct supervisor *sv)
{
	struct runstate *rs = sv->p->rs;
	return rs->state == RS_PREPARING || (rs->state == RS_STOP_REQUESTED && rs->settled == RS_PREPARING);
}

/* The timeline's "command" record: the command as it is now. */
static void cmd_note(struct supervisor *sv, int id, json_t *extra)
{
	json_t *f = svc_json(svc_get(&sv->p->cmds, id));
	json_object_set_new(f, "state", json_string(runstate_state_name(sv->p->rs->state)));
	if (extra) {
		json_object_update(f, extra);
		json_decref(extra);
	}
	runstate_note(sv->p->rs, "command", f);
}

/* A transition's fields: the command that made it. */
static json_t *cmd_ref(struct supervisor *sv, int id)
{
	struct svc *c = svc_get(&sv->p->cmds, id);
	json_t *f = json_pack("{s:s, s:i, s:s, s:s}", "command", c->op, "id", c->id, "fate",
			      svc_fate_name(c->fate), "fate_by", c->fate_by);
	if (c->reason)
		json_object_set_new(f, "reason", json_string(c->reason));
	return f;
}

/*
 * Command 'id' has a new fate: what it does to the run's state.  The
 * awaited command's confirmation moves pausing, resuming and
 * stop-requested on; its refusal or timeout moves them back (a stop to
 * the settled state, and the next stop is a first stop again).  A stop
 * superseded by the tool (only an abort goes ahead of it) leaves the
 * run in stop-requested: the abort's outcome ends it.  A command merged
 * into another makes the run wait on that one.  While a stop is
 * requested, the tool's confirmation of an earlier pause or resume
 * settles where a refused stop goes back to.
 */
static void cmd_fate(struct supervisor *sv, int id)
{
	struct sv_private *p = sv->p;
	struct svc *c = svc_get(&p->cmds, id), *w = awaited(sv);
	int stop;

	if (!c || !svc_fate_final(c->fate))
		return;
	stop = !strcmp(c->op, "stop");
	if (w && w->id == c->id) {
		switch (c->fate) {
		case SVC_MERGED: {
			struct svc *t = svc_get(&p->cmds, c->into);
			if (t && t->id != c->id && !strcmp(t->op, c->op)) {
				p->awaiting = t->id;
				cmd_fate(sv, t->id);
			}
			return;
		}
		case SVC_CONFIRMED:
			if (stop) {
				set_cause(sv, C_OPERATOR, "operator_stop", -1, NULL, "operator stop");
				fire(sv, RSE_STOP_CONFIRMED, cmd_ref(sv, id));
			} else {
				fire(sv, !strcmp(c->op, "pause") ? RSE_PAUSED : RSE_RESUMED, cmd_ref(sv, id));
			}
			return;
		case SVC_SUPERSEDED:
			if (stop)
				return;
			/* fall through */
		case SVC_REFUSED:
		case SVC_TIMED_OUT:
			if (stop) {
				p->stops = 0;
				/* The stop's SIGTERM came to nothing: the first
				 * stage's later exit is judged on its own, not
				 * as the stop's consequence. */
				if (!p->tearing && sv->st[0].signalled == SIGTERM)
					sv->st[0].signalled = 0;
			}
			fire(sv, c->fate == SVC_TIMED_OUT ? RSE_CMD_TIMED_OUT : RSE_CMD_REFUSED, cmd_ref(sv, id));
			return;
		default:
			return;
		}
	}
	if (c->fate == SVC_CONFIRMED && p->rs->state == RS_STOP_REQUESTED && !strcmp(c->by, "operator")) {
		if (!strcmp(c->op, "pause"))
			fire(sv, RSE_PAUSED, cmd_ref(sv, id));
		else if (!strcmp(c->op, "resume"))
			fire(sv, RSE_RESUMED, cmd_ref(sv, id));
	}
}

/* kerf decides a command's fate itself (the tool cannot, or did not). */
static void cmd_decide(struct supervisor *sv, int id, enum svc_fate f, const char *reason)
{
	struct svc *c = svc_get(&sv->p->cmds, id);
	if (!c || svc_fate_final(c->fate))
		return;
	svc_set(c, f, "kerf", reason);
	cmd_note(sv, id, NULL);
	cmd_fate(sv, id);
	write_status(sv, 0);
}

/*
 * Whether the first stage reports what becomes of commands (kerf(7)):
 * yes from its first command record on; no when it has become ready,
 * or has exited, without one.  Then kerf confirms every pending command
 * itself, and every later one as soon as it has signalled it.
 */
static void decide_reports(struct supervisor *sv, int reports, const char *why)
{
	struct sv_private *p = sv->p;

	if (p->reports == reports)
		return;
	if (p->reports == 0)
		log_msg(LOG_WARN, NULL, "stage '%s' reports commands only now; kerf confirmed the earlier ones itself",
			sv->st[0].name);
	p->reports = reports;
	runstate_note(p->rs, "command_reporting", json_pack("{s:s, s:b, s:s}", "stage", sv->st[0].name,
							    "reports", reports, "why", why));
	for (int id = 1; !reports && id <= p->cmds.n; id++) {
		struct svc *c = svc_get(&p->cmds, id);
		if (!svc_fate_final(c->fate) && !strcmp(c->by, "operator"))
			cmd_decide(sv, id, SVC_CONFIRMED, NO_REPORTS);
	}
}

/* A first stage's log record: when it is a command record, its fate. */
static void command_record(struct supervisor *sv, json_t *rec)
{
	struct sv_private *p = sv->p;
	int late, id;
	struct svc *c = svc_record(&p->cmds, rec, &late);

	if (!c)
		return;
	id = c->id;
	decide_reports(sv, 1, "it logged a command record");
	/* A fate after the final one (kerf decided first) changes nothing. */
	cmd_note(sv, id, late ? json_pack("{s:b, s:O}", "late", 1, "tool_fate", json_object_get(rec, "fate")) : NULL);
	if (!late)
		cmd_fate(sv, id);
	write_status(sv, 0);
}

/* Everything the first stage has logged so far, before deciding
 * anything by its output or its exit: it logs a command record before
 * the output or the exit that follows it. */
static void drain_first(struct supervisor *sv)
{
	int r;
	if (sv->st[0].errfd < 0)
		return;
	while ((r = read_stderr(sv, 0)) > 0)
		;
	if (r == 0)
		close_stderr(&sv->st[0]);
}

/* The run ends: a command still pending is superseded by kerf, and the
 * one the run waited on is the outcome's pending_command. */
static void cmd_close_pending(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	struct svc *w = awaited(sv);
	char reason[160];

	if (w && !p->pending_end)
		p->pending_end = w->id;
	for (int id = 1; id <= p->cmds.n; id++) {
		struct svc *c = svc_get(&p->cmds, id);
		if (svc_fate_final(c->fate))
			continue;
		if (p->cause == C_ALARM)
			snprintf(reason, sizeof reason, "a critical alarm ended the run while the %s was pending", c->op);
		else if (p->cause == C_NONE)
			snprintf(reason, sizeof reason, "the tool completed the lot while the %s was pending", c->op);
		else
			snprintf(reason, sizeof reason, "the run ended (%s) while the %s was pending",
				 cause_kind_name(p->cause), c->op);
		svc_set(c, SVC_SUPERSEDED, "kerf", reason);
		cmd_note(sv, id, NULL);
	}
}

/* ---- stderr of the stages ---- */

static void echo_record(const char *name, json_t *rec, const char *line, size_t len)
{
	static const char *const envelope[] = { "t", "lvl", "stage", "run", "msg", "raw_stage", NULL };

	if (log_is_json()) {
		(void)write_all(2, line, len);
		return;
	}
	log_write_text(name, json_string_value(json_object_get(rec, "lvl")),
		       json_string_value(json_object_get(rec, "msg")), rec, envelope);
}

static uint64_t counters_sig(json_t *c)
{
	const char *key;
	json_t *val;
	uint64_t sig = 0;
	json_object_foreach(c, key, val) {
		if (!json_is_integer(val) || !strcmp(key, "elapsed_ms") || !strncmp(key, "lat_", 4))
			continue;
		sig = sig * 1000003u + (uint64_t)json_integer_value(val) + kerf_xxh3(key, strlen(key));
	}
	return sig;
}

static void stage_line(struct supervisor *sv, int i, const char *line, size_t len)
{
	struct sv_private *p = sv->p;
	struct sv_stage *s = &sv->st[i];
	json_t *rec = NULL;
	const char *msg, *lvl;
	int is_json = 0, show;
	char *out;

	if (len && line[len - 1] == '\r')
		len--;
	if (len && line[0] == '{')
		rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
	if (rec && json_is_object(rec)) {
		const char *own = json_string_value(json_object_get(rec, "stage"));
		is_json = 1;
		if (own && strcmp(own, s->name))
			json_object_set_new(rec, "program", json_string(own));
		json_object_set_new(rec, "stage", json_string(s->name));
		if (!json_object_get(rec, "run"))
			json_object_set_new(rec, "run", json_string(p->rs->run));
	} else {
		struct timespec ts;
		char t[40];
		int cut;
		char *clean = utf8_sanitize(line, len, 4096, &cut);
		json_decref(rec);
		real_now(&ts);
		event_time_fmt(&ts, t);
		rec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "t", t, "lvl", "info", "stage", s->name,
				"run", p->rs->run, "msg", clean);
		free(clean);
	}
	msg = json_string_value(json_object_get(rec, "msg"));
	lvl = json_string_value(json_object_get(rec, "lvl"));
	/* The machine's word on a command (kerf-events(5)). */
	if (is_json && i == 0)
		command_record(sv, rec);
	/* A readiness check the stage runs (kerf-acquire(1)). */
	if (is_json && json_is_string(json_object_get(rec, "check")) && json_is_string(json_object_get(rec, "outcome")))
		check_heard(sv, i, rec);
	if (is_json && msg && lvl && !strcmp(lvl, "error")) {
		free(s->last_error);
		s->last_error = xstrdup(msg);
		/* An error without reason downstream_closed is the stage's
		 * own (disk full, ...). */
		if (log_reason_of(rec) != LOG_REASON_DOWNSTREAM_CLOSED)
			s->own_error = 1;
	}
	/* A tool link's state (kerf-acquire(1): connecting ... online,
	 * lost with its cause, closed): the last word is status.json's. */
	if (is_json && json_is_string(json_object_get(rec, "link"))) {
		json_t *l = json_pack("{s:O}", "state", json_object_get(rec, "link"));
		if (json_is_string(json_object_get(rec, "t")))
			json_object_set(l, "since", json_object_get(rec, "t"));
		if (json_is_string(json_object_get(rec, "cause")))
			json_object_set(l, "cause", json_object_get(rec, "cause"));
		json_decref(s->link);
		s->link = l;
	}
	if (is_json && msg && !strcmp(msg, "stats")) {
		json_t *c = json_deep_copy(rec);
		uint64_t sig;
		json_object_del(c, "t");
		json_object_del(c, "lvl");
		json_object_del(c, "stage");
		json_object_del(c, "run");
		json_object_del(c, "msg");
		json_object_del(c, "program");
		json_decref(s->counters);
		s->counters = c;
		sig = counters_sig(c);
		if (sig != s->progress_sig) {
			s->progress_sig = sig;
			s->progress_ms = mono_ms();
		}
	}
	out = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	if (out) {
		size_t n = strlen(out);
		out[n] = '\n';
		if (p->log_fd >= 0)
			(void)write_all(p->log_fd, out, n + 1);
		if (sv->opt.echo == SV_ECHO_NONE || (is_json && msg && !strcmp(msg, "stats")))
			show = 0;
		else if (sv->opt.echo == SV_ECHO_ALL || !is_json)
			show = 1;
		else
			show = lvl && (!strcmp(lvl, "warn") || !strcmp(lvl, "error"));
		if (show)
			echo_record(s->name, rec, out, n + 1);
		free(out);
	}
	json_decref(rec);
}

/* Read what is there: 1 when bytes came, 0 at end of file (or an
 * error), -1 when there was nothing to read. */
static int read_stderr(struct supervisor *sv, int i)
{
	struct sv_stage *s = &sv->st[i];
	ssize_t n;
	size_t start = 0;

	if (s->ecap - s->elen < 65536) {
		s->ecap = s->elen + 65536;
		s->ebuf = xrealloc(s->ebuf, s->ecap);
	}
	n = read(s->errfd, s->ebuf + s->elen, s->ecap - s->elen);
	if (n < 0)
		return (errno == EINTR || errno == EAGAIN) ? -1 : 0;
	if (n == 0) {
		if (s->elen)
			stage_line(sv, i, s->ebuf, s->elen);
		s->elen = 0;
		return 0;
	}
	s->err_bytes += (uint64_t)n;
	s->elen += (size_t)n;
	for (size_t k = 0; k < s->elen; k++) {
		if (s->ebuf[k] == '\n') {
			stage_line(sv, i, s->ebuf + start, k - start);
			start = k + 1;
		}
	}
	/* A line longer than 1 MiB is cut rather than held forever. */
	if (start == 0 && s->elen > (1u << 20)) {
		stage_line(sv, i, s->ebuf, s->elen);
		start = s->elen;
	}
	memmove(s->ebuf, s->ebuf + start, s->elen - start);
	s->elen -= start;
	return 1;
}

static void close_stderr(struct sv_stage *s)
{
	if (s->errfd >= 0)
		close(s->errfd);
	s->errfd = -1;
}

/* ---- launching ---- */

static pid_t start_holder(int *life_w)
{
	int lp[2];
	pid_t pid;

	if (pipe2(lp, O_CLOEXEC) != 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(lp[0]);
		close(lp[1]);
		return -1;
	}
	if (pid == 0) {
		sigset_t none;
		char c;
		int devnull;
		setpgid(0, 0);
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD && sig < SIGRTMIN)
				signal(sig, SIG_IGN);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(lp[1]);
		if (lp[0] != 3) {
			dup2(lp[0], 3);
			close(lp[0]);
		}
		devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		syscall(SYS_close_range, 4, ~0U, 0);
		while (read(3, &c, 1) < 0 && errno == EINTR)
			;
		kill(0, SIGKILL);
		_exit(0);
	}
	setpgid(pid, pid);
	close(lp[0]);
	*life_w = lp[1];
	return pid;
}

static void pre_exec(void *arg)
{
	struct hook *h = arg;
	sigset_t none;
	static const int dfl[] = { SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2,
				   SIGALRM, SIGCHLD };

	for (size_t k = 0; k < sizeof dfl / sizeof dfl[0]; k++)
		signal(dfl[k], SIG_DFL);
	/* The stages are not the terminal's foreground group; a dashboard
	 * may still set terminal modes and draw. */
	signal(SIGTTOU, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	if (setpgid(0, h->pgid) != 0)
		_exit(126);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != h->parent)
		_exit(126);
	if (dup2(h->err_w, 2) < 0)
		_exit(126);
	/* Whatever kerf inherited without close-on-exec (a test harness's
	 * descriptors, a shell's) is no business of a stage. */
	syscall(SYS_close_range, 3, ~0U, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static int launch(struct supervisor *sv, const char *rundir_abs)
{
	struct sv_private *p = sv->p;
	pipeline *pl = pipeline_new();

	for (int i = 0; i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		struct hook *h = xcalloc(1, sizeof *h);
		int ep[2];
		pipecmd *cmd = pipecmd_new(s->path);
		for (int a = 1; a < s->argc; a++)
			pipecmd_arg(cmd, s->argv[a]);
		pipecmd_setenv(cmd, "KERF_RUNDIR", rundir_abs);
		pipecmd_setenv(cmd, "KERF_RUN", p->rs->run);
		pipecmd_setenv(cmd, "KERF_LOG", "json");
		/* Stats at least every tick, so the watchdog sees progress. */
		if (!getenv("KERF_STATS_MS")) {
			char ms[24];
			snprintf(ms, sizeof ms, "%llu", (unsigned long long)(sv->opt.tick_ms < 1000 ? sv->opt.tick_ms : 1000));
			pipecmd_setenv(cmd, "KERF_STATS_MS", ms);
		}
		if (pipe2(ep, O_CLOEXEC) != 0) {
			log_msg(LOG_ERROR, NULL, "cannot create a pipe: %s", strerror(errno));
			pipecmd_free(cmd);
			free(h);
			pipeline_free(pl);
			return -1;
		}
		s->errfd = ep[0];
		s->err_w = ep[1];
		fcntl(s->errfd, F_SETFL, O_NONBLOCK);
		h->err_w = ep[1];
		h->pgid = p->holder;
		h->parent = getpid();
		s->hook = h;
		pipecmd_pre_exec(cmd, pre_exec, NULL, h);
		pipeline_command(pl, cmd);
	}
	fflush(NULL);
	pipeline_start(pl);
	p->pl = pl;
	for (int i = 0; i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		json_t *f, *argv = json_array();
		s->pid = pipeline_get_pid(pl, i);
		s->pidfd = (int)sys_pidfd_open(s->pid);
		s->started = 1;
		s->start_us = mono_us();
		s->progress_ms = mono_ms();
		close(s->err_w);
		s->err_w = -1;
		if (s->pidfd < 0) {
			/* Without a pidfd the stage cannot be watched: end the run. */
			log_msg(LOG_ERROR, NULL, "cannot watch stage '%s' (pid %ld): %s", s->name,
				(long)s->pid, strerror(errno));
			kill(s->pid, SIGKILL);
			s->exited = 1;
			s->sig = SIGKILL;
			s->verdict = BLAME_CAUSE;
			set_cause(sv, C_PREP, "preparation", i, "cannot watch", "cannot watch a stage");
			teardown(sv, "preparation");
			json_decref(argv);
			continue;
		}
		for (int a = 0; a < s->argc; a++)
			json_array_append_new(argv, json_string(s->argv[a]));
		f = stage_ref(s);
		json_object_set_new(f, "argv", argv);
		json_object_set_new(f, "optional", json_boolean(s->optional));
		json_object_set_new(f, "pgid", json_integer(p->holder));
		runstate_note(p->rs, "stage_start", f);
	}
	return 0;
}

/* ---- exits ---- */

/*
 * What stage i's exit was.  A broken pipe (SIGPIPE, or exit 74: what a
 * stage does on EPIPE) only with a critical stage downstream of it: no
 * stage downstream of the last can have closed its output, and a stage
 * that must outlive an optional consumer is told so (kerf-persist
 * --downstream-optional).  Nor when the stage logged an error of its own
 * (one without reason downstream_closed): exit 74 there is a real I/O
 * error, a full disk say, and must not pass for the consequence of
 * another exit.  Only the first stage's exit 3 is a critical alarm, and
 * only kerf-acquire's.
 */
static enum blame_exit exit_kind(const struct supervisor *sv, int i)
{
	const struct sv_stage *s = &sv->st[i];
	int can_break = i + 1 < sv->n && !sv->st[i + 1].optional && !s->own_error;
	return blame_exit_kind(s->code, s->sig, can_break, i == 0 && s->is_acquire);
}

/*
 * A stage downstream of i has exited in a way that explains i's broken
 * pipe: it failed, or it exited no later than i did (noticed together or
 * before).  A consumer that ended cleanly after i merely saw i's end of
 * output: it is i's consequence, not its cause.
 */
static int downstream_exited(struct supervisor *sv, int i)
{
	for (int j = i + 1; j < sv->n; j++) {
		const struct sv_stage *d = &sv->st[j];
		if (d->exited && (d->sig || d->code != 0 || !sv->st[i].exited ||
				  d->exit_batch <= sv->st[i].exit_batch))
			return 1;
	}
	return 0;
}

/* No cause yet, or only the operator's stop: a failure now is the first. */
static unsigned first_failure(const struct supervisor *sv)
{
	return (sv->p->cause == C_NONE || sv->p->cause == C_OPERATOR) ? BLAME_FIRST : 0;
}

/* What else has happened, as blame_judge takes it. */
static unsigned facts(struct supervisor *sv, int i)
{
	const struct sv_stage *s = &sv->st[i];
	unsigned f = first_failure(sv);

	if (s->signalled)
		f |= BLAME_SIGNALLED;
	if (sv->p->tearing)
		f |= BLAME_TEARING;
	if (downstream_exited(sv, i))
		f |= BLAME_DOWNSTREAM;
	if (s->optional)
		f |= BLAME_OPTIONAL;
	return f;
}

/* An optional stage failed: the run goes on, degraded. */
static void degrade(struct supervisor *sv, int i)
{
	struct sv_private *p = sv->p;
	struct sv_stage *s = &sv->st[i];
	char how[64];

	how_str(s, how, sizeof how);
	p->degraded = 1;
	log_msg(LOG_WARN, log_is_json() ? json_pack("{s:s, s:s}", "failed_stage", s->name, "how", how) : NULL,
		"optional stage '%s' failed (%s); the run goes on degraded", s->name, how);
	runstate_note(p->rs, "degraded", json_pack("{s:s, s:s}", "stage", s->name, "how", how));
}

/* A critical stage failed: the cause if it is the first, then teardown. */
static void blame(struct supervisor *sv, int i)
{
	struct sv_stage *s = &sv->st[i];
	char how[64];
	int first = first_failure(sv) != 0;

	how_str(s, how, sizeof how);
	if (first) {
		char msg[128];
		s->verdict = BLAME_CAUSE;
		snprintf(msg, sizeof msg, "stage '%s' failed: %s", s->name, how);
		set_cause(sv, C_FAULT, "fault", i, NULL, msg);
		log_msg(LOG_ERROR, log_is_json() ? json_pack("{s:s, s:s}", "failed_stage", s->name, "how", how) : NULL,
			"stage '%s' failed (%s); stopping the run", s->name, how);
	}
	/* Signals first: the status file's fsync can wait. */
	teardown(sv, "fault");
	fire(sv, RSE_FAULT, stage_ref(s));
}

/* Broken pipes waiting for their consumer's exit: a consequence when a
 * stage downstream has exited since, the cause when none did in time. */
static void resolve_suspects(struct supervisor *sv)
{
	uint64_t now = mono_ms();
	for (int i = 0; i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		if (s->verdict != BLAME_SUSPECT)
			continue;
		s->verdict = blame_judge(s->exit_kind, facts(sv, i),
					 now >= s->suspect_until ? BLAME_EXPIRED : BLAME_WAITING);
		if (s->verdict == BLAME_SUSPECT)
			continue;
		runstate_note(sv->p->rs, "verdict", json_pack("{s:s, s:s}", "stage", s->name, "verdict",
							     blame_verdict_name(s->verdict)));
		if (s->verdict == BLAME_CAUSE || s->verdict == BLAME_FAILED)
			blame(sv, i);
		else if (s->verdict == BLAME_DEGRADED)
			degrade(sv, i);
	}
}

static uint64_t next_suspect(struct supervisor *sv)
{
	uint64_t t = 0;
	for (int i = 0; i < sv->n; i++)
		if (sv->st[i].verdict == BLAME_SUSPECT && (t == 0 || sv->st[i].suspect_until < t))
			t = sv->st[i].suspect_until;
	return t;
}

/*
 * The first stage has exited (noticed now): what it logged first, then
 * whether it reports commands.  A stop it was sent and has not
 * confirmed is confirmed by its exit when the exit is not 0 (a stop
 * before the lot started, a signal) and not a critical alarm's; an exit
 * 0 is the lot completed, the stop pending (kerf(7)).
 */
static void first_exited(struct supervisor *sv)
{
	struct sv_stage *s = &sv->st[0];
	struct svc *w;

	drain_first(sv);
	if (sv->p->reports < 0)
		decide_reports(sv, 0, "it exited without a command record");
	w = awaited(sv);
	if (w && !strcmp(w->op, "stop") && !svc_fate_final(w->fate) && (s->sig || s->code != 0) &&
	    exit_kind(sv, 0) != BLAME_EXIT_ALARM) {
		char how[64], why[128];
		how_str(s, how, sizeof how);
		snprintf(why, sizeof why, "the first stage ended (%s) after the stop", how);
		cmd_decide(sv, w->id, SVC_CONFIRMED, why);
	} else if (w && !strcmp(w->op, "stop") && w->fate == SVC_SUPERSEDED && w->fate_by && !strcmp(w->fate_by, "tool") &&
		   (s->sig || s->code != 0) &&
		   exit_kind(sv, 0) != BLAME_EXIT_ALARM) {
		/*
		 * The first stage itself ended the run for the stop (kerf-acquire:
		 * a stop before the tool started the lot, exit 75), superseding
		 * it with no command ahead of it: the stop took effect.
		 */
		set_cause(sv, C_OPERATOR, "operator_stop", -1, NULL, "operator stop");
		fire(sv, RSE_STOP_CONFIRMED, cmd_ref(sv, w->id));
	}
}

/* The exits that happened since the last look, in pipeline order, into
 * 'fresh' (room for every stage); how many. */
static int collect_exits(struct supervisor *sv, int *fresh)
{
	int nf = 0;

	for (int i = 0; i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		siginfo_t si;
		if (!s->started || s->exited || s->pidfd < 0)
			continue;
		memset(&si, 0, sizeof si);
		if (waitid((idtype_t)P_PIDFD, (id_t)s->pidfd, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
			continue;
		if (si.si_pid == 0)
			continue;
		s->exited = 1;
		s->exit_us = mono_us();
		s->exit_batch = sv->p->batch + 1;
		if (si.si_code == CLD_EXITED)
			s->code = si.si_status;
		else
			s->sig = si.si_status;
		fresh[nf++] = i;
	}
	return nf;
}

/* The first judgement of each exit noticed together (lib/blame.h), then
 * the root cause among them moved first, so that it is named before the
 * rest: the highest blame_rank, the most upstream among equals. */
static void judge_exits(struct supervisor *sv, int *fresh, int nf)
{
	int best = -1, rank = 0;

	for (int k = 0; k < nf; k++) {
		struct sv_stage *s = &sv->st[fresh[k]];
		int r;
		s->exit_kind = exit_kind(sv, fresh[k]);
		s->facts = facts(sv, fresh[k]) & ~(unsigned)BLAME_FIRST;
		s->verdict = blame_judge(s->exit_kind, s->facts, BLAME_AT_EXIT);
		if (s->verdict == BLAME_SUSPECT)
			s->suspect_until = mono_ms() + BLAME_SUSPECT_MS;
		r = blame_rank(s->verdict, s->exit_kind);
		if (r > rank) {
			rank = r;
			best = k;
		}
	}
	if (best > 0) {
		int cause = fresh[best];
		fresh[best] = fresh[0];
		fresh[0] = cause;
	}
}

/* A critical alarm ends the run without a teardown; it wins over a
 * pending command, and says so. */
static void alarm_exit(struct supervisor *sv, int i)
{
	struct sv_private *p = sv->p;
	struct svc *w = awaited(sv);
	char msg[160] = "critical alarm";

	if (w)
		snprintf(msg, sizeof msg, "critical alarm while a %s was pending (command %d)", w->op, w->id);
	set_cause(sv, C_ALARM, "alarm", i, NULL, msg);
	if (w && p->cause == C_ALARM && !p->pending_end)
		p->pending_end = w->id;
	fire(sv, RSE_ALARM, stage_ref(&sv->st[i]));
	log_msg(LOG_ERROR, NULL, "stage '%s' ended the run on a critical alarm; "
		"draining the pipeline", sv->st[i].name);
}

/* Stage i's exit, judged: whether it is the first failure now that the
 * exits before it in the batch were acted on; noted; acted on. */
static void exit_judged(struct supervisor *sv, int i)
{
	struct sv_private *p = sv->p;
	struct sv_stage *s = &sv->st[i];
	json_t *f = stage_ref(s);

	s->verdict = blame_judge(s->exit_kind, s->facts | first_failure(sv), BLAME_AT_EXIT);
	if (s->sig)
		json_object_set_new(f, "signal", json_string(sig_name(s->sig)));
	else
		json_object_set_new(f, "exit", json_integer(s->code));
	json_object_set_new(f, "verdict", json_string(blame_verdict_name(s->verdict)));
	json_object_set_new(f, "ran_ms", json_integer((json_int_t)((s->exit_us - s->start_us) / 1000)));
	if (p->cause_exit_us)
		json_object_set_new(f, "after_cause_us",
				    json_integer((json_int_t)s->exit_us - (json_int_t)p->cause_exit_us));
	runstate_note(p->rs, "stage_exit", f);
	if (s->verdict == BLAME_DEGRADED)
		degrade(sv, i);
	else if (s->verdict == BLAME_ALARM)
		alarm_exit(sv, i);
	else if (s->verdict == BLAME_CAUSE || s->verdict == BLAME_FAILED)
		blame(sv, i);
}

/* Collect the exits that happened; name causes and consequences. */
static void check_exits(struct supervisor *sv)
{
	int *fresh = xcalloc((size_t)sv->n, sizeof *fresh);
	int nf = collect_exits(sv, fresh);

	if (nf > 0) {
		sv->p->batch++;
		if (sv->st[0].exited && sv->st[0].exit_batch == sv->p->batch)
			first_exited(sv);
		judge_exits(sv, fresh, nf);
		for (int k = 0; k < nf; k++)
			exit_judged(sv, fresh[k]);
		resolve_suspects(sv);
		write_status(sv, 0);
	}
	free(fresh);
}

/* ---- sampling, readiness, watchdogs ---- */

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

static void sample(struct supervisor *sv, int note)
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
static int ready(struct supervisor *sv)
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
static int stalled(struct supervisor *sv)
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

static void timeout(struct supervisor *sv, const char *what, int stage, const char *msg)
{
	char how[64];
	log_msg(LOG_ERROR, NULL, "%s", msg);
	if (stage >= 0 && !strcmp(what, "ready_timeout"))
		snprintf(how, sizeof how, "no output in %llu ms", (unsigned long long)sv->opt.ready_ms);
	else if (stage >= 0)
		snprintf(how, sizeof how, "no progress for %llu ms",
			 (unsigned long long)(mono_ms() - sv->st[stage].progress_ms));
	set_cause(sv, C_TIMEOUT, what, stage, stage >= 0 ? how : NULL, msg);
	teardown(sv, what);
	fire(sv, RSE_TIMEOUT, json_pack("{s:s}", "what", what));
}

/* ---- operator signals ---- */

static void operator_stop(struct supervisor *sv, int abort_now, const char *via, long from)
{
	struct sv_private *p = sv->p;
	int id;

	if (abort_now || p->stops > 1) {
		id = svc_new(&p->cmds, "abort", "operator", from)->id;
		log_msg(LOG_WARN, NULL, "aborting the run (%s)", via);
		set_cause(sv, C_OPERATOR, "abort", -1, NULL, "operator abort");
		if (p->cause == C_OPERATOR) {
			snprintf(p->cause_what, sizeof p->cause_what, "abort");
			snprintf(p->cause_msg, sizeof p->cause_msg, "operator abort");
		}
		teardown(sv, "abort");
		/* An abort goes ahead of everything: kerf does it, at once. */
		for (int k = 1; k < id; k++) {
			struct svc *c = svc_get(&p->cmds, k);
			if (!svc_fate_final(c->fate) && !strcmp(c->by, "operator")) {
				svc_set(c, SVC_SUPERSEDED, "kerf", "an abort went ahead of it");
				cmd_note(sv, k, NULL);
			}
		}
		svc_set(svc_get(&p->cmds, id), SVC_CONFIRMED, "kerf", "kerf tears the pipeline down");
		cmd_note(sv, id, NULL);
		{
			json_t *f = cmd_ref(sv, id);
			json_object_set_new(f, "via", json_string(via));
			fire(sv, RSE_ABORT, f);
		}
		write_status(sv, 0);
		return;
	}
	id = svc_new(&p->cmds, "stop", "operator", from)->id;
	if (p->cause != C_NONE || sv->st[0].exited) {
		cmd_decide(sv, id, SVC_REFUSED, p->cause != C_NONE ? "the run is already stopping"
				   : "the first stage has ended: the lot is done and the pipeline drains");
		return;
	}
	log_msg(LOG_INFO, NULL, "stopping acquisition; the pipeline drains (%s)", via);
	signal_stage(sv, 0, SIGTERM, "operator_stop");
	if (p->paused_by_stop) {
		signal_stage(sv, 0, SIGCONT, "operator_stop");
		p->paused_by_stop = 0;
	}
	cmd_note(sv, id, NULL);
	p->awaiting = id;
	{
		json_t *f = cmd_ref(sv, id);
		json_object_set_new(f, "via", json_string(via));
		fire(sv, RSE_STOP, f);
	}
	if (p->reports == 0)
		cmd_decide(sv, id, SVC_CONFIRMED, NO_REPORTS);
	write_status(sv, 0);
}

/*
 * Pause or resume: one of them pending at a time.  The same again while
 * it is pending joins it (merged); anything that does not apply in the
 * run's state is refused by kerf, with the reason, and changes nothing.
 */
static void operator_pause(struct supervisor *sv, int pause, long from)
{
	struct sv_private *p = sv->p;
	struct sv_stage *s = &sv->st[0];
	const char *op = pause ? "pause" : "resume";
	enum runstate_state want = pause ? RS_RUNNING : RS_PAUSED;
	int id = svc_new(&p->cmds, op, "operator", from)->id;
	struct svc *w = awaited(sv);
	char why[160];

	if (w && !strcmp(w->op, op)) {
		svc_get(&p->cmds, id)->into = w->id;
		snprintf(why, sizeof why, "joins command %d, pending", w->id);
		cmd_decide(sv, id, SVC_MERGED, why);
		return;
	}
	if (p->rs->state != want || s->exited) {
		if (w)
			snprintf(why, sizeof why, "a %s is pending (command %d)", w->op, w->id);
		else if (p->rs->state == (pause ? RS_PAUSED : RS_RUNNING))
			snprintf(why, sizeof why, "the run is %s already", pause ? "paused" : "running");
		else if (p->rs->state != want)
			snprintf(why, sizeof why, "the run is %s", runstate_state_name(p->rs->state));
		else
			snprintf(why, sizeof why, "the first stage has ended");
		cmd_decide(sv, id, SVC_REFUSED, why);
		return;
	}
	/* kerf-acquire pauses at a die boundary on SIGUSR1; a foreign
	 * first stage knows nothing of that and is stopped instead. */
	if (s->is_acquire)
		signal_stage(sv, 0, pause ? SIGUSR1 : SIGUSR2, op);
	else {
		signal_stage(sv, 0, pause ? SIGSTOP : SIGCONT, op);
		p->paused_by_stop = pause;
	}
	cmd_note(sv, id, NULL);
	p->awaiting = id;
	fire(sv, pause ? RSE_PAUSE : RSE_RESUME, cmd_ref(sv, id));
	if (!s->is_acquire)
		cmd_decide(sv, id, SVC_CONFIRMED, pause ? "SIGSTOP takes effect at once" : "SIGCONT takes effect at once");
	else if (p->reports == 0)
		cmd_decide(sv, id, SVC_CONFIRMED, NO_REPORTS);
	write_status(sv, 0);
}

static void handle_signals(struct supervisor *sv)
{
	struct signalfd_siginfo si;
	while (read(sv->p->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
		int sig = (int)si.ssi_signo;
		long from = (long)si.ssi_pid;
		char via[48];
		snprintf(via, sizeof via, "SIG%s from pid %u", sig_name(sig), si.ssi_pid);
		runstate_note(sv->p->rs, "signal_received",
			      json_pack("{s:s, s:I}", "sig", sig_name(sig), "from", (json_int_t)si.ssi_pid));
		switch (sig) {
		case SIGINT:
		case SIGTERM:
		case SIGHUP:
			sv->p->stops++;
			operator_stop(sv, 0, via, from);
			break;
		case SIGQUIT:
			operator_stop(sv, 1, via, from);
			break;
		case SIGUSR1:
			operator_pause(sv, 1, from);
			break;
		case SIGUSR2:
			operator_pause(sv, 0, from);
			break;
		default:
			break;
		}
	}
}

/* ---- preparation: the readiness checks ---- */

static int ck_final(enum ck_state st)
{
	return st != CK_PENDING && st != CK_RUNNING;
}

static struct sv_check *check_get(struct supervisor *sv, const char *name, int stage)
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
static void check_set(struct supervisor *sv, const char *name, int stage, enum ck_state st, int64_t ms,
		      const char *reason)
{
	struct sv_check *k = check_get(sv, name, stage);
	uint64_t now = mono_ms();

	if (!k || ck_final(k->st) || (st == k->st && !ck_final(st)))
		return;
	if (k->st == CK_PENDING && !k->start_ms)
		k->start_ms = now;
	if (st == CK_RUNNING && k->st == CK_PENDING)
		k->start_ms = now;
	k->st = st;
	if (ck_final(st))
		k->ms = ms >= 0 ? ms : (int64_t)(now - k->start_ms);
	free(k->reason);
	k->reason = reason ? xstrdup(reason) : NULL;
	runstate_note(sv->p->rs, "check", check_json(sv, k));
	if (st == CK_FAILED)
		check_failed(sv, k);
}

/* Every check not over yet: running ones become 'running_to', pending ones cancelled. */
static void checks_close(struct supervisor *sv, enum ck_state running_to, const char *why)
{
	struct sv_private *p = sv->p;
	for (int i = 0; i < p->nchecks; i++) {
		struct sv_check *k = &p->checks[i];
		if (!ck_final(k->st))
			check_set(sv, k->name, k->stage, k->st == CK_RUNNING ? running_to : CK_CANCELLED, -1, why);
	}
}

/* The first failed check ends preparation: it is the cause, the others are cancelled. */
static void check_failed(struct supervisor *sv, struct sv_check *k)
{
	struct sv_private *p = sv->p;
	char msg[256], why[64];

	if (!preparing(sv) || p->cause != C_NONE)
		return;
	snprintf(msg, sizeof msg, "readiness check '%s' failed%s%s", k->name, k->reason ? ": " : "",
		 k->reason ? k->reason : "");
	log_msg(LOG_ERROR, log_is_json() ? json_pack("{s:s}", "check", k->name) : NULL, "%s", msg);
	snprintf(p->cause_check, sizeof p->cause_check, "%s", k->name);
	set_cause(sv, C_PREP, "preparation", -1, NULL, msg);
	snprintf(why, sizeof why, "check '%s' failed first", k->name);
	checks_close(sv, CK_CANCELLED, why);
	if (p->pl) {
		teardown(sv, "not_ready");
		fire(sv, RSE_NOT_READY, json_pack("{s:s}", "check", k->name));
	}
	write_status(sv, 0);
}

/* A stage's check record: {"check", "outcome", "ms", "reason"}. */
static void check_heard(struct supervisor *sv, int stage, json_t *rec)
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
	check_set(sv, name, stage, (enum ck_state)st, json_is_integer(ms) ? json_integer_value(ms) : -1,
		  json_string_value(json_object_get(rec, "reason")));
	if (st != CK_FAILED)
		write_status(sv, 0);
}

/* The check preparation still waits on: the earliest running one other
 * than machine_ready, else any pending one, else machine_ready; NULL
 * when every check is over. */
static struct sv_check *check_waited(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	struct sv_check *w = NULL, *pend = NULL, *mr = NULL;
	for (int i = 0; i < p->nchecks; i++) {
		struct sv_check *k = &p->checks[i];
		if (ck_final(k->st))
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
static int checks_passed(struct supervisor *sv)
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
static int prepare(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	char *probe = xasprintf("%s/.probe.%ld", p->rs->dir, (long)getpid());
	char msg[512] = "";
	struct statvfs vfs;
	uint64_t t0 = mono_us();
	int fd, ok = 1;

	check_get(sv, "rundir", -1);
	check_get(sv, "programs", -1);
	check_set(sv, "rundir", -1, CK_RUNNING, -1, NULL);
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
		if (statvfs(p->rs->dir, &vfs) != 0) {
			snprintf(msg, sizeof msg, "cannot tell the free space of '%s': %s", p->rs->dir, strerror(errno));
			ok = 0;
		} else if ((uint64_t)vfs.f_bavail * vfs.f_frsize < sv->opt.min_free) {
			snprintf(msg, sizeof msg, "run directory '%s' has %llu bytes free, below --min-free %llu",
				 p->rs->dir, (unsigned long long)((uint64_t)vfs.f_bavail * vfs.f_frsize),
				 (unsigned long long)sv->opt.min_free);
			ok = 0;
		}
	}
	check_set(sv, "rundir", -1, ok ? CK_OK : CK_FAILED, (int64_t)((mono_us() - t0) / 1000), ok ? NULL : msg);
	if (!ok)
		return -1;
	t0 = mono_us();
	check_set(sv, "programs", -1, CK_RUNNING, -1, NULL);
	for (int i = 0; ok && i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		s->path = supervise_resolve(s->argv[0]);
		if (!s->path) {
			snprintf(msg, sizeof msg, "stage '%s': program '%s' not found or not executable",
				 s->name, s->argv[0]);
			ok = 0;
		}
	}
	check_set(sv, "programs", -1, ok ? CK_OK : CK_FAILED, (int64_t)((mono_us() - t0) / 1000), ok ? NULL : msg);
	return ok ? 0 : -1;
}

/* ---- the end ---- */

static void write_summary(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	char *path = xasprintf("%s/summary.json", p->rs->dir);
	json_t *sum = json_load_file(path, 0, NULL), *o = outcome_json(sv, 1);
	char *s;

	if (!sum || !json_is_object(sum)) {
		json_decref(sum);
		sum = json_pack("{s:s}", "run", p->rs->run);
	}
	/* The outcome goes in an "outcome" object; persist's totals stay. */
	json_object_set_new(sum, "outcome", o);
	s = json_dumps(sum, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	if (s) {
		size_t n = strlen(s);
		s[n] = '\n';
		if (atomic_write_file(path, s, n + 1) != 0)
			log_msg(LOG_WARN, NULL, "cannot write '%s': %s", path, strerror(errno));
		free(s);
	}
	json_decref(sum);
	free(path);
}

static void finish(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	enum runstate_event e;

	if (p->rs->state == RS_PREPARING && p->cause == C_NONE)
		fire(sv, RSE_READY, NULL);
	checks_close(sv, CK_CANCELLED, "the run ended before the check did");
	cmd_close_pending(sv);
	switch (p->cause) {
	case C_NONE: e = RSE_DONE_OK; break;
	case C_OPERATOR: e = RSE_DONE_CANCELLED; break;
	case C_TIMEOUT: e = RSE_DONE_TIMEOUT; break;
	default: e = RSE_DONE_FAILED; break;
	}
	runstate_fire(p->rs, e, json_pack("{s:i}", "exit_code", exit_code_of(sv)));
	write_summary(sv);
	write_status(sv, 1);
}

static void reap(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	if (p->pl) {
		int *statuses = NULL, n = 0;
		/* libpipeline prints a line for every stage killed by a
		 * signal; kerf has already said what happened, in context. */
		int saved = dup(2), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (saved >= 0 && null >= 0)
			dup2(null, 2);
		pipeline_wait_all(p->pl, &statuses, &n);
		if (saved >= 0 && null >= 0)
			dup2(saved, 2);
		if (saved >= 0)
			close(saved);
		if (null >= 0)
			close(null);
		free(statuses);
		pipeline_free(p->pl);
		p->pl = NULL;
	}
	if (p->holder > 0) {
		/* Whatever a stage left behind in the group goes with it. */
		kill(-p->holder, SIGKILL);
		close(p->life_w);
		while (waitpid(p->holder, NULL, 0) < 0 && errno == EINTR)
			;
		p->holder = 0;
	}
}

/* ---- the loop ---- */

static uint64_t min_nz(uint64_t a, uint64_t b)
{
	return a == 0 ? b : b == 0 ? a : (a < b ? a : b);
}

int supervise_run(struct supervisor *sv, struct runstate *rs)
{
	struct sv_private *p = xcalloc(1, sizeof *p);
	sigset_t mask;
	struct pollfd *pfd;
	char *abs_dir;
	uint64_t start_ms;
	int rc;

	sv->p = p;
	p->rs = rs;
	p->sigfd = p->log_fd = p->life_w = -1;
	/* Past RLIMIT_FSIZE a write fails with EFBIG, reported, instead of
	 * SIGXFSZ killing kerf mid-write (the stages inherit this). */
	signal(SIGXFSZ, SIG_IGN);
	p->cause_stage = -1;
	p->reports = -1;
	fire(sv, RSE_PREPARE, json_pack("{s:i}", "stages", sv->n));

	if (prepare(sv) != 0) {
		finish(sv);
		rc = exit_code_of(sv);
		return rc;
	}
	abs_dir = realpath(rs->dir, NULL);
	if (!abs_dir)
		abs_dir = xstrdup(rs->dir);
	{
		char *lp = xasprintf("%s/log.ndjson", rs->dir);
		p->log_fd = open(lp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (p->log_fd < 0)
			log_msg(LOG_WARN, NULL, "cannot open '%s': %s", lp, strerror(errno));
		free(lp);
	}

	/* Every signal kerf handles arrives through the signalfd; SIGCHLD is
	 * blocked so that libpipeline's handler leaves the zombies to us. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGQUIT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* An ignored signal inherited from a shell ('kerf run &') must still
	 * reach the signalfd. */
	signal(SIGINT, SIG_DFL);
	signal(SIGQUIT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigdelset(&mask, SIGCHLD);
	p->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	p->holder = start_holder(&p->life_w);
	if (p->holder < 0 || p->sigfd < 0) {
		log_msg(LOG_ERROR, NULL, "cannot set up supervision: %s", strerror(errno));
		set_cause(sv, C_PREP, "preparation", -1, NULL, "cannot set up supervision");
		finish(sv);
		goto out;
	}
	if (launch(sv, abs_dir) != 0) {
		set_cause(sv, C_PREP, "preparation", -1, NULL, "cannot launch the pipeline");
		finish(sv);
		goto out;
	}
	start_ms = mono_ms();
	/* The first stage's first output: the machine is ready (with every other check passed). */
	check_set(sv, "machine_ready", 0, CK_RUNNING, -1, NULL);
	write_status(sv, 0);
	pfd = xcalloc((size_t)(1 + 2 * sv->n), sizeof *pfd);
	p->next_tick = start_ms + sv->opt.tick_ms;

	for (;;) {
		uint64_t now = mono_ms(), wake = p->next_tick;
		int live = live_stages(sv), open_err = 0, timeout_ms;

		if (live == 0) {
			if (!p->all_exited_us)
				p->all_exited_us = mono_us();
			for (int i = 0; i < sv->n; i++)
				open_err += sv->st[i].errfd >= 0;
			if (!open_err) {
				/* Everyone has exited: no consumer's exit is still
				 * to come to explain a broken pipe. */
				for (int i = 0; i < sv->n; i++)
					if (sv->st[i].verdict == BLAME_SUSPECT)
						sv->st[i].suspect_until = 0;
				resolve_suspects(sv);
				break;
			}
			/* Grandchildren may hold a stage's stderr: they go now. */
			if (p->holder > 0 && !p->killed) {
				kill(-p->holder, SIGKILL);
				p->killed = 1;
				p->kill_at = 0;
			}
		}
		if (preparing(sv))
			wake = min_nz(wake, now + 10);
		wake = min_nz(wake, p->kill_at);
		wake = min_nz(wake, next_suspect(sv));
		if (sv->opt.deadline_ms && !p->tearing)
			wake = min_nz(wake, start_ms + sv->opt.deadline_ms);
		if (live == 0)
			wake = min_nz(wake, now + 50);
		timeout_ms = wake > now ? (int)(wake - now) : 0;

		pfd[0].fd = p->sigfd;
		pfd[0].events = POLLIN;
		for (int i = 0; i < sv->n; i++) {
			pfd[1 + 2 * i].fd = sv->st[i].exited ? -1 : sv->st[i].pidfd;
			pfd[1 + 2 * i].events = POLLIN;
			pfd[2 + 2 * i].fd = sv->st[i].errfd;
			pfd[2 + 2 * i].events = POLLIN;
		}
		int n = poll(pfd, (nfds_t)(1 + 2 * sv->n), timeout_ms);
		if (n < 0 && errno != EINTR) {
			log_msg(LOG_ERROR, NULL, "poll: %s", strerror(errno));
			break;
		}
		if (n > 0) {
			int any_exit = 0;
			if (pfd[0].revents)
				handle_signals(sv);
			for (int i = 0; i < sv->n; i++) {
				if (pfd[1 + 2 * i].revents)
					any_exit = 1;
				if (pfd[2 + 2 * i].revents && sv->st[i].errfd >= 0) {
					/* Drain what is there, a bounded number of reads. */
					int k = 0, r;
					while ((r = read_stderr(sv, i)) > 0 && ++k < 16)
						;
					if (r == 0)
						close_stderr(&sv->st[i]);
				}
			}
			if (any_exit)
				check_exits(sv);
		}
		resolve_suspects(sv);
		now = mono_ms();
		if (live == 0 && p->all_exited_us && mono_us() - p->all_exited_us > 500000) {
			/* A stderr held open by something outside the group. */
			for (int i = 0; i < sv->n; i++)
				close_stderr(&sv->st[i]);
		}
		if (preparing(sv) && p->cause == C_NONE) {
			int out = ready(sv);
			/* What the first stage logged before its first output
			 * first: its checks, whether it reports commands. */
			if (out)
				drain_first(sv);
			if (out && p->cause == C_NONE && !ck_final(check_get(sv, "machine_ready", 0)->st))
				check_set(sv, "machine_ready", 0, CK_OK, (int64_t)(now - start_ms), NULL);
			if (out && p->cause == C_NONE && checks_passed(sv)) {
				fire(sv, RSE_READY, NULL);
				if (p->reports < 0)
					decide_reports(sv, 0, "it became ready without a command record");
			} else if (p->cause == C_NONE && now - start_ms >= sv->opt.ready_ms) {
				struct sv_check *k = check_waited(sv);
				char msg[160];
				if (!k || !strcmp(k->name, "machine_ready")) {
					snprintf(msg, sizeof msg, "stage '%s' produced nothing within the ready timeout (%llu ms)",
						 sv->st[0].name, (unsigned long long)sv->opt.ready_ms);
					snprintf(p->cause_check, sizeof p->cause_check, "machine_ready");
					checks_close(sv, CK_TIMEOUT, "cut by the ready timeout");
					timeout(sv, "ready_timeout", 0, msg);
				} else {
					snprintf(msg, sizeof msg, "readiness check '%s'%s%s did not finish within the ready timeout (%llu ms)",
						 k->name, k->stage >= 0 ? " of stage " : "", k->stage >= 0 ? sv->st[k->stage].name : "",
						 (unsigned long long)sv->opt.ready_ms);
					snprintf(p->cause_check, sizeof p->cause_check, "%s", k->name);
					checks_close(sv, CK_TIMEOUT, "cut by the ready timeout");
					timeout(sv, "ready_timeout", -1, msg);
				}
			}
		}
		if (sv->opt.deadline_ms && now - start_ms >= sv->opt.deadline_ms && p->cause != C_TIMEOUT &&
		    !p->tearing && live > 0) {
			char msg[128];
			snprintf(msg, sizeof msg, "the run passed its deadline (%llu ms)",
				 (unsigned long long)sv->opt.deadline_ms);
			timeout(sv, "deadline", -1, msg);
		}
		if (p->kill_at && now >= p->kill_at && live_stages(sv) > 0)
			kill_all(sv, "grace period over");
		if (now >= p->next_tick) {
			p->next_tick = now + sv->opt.tick_ms;
			sample(sv, 1);
			if (sv->opt.stall_ms && !p->tearing && !preparing(sv)) {
				int s = stalled(sv);
				if (s >= 0) {
					char msg[160];
					snprintf(msg, sizeof msg, "stage '%s' stalled: no progress for %llu ms with work waiting",
						 sv->st[s].name, (unsigned long long)(now - sv->st[s].progress_ms));
					timeout(sv, "stall", s, msg);
				}
			}
			write_status(sv, 0);
		}
	}
	free(pfd);
	if (p->cause_exit_us && p->all_exited_us)
		runstate_note(rs, "all_exited", json_pack("{s:I}", "after_cause_us",
							  (json_int_t)(p->all_exited_us - p->cause_exit_us)));
	else if (p->all_exited_us)
		runstate_note(rs, "all_exited", NULL);
	reap(sv);
	finish(sv);
out:
	rc = exit_code_of(sv);
	reap(sv);
	if (p->sigfd >= 0)
		close(p->sigfd);
	if (p->log_fd >= 0)
		close(p->log_fd);
	free(abs_dir);
	/* The signals stay blocked: the run is over, and a late SIGINT must
	 * not kill kerf before it reports the outcome. */
	return rc;
}

void supervise_release(struct supervisor *sv)
{
	for (int i = 0; i < sv->n; i++) {
		struct sv_stage *s = &sv->st[i];
		supervise_free_argv(s->argv);
		free(s->name);
		free(s->path);
		free(s->hook);
		free(s->ebuf);
		free(s->last_error);
		json_decref(s->counters);
		json_decref(s->link);
		if (s->pidfd >= 0)
			close(s->pidfd);
		if (s->errfd >= 0)
			close(s->errfd);
	}
	free(sv->st);
	if (sv->p) {
		svc_release(&sv->p->cmds);
		for (int i = 0; i < sv->p->nchecks; i++)
			free(sv->p->checks[i].reason);
	}
	free(sv->p);
	memset(sv, 0, sizeof *sv);
}

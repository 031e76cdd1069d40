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
#include "util.h"
#include "log.h"
#include "atomic.h"
#include "supervise.h"
#include "supervise_int.h"
#include "status_metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include "banned.h"

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

static uint64_t min_nz(uint64_t a, uint64_t b)
{
	return a == 0 ? b : b == 0 ? a : (a < b ? a : b);
}

/*
 * Every signal kerf handles arrives through the signalfd; SIGCHLD is
 * blocked so that libpipeline's handler leaves the zombies to us.  Then
 * log.ndjson and the holder.  0, or -1 with the cause set.
 */
static int setup(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	char *lp = xasprintf("%s/log.ndjson", p->rs->dir);
	sigset_t mask;

	p->log_fd = open(lp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (p->log_fd < 0)
		log_msg(LOG_WARN, NULL, "cannot open '%s': %s", lp, strerror(errno));
	free(lp);
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

	p->holder = sv_start_holder(&p->life_w);
	if (p->holder < 0 || p->sigfd < 0) {
		log_msg(LOG_ERROR, NULL, "cannot set up supervision: %s", strerror(errno));
		sv_set_cause(sv, C_PREP, "preparation", -1, NULL, "cannot set up supervision");
		return -1;
	}
	return 0;
}

/* No stage is left running: 1 when the loop is over (every stderr is
 * closed too). */
static int all_exited(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	int open_err = 0;

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
		sv_resolve_suspects(sv);
		return 1;
	}
	/* Grandchildren may hold a stage's stderr: they go now. */
	if (p->holder > 0 && !p->killed) {
		kill(-p->holder, SIGKILL);
		p->killed = 1;
		p->kill_at = 0;
	}
	return 0;
}

/* How long poll may wait: until the next timer of any kind. */
static int wait_ms(struct supervisor *sv, uint64_t now, uint64_t start_ms, int live)
{
	struct sv_private *p = sv->p;
	uint64_t wake = p->next_tick;

	if (sv_preparing(sv))
		wake = min_nz(wake, now + 10);
	wake = min_nz(wake, p->kill_at);
	wake = min_nz(wake, sv_next_suspect(sv));
	if (sv->opt.deadline_ms && !p->tearing)
		wake = min_nz(wake, start_ms + sv->opt.deadline_ms);
	if (live == 0)
		wake = min_nz(wake, now + 50);
	return wake > now ? (int)(wake - now) : 0;
}

/* Wait for signals, exits and stderr, and take what came: 0, or -1 when
 * poll fails. */
static int poll_once(struct supervisor *sv, struct pollfd *pfd, int timeout_ms)
{
	int n, any_exit = 0;

	pfd[0].fd = sv->p->sigfd;
	pfd[0].events = POLLIN;
	for (int i = 0; i < sv->n; i++) {
		pfd[1 + 2 * i].fd = sv->st[i].exited ? -1 : sv->st[i].pidfd;
		pfd[1 + 2 * i].events = POLLIN;
		pfd[2 + 2 * i].fd = sv->st[i].errfd;
		pfd[2 + 2 * i].events = POLLIN;
	}
	n = poll(pfd, (nfds_t)(1 + 2 * sv->n), timeout_ms);
	if (n < 0 && errno != EINTR) {
		log_msg(LOG_ERROR, NULL, "poll: %s", strerror(errno));
		return -1;
	}
	if (n <= 0)
		return 0;
	if (pfd[0].revents)
		sv_handle_signals(sv);
	for (int i = 0; i < sv->n; i++) {
		if (pfd[1 + 2 * i].revents)
			any_exit = 1;
		if (pfd[2 + 2 * i].revents && sv->st[i].errfd >= 0) {
			/* Drain what is there, a bounded number of reads. */
			int k = 0, r;
			while ((r = sv_read_stderr(sv, i)) > 0 && ++k < 16)
				;
			if (r == 0)
				sv_close_stderr(&sv->st[i]);
		}
	}
	if (any_exit)
		sv_check_exits(sv);
	return 0;
}

/* Not ready within the ready timeout: the check waited on is the cause. */
static void ready_timed_out(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	struct sv_check *k = sv_check_waited(sv);
	char msg[160];

	if (!k || !strcmp(k->name, "machine_ready")) {
		snprintf(msg, sizeof msg, "stage '%s' produced nothing within the ready timeout (%llu ms)",
			 sv->st[0].name, (unsigned long long)sv->opt.ready_ms);
		snprintf(p->cause_check, sizeof p->cause_check, "machine_ready");
		sv_checks_close(sv, CK_TIMEOUT, "cut by the ready timeout");
		sv_timeout(sv, "ready_timeout", 0, msg);
	} else {
		snprintf(msg, sizeof msg, "readiness check '%s'%s%s did not finish within the ready timeout (%llu ms)",
			 k->name, k->stage >= 0 ? " of stage " : "", k->stage >= 0 ? sv->st[k->stage].name : "",
			 (unsigned long long)sv->opt.ready_ms);
		snprintf(p->cause_check, sizeof p->cause_check, "%s", k->name);
		sv_checks_close(sv, CK_TIMEOUT, "cut by the ready timeout");
		sv_timeout(sv, "ready_timeout", -1, msg);
	}
}

/* While preparing: ready once the first stage has output and every check passed. */
static void readiness(struct supervisor *sv, uint64_t now, uint64_t start_ms)
{
	struct sv_private *p = sv->p;
	int out = sv_ready(sv);

	/* What the first stage logged before its first output
	 * first: its checks, whether it reports commands. */
	if (out)
		sv_drain_stderr(sv, 0);
	if (out && p->cause == C_NONE && !sv_ck_final(sv_check_get(sv, "machine_ready", 0)->st))
		sv_check_set(sv, "machine_ready", 0, CK_OK, (int64_t)(now - start_ms), NULL);
	if (out && p->cause == C_NONE && sv_checks_passed(sv)) {
		sv_fire(sv, RSE_READY, NULL);
		if (p->reports < 0)
			sv_decide_reports(sv, 0, "it became ready without a command record");
	} else if (p->cause == C_NONE && now - start_ms >= sv->opt.ready_ms) {
		ready_timed_out(sv);
	}
}

/* The deadline, the grace period and the tick: samples, the stall
 * watchdog, status.json. */
static void watchdogs(struct supervisor *sv, uint64_t now, uint64_t start_ms, int live)
{
	struct sv_private *p = sv->p;

	if (sv->opt.deadline_ms && now - start_ms >= sv->opt.deadline_ms && p->cause != C_TIMEOUT &&
	    !p->tearing && live > 0) {
		char msg[128];
		snprintf(msg, sizeof msg, "the run passed its deadline (%llu ms)",
			 (unsigned long long)sv->opt.deadline_ms);
		sv_timeout(sv, "deadline", -1, msg);
	}
	if (p->kill_at && now >= p->kill_at && sv_live_stages(sv) > 0)
		sv_kill_all(sv, "grace period over");
	if (now >= p->next_tick) {
		p->next_tick = now + sv->opt.tick_ms;
		sv_sample(sv, 1);
		if (sv->opt.stall_ms && !p->tearing && !sv_preparing(sv)) {
			int s = sv_stalled(sv);
			if (s >= 0) {
				char msg[160];
				snprintf(msg, sizeof msg, "stage '%s' stalled: no progress for %llu ms with work waiting",
					 sv->st[s].name, (unsigned long long)(now - sv->st[s].progress_ms));
				sv_timeout(sv, "stall", s, msg);
			}
		}
		sv_write_status(sv, 0);
	}
}

/* The event loop, from the launch until every stage has exited and
 * every stderr is closed. */
static void run_loop(struct supervisor *sv)
{
	struct sv_private *p = sv->p;
	uint64_t start_ms = mono_ms();
	struct pollfd *pfd = xcalloc((size_t)(1 + 2 * sv->n), sizeof *pfd);

	/* The first stage's first output: the machine is ready (with every other check passed). */
	sv_check_set(sv, "machine_ready", 0, CK_RUNNING, -1, NULL);
	sv_write_status(sv, 0);
	p->next_tick = start_ms + sv->opt.tick_ms;
	for (;;) {
		uint64_t now = mono_ms();
		int live = sv_live_stages(sv);

		if (live == 0 && all_exited(sv))
			break;
		if (poll_once(sv, pfd, wait_ms(sv, now, start_ms, live)) != 0)
			break;
		sv_resolve_suspects(sv);
		now = mono_ms();
		if (live == 0 && p->all_exited_us && mono_us() - p->all_exited_us > 500000) {
			/* A stderr held open by something outside the group. */
			for (int i = 0; i < sv->n; i++)
				sv_close_stderr(&sv->st[i]);
		}
		if (sv_preparing(sv) && p->cause == C_NONE)
			readiness(sv, now, start_ms);
		watchdogs(sv, now, start_ms, live);
	}
	free(pfd);
}

int supervise_run(struct supervisor *sv, struct runstate *rs)
{
	struct sv_private *p = xcalloc(1, sizeof *p);
	char *abs_dir = NULL;
	int rc;

	sv->p = p;
	p->rs = rs;
	p->sigfd = p->log_fd = p->life_w = -1;
	/* Past RLIMIT_FSIZE a write fails with EFBIG, reported, instead of
	 * SIGXFSZ killing kerf mid-write (the stages inherit this). */
	signal(SIGXFSZ, SIG_IGN);
	p->cause_stage = -1;
	p->reports = -1;
	/* Ours now (the lock is held): a temporary a crash left. */
	atomic_write_cleanup(rs->dir, STATUS_METRICS_FILE);
	sv_fire(sv, RSE_PREPARE, json_pack("{s:i}", "stages", sv->n));

	if (sv_prepare(sv) != 0) {
		sv_finish(sv);
		return sv_exit_code_of(sv);
	}
	abs_dir = realpath(rs->dir, NULL);
	if (!abs_dir)
		abs_dir = xstrdup(rs->dir);
	if (setup(sv) != 0) {
		sv_finish(sv);
		goto out;
	}
	if (sv_launch(sv, abs_dir) != 0) {
		sv_set_cause(sv, C_PREP, "preparation", -1, NULL, "cannot launch the pipeline");
		sv_finish(sv);
		goto out;
	}
	run_loop(sv);
	if (p->cause_exit_us && p->all_exited_us)
		runstate_note(rs, "all_exited", json_pack("{s:I}", "after_cause_us",
							  (json_int_t)(p->all_exited_us - p->cause_exit_us)));
	else if (p->all_exited_us)
		runstate_note(rs, "all_exited", NULL);
	sv_reap(sv);
	sv_finish(sv);
out:
	rc = sv_exit_code_of(sv);
	sv_reap(sv);
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
		free_all(s->name, s->path, s->hook, s->ebuf, s->last_error);
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

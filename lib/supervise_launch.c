/*
 * supervise_launch.c: the stages' process group (the holder), launching
 * them, signalling them, tearing them down and reaping them.
 */
#include "util.h"
#include "log.h"
#include "supervise.h"
#include "supervise_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "banned.h"

static long sys_pidfd_open(pid_t pid)
{
	return syscall(SYS_pidfd_open, pid, 0);
}

static int sys_pidfd_signal(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

void sv_signal_stage(struct supervisor *sv, int i, int sig, const char *why)
{
	struct sv_stage *s = &sv->st[i];
	json_t *f;
	if (!s->started || s->exited || s->pidfd < 0)
		return;
	if (sys_pidfd_signal(s->pidfd, sig) != 0)
		return;
	if (sig == SIGTERM || sig == SIGKILL)
		s->signalled = sig;
	f = sv_stage_ref(s);
	json_object_set_new(f, "sig", json_string(sv_sig_name(sig)));
	json_object_set_new(f, "why", json_string(why));
	runstate_note(sv->p->rs, "signal_sent", f);
}

int sv_live_stages(struct supervisor *sv)
{
	int n = 0;
	for (int i = 0; i < sv->n; i++)
		if (sv->st[i].started && !sv->st[i].exited)
			n++;
	return n;
}

/* SIGTERM to the whole group, SIGKILL after the grace period. */
void sv_teardown(struct supervisor *sv, const char *why)
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

void sv_kill_all(struct supervisor *sv, const char *why)
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

pid_t sv_start_holder(int *life_w)
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

int sv_launch(struct supervisor *sv, const char *rundir_abs)
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
			sv_set_cause(sv, C_PREP, "preparation", i, "cannot watch", "cannot watch a stage");
			sv_teardown(sv, "preparation");
			json_decref(argv);
			continue;
		}
		for (int a = 0; a < s->argc; a++)
			json_array_append_new(argv, json_string(s->argv[a]));
		f = sv_stage_ref(s);
		json_object_set_new(f, "argv", argv);
		json_object_set_new(f, "optional", json_boolean(s->optional));
		json_object_set_new(f, "pgid", json_integer(p->holder));
		runstate_note(p->rs, "stage_start", f);
	}
	return 0;
}

void sv_reap(struct supervisor *sv)
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

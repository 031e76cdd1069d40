/*
 * reprocess.c: kerf reprocess.  The batch is planned here (names and
 * absolute paths in OUTDIR/inputs.tsv), scheduled by GNU parallel (one
 * job per line, its joblog in OUTDIR/joblog so that --resume and
 * --resume-failed work), and each job is this same program again with
 * --task N, so that a host needs kerf and its stages, and nothing else,
 * to take part.  A job starts its run directory from empty (a rerun
 * replaces the previous attempt: the journal of a stopped attempt holds
 * the run_end "stopped" that kerf-acquire made up, numbered like a
 * recorded event, and persist's idempotency would keep it), runs one
 * supervised pipeline, and appends one NDJSON record to
 * OUTDIR/results.ndjson in one write(2), O_APPEND and under an fcntl
 * lock, so that concurrent jobs, even on an NFS-shared OUTDIR, never
 * interleave.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "event.h"
#include "atomic.h"
#include "filelock.h"
#include "out.h"
#include "reprocess.h"
#include "runstate.h"
#include "status_doc.h"
#include "status_metrics.h"
#include "supervise.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "banned.h"

static void entries_free(struct rp_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].name);
		free(e[i].path);
	}
	free(e);
}

void reprocess_init(struct reprocess *r)
{
	memset(r, 0, sizeof *r);
}

void reprocess_release(struct reprocess *r)
{
	strvec_clear(&r->sshlogin);
	strvec_clear(&r->parallel_args);
	strvec_clear(&r->saved);
	for (int k = 0; k < RP__STAGES; k++)
		strvec_clear(&r->stage_args[k]);
	entries_free(r->e, r->n);
	free(r->out);
	memset(r, 0, sizeof *r);
}

/* ---- the plan: OUTDIR/inputs.tsv ---- */

/* The batch directory's own files (metrics.prom: kerf watch's, lib/watch.h). */
static const char *const reserved[] = {
	"inputs.tsv", "joblog", "results.ndjson", "settings.json", STATUS_METRICS_FILE, NULL,
};

static int open_outdir(struct reprocess *r)
{
	if (r->out)
		return 0;
	if (mkdir_p(r->outdir, 0777) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot create '%s': %s", r->outdir, strerror(errno));
		return -1;
	}
	r->out = realpath(r->outdir, NULL);
	if (!r->out) {
		log_msg(LOG_ERROR, NULL, "cannot resolve '%s': %s", r->outdir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Read OUTDIR/inputs.tsv: 0, -1 when it does not exist, -2 on error (logged). */
static int load_inputs(const char *out, struct rp_entry **ep, size_t *np)
{
	char *path = xasprintf("%s/inputs.tsv", out);
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, n = 0;
	ssize_t len;
	struct rp_entry *e = NULL;
	int rc = 0;

	*ep = NULL;
	*np = 0;
	if (!f) {
		rc = errno == ENOENT ? -1 : -2;
		if (rc == -2)
			log_msg(LOG_ERROR, NULL, "cannot open '%s': %s", path, strerror(errno));
		free(path);
		return rc;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		char *tab;
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		tab = strchr(line, '\t');
		if (!tab || tab == line || !tab[1]) {
			log_msg(LOG_ERROR, NULL, "'%s' line %zu: not NAME<TAB>PATH", path, n + 1);
			rc = -2;
			break;
		}
		e = xrealloc(e, (n + 1) * sizeof *e);
		e[n].name = xstrndup(line, (size_t)(tab - line));
		e[n].path = xstrdup(tab + 1);
		n++;
	}
	if (rc == 0 && ferror(f)) {
		log_msg(LOG_ERROR, NULL, "cannot read '%s': %s", path, strerror(errno));
		rc = -2;
	}
	fclose(f);
	free(line);
	free(path);
	if (rc != 0) {
		entries_free(e, n);
		return rc;
	}
	*ep = e;
	*np = n;
	return 0;
}

/* The batch of OUTDIR: its directory open and its inputs loaded. */
static int open_batch(struct reprocess *r)
{
	int have;
	if (open_outdir(r) != 0)
		return KERF_EX_IOERR;
	if (r->e)
		return KERF_EX_OK;
	have = load_inputs(r->out, &r->e, &r->n);
	if (have == -1)
		log_msg(LOG_ERROR, NULL, "no batch in '%s' (no inputs.tsv)", r->outdir);
	if (have != 0)
		return have == -1 ? KERF_EX_USAGE : KERF_EX_IOERR;
	return KERF_EX_OK;
}

static int name_taken(const struct rp_entry *e, size_t n, const char *name)
{
	for (const char *const *r = reserved; *r; r++)
		if (!strcmp(*r, name))
			return 1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(e[i].name, name))
			return 1;
	return 0;
}

static int is_regular(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *reprocess_file_name(const char *base)
{
	size_t len = strlen(base);
	static const char *const ext[] = { ".ndjson", ".jsonl", ".json", NULL };
	for (const char *const *x = ext; *x; x++) {
		size_t xl = strlen(*x);
		if (len > xl && !strcmp(base + len - xl, *x)) {
			len -= xl;
			break;
		}
	}
	char *b = xstrndup(base, len);
	char *name = safe_name(b, 200);
	free(b);
	return name;
}

char *reprocess_unique_name(const struct rp_entry *e, size_t n, const char *name)
{
	char *uniq = xstrdup(name);
	for (int k = 2; name_taken(e, n, uniq); k++) {
		free(uniq);
		uniq = xasprintf("%s-%d", name, k);
	}
	return uniq;
}

/* The name and the path to reprocess of one RECORDED argument; -1 (logged). */
static int plan_one(const char *arg, char **name, char **path)
{
	char *abs = realpath(arg, NULL), *base, *rec;
	struct stat st;

	if (!abs || stat(abs, &st) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot read '%s': %s", arg, strerror(errno));
		free(abs);
		return -1;
	}
	if (strpbrk(abs, "\t\n")) {
		log_msg(LOG_ERROR, NULL, "'%s': a tab or newline in the path is not supported", arg);
		free(abs);
		return -1;
	}
	base = strrchr(abs, '/') + 1;
	if (S_ISDIR(st.st_mode)) {
		rec = xasprintf("%s/acquired.ndjson", abs);
		if (is_regular(rec)) {
			*path = rec;
		} else {
			free(rec);
			*path = xstrdup(abs);
		}
		*name = safe_name(*base ? base : "root", 200);
	} else if (!strcmp(base, "acquired.ndjson") && base - 1 > abs) {
		/* RUNDIR/acquired.ndjson from kerf run --record: the run's name. */
		char *dir = xstrndup(abs, (size_t)(base - 1 - abs));
		char *dbase = strrchr(dir, '/');
		*name = safe_name(dbase && dbase[1] ? dbase + 1 : "acquired", 200);
		free(dir);
		*path = xstrdup(abs);
	} else {
		*name = reprocess_file_name(base);
		*path = xstrdup(abs);
	}
	free(abs);
	return 0;
}

/* True when reprocessing e would remove its own recording. */
static int inside_rundir(const char *out, const struct rp_entry *e)
{
	char *dir = xasprintf("%s/%s", out, e->name);
	size_t len = strlen(dir);
	int in = !strncmp(e->path, dir, len) && (e->path[len] == '/' || e->path[len] == '\0');
	if (in)
		log_msg(LOG_ERROR, NULL, "the recorded run '%s' lies in its own output directory '%s', "
			"which its job empties first; choose another OUTDIR", e->path, dir);
	free(dir);
	return in;
}

int reprocess_write_inputs(const char *out, const struct rp_entry *e, size_t n)
{
	char *path = xasprintf("%s/inputs.tsv", out);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	int rc;

	if (!m) {
		log_msg(LOG_ERROR, NULL, "out of memory");
		free(path);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		fprintf(m, "%s\t%s\n", e[i].name, e[i].path);
	fclose(m);
	rc = atomic_write_file(path, buf, len);
	if (rc != 0)
		log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", path, strerror(errno));
	free(buf);
	free(path);
	return rc;
}

static void job_settings(const struct reprocess *r, struct strvec *a, int for_run);

/* The job settings as a JSON array of option words; a new reference. */
static json_t *settings_json(const struct reprocess *r)
{
	struct strvec a = { 0 };
	json_t *arr = json_array();
	job_settings(r, &a, 0);
	for (int i = 0; i < a.n; i++)
		json_array_append_new(arr, json_string(a.v[i]));
	strvec_clear(&a);
	return arr;
}

/* kerf run's option for each stage's arguments, as settings.json and --task have them. */
static const char *const stage_opt[RP__STAGES] = {
	"--acquire-arg", "--validate-arg", "--detect-arg", "--persist-arg", "--project-arg",
};

/*
 * Take the settings saved in OUTDIR/settings.json (as job_settings wrote
 * them).  0; 1 when there is no such file; -1 when it cannot be read or
 * holds something else (logged).
 */
static int settings_load(struct reprocess *r)
{
	char *path = xasprintf("%s/settings.json", r->out);
	json_error_t jerr;
	json_t *arr;
	size_t i, n;
	int rc = 0;

	if (access(path, F_OK) != 0) {
		free(path);
		return 1;
	}
	arr = json_load_file(path, 0, &jerr);
	if (!json_is_array(arr)) {
		log_msg(LOG_ERROR, NULL, "cannot read '%s': %s", path, arr ? "not an array" : jerr.text);
		json_decref(arr);
		free(path);
		return -1;
	}
	n = json_array_size(arr);
	for (i = 0; i < n && rc == 0; i++) {
		const char *w = json_string_value(json_array_get(arr, i));
		const char *next = json_string_value(json_array_get(arr, i + 1));
		int k, takes = 1;
		if (!w) {
			rc = -1;
		} else if (!strcmp(w, "--no-project")) {
			r->no_project = 1;
			takes = 0;
		} else if (!strcmp(w, "--lenient")) {
			r->lenient = 1;
			takes = 0;
		} else if (!next) {
			rc = -1;
		} else if (!strcmp(w, "--deadline") || !strcmp(w, "--stall")) {
			strvec_push(&r->saved, next);
			*(!strcmp(w, "--stall") ? &r->stall : &r->deadline) = r->saved.v[r->saved.n - 1];
		} else {
			for (k = 0; k < RP__STAGES && strcmp(w, stage_opt[k]); k++)
				;
			if (k == RP__STAGES)
				rc = -1;
			else
				strvec_push(&r->stage_args[k], next);
		}
		i += (size_t)takes;
	}
	if (rc != 0)
		log_msg(LOG_ERROR, NULL, "'%s' holds an unknown setting", path);
	json_decref(arr);
	free(path);
	return rc;
}

/*
 * A fresh batch saves its settings in OUTDIR/settings.json; a resume
 * given none takes them from there, and one given some must give the
 * same, so that no batch mixes two settings.
 */
static int plan_settings(struct reprocess *r)
{
	char *path = xasprintf("%s/settings.json", r->out);
	json_t *cur = settings_json(r), *old;
	int rc = KERF_EX_OK;

	if (r->resume == RP_FRESH) {
		char *txt = json_dumps(cur, JSON_COMPACT);
		char *line = xasprintf("%s\n", txt ? txt : "[]");
		if (atomic_write_file(path, line, strlen(line)) != 0) {
			log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", path, strerror(errno));
			rc = KERF_EX_IOERR;
		}
		free(line);
		free(txt);
	} else if (json_array_size(cur) == 0) {
		if (settings_load(r) < 0)
			rc = KERF_EX_USAGE;
	} else if ((old = json_load_file(path, 0, NULL)) && !json_equal(old, cur)) {
		char *want = json_dumps(old, JSON_COMPACT);
		log_msg(LOG_ERROR, NULL, "the settings differ from the batch's (%s in '%s'); resume with "
			"the same settings, or with none", want ? want : "?", path);
		free(want);
		rc = KERF_EX_USAGE;
		json_decref(old);
	} else {
		json_decref(old);
	}
	json_decref(cur);
	free(path);
	return rc;
}

int reprocess_plan(struct reprocess *r, char *const paths[], int npaths)
{
	struct rp_entry *saved = NULL, *e = NULL;
	size_t nsaved = 0, n = 0;
	char *joblog;
	int have, rc = KERF_EX_OK;

	if (open_outdir(r) != 0)
		return KERF_EX_IOERR;
	have = load_inputs(r->out, &saved, &nsaved);
	if (have == -2)
		return KERF_EX_IOERR;
	joblog = xasprintf("%s/joblog", r->out);
	if (r->resume == RP_FRESH) {
		if (npaths == 0) {
			log_msg(LOG_ERROR, NULL, "no recorded runs given");
			rc = KERF_EX_USAGE;
		} else if (access(joblog, F_OK) == 0) {
			log_msg(LOG_ERROR, NULL, "'%s' already holds a batch; resume it with --resume or "
				"--resume-failed, or choose another OUTDIR", r->outdir);
			rc = KERF_EX_USAGE;
		}
	} else if (have != 0) {
		log_msg(LOG_ERROR, NULL, "no batch to resume in '%s' (no inputs.tsv)", r->outdir);
		rc = KERF_EX_USAGE;
	} else if (npaths == 0) {
		r->e = saved;
		r->n = nsaved;
		free(joblog);
		return plan_settings(r);
	}
	free(joblog);
	for (int i = 0; rc == KERF_EX_OK && i < npaths; i++) {
		char *name, *path, *uniq;
		if (plan_one(paths[i], &name, &path) != 0) {
			rc = KERF_EX_USAGE;
			break;
		}
		uniq = reprocess_unique_name(e, n, name);
		free(name);
		e = xrealloc(e, (n + 1) * sizeof *e);
		e[n].name = uniq;
		e[n].path = path;
		n++;
		if (inside_rundir(r->out, &e[n - 1]))
			rc = KERF_EX_USAGE;
	}
	if (rc == KERF_EX_OK && r->resume != RP_FRESH) {
		/* GNU parallel resumes by job number: the list must be the same. */
		int same = n == nsaved;
		for (size_t i = 0; same && i < n; i++)
			same = !strcmp(e[i].name, saved[i].name) && !strcmp(e[i].path, saved[i].path);
		if (!same) {
			log_msg(LOG_ERROR, NULL, "the recorded runs differ from the batch in '%s/inputs.tsv'; "
				"resume with the same list, or with none", r->outdir);
			rc = KERF_EX_USAGE;
		}
	}
	if (rc == KERF_EX_OK && r->resume == RP_FRESH && reprocess_write_inputs(r->out, e, n) != 0)
		rc = KERF_EX_IOERR;
	entries_free(saved, nsaved);
	if (rc == KERF_EX_OK)
		rc = plan_settings(r);
	if (rc != KERF_EX_OK) {
		entries_free(e, n);
		return rc;
	}
	r->e = e;
	r->n = n;
	return KERF_EX_OK;
}

/* ---- children: spawn, forward stop signals, wait ---- */

static volatile sig_atomic_t rp_signals, rp_last_signal, rp_aborts;

static void on_stop(int sig)
{
	rp_signals++;
	rp_last_signal = sig;
}

static void on_abort(int sig)
{
	(void)sig;
	rp_aborts++;
}

static void on_child(int sig)
{
	(void)sig;
}

/*
 * Run argv with stdout and stderr sent to out_fd and err_fd (-1: keep
 * ours) and wait for it.  The child leads a process group of its own,
 * so that a terminal's ^C or GNU parallel's signal to a job's group
 * reaches only us, and we pass it on once: the first SIGINT, SIGTERM or
 * SIGHUP as 'first', every later one as 'later' (for kerf run both are
 * SIGTERM: its first means drain, its second abort; GNU parallel takes
 * SIGHUP as "start no new job" and SIGTERM as "stop the jobs now").
 * SIGQUIT, kerf's abort (kerf stop --abort), is passed on as 'abort'.
 * When we die the child gets 'later' (PR_SET_PDEATHSIG).
 * Returns the wait status, or -1 (logged).
 */
static int spawn_wait(char *const argv[], int out_fd, int err_fd, int first, int later, int abort)
{
	static const int stops[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa, old[3], oldquit, oldchld;
	sigset_t block, orig;
	int forwarded = rp_signals, first_seen = rp_signals, aborted = rp_aborts, status = -1;
	pid_t pid, w;

	sigemptyset(&block);
	for (int i = 0; i < 3; i++)
		sigaddset(&block, stops[i]);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &orig);
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	for (int i = 0; i < 3; i++)
		sigaction(stops[i], &sa, &old[i]);
	sa.sa_handler = on_abort;
	sigaction(SIGQUIT, &sa, &oldquit);
	sa.sa_handler = on_child;
	sigaction(SIGCHLD, &sa, &oldchld);

	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, later);
		for (int i = 0; i < 3; i++)
			signal(stops[i], SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &orig, NULL);
		if (out_fd >= 0 && dup2(out_fd, 1) < 0)
			_exit(KERF_EX_SOFTWARE);
		if (err_fd >= 0 && dup2(err_fd, 2) < 0)
			_exit(KERF_EX_SOFTWARE);
		execv(argv[0], argv);
		log_msg(LOG_ERROR, NULL, "cannot run '%s': %s", argv[0], strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		log_msg(LOG_ERROR, NULL, "cannot fork: %s", strerror(errno));
	} else {
		sigset_t wait_mask = orig;
		for (int i = 0; i < 3; i++)
			sigdelset(&wait_mask, stops[i]);
		sigdelset(&wait_mask, SIGQUIT);
		sigdelset(&wait_mask, SIGCHLD);
		for (;;) {
			while (forwarded < rp_signals) {
				kill(pid, forwarded == first_seen ? first : later);
				forwarded++;
			}
			for (; aborted < rp_aborts; aborted++)
				kill(pid, abort);
			w = waitpid(pid, &status, WNOHANG);
			if (w == pid)
				break;
			if (w < 0 && errno != EINTR) {
				log_msg(LOG_ERROR, NULL, "cannot wait for '%s': %s", argv[0], strerror(errno));
				status = -1;
				break;
			}
			sigsuspend(&wait_mask);
		}
	}
	for (int i = 0; i < 3; i++)
		sigaction(stops[i], &old[i], NULL);
	sigaction(SIGQUIT, &oldquit, NULL);
	sigaction(SIGCHLD, &oldchld, NULL);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return status;
}

static char *self_exe(void)
{
	char *self = self_path();
	return self ? self : supervise_resolve("kerf");
}

/*
 * The job settings, as options of kerf reprocess --task, or with
 * for_run as options of kerf run (which has no --lenient: it is said by
 * leaving out kerf-validate's --strict).
 */
static void job_settings(const struct reprocess *r, struct strvec *a, int for_run)
{
	if (r->no_project)
		strvec_push(a, "--no-project");
	if (r->lenient && !for_run)
		strvec_push(a, "--lenient");
	if (r->deadline) {
		strvec_push(a, "--deadline");
		strvec_push(a, r->deadline);
	}
	if (r->stall) {
		strvec_push(a, "--stall");
		strvec_push(a, r->stall);
	}
	for (int k = 0; k < RP__STAGES; k++)
		for (int i = 0; i < r->stage_args[k].n; i++) {
			strvec_push(a, stage_opt[k]);
			strvec_push(a, r->stage_args[k].v[i]);
		}
}

/* ---- the batch ---- */

/* GNU parallel's --halt: never, or (soon|now),(fail|success|done)=N[%]. */
int reprocess_halt_ok(const char *s)
{
	static const char *const when[] = { "soon,", "now,", NULL };
	static const char *const what[] = { "fail=", "success=", "done=", NULL };
	const char *p = NULL;
	size_t digits;

	if (!strcmp(s, "never"))
		return 1;
	for (int i = 0; when[i] && !p; i++)
		if (!strncmp(s, when[i], strlen(when[i])))
			p = s + strlen(when[i]);
	if (!p)
		return 0;
	const char *q = NULL;
	for (int i = 0; what[i] && !q; i++)
		if (!strncmp(p, what[i], strlen(what[i])))
			q = p + strlen(what[i]);
	if (!q)
		return 0;
	digits = strspn(q, "0123456789");
	return digits > 0 && (!q[digits] || (q[digits] == '%' && !q[digits + 1]));
}

static void print_quoted(char *const argv[])
{
	for (int i = 0; argv[i]; i++) {
		const char *s = argv[i];
		int plain = *s != '\0';
		for (const char *p = s; *p && plain; p++)
			plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "0123456789-_./=:,+%@", *p) != NULL;
		if (i)
			putchar(' ');
		if (plain) {
			fputs(s, stdout);
			continue;
		}
		putchar('\'');
		for (const char *p = s; *p; p++) {
			if (*p == '\'')
				fputs("'\\''", stdout);
			else
				putchar(*p);
		}
		putchar('\'');
	}
	putchar('\n');
}

/*
 * The ssh that GNU parallel runs jobs with: never waiting for a password
 * or a host key prompt, and giving up on a host that does not connect in
 * 30 s or stops answering for a minute, so that its jobs end (exit 255)
 * instead of hanging the batch.  ssh's -o wins over ssh_config.
 */
#define RP_SSH "ssh -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 " \
	"-o ServerAliveCountMax=4"

/* True when the user chose the ssh command: PARALLEL_SSH, or --ssh. */
static int user_ssh(const struct strvec *parallel_args)
{
	if (getenv("PARALLEL_SSH"))
		return 1;
	for (int i = 0; i < parallel_args->n; i++)
		if (!strcmp(parallel_args->v[i], "--ssh") || !strncmp(parallel_args->v[i], "--ssh=", 6))
			return 1;
	return 0;
}

int reprocess_batch(struct reprocess *r)
{
	struct strvec a = { 0 };
	int remote = r->sshlogin.n > 0 || r->slf;
	char *parallel = supervise_resolve("parallel");
	char *kerf = remote ? xstrdup("kerf") : self_exe();
	char *joblog = xasprintf("%s/joblog", r->out);
	char *inputs = xasprintf("%s/inputs.tsv", r->out);
	int status, rc, signals_before = rp_signals;

	strvec_push(&a, parallel ? parallel : "parallel");
	/* -q: parallel quotes the command's words itself, locally and for ssh. */
	strvec_push(&a, "-q");
	strvec_push(&a, "--joblog");
	strvec_push(&a, joblog);
	if (r->jobs) {
		strvec_push(&a, "--jobs");
		strvec_push(&a, r->jobs);
	}
	strvec_push(&a, "--halt");
	strvec_push(&a, r->halt ? r->halt : "never");
	/* A job told to stop lets its kerf run drain and writes its record:
	 * give it 10 s, then a second TERM (kerf run aborts), then 5 s more,
	 * not GNU parallel's default 375 ms before SIGKILL. */
	strvec_push(&a, "--termseq");
	strvec_push(&a, "TERM,10000,TERM,5000,KILL,25");
	for (int i = 0; i < r->sshlogin.n; i++) {
		strvec_push(&a, "--sshlogin");
		strvec_push(&a, r->sshlogin.v[i]);
	}
	if (r->slf) {
		strvec_push(&a, "--slf");
		strvec_push(&a, r->slf);
	}
	if (remote && !user_ssh(&r->parallel_args)) {
		strvec_push(&a, "--ssh");
		strvec_push(&a, RP_SSH);
	}
	if (r->resume == RP_RESUME)
		strvec_push(&a, "--resume");
	else if (r->resume == RP_RESUME_FAILED)
		strvec_push(&a, "--resume-failed");
	strvec_pushv(&a, &r->parallel_args);
	strvec_push(&a, "--arg-file");
	strvec_push(&a, inputs);
	strvec_push(&a, kerf);
	strvec_push(&a, "reprocess");
	strvec_push(&a, "-o");
	strvec_push(&a, r->out);
	strvec_push(&a, "--task");
	strvec_push(&a, "{#}");
	job_settings(r, &a, 0);
	free(kerf);
	free(joblog);
	free(inputs);

	if (r->dry_run) {
		print_quoted(a.v);
		strvec_clear(&a);
		free(parallel);
		return fshut(stdout, "standard output");
	}
	if (!parallel) {
		log_msg(LOG_ERROR, NULL, "'parallel' not found: install GNU parallel (scripts/deps does)");
		strvec_clear(&a);
		return KERF_EX_UNAVAILABLE;
	}
	free(parallel);
	log_msg(LOG_INFO, json_pack("{s:s, s:I}", "outdir", r->out, "runs", (json_int_t)r->n),
		"reprocessing %zu recorded run%s into '%s'", r->n, r->n == 1 ? "" : "s", r->outdir);
	fflush(stdout);
	status = spawn_wait(a.v, -1, -1, SIGHUP, SIGTERM, SIGTERM);
	strvec_clear(&a);
	if (status == -1)
		return KERF_EX_SOFTWARE;
	if (rp_signals != signals_before)
		; /* parallel's 255 after our SIGTERM says nothing new */
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 255)
		log_msg(LOG_ERROR, NULL, "GNU parallel failed (exit 255)");
	else if (WIFSIGNALED(status))
		log_msg(LOG_ERROR, NULL, "GNU parallel died of signal %d", WTERMSIG(status));
	rc = reprocess_report(r);
	if (rp_signals != signals_before)
		return KERF_EX_CANCELLED;
	if (rc == KERF_EX_OK && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		rc = KERF_EX_FAILED;
	return rc;
}

/* ---- one job ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

/*
 * Make 'dir' an empty run directory: remove what a previous attempt
 * left (a directory with a status.json, lock or journal), refuse
 * anything else.  0, or -1 with the reason in 'why'.
 */
static int fresh_rundir(const char *dir, char *why, size_t whylen)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int empty = 1;
	pid_t holder;

	if (lstat(dir, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, whylen, "cannot stat '%s': %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "'%s' exists and is not a directory", dir);
		return -1;
	}
	holder = runstate_lock_holder(dir);
	if (holder > 0) {
		snprintf(why, whylen, "'%s' is in use by kerf run pid %ld", dir, (long)holder);
		return -1;
	}
	d = opendir(dir);
	if (!d) {
		snprintf(why, whylen, "cannot open '%s': %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = 0;
	closedir(d);
	if (empty)
		return 0;
	char *a = xasprintf("%s/status.json", dir), *b = xasprintf("%s/lock", dir),
	     *c = xasprintf("%s/journal", dir);
	int ours = access(a, F_OK) == 0 || access(b, F_OK) == 0 || access(c, F_OK) == 0;
	free(a);
	free(b);
	free(c);
	if (!ours) {
		snprintf(why, whylen, "'%s' exists and is not a run directory", dir);
		return -1;
	}
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		snprintf(why, whylen, "cannot remove the previous attempt in '%s': %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The KLARF files of a directory, sorted: every visible regular file. */
static void klarf_files(const char *dir, struct strvec *files)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *p = xasprintf("%s/%s", dir, de->d_name);
		if (is_regular(p))
			strvec_push(files, p);
		free(p);
	}
	closedir(d);
	if (files->n > 1)
		qsort(files->v, (size_t)files->n, sizeof *files->v, cmp_str);
}

static json_t *load_json(const char *dir, const char *file)
{
	char *path = xasprintf("%s/%s", dir, file);
	json_t *j = json_load_file(path, 0, NULL);
	free(path);
	return j;
}

/*
 * The failing stage's reason, from the run's log: the first error it
 * logged, else its first plain message that says "error", else its last
 * plain message that is not blank (a plain message is a record of just
 * t, lvl, stage, run and msg, which is how the supervisor wraps a line
 * that is not JSON, such as a crash or sanitizer report).  NULL when
 * none; caller frees.
 */
static char *stage_error(const char *dir, const char *stage)
{
	char *path = xasprintf("%s/log.ndjson", dir), *line = NULL, *msg = NULL, *raw = NULL;
	FILE *f = fopen(path, "re");
	size_t cap = 0;

	free(path);
	if (!f)
		return NULL;
	while (!msg && getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		const char *lvl = json_string_value(json_object_get(j, "lvl"));
		const char *st = json_string_value(json_object_get(j, "stage"));
		const char *m = json_string_value(json_object_get(j, "msg"));
		if (lvl && st && m && (!stage || !strcmp(st, stage))) {
			if (!strcmp(lvl, "error")) {
				msg = xstrdup(m);
			} else if (json_object_size(j) == 5 && json_object_get(j, "run") &&
				   json_object_get(j, "t") && strcmp(m, "stats") &&
				   m[strspn(m, " \t\r\n")] && !(raw && strcasestr(raw, "error"))) {
				free(raw);
				raw = xstrdup(m);
			}
		}
		json_decref(j);
	}
	free(line);
	fclose(f);
	if (msg) {
		free(raw);
		return msg;
	}
	return raw;
}

/* Append one record, one write(2), O_APPEND, under an fcntl lock. */
static int append_record(const char *path, json_t *rec)
{
	char *txt = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	char *line;
	size_t len;
	ssize_t w;
	int fd, rc = 0;

	if (!txt)
		return -1;
	line = xasprintf("%s\n", txt);
	free(txt);
	len = strlen(line);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	if (fd < 0) {
		log_msg(LOG_ERROR, NULL, "cannot open '%s': %s", path, strerror(errno));
		free(line);
		return -1;
	}
	if (filelock_take(fd, 1) != 0)
		log_msg(LOG_WARN, NULL, "cannot lock '%s': %s; appending anyway", path, strerror(errno));
	do
		w = write(fd, line, len);
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)len) {
		log_msg(LOG_ERROR, NULL, "cannot append to '%s': %s", path,
			w < 0 ? strerror(errno) : "short write");
		rc = -1;
	} else if (fdatasync(fd) != 0 && errno != EINVAL) {
		log_msg(LOG_ERROR, NULL, "cannot sync '%s': %s", path, strerror(errno));
		rc = -1;
	}
	if (close(fd) != 0 && rc == 0) {
		log_msg(LOG_ERROR, NULL, "cannot close '%s': %s", path, strerror(errno));
		rc = -1;
	}
	free(line);
	return rc;
}

/* ---- a record of results.ndjson ---- */

enum rp_type { RP_INT, RP_STR, RP_ARRAY };

/* The members, in their order; each the rp_result field at 'off'. */
static const struct {
	const char *key;
	enum rp_type type;
	size_t off;
} result_members[] = {
#define M(key, type) { #key, type, offsetof(struct rp_result, key) }
	M(v, RP_INT), M(t, RP_STR), M(name, RP_STR), M(recorded, RP_STR), M(kind, RP_STR),
	M(rundir, RP_STR), M(task, RP_INT), M(host, RP_STR), M(outcome, RP_STR), M(exit_code, RP_INT),
	M(stage, RP_STR), M(how, RP_STR), M(reason, RP_STR), M(events, RP_INT), M(wafers, RP_INT),
	M(dies, RP_INT), M(defects, RP_INT), M(wall_ms, RP_INT), M(argv, RP_ARRAY),
#undef M
};
#define RESULT_MEMBERS (sizeof result_members / sizeof result_members[0])

const char *rp_result_key(size_t i)
{
	return i < RESULT_MEMBERS ? result_members[i].key : NULL;
}

json_t *rp_result_json(const struct rp_result *r)
{
	json_t *rec = json_object();
	int bad = 0;

	for (size_t i = 0; i < RESULT_MEMBERS; i++) {
		const char *at = (const char *)r + result_members[i].off;
		const struct rp_int *n;
		const char *s;
		json_t *a, *v;
		switch (result_members[i].type) {
		case RP_INT:
			n = (const struct rp_int *)at;
			v = n->set ? json_integer(n->v) : json_null();
			break;
		case RP_STR:
			s = *(const char *const *)at;
			v = s ? json_string(s) : json_null();
			break;
		default:
			a = *(json_t *const *)at;
			v = a ? json_incref(a) : json_null();
			break;
		}
		/* v is stolen, set or not (a NULL one is not set). */
		if (json_object_set_new(rec, result_members[i].key, v) != 0)
			bad = 1;
	}
	if (bad) {
		json_decref(rec);
		return NULL;
	}
	return rec;
}

int rp_result_read(const json_t *rec, struct rp_result *r)
{
	memset(r, 0, sizeof *r);
	if (!json_is_object(rec))
		return -1;
	for (size_t i = 0; i < RESULT_MEMBERS; i++) {
		char *at = (char *)r + result_members[i].off;
		json_t *v = json_object_get(rec, result_members[i].key);
		switch (result_members[i].type) {
		case RP_INT:
			((struct rp_int *)at)->set = json_is_integer(v);
			((struct rp_int *)at)->v = json_integer_value(v);
			break;
		case RP_STR:
			*(const char **)at = json_string_value(v);
			break;
		default:
			*(json_t **)at = json_is_array(v) ? v : NULL;
			break;
		}
	}
	return 0;
}

static struct rp_int rp_int(json_int_t v)
{
	return (struct rp_int){ 1, v };
}

/* A count of the run's summary.json: not set when it is not there. */
static struct rp_int count_of(json_t *v)
{
	return (struct rp_int){ json_is_integer(v), json_integer_value(v) };
}

/* One task of a batch: kerf run over one recording, and its record. */
struct task {
	struct reprocess *r;
	long n;                       /* the task's number, from 1 */
	const struct rp_entry *e;     /* its recording */
	char *rundir, *results, *logpath, *kerf;
	int klarf;                    /* a directory of KLARF files, not a stream */
	struct strvec argv;           /* kerf run's */
	struct strvec files;          /* the KLARF files */
	int failed;                   /* kerf run was not started: why says why */
	char why[1024];
	int code;                     /* the task's exit status */
	json_t *status, *summary;     /* the run's files, or NULL */
	const char *outcome, *stage, *how; /* from status (or "error") */
	char *reason;                 /* why it did not complete, or NULL */
	uint64_t t0;
};

/* Task n of r, begun at t0 (mono_ms). */
static void task_init(struct task *t, struct reprocess *r, long n, uint64_t t0)
{
	memset(t, 0, sizeof *t);
	t->t0 = t0;
	t->r = r;
	t->n = n;
	t->e = &r->e[n - 1];
	t->rundir = xasprintf("%s/%s", r->out, t->e->name);
	t->results = xasprintf("%s/results.ndjson", r->out);
	t->logpath = xasprintf("%s/supervisor.log", t->rundir);
	t->kerf = self_exe();
	t->klarf = !is_regular(t->e->path);
}

static void task_release(struct task *t)
{
	json_decref(t->status);
	json_decref(t->summary);
	strvec_clear(&t->argv);
	strvec_clear(&t->files);
	free(t->reason);
	free(t->rundir);
	free(t->results);
	free(t->logpath);
	free(t->kerf);
}

/* kerf run -C RUNDIR over the recording, with the batch's settings. */
static void task_argv(struct task *t)
{
	struct strvec *a = &t->argv;
	strvec_push(a, t->kerf);
	strvec_push(a, "run");
	strvec_push(a, "-C");
	strvec_push(a, t->rundir);
	strvec_push(a, "--echo");
	strvec_push(a, "none");
	if (t->klarf) {
		klarf_files(t->e->path, &t->files);
		strvec_push(a, "--acquire-arg");
		strvec_push(a, "--klarf");
		for (int i = 0; i < t->files.n; i++) {
			strvec_push(a, "--acquire-arg");
			strvec_push(a, t->files.v[i]);
		}
	} else {
		strvec_push(a, "--acquire-arg");
		strvec_push(a, "--replay");
		strvec_push(a, "--acquire-arg");
		strvec_push(a, t->e->path);
	}
	/* A reprocessed run must be the recorded one: a bad line is a
	 * corrupt recording, not something to skip. */
	if (!t->r->lenient) {
		strvec_push(a, "--validate-arg");
		strvec_push(a, "--strict");
	}
	job_settings(t->r, a, 1);
}

/*
 * A fresh run directory, kerf run's output to /dev/null and its log to
 * RUNDIR/supervisor.log; or t->failed, and why.
 */
static void task_prepare(struct task *t, int *out_fd, int *err_fd)
{
	if (inside_rundir(t->r->out, t->e)) {
		snprintf(t->why, sizeof t->why, "the recording lies in the run directory '%s'", t->rundir);
		t->failed = 1;
	} else if (fresh_rundir(t->rundir, t->why, sizeof t->why) != 0) {
		t->failed = 1;
	} else if (mkdir_p(t->rundir, 0777) != 0) {
		snprintf(t->why, sizeof t->why, "cannot create '%s': %s", t->rundir, strerror(errno));
		t->failed = 1;
	}
	if (!t->failed) {
		*out_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		*err_fd = open(t->logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (*out_fd < 0 || *err_fd < 0) {
			snprintf(t->why, sizeof t->why, "cannot open '%s': %s",
				 *err_fd < 0 ? t->logpath : "/dev/null", strerror(errno));
			t->failed = 1;
		}
	}
	if (t->klarf && !t->failed && t->files.n == 0) {
		snprintf(t->why, sizeof t->why,
			 "'%s' is neither a recorded stream nor a directory of KLARF files", t->e->path);
		t->failed = 1;
	}
}

/* Run kerf run (unless it cannot start); t->code is its exit status. */
static void task_run(struct task *t)
{
	int st = -1, out_fd = -1, err_fd = -1;
	task_prepare(t, &out_fd, &err_fd);
	if (!t->failed)
		st = spawn_wait(t->argv.v, out_fd, err_fd, SIGTERM, SIGTERM, SIGQUIT);
	if (out_fd >= 0)
		close(out_fd);
	if (err_fd >= 0)
		close(err_fd);

	if (t->failed)
		t->code = KERF_EX_FAILED;
	else if (st == -1)
		t->code = KERF_EX_SOFTWARE;
	else if (WIFEXITED(st))
		t->code = WEXITSTATUS(st);
	else
		t->code = 128 + WTERMSIG(st);
}

/* kerf run's own last words, in supervisor.log; caller frees. */
static char *run_last_words(const char *logpath, int code)
{
	FILE *f = fopen(logpath, "re");
	char *line = NULL, *last = NULL;
	size_t cap = 0;
	while (f && getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		const char *m = json_string_value(json_object_get(j, "msg"));
		free(last);
		last = xstrdup(m ? m : line);
		json_decref(j);
	}
	free(line);
	if (f)
		fclose(f);
	if (!last)
		last = xasprintf("kerf run ended with status %d", code);
	return last;
}

/*
 * How the run ended (status.json's outcome, else "error"), which stage
 * ended it and how, and why in a line: the stage's error, the cause's
 * message, why it could not start, or the run's last words.
 */
static void task_outcome(struct task *t)
{
	struct status_cause cause;
	if (!t->failed) {
		t->status = load_json(t->rundir, "status.json");
		t->summary = load_json(t->rundir, "summary.json");
	}
	t->outcome = status_doc_outcome_state(t->status);
	if (!t->outcome || !status_doc_final(t->status))
		t->outcome = "error";
	if (status_doc_cause(t->status, &cause)) {
		t->stage = cause.stage;
		t->how = cause.how;
		if (t->stage)
			t->reason = stage_error(t->rundir, t->stage);
		if (!t->reason && cause.msg)
			t->reason = xstrdup(cause.msg);
	} else if (t->failed) {
		t->reason = xstrdup(t->why);
	} else if (!strcmp(t->outcome, "error")) {
		t->reason = stage_error(t->rundir, NULL);
		if (!t->reason)
			t->reason = run_last_words(t->logpath, t->code);
	}
	if (t->reason) {
		size_t l = strlen(t->reason);
		while (l && (t->reason[l - 1] == '\n' || t->reason[l - 1] == '\r'))
			t->reason[--l] = '\0';
	}
}

/* The task's line of results.ndjson: rp_result_json's. */
static json_t *task_record(const struct task *t)
{
	json_t *argv = json_array(), *rec;
	json_t *totals = json_object_get(t->summary, "totals");
	char host[256] = "?", tbuf[32];
	struct timespec now;

	gethostname(host, sizeof host - 1);
	real_now(&now);
	event_time_fmt(&now, tbuf);
	for (int i = 1; i < t->argv.n; i++)
		json_array_append_new(argv, json_string(t->argv.v[i]));
	const struct rp_result r = {
		.v = rp_int(1),
		.t = tbuf,
		.name = t->e->name,
		.recorded = t->e->path,
		.kind = t->klarf ? "klarf" : "stream",
		.rundir = t->rundir,
		.task = rp_int(t->n),
		.host = host,
		.outcome = t->outcome,
		.exit_code = rp_int(t->code),
		.stage = t->stage,
		.how = t->how,
		.reason = t->reason,
		.events = count_of(json_object_get(t->summary, "events")),
		.wafers = count_of(json_object_get(totals, "wafers")),
		.dies = count_of(json_object_get(totals, "dies")),
		.defects = count_of(json_object_get(totals, "defects")),
		.wall_ms = rp_int((json_int_t)(mono_ms() - t->t0)),
		.argv = argv,
	};
	rec = rp_result_json(&r);
	json_decref(argv);
	return rec;
}

int reprocess_task(struct reprocess *r, long n)
{
	struct task t;
	json_t *rec;
	uint64_t t0 = mono_ms();
	int code;

	if ((code = open_batch(r)) != KERF_EX_OK)
		return code;
	if (n < 1 || (size_t)n > r->n) {
		log_msg(LOG_ERROR, NULL, "no task %ld in '%s/inputs.tsv' (%zu lines)", n, r->outdir, r->n);
		return KERF_EX_USAGE;
	}
	log_set_run(r->e[n - 1].name);
	{
		/* A scheduler's array task given no settings takes the batch's. */
		json_t *cur = settings_json(r);
		int none = json_array_size(cur) == 0;
		json_decref(cur);
		if (none && settings_load(r) < 0)
			return KERF_EX_USAGE;
	}
	task_init(&t, r, n, t0);
	task_argv(&t);
	task_run(&t);
	task_outcome(&t);
	rec = task_record(&t);
	code = t.code;
	if ((!rec || append_record(t.results, rec) != 0) && code == KERF_EX_OK)
		code = KERF_EX_IOERR;
	if (strcmp(t.outcome, "completed"))
		log_msg(LOG_WARN, json_pack("{s:s, s:s, s:i}", "recorded", t.e->path, "outcome", t.outcome,
					    "exit_code", code),
			"'%s' %s (exit %d)%s%s%s%s", t.e->name, t.outcome, code, t.stage ? ": stage " : "",
			t.stage ? t.stage : "", t.reason ? ": " : "", t.reason ? t.reason : "");
	if (code == KERF_EX_OK && strcmp(t.outcome, "completed"))
		code = KERF_EX_FAILED;
	json_decref(rec);
	task_release(&t);
	return code;
}

/* ---- the table ---- */

static void print_count(struct rp_int n, int width)
{
	if (n.set)
		printf(" %*lld", width, (long long)n.v);
	else
		printf(" %*s", width, "-");
}

/* What the joblog says of one job: how often it ran, and how it ended last. */
struct rp_attempts {
	size_t n;
	char *host;                   /* the last run's host (joblog's Host) */
	long exitval, signal;
};

/*
 * Read OUTDIR/joblog into a[0..n-1] (job i + 1, GNU parallel's Seq):
 * Seq, Host, Starttime, JobRuntime, Send, Receive, Exitval, Signal,
 * Command, tab-separated, after a header line.  No joblog is no runs.
 */
static void joblog_attempts(const char *out, struct rp_attempts *a, size_t n)
{
	char *path = xasprintf("%s/joblog", out), *line = NULL;
	FILE *f = fopen(path, "re");
	size_t cap = 0;

	free(path);
	while (f && getline(&line, &cap, f) > 0) {
		char *field[8], *save = NULL, *p = line;
		int k;
		long seq;
		for (k = 0; k < 8 && (field[k] = strtok_r(p, "\t\n", &save)); k++)
			p = NULL;
		if (k < 8 || parse_long(field[0], 1, (long)n, &seq) != 0)
			continue; /* the header, or a line cut short */
		struct rp_attempts *at = &a[seq - 1];
		at->n++;
		free(at->host);
		at->host = xstrdup(field[1]);
		if (parse_long(field[6], LONG_MIN, LONG_MAX, &at->exitval) != 0)
			at->exitval = -1;
		if (parse_long(field[7], LONG_MIN, LONG_MAX, &at->signal) != 0)
			at->signal = 0;
	}
	free(line);
	if (f)
		fclose(f);
}

/*
 * Why job a ran last without leaving a record, or NULL when its last run
 * left one (or none was expected: it never ran here, or it ran
 * successfully).  A job writes its record before it ends, so a failed
 * run with no record of its own was cut off: killed, or its host lost
 * (ssh's 255).  Caller frees.
 */
static char *lost_reason(const struct rp_attempts *a, size_t records)
{
	const char *on = a->host && strcmp(a->host, ":") ? a->host : "this host";
	if (a->n <= records || (a->exitval == 0 && a->signal == 0))
		return NULL;
	if (a->signal)
		return xasprintf("no record: its job on %s was killed by signal %ld", on, a->signal);
	return xasprintf("no record: its job on %s ended with exit %ld%s", on, a->exitval,
			 a->exitval == 255 && a->host && strcmp(a->host, ":") ?
			 " (ssh: the host was lost or could not be reached)" : "");
}

int reprocess_report(struct reprocess *r)
{
	char *path, *line = NULL, **lost;
	json_t **last;
	struct rp_attempts *att;
	size_t *records;
	FILE *f;
	size_t cap = 0, completed = 0, failed = 0, notrun = 0;
	int w = 4, rc;

	if ((rc = open_batch(r)) != KERF_EX_OK)
		return rc;
	last = xcalloc(r->n ? r->n : 1, sizeof *last);
	records = xcalloc(r->n ? r->n : 1, sizeof *records);
	att = xcalloc(r->n ? r->n : 1, sizeof *att);
	lost = xcalloc(r->n ? r->n : 1, sizeof *lost);
	path = xasprintf("%s/results.ndjson", r->out);
	f = fopen(path, "re");
	/* A rerun appends a new record: each run's last record counts. */
	while (f && getline(&line, &cap, f) > 0) {
		json_t *j = json_loads(line, 0, NULL);
		struct rp_result res;
		const char *name = rp_result_read(j, &res) == 0 ? res.name : NULL;
		size_t i;
		for (i = 0; name && i < r->n; i++)
			if (!strcmp(r->e[i].name, name))
				break;
		if (name && i < r->n) {
			json_decref(last[i]);
			last[i] = j;
			records[i]++;
		} else {
			json_decref(j);
		}
	}
	if (f)
		fclose(f);
	free(line);
	/* Unless the last run of a job left no record: then that counts. */
	joblog_attempts(r->out, att, r->n);
	for (size_t i = 0; i < r->n; i++)
		lost[i] = lost_reason(&att[i], records[i]);
	for (size_t i = 0; i < r->n; i++)
		if ((int)strlen(r->e[i].name) > w)
			w = (int)strlen(r->e[i].name);
	printf("%-*s %-10s %4s %-16s %8s %7s %8s\n", w, "RUN", "OUTCOME", "EXIT", "STAGE", "EVENTS",
	       "DEFECTS", "WALL");
	for (size_t i = 0; i < r->n; i++) {
		struct rp_result res;
		int ran = rp_result_read(lost[i] ? NULL : last[i], &res) == 0;
		const char *oc = lost[i] ? "lost" : ran ? res.outcome : "not-run";
		if (!oc)
			oc = "?";
		if (lost[i]) {
			res.exit_code = rp_int(att[i].signal ? 128 + att[i].signal : att[i].exitval);
			failed++;
		} else if (!ran)
			notrun++;
		else if (!strcmp(oc, "completed"))
			completed++;
		else
			failed++;
		printf("%-*s %-10s", w, r->e[i].name, oc);
		print_count(res.exit_code, 4);
		printf(" %-16s", res.stage ? res.stage : "-");
		print_count(res.events, 8);
		print_count(res.defects, 7);
		if (res.wall_ms.set)
			printf(" %7.2fs\n", (double)res.wall_ms.v / 1000.0);
		else
			printf(" %8s\n", "-");
	}
	printf("%zu recorded run%s: %zu completed, %zu not completed, %zu not run; results in %s\n",
	       r->n, r->n == 1 ? "" : "s", completed, failed, notrun, path);
	for (size_t i = 0; i < r->n; i++) {
		struct rp_result res;
		rp_result_read(last[i], &res);
		if (lost[i])
			printf("%s: %s\n", r->e[i].name, lost[i]);
		else if (res.reason && !(res.outcome && !strcmp(res.outcome, "completed")))
			printf("%s: %s\n", r->e[i].name, res.reason);
		json_decref(last[i]);
		free(lost[i]);
		free(att[i].host);
	}
	free(last);
	free(lost);
	free(att);
	free(records);
	free(path);
	if (fshut(stdout, "standard output") != KERF_EX_OK)
		return KERF_EX_IOERR;
	return completed == r->n ? KERF_EX_OK : KERF_EX_FAILED;
}

/*
 * kerf: the supervisor.  kerf run starts a pipeline of stages as one run
 * and owns its state; kerf status, stop, pause and resume look at it or
 * talk to it (through the pid that holds the run directory's lock);
 * kerf reprocess runs many recorded runs through kerf run with GNU
 * parallel (lib/reprocess.h).
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "cli.h"
#include "openmetrics.h"
#include "out.h"
#include "reprocess.h"
#include "watch.h"
#include "runstate.h"
#include "status_doc.h"
#include "status_metrics.h"
#include "supervise.h"
#include "svcmd.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

static const char usage[] =
	"Usage: kerf run [-C RUNDIR] [--run ID] [OPTIONS] [--stage 'CMD ARGS...' [--optional]]...\n"
	"       kerf status [-C RUNDIR] [--json | --format FORMAT]\n"
	"       kerf stop [-C RUNDIR] [--abort] [--wait [--timeout DUR]]\n"
	"       kerf pause [-C RUNDIR] [--timeout DUR]\n"
	"       kerf resume [-C RUNDIR] [--timeout DUR]\n"
	"       kerf reprocess -o OUTDIR [-j N] [--halt SPEC] [--sshlogin LOGIN]... [--slf FILE]\n"
	"                      [--resume | --resume-failed] [--dry-run] [SETTINGS] RECORDED...\n"
	"       kerf reprocess -o OUTDIR --task N [SETTINGS]\n"
	"       kerf reprocess -o OUTDIR --report\n"
	"       kerf watch -o OUTDIR [-j N] [--poll] [--settle-ms MS] [--defer-if FILE]\n"
	"                  [--min-free SIZE] [--key RULE] DIR...\n"
	"       kerf watch -C OUTDIR [--json | --format FORMAT] status | jobs N | pause | resume | stop\n"
	"Supervise a wafer-inspection run: a pipeline of stages that starts together,\n"
	"stops together and ends with one outcome.  'kerf COMMAND --help' lists the\n"
	"options of one command.\n"
	"\n";

static const char usage_tail[] =
	"DUR is a number of seconds, or a number with ms, s, m or h.\n"
	"Exit status of kerf run: 0 completed, 1 a stage failed, 3 critical alarm,\n"
	"64 bad usage, 75 the run directory is in use, 124 timed out, 130 cancelled;\n"
	"of kerf pause, resume, stop --wait: 0 confirmed (stop: the run ended cancelled\n"
	"or completed), 69 no run, 75 refused or superseded, 124 timed out or no\n"
	"outcome within --timeout, else the run's exit status;\n"
	"of kerf reprocess: 0 every run completed, 1 some did not, 69 no GNU parallel,\n"
	"130 interrupted; of kerf watch: 0 stopped by a signal, 65 a damaged ledger,\n"
	"74 an I/O error, 75 OUTDIR is in use by another kerf watch; of kerf watch -C:\n"
	"0 taken, 64 a bad command, 69 no watcher answers.\n";

/* The options of every command. */
static const char *rundir;

static const struct cli_opt help_opts[] = {
	OPT_HELP("show this help and exit"),
	OPT_VERSION('V', "show the version and exit"),
	OPT_END(),
};

static const struct cli_opt common_opts[] = {
	OPT_STRING('C', "rundir", "DIR", &rundir,
		   "the run directory (created if missing); default for\nrun: runs/ID, for the others: runs/latest"),
	OPT_INCLUDE(help_opts),
	OPT_END(),
};

/* The job settings kerf run and kerf reprocess share; reprocess passes
 * them on to kerf run as given. */
static struct {
	struct strvec args[RP__STAGES]; /* --acquire-arg ... --project-arg */
	int no_project;
	uint64_t deadline_ms, stall_ms;
	const char *deadline, *stall;
} settings;

static const struct cli_opt settings_opts[] = {
	OPT_STRVEC(0, "acquire-arg", "ARG", &settings.args[RP_ACQUIRE], ""),
	OPT_STRVEC(0, "validate-arg", "ARG", &settings.args[RP_VALIDATE], ""),
	OPT_STRVEC(0, "detect-arg", "ARG", &settings.args[RP_DETECT], ""),
	OPT_STRVEC(0, "persist-arg", "ARG", &settings.args[RP_PERSIST], ""),
	OPT_STRVEC(0, "project-arg", "ARG", &settings.args[RP_PROJECT],
		   "one more argument for that default stage (repeatable)"),
	OPT_BOOL(0, "no-project", &settings.no_project, "default pipeline without kerf-project"),
	{ .kind = CLI_DURATION, .long_name = "deadline", .argname = "DUR", .value = &settings.deadline_ms,
	  .raw = &settings.deadline, .max = CLI_NOMAX, .set = 1000, .help = "the whole run must end within DUR" },
	{ .kind = CLI_DURATION, .long_name = "stall", .argname = "DUR", .value = &settings.stall_ms,
	  .raw = &settings.stall, .max = CLI_NOMAX, .set = 1000,
	  .help = "a stage with work waiting and no progress for DUR\ntimes the run out" },
	OPT_END(),
};

/* kerf run */
#define STAGES_MAX 64
static struct {
	const char *run, *wafers, *seed;
	int record;
	char **stage[STAGES_MAX];
	int stage_optional[STAGES_MAX];
	const char *stage_name[STAGES_MAX];
	int nstages;
	struct sv_options sv;
} run_o = { .sv.echo = SV_ECHO_WARN };

static void opt_run(const struct cli_opt *opt, const char *arg, void *ctx)
{
	(void)opt, (void)ctx;
	/* kerf-validate's limit: every event would be rejected. */
	if (!*arg || strlen(arg) > VALIDATE_RUN_MAX)
		cli_usage_error("--run: the run id must be 1 to %d bytes", VALIDATE_RUN_MAX);
	run_o.run = arg;
}

static void opt_stage(const struct cli_opt *opt, const char *arg, void *ctx)
{
	char err[128];

	(void)opt, (void)ctx;
	if (run_o.nstages == STAGES_MAX)
		cli_usage_error("too many stages (at most %d)", STAGES_MAX);
	run_o.stage[run_o.nstages] = supervise_split(arg, NULL, err, sizeof err);
	if (!run_o.stage[run_o.nstages])
		cli_usage_error("invalid --stage '%s': %s", arg, err);
	run_o.nstages++;
}

static void opt_optional(const struct cli_opt *opt, const char *arg, void *ctx)
{
	(void)opt, (void)arg, (void)ctx;
	if (run_o.nstages == 0)
		cli_usage_error("--optional must follow the --stage it marks");
	run_o.stage_optional[run_o.nstages - 1] = 1;
}

static void opt_name(const struct cli_opt *opt, const char *arg, void *ctx)
{
	(void)opt, (void)ctx;
	if (run_o.nstages == 0)
		cli_usage_error("--name must follow the --stage it names");
	if (!*arg || strpbrk(arg, " \t\n/"))
		cli_usage_error("invalid --name '%s'", arg);
	for (int k = 0; k < run_o.nstages - 1; k++)
		if (run_o.stage_name[k] && !strcmp(run_o.stage_name[k], arg))
			cli_usage_error("two stages named '%s'", arg);
	run_o.stage_name[run_o.nstages - 1] = arg;
}

/* --wafers as a number, only to check its range: it is passed on as given (run_o.wafers). */
static long wafers;

static const struct cli_choice echo_choices[] = {
	{ "warn", SV_ECHO_WARN }, { "all", SV_ECHO_ALL }, { "none", SV_ECHO_NONE }, { NULL, 0 },
};

static const struct cli_opt run_opts[] = {
	OPT_INCLUDE(common_opts),
	OPT_CALLBACK(0, "run", "ID", opt_run, "run id (default: the run directory's name)"),
	OPT_CALLBACK(0, "stage", "CMD", opt_stage,
		     "a stage, split into words without a shell; repeat it\nin pipeline order; replaces the default pipeline"),
	OPT_CALLBACK(0, "optional", NULL, opt_optional,
		     "the stage given just before may fail without\nfailing the run (the run is then degraded)"),
	OPT_CALLBACK(0, "name", "NAME", opt_name,
		     "the name of the stage given just before (default:\nits program's base name)"),
	{ .kind = CLI_LONG, .long_name = "wafers", .argname = "N", .value = &wafers, .raw = &run_o.wafers,
	  .min = 1, .max = 100000, .help = "default pipeline: kerf-acquire --wafers N" },
	OPT_STRING(0, "seed", "S", &run_o.seed, "default pipeline: kerf-acquire --seed S"),
	OPT_BOOL(0, "record", &run_o.record,
		 "default pipeline: record acquire's stream to\nRUNDIR/acquired.ndjson"),
	OPT_INCLUDE(settings_opts),
	OPT_DURATION(0, "grace", "DUR", &run_o.sv.grace_ms, 0, CLI_NOMAX,
		     "SIGTERM to SIGKILL during teardown (default 3s)"),
	OPT_DURATION(0, "ready-timeout", "DUR", &run_o.sv.ready_ms, 0, CLI_NOMAX,
		     "the readiness checks must pass and the first stage\nproduce output within DUR (default 30s)"),
	OPT_SIZE(0, "min-free", "SIZE", &run_o.sv.min_free, 0, CLI_NOMAX,
		 "readiness: the run directory's file system must have\nSIZE bytes free (K, M, G suffixes; default 0: none)"),
	OPT_DURATION(0, "tick", "DUR", &run_o.sv.tick_ms, 10, CLI_NOMAX,
		     "status.json and queue samples interval (default 500ms)"),
	OPT_ENUM(0, "echo", "WHAT", &run_o.sv.echo, echo_choices,
		 "stage log records shown on stderr: warn (default:\nwarnings, errors and non-JSON lines), all, none"),
	OPT_END(),
};

/* kerf status */
enum { STATUS_TEXT, STATUS_JSON, STATUS_OPENMETRICS };
static int status_format = STATUS_TEXT;
static const struct cli_choice status_formats[] = {
	{ "text", STATUS_TEXT },
	{ "json", STATUS_JSON },
	{ "openmetrics", STATUS_OPENMETRICS },
	{ NULL, 0 },
};

static const struct cli_opt status_opts[] = {
	OPT_INCLUDE(common_opts),
	OPT_ENUM(0, "format", "FORMAT", &status_format, status_formats,
		 "text (the default), json (status.json) or openmetrics\n(the run's metrics, as RUNDIR/metrics.prom)"),
	OPT_SET_INT(0, "json", &status_format, STATUS_JSON, "print status.json (--format json)"),
	OPT_END(),
};

/* kerf stop, pause, resume */
static struct {
	int abort_run, wait;
	uint64_t timeout_ms; /* 0: the default */
} signal_o;

static const struct cli_opt timeout_opts[] = {
	OPT_DURATION(0, "timeout", "DUR", &signal_o.timeout_ms, 0, CLI_NOMAX,
		     "how long to wait for the outcome (stop: with --wait;\ndefault 2m)"),
	OPT_END(),
};

static const struct cli_opt stop_opts[] = {
	OPT_INCLUDE(common_opts),
	OPT_BOOL(0, "abort", &signal_o.abort_run, "abort at once instead of draining"),
	OPT_BOOL(0, "wait", &signal_o.wait,
		 "wait until the run has ended; say what became\nof the stop and how the run ended"),
	OPT_INCLUDE(timeout_opts),
	OPT_END(),
};

static const struct cli_opt pause_opts[] = {
	OPT_INCLUDE(common_opts),
	OPT_INCLUDE(timeout_opts),
	OPT_END(),
};

/* kerf reprocess */
static struct reprocess rp;
static long rp_task;
static int rp_report;

static void opt_jobs(const struct cli_opt *opt, const char *arg, void *ctx)
{
	(void)opt, (void)ctx;
	if (!*arg)
		cli_usage_error("invalid --jobs ''");
	rp.jobs = arg;
}

static void opt_halt(const struct cli_opt *opt, const char *arg, void *ctx)
{
	(void)opt, (void)ctx;
	if (!reprocess_halt_ok(arg))
		cli_usage_error("invalid --halt '%s' (never, or soon|now,fail|success|done=N[%%])", arg);
	rp.halt = arg;
}

static const struct cli_opt reprocess_opts[] = {
	OPT_STRING('o', "outdir", "DIR", &rp.outdir,
		   "the batch: DIR/NAME per run, DIR/results.ndjson,\nDIR/joblog, DIR/inputs.tsv"),
	OPT_CALLBACK('j', "jobs", "N", opt_jobs, "jobs at once (GNU parallel -j; default one per core)"),
	OPT_CALLBACK(0, "halt", "SPEC", opt_halt,
		     "when a job fails: never (default: keep going, report),\nsoon,fail=1 (start no more), now,fail=1 (stop all now)"),
	OPT_STRVEC(0, "sshlogin", "LOGIN", &rp.sshlogin, "run jobs on LOGIN too (GNU parallel; repeatable)"),
	OPT_STRING(0, "slf", "FILE", &rp.slf, "hosts from FILE (GNU parallel --sshloginfile)"),
	OPT_SET_INT(0, "resume", &rp.resume, RP_RESUME, "run only the jobs DIR/joblog has not seen"),
	OPT_SET_INT(0, "resume-failed", &rp.resume, RP_RESUME_FAILED, "... and those that failed"),
	OPT_STRVEC(0, "parallel-arg", "ARG", &rp.parallel_args, "one more argument for GNU parallel (repeatable)"),
	OPT_BOOL(0, "dry-run", &rp.dry_run, "write DIR/inputs.tsv, print the parallel command, stop"),
	OPT_LONG(0, "task", "N", &rp_task, 1, 1000000000L,
		 "run job N of DIR/inputs.tsv here (what each parallel job\nruns; a scheduler's array task)"),
	OPT_BOOL(0, "report", &rp_report, "print the table of DIR's batch"),
	OPT_BOOL(0, "lenient", &rp.lenient, "kerf-validate without --strict (bad lines become rejects)"),
	OPT_GROUP("SETTINGS (kerf run's --*-arg, --no-project, --deadline, --stall) are saved\n"
		  "in DIR/settings.json and reused by --resume, --resume-failed and --task\n"
		  "when none are given."),
	OPT_INCLUDE(settings_opts),
	OPT_INCLUDE(help_opts),
	OPT_END(),
};

/* kerf watch */
static struct watch_opts wo = { .jobs = 1, .settle_ms = 2000 };
static const char *watch_ctl, *watch_key;
static int watch_format = STATUS_TEXT;

static const struct cli_opt watch_opts[] = {
	OPT_STRING('o', "outdir", "DIR", &wo.outdir,
		   "the results: DIR/NAME per file, DIR/results.ndjson,\nDIR/inputs.tsv, the ledger in DIR/.watch"),
	OPT_INT('j', "jobs", "N", &wo.jobs, 1, 1000000, "runs at once in all (default 1; one per key)"),
	OPT_BOOL(0, "poll", &wo.poll, "judge files by the settle rule only (no inotify)"),
	OPT_MS(0, "settle-ms", "MS", &wo.settle_ms, 1, 86400000,
	       "a file unchanged this long is complete (polling,\nand files found at start; default 2000)"),
	OPT_STRING(0, "defer-if", "FILE", &wo.defer_if, "start no run while FILE exists (maintenance)"),
	OPT_SIZE(0, "min-free", "SIZE", &wo.min_free, 0, CLI_NOMAX,
		 "start no run while OUTDIR has less free space (K, M, G)"),
	OPT_STRING(0, "key", "RULE", &watch_key,
		   "a file's key instead of its tool: dir (its directory's\nname) or a regex on its path (its first group)"),
	OPT_STRING('C', "control", "OUTDIR", &watch_ctl,
		   "send a command (status, jobs N, pause, resume, stop)\nto the kerf watch of OUTDIR"),
	OPT_ENUM(0, "format", "FORMAT", &watch_format, status_formats,
		 "-C: print the watcher's state after the command as\ntext (status only; the default), json or openmetrics\n(as DIR/metrics.prom)"),
	OPT_SET_INT(0, "json", &watch_format, STATUS_JSON, "-C: --format json"),
	OPT_INCLUDE(help_opts),
	OPT_END(),
};

static int cmd_run(int argc, char **argv);
static int cmd_status(int argc, char **argv);
static int cmd_stop(int argc, char **argv);
static int cmd_pause(int argc, char **argv);
static int cmd_resume(int argc, char **argv);
static int cmd_reprocess(int argc, char **argv);
static int cmd_watch(int argc, char **argv);

/* A command takes arguments after its options. */
#define CMD_ARGS 1

/* kerf's commands: git's { "name", cmd_fn, flags }, with the options. */
static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv); /* the arguments after the options */
	int flags;
	const char *usage;
	const struct cli_opt *opts;
} commands[] = {
	{ "run", cmd_run, 0,
	  "Usage: kerf run [-C RUNDIR] [--run ID] [OPTIONS] [--stage 'CMD ARGS...' [--optional]]...\n"
	  "Run a pipeline of stages as one run: the default pipeline (kerf-acquire,\n"
	  "kerf-validate, kerf-detect, kerf-persist, kerf-project) or the --stage ones.\n\n",
	  run_opts },
	{ "status", cmd_status, 0, "Usage: kerf status [-C RUNDIR] [--json | --format FORMAT]\nShow a run's state.\n\n", status_opts },
	{ "stop", cmd_stop, 0,
	  "Usage: kerf stop [-C RUNDIR] [--abort] [--wait [--timeout DUR]]\nStop a run: drain it, or abort it.\n\n",
	  stop_opts },
	{ "pause", cmd_pause, 0, "Usage: kerf pause [-C RUNDIR] [--timeout DUR]\nPause a run.\n\n", pause_opts },
	{ "resume", cmd_resume, 0, "Usage: kerf resume [-C RUNDIR] [--timeout DUR]\nResume a paused run.\n\n",
	  pause_opts },
	{ "reprocess", cmd_reprocess, CMD_ARGS,
	  "Usage: kerf reprocess -o OUTDIR [-j N] [--halt SPEC] [--sshlogin LOGIN]... [--slf FILE]\n"
	  "                      [--resume | --resume-failed] [--dry-run] [SETTINGS] RECORDED...\n"
	  "       kerf reprocess -o OUTDIR --task N [SETTINGS]\n"
	  "       kerf reprocess -o OUTDIR --report\n"
	  "Reprocess recorded runs (streams, run directories with acquired.ndjson,\n"
	  "directories of KLARF files), each with kerf run into OUTDIR/NAME, by GNU parallel.\n\n",
	  reprocess_opts },
	{ "watch", cmd_watch, CMD_ARGS,
	  "Usage: kerf watch -o OUTDIR [-j N] [--poll] [--settle-ms MS] [--defer-if FILE]\n"
	  "                  [--min-free SIZE] [--key RULE] DIR...\n"
	  "       kerf watch -C OUTDIR [--json | --format FORMAT] status | jobs N | pause | resume | stop\n"
	  "Follow drop directories: run each complete new file (a KLARF file or a\n"
	  "recorded stream) once, as a kerf reprocess job, into OUTDIR/NAME.\n\n",
	  watch_opts },
};

#define NCOMMANDS (int)(sizeof commands / sizeof commands[0])

/* kerf --help: every command's options, each under its command. */
static const struct cli_opt all_opts[] = {
	OPT_INCLUDE(common_opts),
	OPT_GROUP("kerf run:"),
	OPT_INCLUDE(run_opts),
	OPT_GROUP("kerf status:"),
	OPT_INCLUDE(status_opts),
	OPT_GROUP("kerf stop, pause, resume:"),
	OPT_INCLUDE(stop_opts),
	OPT_GROUP("kerf reprocess:"),
	OPT_INCLUDE(reprocess_opts),
	OPT_GROUP("kerf watch:"),
	OPT_INCLUDE(watch_opts),
	OPT_END(),
};

/* The default pipeline: acquire, validate, detect, persist, project. */
static void default_pipeline(struct supervisor *sv, const char *dir)
{
	struct strvec a = { 0 };
	char *rec = xasprintf("%s/acquired.ndjson", dir);
	char *project = settings.no_project ? NULL : supervise_resolve("kerf-project");

	strvec_push(&a, "kerf-acquire");
	if (run_o.wafers) {
		strvec_push(&a, "--wafers");
		strvec_push(&a, run_o.wafers);
	}
	if (run_o.seed) {
		strvec_push(&a, "--seed");
		strvec_push(&a, run_o.seed);
	}
	if (run_o.record) {
		strvec_push(&a, "--record");
		strvec_push(&a, rec);
	}
	strvec_pushv(&a, &settings.args[RP_ACQUIRE]);
	supervise_add(sv, a.v, 0);
	strvec_clear(&a);

	strvec_push(&a, "kerf-validate");
	strvec_pushv(&a, &settings.args[RP_VALIDATE]);
	supervise_add(sv, a.v, 0);
	strvec_clear(&a);

	strvec_push(&a, "kerf-detect");
	strvec_pushv(&a, &settings.args[RP_DETECT]);
	supervise_add(sv, a.v, 0);
	strvec_clear(&a);

	strvec_push(&a, "kerf-persist");
	strvec_push(&a, "-C");
	strvec_push(&a, dir);
	if (project)
		strvec_push(&a, "--downstream-optional");
	strvec_pushv(&a, &settings.args[RP_PERSIST]);
	supervise_add(sv, a.v, 0);
	strvec_clear(&a);

	if (project) {
		strvec_push(&a, "kerf-project");
		strvec_push(&a, "-C");
		strvec_push(&a, dir);
		strvec_pushv(&a, &settings.args[RP_PROJECT]);
		supervise_add(sv, a.v, 1);
		strvec_clear(&a);
	} else if (!settings.no_project) {
		log_msg(LOG_WARN, NULL, "'kerf-project' not found; running without it");
	}
	free(project);
	free(rec);
}

/* runs/latest -> NAME, replaced atomically. */
static void point_latest(const char *name)
{
	char *tmp = xasprintf("runs/.latest.%ld", (long)getpid());
	unlink(tmp);
	if (symlink(name, tmp) != 0 || rename(tmp, "runs/latest") != 0) {
		log_msg(LOG_WARN, NULL, "cannot point 'runs/latest' at '%s': %s", name, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
}

static int cmd_run(int argc, char **argv)
{
	struct sv_options *o = &run_o.sv;
	struct supervisor sv;
	struct runstate rs;
	char err[512], stamp[32];
	char *dir, *run;
	pid_t holder;
	int rc;

	(void)argc, (void)argv;
	if (rundir) {
		dir = xstrdup(rundir);
	} else {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
		char *name = safe_name(run_o.run ? run_o.run : stamp, 200);
		if (run_o.run && strcmp(name, run_o.run)) {
			/* A changed id ("a/b", "a b"): its own directory, by a hash. */
			char hx[17];
			hex64(kerf_xxh3(run_o.run, strlen(run_o.run)), hx);
			dir = xasprintf("runs/%s-%.8s", name, hx);
		} else {
			dir = xasprintf("runs/%s", name);
		}
		free(name);
	}
	if (run_o.run) {
		run = xstrdup(run_o.run);
	} else {
		char *d = xstrdup(dir), *end = d + strlen(d);
		while (end > d + 1 && end[-1] == '/')
			*--end = '\0';
		const char *base = strrchr(d, '/');
		run = safe_name(base ? base + 1 : d, 200);
		free(d);
	}
	log_set_run(run);
	rc = runstate_open(&rs, dir, run, err, sizeof err, &holder);
	if (rc == -2) {
		if (holder > 0)
			log_msg(LOG_ERROR, json_pack("{s:I}", "holder", (json_int_t)holder),
				"%s (pid %ld); refusing to start a second one", err, (long)holder);
		else
			log_msg(LOG_ERROR, NULL, "%s; refusing to start a second one", err);
		free(dir);
		free(run);
		return KERF_EX_TEMPFAIL;
	}
	if (rc != 0) {
		log_msg(LOG_ERROR, NULL, "%s", err);
		free(dir);
		free(run);
		return KERF_EX_IOERR;
	}
	if (!rundir)
		point_latest(strrchr(dir, '/') + 1);

	supervise_init(&sv);
	if (o->grace_ms)
		sv.opt.grace_ms = o->grace_ms;
	if (o->ready_ms)
		sv.opt.ready_ms = o->ready_ms;
	if (o->tick_ms)
		sv.opt.tick_ms = o->tick_ms;
	sv.opt.deadline_ms = settings.deadline_ms;
	sv.opt.stall_ms = settings.stall_ms;
	sv.opt.min_free = o->min_free;
	sv.opt.echo = o->echo;
	if (run_o.nstages) {
		for (int i = 0; i < run_o.nstages; i++) {
			struct sv_stage *st = supervise_add(&sv, run_o.stage[i], run_o.stage_optional[i]);
			if (run_o.stage_name[i]) {
				free(st->name);
				st->name = xstrdup(run_o.stage_name[i]);
			}
		}
	} else {
		default_pipeline(&sv, dir);
	}
	rc = supervise_run(&sv, &rs);
	{
		const char *state = runstate_state_name(rs.state);
		json_t *f = log_is_json() ? json_pack("{s:s, s:s, s:i}", "rundir", dir, "state", state,
						      "exit_code", rc) : NULL;
		if (rc == 0)
			log_msg(LOG_INFO, f, "run '%s' %s; run directory '%s'", run, state, dir);
		else
			log_msg(LOG_ERROR, f, "run '%s' %s (exit %d); run directory '%s'", run, state, rc, dir);
	}
	supervise_release(&sv);
	runstate_close(&rs);
	free(dir);
	free(run);
	return rc;
}

/* The run directory of status, stop, pause and resume. */
static const char *target_dir(void)
{
	return rundir ? rundir : "runs/latest";
}

/* ---- kerf status ---- */

static void print_counters(json_t *c)
{
	const char *key;
	json_t *val;
	int first = 1;
	json_object_foreach(c, key, val) {
		if (!json_is_integer(val) || !strcmp(key, "elapsed_ms"))
			continue;
		printf("%s%s=%lld", first ? "" : " ", key, (long long)json_integer_value(val));
		first = 0;
	}
	if (first)
		fputs("-", stdout);
}

/* The stage's work rate from its stats (kerf-events(5)): "2274.3 dies/s". */
static void work_rate(json_t *c, char *out, size_t n)
{
	json_t *rate = json_object_get(c, "per_s");
	const char *unit = json_string_value(json_object_get(c, "unit"));
	if (json_is_number(rate) && unit)
		snprintf(out, n, "%.1f %s/s", json_number_value(rate), unit);
	else
		snprintf(out, n, "-");
}

/* Who gave a command its fate, as kerf status and kerf stop say it. */
static const char *fate_by(const struct status_command *c)
{
	return c->fate_by && !strcmp(c->fate_by, "tool") ? "the tool" : "kerf";
}

/* "command: 3 stop confirmed by the tool (HCACK 4): REASON" */
static void print_command(const char *label, const json_t *obj)
{
	struct status_command c;
	if (!status_doc_command_read(obj, &c))
		return;
	printf("%s: %lld %s %s by %s", label, (long long)c.id, c.op, c.fate, fate_by(&c));
	if (c.has_hcack)
		printf(" (HCACK %lld)", (long long)c.hcack);
	if (c.reason)
		printf(": %s", c.reason);
	putchar('\n');
}

/* The stages' table: one line each. */
static void print_stages(const json_t *st)
{
	struct status_stage s;
	printf("%-16s %8s %-10s %-16s %-18s %s\n", "STAGE", "PID", "STATE", "QUEUE", "RATE", "COUNTERS");
	for (size_t i = 0; status_doc_stage(st, i, &s); i++) {
		char qs[40] = "-", ss[48], rs[48];
		if (s.has_queue)
			snprintf(qs, sizeof qs, "%lld/%lld", (long long)s.queue_bytes, (long long)s.queue_cap);
		if (s.state && !strcmp(s.state, "exited")) {
			if (s.signal)
				snprintf(ss, sizeof ss, "SIG%s", s.signal);
			else
				snprintf(ss, sizeof ss, "exit %lld", (long long)s.exit);
		} else {
			snprintf(ss, sizeof ss, "%s", s.state ? s.state : "?");
		}
		work_rate(s.counters, rs, sizeof rs);
		printf("%-16s %8lld %-10s %-16s %-18s ", s.name, (long long)s.pid, ss, qs, rs);
		print_counters(s.counters);
		if (s.verdict && strcmp(s.verdict, "ok"))
			printf(" [%s]", s.verdict);
		putchar('\n');
	}
}

/*
 * Print a state (status.json, a watcher's answer) as --format json, or
 * openmetrics with 'metrics' (its families), and close stdout: an exit
 * code.  st borrowed.
 */
static int print_state(const json_t *st, int format, void (*metrics)(struct om *, const json_t *))
{
	if (format == STATUS_JSON) {
		char *txt = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(txt ? txt : "{}");
		free(txt);
	} else {
		struct om m;
		size_t len;
		const char *txt;
		om_init(&m);
		metrics(&m, st);
		txt = om_end(&m, &len);
		fwrite(txt, 1, len, stdout);
		om_release(&m);
	}
	return fshut(stdout, "standard output");
}

static int cmd_status(int argc, char **argv)
{
	const char *dir = target_dir();
	char *path = xasprintf("%s/status.json", dir);
	json_error_t jerr;
	json_t *st = json_load_file(path, 0, &jerr);
	pid_t holder = runstate_lock_holder(dir);
	struct status_cause cause;
	struct status_stage s;
	json_int_t code;

	(void)argc, (void)argv;
	if (!st) {
		log_msg(LOG_ERROR, NULL, "cannot read '%s': %s", path, jerr.text);
		free(path);
		return KERF_EX_UNAVAILABLE;
	}
	free(path);
	if (status_format != STATUS_TEXT) {
		int rc = print_state(st, status_format, status_metrics);
		json_decref(st);
		return rc;
	}
	const char *state = status_doc_state(st);
	printf("run %s in %s: %s", status_doc_run(st), dir, state ? state : "?");
	if (holder > 0)
		printf(" (supervisor pid %ld)", (long)holder);
	else if (state && !runstate_is_final((enum runstate_state)runstate_state_parse(state)))
		printf(" (no supervisor: it died)");
	printf(", elapsed %.1fs\n", (double)status_doc_elapsed_ms(st) / 1000.0);
	if (status_doc_cause(st, &cause)) {
		printf("cause: %s", cause.what);
		if (cause.stage)
			printf(": stage %s, %s", cause.stage, cause.how);
		putchar('\n');
	}
	if (status_doc_degraded(st))
		printf("degraded\n");
	if (status_doc_exit_code(st, &code))
		printf("exit code: %lld\n", (long long)code);
	/* The last command to the tool and its fate; the one the outcome
	 * overtook, when there was one. */
	print_command("command", status_doc_command(st));
	print_command("pending command", status_doc_pending_command(st));
	/* A tool link's state, as the stage that holds it last logged it. */
	for (size_t i = 0; status_doc_stage(st, i, &s); i++) {
		if (!s.link_state)
			continue;
		printf("tool link: %s", s.link_state);
		if (s.link_cause)
			printf(" (%s)", s.link_cause);
		if (s.link_since)
			printf(" since %s", s.link_since);
		printf(", stage %s\n", s.name);
	}
	print_stages(st);
	json_decref(st);
	return fshut(stdout, "standard output");
}

/* ---- kerf reprocess ---- */

static int cmd_reprocess(int argc, char **argv)
{
	int rc;

	if (!rp.outdir)
		cli_usage_error("reprocess needs -o OUTDIR");
	if (rp_task && (rp_report || argc > 0))
		cli_usage_error("--task takes no recorded runs and no --report");
	if (rp_report && argc > 0)
		cli_usage_error("--report takes no recorded runs");
	/* The settings move to the batch, which passes them on as given. */
	for (int k = 0; k < RP__STAGES; k++) {
		rp.stage_args[k] = settings.args[k];
		memset(&settings.args[k], 0, sizeof settings.args[k]);
	}
	rp.no_project = settings.no_project;
	rp.deadline = settings.deadline;
	rp.stall = settings.stall;
	if (rp_task)
		rc = reprocess_task(&rp, rp_task);
	else if (rp_report)
		rc = reprocess_report(&rp);
	else if ((rc = reprocess_plan(&rp, argv, argc)) == KERF_EX_OK)
		rc = reprocess_batch(&rp);
	reprocess_release(&rp);
	return rc;
}

static int cmd_watch(int argc, char **argv)
{
	struct watch_key key = { 0 };
	char err[256];
	int rc;

	if (watch_ctl) {
		char cmd[64];
		if (wo.outdir)
			cli_usage_error("-C sends a command to a watcher; -o starts one");
		if (argc == 2 && !strcmp(argv[0], "jobs"))
			snprintf(cmd, sizeof cmd, "jobs %.40s", argv[1]);
		else if (argc == 1 && strcmp(argv[0], "jobs"))
			snprintf(cmd, sizeof cmd, "%.40s", argv[0]);
		else
			cli_usage_error("-C takes one command: status, jobs N, pause, resume or stop");
		json_t *st;
		if ((rc = watch_control(watch_ctl, cmd, &st)) != KERF_EX_OK)
			return rc;
		if (watch_format != STATUS_TEXT) {
			rc = print_state(st, watch_format, watch_metrics);
		} else {
			if (!strcmp(cmd, "status"))
				watch_status_print(st);
			rc = fshut(stdout, "standard output");
		}
		json_decref(st);
		return rc;
	}
	if (watch_format != STATUS_TEXT)
		cli_usage_error("--json and --format go with -C");
	if (!wo.outdir)
		cli_usage_error("watch needs -o OUTDIR");
	if (argc == 0)
		cli_usage_error("watch needs at least one directory to follow");
	wo.dirs = argv;
	wo.ndirs = argc;
	if (watch_key && watch_key_init(&key, watch_key, err, sizeof err) != 0)
		cli_usage_error("--key: '%s' is not a regular expression: %s", watch_key, err);
	wo.key = watch_key ? &key : NULL;
	rc = watch_main(&wo);
	watch_key_release(&key);
	return rc;
}

/* ---- kerf stop, pause, resume ---- */

/* How long pause, resume and stop --wait wait for the outcome by default. */
#define COMMAND_TIMEOUT_MS (2 * 60 * 1000)

static json_t *load_status(const char *dir)
{
	char *path = xasprintf("%s/status.json", dir);
	json_t *st = json_load_file(path, 0, NULL);
	free(path);
	if (st && !json_is_object(st)) {
		json_decref(st);
		st = NULL;
	}
	return st;
}

/* The newest command kerf has taken: a request sent later is newer. */
static int newest_command(const json_t *st)
{
	struct status_command c;
	status_doc_command_read(status_doc_command(st), &c);
	return (int)c.id;
}

static json_t *command_by_id(const json_t *st, json_int_t id)
{
	struct status_command c;
	json_t *o;
	for (size_t i = 0; (o = status_doc_recent_command(st, i)); i++) {
		status_doc_command_read(o, &c);
		if (c.id == id)
			return o;
	}
	return NULL;
}

/*
 * The command our request became: the first operator command of our
 * kind newer than 'after', the one from our pid first (two identical
 * signals that arrive together are one request, answered together), a
 * stop that became an abort (a second stop) too; a command merged into
 * another is answered by that one.
 */
static json_t *find_command(const json_t *st, const char *op, int after)
{
	struct status_command sc;
	json_t *c, *found = NULL;
	long me = (long)getpid();

	for (size_t i = 0; (c = status_doc_recent_command(st, i)); i++) {
		status_doc_command_read(c, &sc);
		if (sc.id <= after || !sc.op || !sc.by || strcmp(sc.by, "operator"))
			continue;
		if (strcmp(sc.op, op) && !(!strcmp(op, "stop") && !strcmp(sc.op, "abort")))
			continue;
		if (sc.from == me) {
			found = c;
			break;
		}
		if (!found)
			found = c;
	}
	for (int hops = 0; found && hops < 16; hops++) {
		status_doc_command_read(found, &sc);
		if (!sc.has_into || svc_fate_parse(sc.fate) != SVC_MERGED)
			break;
		c = command_by_id(st, sc.into);
		if (!c)
			break;
		found = c;
	}
	return found;
}

/* A run's exit status as kerf stop --wait passes it on: 0 for the ends a
 * stop asks for (cancelled) or makes moot (completed). */
static int run_exit(const json_t *st)
{
	json_int_t code;
	int rc = status_doc_exit_code(st, &code) ? (int)code : KERF_EX_SOFTWARE;
	return rc == KERF_EX_CANCELLED ? KERF_EX_OK : rc;
}

/* How the run ended, as status.json says: "failed, exit 3". */
static void print_run_end(const json_t *st)
{
	json_int_t code;
	status_doc_exit_code(st, &code);
	printf("%s, exit %lld", status_doc_outcome_state(st), (long long)code);
}

/*
 * One line on stdout: what became of the command, and with 'ended' how
 * the run ended.  The exit status: 0 confirmed, 75 refused or
 * superseded, 124 timed out; a stop's, once the run has ended, is the
 * run's (0 for cancelled or completed).
 */
static int report_command(const char *op, const json_t *obj, const json_t *st, int ended)
{
	struct status_command c;
	int f, rc;

	status_doc_command_read(obj, &c);
	f = svc_fate_parse(c.fate);
	printf("%s %s by %s", c.op ? c.op : op, c.fate ? c.fate : "?", fate_by(&c));
	if (c.reason)
		printf(": %s", c.reason);
	printf(" (command %lld)", (long long)c.id);
	if (ended) {
		printf("; run ");
		print_run_end(st);
	}
	putchar('\n');
	if (f == SVC_TIMED_OUT)
		rc = KERF_EX_TIMEOUT;
	else if (f == SVC_REFUSED)
		rc = KERF_EX_TEMPFAIL;
	else if (ended)
		rc = run_exit(st);
	else
		rc = f == SVC_CONFIRMED ? KERF_EX_OK : KERF_EX_TEMPFAIL;
	return fshut(stdout, "standard output") ? KERF_EX_IOERR : rc;
}

/*
 * kerf pause, resume, stop: signal the supervisor, then (not for a
 * stop without --wait) poll status.json until the command has its
 * outcome (a stop: until the run has ended, unless the stop was refused
 * or timed out), or --timeout passes.
 */
static int cmd_signal(const char *what, int sig)
{
	const char *dir = target_dir();
	const char *op = sig == SIGQUIT ? "abort" : what;
	int stop = !strcmp(what, "stop"), after, rc = KERF_EX_TIMEOUT;
	uint64_t timeout = signal_o.timeout_ms ? signal_o.timeout_ms : COMMAND_TIMEOUT_MS, deadline;
	pid_t pid = runstate_lock_holder(dir);
	json_t *st;

	if (pid <= 0) {
		log_msg(LOG_ERROR, NULL, "no run is active in '%s'", dir);
		return KERF_EX_UNAVAILABLE;
	}
	st = load_status(dir);
	after = st ? newest_command(st) : 0;
	json_decref(st);
	if (kill(pid, sig) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot %s the run in '%s' (pid %ld): %s", what, dir,
			(long)pid, strerror(errno));
		return KERF_EX_UNAVAILABLE;
	}
	if (stop && !signal_o.wait)
		return KERF_EX_OK;
	deadline = mono_ms() + timeout;
	for (;;) {
		/* The lock first: once it is gone, status.json is final. */
		int ended = runstate_lock_holder(dir) != pid;
		struct status_command sc;
		json_t *c;
		int f;
		st = load_status(dir);
		c = st ? find_command(st, op, after) : NULL;
		status_doc_command_read(c, &sc);
		f = svc_fate_parse(sc.fate);
		if (c && svc_fate_final(f) && (!stop || ended || f == SVC_REFUSED || f == SVC_TIMED_OUT)) {
			rc = report_command(what, c, st, stop && ended);
			json_decref(st);
			return rc;
		}
		if (ended) {
			/* The run ended before kerf took the request. */
			printf("%s: the run ended (", what);
			print_run_end(st);
			printf(") before kerf took the request\n");
			rc = stop && st ? run_exit(st) : KERF_EX_UNAVAILABLE;
			json_decref(st);
			return fshut(stdout, "standard output") ? KERF_EX_IOERR : rc;
		}
		if (mono_ms() >= deadline) {
			printf("%s: no outcome within %.1fs (%s)\n", what, (double)timeout / 1000.0,
			       sc.fate ? sc.fate : "kerf has not taken the request");
			json_decref(st);
			return fshut(stdout, "standard output") ? KERF_EX_IOERR : KERF_EX_TIMEOUT;
		}
		json_decref(st);
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static int cmd_stop(int argc, char **argv)
{
	(void)argc, (void)argv;
	if (signal_o.timeout_ms && !signal_o.wait)
		cli_usage_error("--timeout belongs to 'kerf pause', 'kerf resume' and 'kerf stop --wait'");
	return cmd_signal("stop", signal_o.abort_run ? SIGQUIT : SIGTERM);
}

static int cmd_pause(int argc, char **argv)
{
	(void)argc, (void)argv;
	return cmd_signal("pause", SIGUSR1);
}

static int cmd_resume(int argc, char **argv)
{
	(void)argc, (void)argv;
	return cmd_signal("resume", SIGUSR2);
}

int main(int argc, char **argv)
{
	const struct cli_spec all = { .usage = usage, .opts = all_opts, .tail = usage_tail, .width = 25 };
	const struct command *cmd = NULL;
	int rc, first;

	/* libpipeline needs 0, 1 and 2 open, and a pipe created while one
	 * is closed would take its number. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return KERF_EX_SOFTWARE;
	log_init("kerf");
	/* A closed stderr must not kill the supervisor mid-run; the stages
	 * get SIGPIPE back at its default before they exec. */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		cli_usage_error("missing command (run, status, stop, pause, resume, reprocess or watch)");
	for (int i = 0; i < NCOMMANDS && !cmd; i++)
		if (!strcmp(argv[1], commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		/* kerf --help, kerf --version, or a usage error. */
		cli_parse(&all, 2, argv, NULL);
		cli_usage_error("unknown command '%s'", argv[1]);
	}
	{
		const struct cli_spec spec = { .usage = cmd->usage, .opts = cmd->opts, .tail = usage_tail, .width = 25 };
		first = cli_parse(&spec, argc - 1, argv + 1, NULL);
	}
	if (!(cmd->flags & CMD_ARGS) && first < argc - 1)
		cli_usage_error("unexpected argument '%s'", argv[1 + first]);
	rc = cmd->fn(argc - 1 - first, argv + 1 + first);
	for (int i = 0; i < run_o.nstages; i++)
		supervise_free_argv(run_o.stage[i]);
	for (int k = 0; k < RP__STAGES; k++)
		strvec_clear(&settings.args[k]);
	return rc;
}

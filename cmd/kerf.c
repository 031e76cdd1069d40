/*
 * kerf: the supervisor.  kerf run starts a pipeline of stages as one run
 * and owns its state; kerf status, stop, pause and resume look at it or
 * talk to it (through the pid that holds the run directory's lock);
 * kerf reprocess runs many recorded runs through kerf run with GNU
 * parallel (lib/reprocess.h).
 */
#include "kerf.h"
#include "reprocess.h"
#include "runstate.h"
#include "supervise.h"
#include "svcmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
	"Usage: kerf run [-C RUNDIR] [--run ID] [OPTIONS] [--stage 'CMD ARGS...' [--optional]]...\n"
	"       kerf status [-C RUNDIR] [--json]\n"
	"       kerf stop [-C RUNDIR] [--abort] [--wait [--timeout DUR]]\n"
	"       kerf pause [-C RUNDIR] [--timeout DUR]\n"
	"       kerf resume [-C RUNDIR] [--timeout DUR]\n"
	"       kerf reprocess -o OUTDIR [-j N] [--halt SPEC] [--sshlogin LOGIN]... [--slf FILE]\n"
	"                      [--resume | --resume-failed] [--dry-run] [SETTINGS] RECORDED...\n"
	"       kerf reprocess -o OUTDIR --task N [SETTINGS]\n"
	"       kerf reprocess -o OUTDIR --report\n"
	"Supervise a wafer-inspection run: a pipeline of stages that starts together,\n"
	"stops together and ends with one outcome.\n"
	"\n"
	"  -C, --rundir DIR       the run directory (created if missing); default for\n"
	"                         run: runs/ID, for the others: runs/latest\n"
	"      --run ID           run id (default: the run directory's name)\n"
	"      --stage CMD        a stage, split into words without a shell; repeat it\n"
	"                         in pipeline order; replaces the default pipeline\n"
	"      --optional         the stage given just before may fail without\n"
	"                         failing the run (the run is then degraded)\n"
	"      --name NAME        the name of the stage given just before (default:\n"
	"                         its program's base name)\n"
	"      --wafers N         default pipeline: kerf-acquire --wafers N\n"
	"      --seed S           default pipeline: kerf-acquire --seed S\n"
	"      --record           default pipeline: record acquire's stream to\n"
	"                         RUNDIR/acquired.ndjson\n"
	"      --acquire-arg ARG, --validate-arg ARG, --detect-arg ARG,\n"
	"      --persist-arg ARG, --project-arg ARG\n"
	"                         one more argument for that default stage (repeatable)\n"
	"      --no-project       default pipeline without kerf-project\n"
	"      --grace DUR        SIGTERM to SIGKILL during teardown (default 3s)\n"
	"      --ready-timeout DUR  the readiness checks must pass and the first stage\n"
	"                         produce output within DUR (default 30s)\n"
	"      --min-free SIZE    readiness: the run directory's file system must have\n"
	"                         SIZE bytes free (K, M, G suffixes; default 0: none)\n"
	"      --deadline DUR     the whole run must end within DUR\n"
	"      --stall DUR        a stage with work waiting and no progress for DUR\n"
	"                         times the run out\n"
	"      --tick DUR         status.json and queue samples interval (default 500ms)\n"
	"      --echo WHAT        stage log records shown on stderr: warn (default:\n"
	"                         warnings, errors and non-JSON lines), all, none\n"
	"      --json             status: print status.json\n"
	"      --abort            stop: abort at once instead of draining\n"
	"      --wait             stop: wait until the run has ended; say what became\n"
	"                         of the stop and how the run ended\n"
	"      --timeout DUR      stop: with --wait, and pause, resume: how long to wait\n"
	"                         for the outcome (default 2m)\n"
	"  -h, --help             show this help and exit\n"
	"  -V, --version          show the version and exit\n"
	"Reprocess recorded runs (streams, run directories with acquired.ndjson,\n"
	"directories of KLARF files), each with kerf run into OUTDIR/NAME, by GNU parallel:\n"
	"  -o, --outdir DIR       the batch: DIR/NAME per run, DIR/results.ndjson,\n"
	"                         DIR/joblog, DIR/inputs.tsv\n"
	"  -j, --jobs N           jobs at once (GNU parallel -j; default one per core)\n"
	"      --halt SPEC        when a job fails: never (default: keep going, report),\n"
	"                         soon,fail=1 (start no more), now,fail=1 (stop all now)\n"
	"      --sshlogin LOGIN   run jobs on LOGIN too (GNU parallel; repeatable)\n"
	"      --slf FILE         hosts from FILE (GNU parallel --sshloginfile)\n"
	"      --resume           run only the jobs DIR/joblog has not seen\n"
	"      --resume-failed    ... and those that failed\n"
	"      --parallel-arg ARG one more argument for GNU parallel (repeatable)\n"
	"      --dry-run          write DIR/inputs.tsv, print the parallel command, stop\n"
	"      --task N           run job N of DIR/inputs.tsv here (what each parallel job\n"
	"                         runs; a scheduler's array task)\n"
	"      --report           print the table of DIR's batch\n"
	"      --lenient          kerf-validate without --strict (bad lines become rejects)\n"
	"SETTINGS: --acquire-arg, --validate-arg, --detect-arg, --persist-arg,\n"
	"--project-arg, --no-project, --deadline, --stall, as for kerf run; saved in\n"
	"DIR/settings.json, reused by --resume, --resume-failed and --task when none given.\n"
	"DUR is a number of seconds, or a number with ms, s, m or h.\n"
	"Exit status of kerf run: 0 completed, 1 a stage failed, 3 critical alarm,\n"
	"64 bad usage, 75 the run directory is in use, 124 timed out, 130 cancelled;\n"
	"of kerf pause, resume, stop --wait: 0 confirmed (stop: the run ended cancelled\n"
	"or completed), 69 no run, 75 refused or superseded, 124 timed out or no\n"
	"outcome within --timeout, else the run's exit status;\n"
	"of kerf reprocess: 0 every run completed, 1 some did not, 69 no GNU parallel,\n"
	"130 interrupted.\n";

enum {
	OPT_RUN = 256, OPT_STAGE, OPT_OPTIONAL, OPT_WAFERS, OPT_SEED, OPT_RECORD,
	OPT_ACQ_ARG, OPT_VAL_ARG, OPT_DET_ARG, OPT_PER_ARG, OPT_PRO_ARG, OPT_NO_PROJECT,
	OPT_GRACE, OPT_READY, OPT_DEADLINE, OPT_STALL, OPT_TICK, OPT_ECHO, OPT_JSON,
	OPT_ABORT, OPT_WAIT, OPT_NAME, OPT_TIMEOUT, OPT_MIN_FREE,
};

static const struct option longopts[] = {
	{ "rundir", required_argument, NULL, 'C' },
	{ "run", required_argument, NULL, OPT_RUN },
	{ "stage", required_argument, NULL, OPT_STAGE },
	{ "optional", no_argument, NULL, OPT_OPTIONAL },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "wafers", required_argument, NULL, OPT_WAFERS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "record", no_argument, NULL, OPT_RECORD },
	{ "acquire-arg", required_argument, NULL, OPT_ACQ_ARG },
	{ "validate-arg", required_argument, NULL, OPT_VAL_ARG },
	{ "detect-arg", required_argument, NULL, OPT_DET_ARG },
	{ "persist-arg", required_argument, NULL, OPT_PER_ARG },
	{ "project-arg", required_argument, NULL, OPT_PRO_ARG },
	{ "no-project", no_argument, NULL, OPT_NO_PROJECT },
	{ "grace", required_argument, NULL, OPT_GRACE },
	{ "ready-timeout", required_argument, NULL, OPT_READY },
	{ "min-free", required_argument, NULL, OPT_MIN_FREE },
	{ "deadline", required_argument, NULL, OPT_DEADLINE },
	{ "stall", required_argument, NULL, OPT_STALL },
	{ "tick", required_argument, NULL, OPT_TICK },
	{ "echo", required_argument, NULL, OPT_ECHO },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "abort", no_argument, NULL, OPT_ABORT },
	{ "wait", no_argument, NULL, OPT_WAIT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct opts {
	const char *rundir, *run, *wafers, *seed;
	int record, no_project, json, abort_run, wait;
	struct strvec extra[5];          /* acquire, validate, detect, persist, project */
	char **stage[64];
	int stage_optional[64];
	const char *stage_name[64];
	int nstages;
	struct sv_options sv;
	int saw_run_only;
	uint64_t timeout_ms;           /* pause, resume, stop --wait; 0: the default */
};

static uint64_t duration(const char *opt, const char *s)
{
	uint64_t ms;
	if (parse_duration_ms(s, 1000, &ms) != 0)
		cli_usage_error("invalid duration for %s: '%s'", opt, s);
	return ms;
}

static void parse(int argc, char **argv, struct opts *o)
{
	int c;
	char err[128];
	long v;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":C:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'C': o->rundir = optarg; break;
		case OPT_RUN:
			/* kerf-validate's limit (VALIDATE_RUN_MAX): every event would be rejected. */
			if (!*optarg || strlen(optarg) > 256)
				cli_usage_error("--run: the run id must be 1 to 256 bytes");
			o->run = optarg; o->saw_run_only = 1; break;
		case OPT_STAGE:
			if (o->nstages == 64)
				cli_usage_error("too many stages (at most 64)");
			o->stage[o->nstages] = supervise_split(optarg, NULL, err, sizeof err);
			if (!o->stage[o->nstages])
				cli_usage_error("invalid --stage '%s': %s", optarg, err);
			o->nstages++;
			o->saw_run_only = 1;
			break;
		case OPT_OPTIONAL:
			if (o->nstages == 0)
				cli_usage_error("--optional must follow the --stage it marks");
			o->stage_optional[o->nstages - 1] = 1;
			break;
		case OPT_NAME:
			if (o->nstages == 0)
				cli_usage_error("--name must follow the --stage it names");
			if (!*optarg || strpbrk(optarg, " \t\n/"))
				cli_usage_error("invalid --name '%s'", optarg);
			for (int k = 0; k < o->nstages - 1; k++)
				if (o->stage_name[k] && !strcmp(o->stage_name[k], optarg))
					cli_usage_error("two stages named '%s'", optarg);
			o->stage_name[o->nstages - 1] = optarg;
			break;
		case OPT_WAFERS:
			if (parse_long(optarg, 1, 100000, &v) != 0)
				cli_usage_error("invalid --wafers '%s'", optarg);
			o->wafers = optarg;
			o->saw_run_only = 1;
			break;
		case OPT_SEED: o->seed = optarg; o->saw_run_only = 1; break;
		case OPT_RECORD: o->record = 1; o->saw_run_only = 1; break;
		case OPT_ACQ_ARG: strvec_push(&o->extra[0], optarg); o->saw_run_only = 1; break;
		case OPT_VAL_ARG: strvec_push(&o->extra[1], optarg); o->saw_run_only = 1; break;
		case OPT_DET_ARG: strvec_push(&o->extra[2], optarg); o->saw_run_only = 1; break;
		case OPT_PER_ARG: strvec_push(&o->extra[3], optarg); o->saw_run_only = 1; break;
		case OPT_PRO_ARG: strvec_push(&o->extra[4], optarg); o->saw_run_only = 1; break;
		case OPT_NO_PROJECT: o->no_project = 1; o->saw_run_only = 1; break;
		case OPT_GRACE: o->sv.grace_ms = duration("--grace", optarg); break;
		case OPT_READY: o->sv.ready_ms = duration("--ready-timeout", optarg); break;
		case OPT_MIN_FREE:
			if (parse_size(optarg, &o->sv.min_free) != 0)
				cli_usage_error("invalid size for --min-free: '%s'", optarg);
			break;
		case OPT_DEADLINE: o->sv.deadline_ms = duration("--deadline", optarg); break;
		case OPT_STALL: o->sv.stall_ms = duration("--stall", optarg); break;
		case OPT_TICK:
			o->sv.tick_ms = duration("--tick", optarg);
			if (o->sv.tick_ms < 10)
				cli_usage_error("--tick must be at least 10ms");
			break;
		case OPT_ECHO:
			if (!strcmp(optarg, "all"))
				o->sv.echo = SV_ECHO_ALL;
			else if (!strcmp(optarg, "warn"))
				o->sv.echo = SV_ECHO_WARN;
			else if (!strcmp(optarg, "none"))
				o->sv.echo = SV_ECHO_NONE;
			else
				cli_usage_error("invalid --echo '%s' (all, warn or none)", optarg);
			break;
		case OPT_JSON: o->json = 1; break;
		case OPT_ABORT: o->abort_run = 1; break;
		case OPT_WAIT: o->wait = 1; break;
		case OPT_TIMEOUT: o->timeout_ms = duration("--timeout", optarg); break;
		case 'h': cli_help(usage);
		case 'V': cli_version();
		case ':': cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
		default: cli_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
}

/* The default pipeline: acquire, validate, detect, persist, project. */
static void default_pipeline(struct supervisor *sv, struct opts *o, const char *rundir)
{
	struct strvec a = { 0 };
	char *rec = xasprintf("%s/acquired.ndjson", rundir);
	char *project = o->no_project ? NULL : supervise_resolve("kerf-project");

	strvec_push(&a, "kerf-acquire");
	if (o->wafers) {
		strvec_push(&a, "--wafers");
		strvec_push(&a, o->wafers);
	}
	if (o->seed) {
		strvec_push(&a, "--seed");
		strvec_push(&a, o->seed);
	}
	if (o->record) {
		strvec_push(&a, "--record");
		strvec_push(&a, rec);
	}
	strvec_pushv(&a, &o->extra[0]);
	supervise_add(sv, a.v, 0);
	strvec_clear(&a);

	strvec_push(&a, "kerf-validate");
	strvec_pushv(&a, &o->extra[1]);
	supervise_add(sv, a.v, 0);
	strvec_clear(&a);

	strvec_push(&a, "kerf-detect");
	strvec_pushv(&a, &o->extra[2]);
	supervise_add(sv, a.v, 0);
	strvec_clear(&a);

	strvec_push(&a, "kerf-persist");
	strvec_push(&a, "-C");
	strvec_push(&a, rundir);
	if (project)
		strvec_push(&a, "--downstream-optional");
	strvec_pushv(&a, &o->extra[3]);
	supervise_add(sv, a.v, 0);
	strvec_clear(&a);

	if (project) {
		strvec_push(&a, "kerf-project");
		strvec_push(&a, "-C");
		strvec_push(&a, rundir);
		strvec_pushv(&a, &o->extra[4]);
		supervise_add(sv, a.v, 1);
		strvec_clear(&a);
	} else if (!o->no_project) {
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

static int cmd_run(struct opts *o)
{
	struct supervisor sv;
	struct runstate rs;
	char err[512], stamp[32];
	char *dir, *run;
	pid_t holder;
	int rc;

	if (o->rundir) {
		dir = xstrdup(o->rundir);
	} else {
		time_t now = time(NULL);
		struct tm tm;
		gmtime_r(&now, &tm);
		strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
		char *name = safe_name(o->run ? o->run : stamp, 200);
		if (o->run && strcmp(name, o->run)) {
			/* A changed id ("a/b", "a b"): its own directory, by a hash. */
			char hx[17];
			hex64(kerf_xxh3(o->run, strlen(o->run)), hx);
			dir = xasprintf("runs/%s-%.8s", name, hx);
		} else {
			dir = xasprintf("runs/%s", name);
		}
		free(name);
	}
	if (o->run) {
		run = xstrdup(o->run);
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
	if (!o->rundir)
		point_latest(strrchr(dir, '/') + 1);

	supervise_init(&sv);
	if (o->sv.grace_ms)
		sv.opt.grace_ms = o->sv.grace_ms;
	if (o->sv.ready_ms)
		sv.opt.ready_ms = o->sv.ready_ms;
	if (o->sv.tick_ms)
		sv.opt.tick_ms = o->sv.tick_ms;
	sv.opt.deadline_ms = o->sv.deadline_ms;
	sv.opt.stall_ms = o->sv.stall_ms;
	sv.opt.min_free = o->sv.min_free;
	sv.opt.echo = o->sv.echo;
	if (o->nstages) {
		for (int i = 0; i < o->nstages; i++) {
			struct sv_stage *st = supervise_add(&sv, o->stage[i], o->stage_optional[i]);
			if (o->stage_name[i]) {
				free(st->name);
				st->name = xstrdup(o->stage_name[i]);
			}
		}
	} else {
		default_pipeline(&sv, o, dir);
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

static const char *target_dir(struct opts *o)
{
	return o->rundir ? o->rundir : "runs/latest";
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

/* "command: 3 stop confirmed by the tool (HCACK 4): REASON" */
static void print_command(const char *label, json_t *c)
{
	const char *by = json_string_value(json_object_get(c, "fate_by"));
	const char *reason = json_string_value(json_object_get(c, "reason"));
	if (!json_is_object(c))
		return;
	printf("%s: %lld %s %s by %s", label, (long long)json_integer_value(json_object_get(c, "id")),
	       json_string_value(json_object_get(c, "op")), json_string_value(json_object_get(c, "fate")),
	       by && !strcmp(by, "tool") ? "the tool" : "kerf");
	if (json_is_integer(json_object_get(c, "hcack")))
		printf(" (HCACK %lld)", (long long)json_integer_value(json_object_get(c, "hcack")));
	if (reason)
		printf(": %s", reason);
	putchar('\n');
}

static int cmd_status(struct opts *o)
{
	const char *dir = target_dir(o);
	char *path = xasprintf("%s/status.json", dir);
	json_error_t jerr;
	json_t *st = json_load_file(path, 0, &jerr), *stages, *s, *cause;
	pid_t holder = runstate_lock_holder(dir);
	size_t i;

	if (!st) {
		log_msg(LOG_ERROR, NULL, "cannot read '%s': %s", path, jerr.text);
		free(path);
		return KERF_EX_UNAVAILABLE;
	}
	free(path);
	if (o->json) {
		char *txt = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(txt ? txt : "{}");
		free(txt);
		json_decref(st);
		return fshut(stdout, "standard output");
	}
	const char *state = json_string_value(json_object_get(st, "state"));
	printf("run %s in %s: %s", json_string_value(json_object_get(st, "run")), dir,
	       state ? state : "?");
	if (holder > 0)
		printf(" (supervisor pid %ld)", (long)holder);
	else if (state && strcmp(state, "completed") && strcmp(state, "failed") &&
		 strcmp(state, "cancelled") && strcmp(state, "timed-out"))
		printf(" (no supervisor: it died)");
	printf(", elapsed %.1fs\n",
	       (double)json_integer_value(json_object_get(st, "elapsed_ms")) / 1000.0);
	json_t *outcome = json_object_get(st, "outcome");
	cause = json_object_get(outcome, "cause");
	if (json_is_object(cause)) {
		const char *stage = json_string_value(json_object_get(cause, "stage"));
		printf("cause: %s", json_string_value(json_object_get(cause, "what")));
		if (stage)
			printf(": stage %s, %s", stage, json_string_value(json_object_get(cause, "how")));
		putchar('\n');
	}
	if (json_is_true(json_object_get(outcome, "degraded")))
		printf("degraded\n");
	if (json_is_integer(json_object_get(outcome, "exit_code")))
		printf("exit code: %lld\n", (long long)json_integer_value(json_object_get(outcome, "exit_code")));
	/* The last command to the tool and its fate; the one the outcome
	 * overtook, when there was one. */
	print_command("command", json_object_get(st, "command"));
	print_command("pending command", json_object_get(outcome, "pending_command"));
	stages = json_object_get(st, "stages");
	/* A tool link's state, as the stage that holds it last logged it. */
	json_array_foreach(stages, i, s) {
		json_t *link = json_object_get(s, "link");
		const char *cause_s = json_string_value(json_object_get(link, "cause"));
		if (!json_is_string(json_object_get(link, "state")))
			continue;
		printf("tool link: %s", json_string_value(json_object_get(link, "state")));
		if (cause_s)
			printf(" (%s)", cause_s);
		if (json_is_string(json_object_get(link, "since")))
			printf(" since %s", json_string_value(json_object_get(link, "since")));
		printf(", stage %s\n", json_string_value(json_object_get(s, "name")));
	}
	printf("%-16s %8s %-10s %-16s %-18s %s\n", "STAGE", "PID", "STATE", "QUEUE", "RATE", "COUNTERS");
	json_array_foreach(stages, i, s) {
		json_t *q = json_object_get(s, "queue");
		char qs[40] = "-", ss[48], rs[48];
		const char *sst = json_string_value(json_object_get(s, "state"));
		if (json_is_integer(json_object_get(q, "bytes")))
			snprintf(qs, sizeof qs, "%lld/%lld",
				 (long long)json_integer_value(json_object_get(q, "bytes")),
				 (long long)json_integer_value(json_object_get(q, "cap")));
		if (sst && !strcmp(sst, "exited")) {
			json_t *sig = json_object_get(s, "signal");
			if (json_is_string(sig))
				snprintf(ss, sizeof ss, "SIG%s", json_string_value(sig));
			else
				snprintf(ss, sizeof ss, "exit %lld",
					 (long long)json_integer_value(json_object_get(s, "exit")));
		} else {
			snprintf(ss, sizeof ss, "%s", sst ? sst : "?");
		}
		work_rate(json_object_get(s, "counters"), rs, sizeof rs);
		printf("%-16s %8lld %-10s %-16s %-18s ", json_string_value(json_object_get(s, "name")),
		       (long long)json_integer_value(json_object_get(s, "pid")), ss, qs, rs);
		print_counters(json_object_get(s, "counters"));
		const char *verdict = json_string_value(json_object_get(s, "verdict"));
		if (verdict && strcmp(verdict, "ok"))
			printf(" [%s]", verdict);
		putchar('\n');
	}
	json_decref(st);
	return fshut(stdout, "standard output");
}

/* ---- kerf reprocess ---- */

enum {
	RP_OPT_HALT = 256, RP_OPT_SSHLOGIN, RP_OPT_SLF, RP_OPT_RESUME, RP_OPT_RESUME_FAILED,
	RP_OPT_PARALLEL_ARG, RP_OPT_DRY_RUN, RP_OPT_TASK, RP_OPT_REPORT, RP_OPT_LENIENT,
	RP_OPT_ACQ, RP_OPT_VAL, RP_OPT_DET, RP_OPT_PER, RP_OPT_PRO, RP_OPT_NO_PROJECT,
	RP_OPT_DEADLINE, RP_OPT_STALL,
};

static const struct option rp_longopts[] = {
	{ "outdir", required_argument, NULL, 'o' },
	{ "jobs", required_argument, NULL, 'j' },
	{ "halt", required_argument, NULL, RP_OPT_HALT },
	{ "sshlogin", required_argument, NULL, RP_OPT_SSHLOGIN },
	{ "slf", required_argument, NULL, RP_OPT_SLF },
	{ "resume", no_argument, NULL, RP_OPT_RESUME },
	{ "resume-failed", no_argument, NULL, RP_OPT_RESUME_FAILED },
	{ "parallel-arg", required_argument, NULL, RP_OPT_PARALLEL_ARG },
	{ "dry-run", no_argument, NULL, RP_OPT_DRY_RUN },
	{ "task", required_argument, NULL, RP_OPT_TASK },
	{ "report", no_argument, NULL, RP_OPT_REPORT },
	{ "lenient", no_argument, NULL, RP_OPT_LENIENT },
	{ "acquire-arg", required_argument, NULL, RP_OPT_ACQ },
	{ "validate-arg", required_argument, NULL, RP_OPT_VAL },
	{ "detect-arg", required_argument, NULL, RP_OPT_DET },
	{ "persist-arg", required_argument, NULL, RP_OPT_PER },
	{ "project-arg", required_argument, NULL, RP_OPT_PRO },
	{ "no-project", no_argument, NULL, RP_OPT_NO_PROJECT },
	{ "deadline", required_argument, NULL, RP_OPT_DEADLINE },
	{ "stall", required_argument, NULL, RP_OPT_STALL },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static int cmd_reprocess(int argc, char **argv)
{
	struct reprocess r;
	long task = 0;
	int report = 0, c, rc;
	uint64_t ms;

	reprocess_init(&r);
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:j:hV", rp_longopts, NULL)) != -1) {
		switch (c) {
		case 'o': r.outdir = optarg; break;
		case 'j':
			if (!*optarg)
				cli_usage_error("invalid --jobs ''");
			r.jobs = optarg;
			break;
		case RP_OPT_HALT:
			if (!reprocess_halt_ok(optarg))
				cli_usage_error("invalid --halt '%s' (never, or soon|now,fail|success|done=N[%%])",
						optarg);
			r.halt = optarg;
			break;
		case RP_OPT_SSHLOGIN: strvec_push(&r.sshlogin, optarg); break;
		case RP_OPT_SLF: r.slf = optarg; break;
		case RP_OPT_RESUME: r.resume = RP_RESUME; break;
		case RP_OPT_RESUME_FAILED: r.resume = RP_RESUME_FAILED; break;
		case RP_OPT_PARALLEL_ARG: strvec_push(&r.parallel_args, optarg); break;
		case RP_OPT_DRY_RUN: r.dry_run = 1; break;
		case RP_OPT_TASK:
			if (parse_long(optarg, 1, 1000000000L, &task) != 0)
				cli_usage_error("invalid --task '%s'", optarg);
			break;
		case RP_OPT_REPORT: report = 1; break;
		case RP_OPT_LENIENT: r.lenient = 1; break;
		case RP_OPT_ACQ: strvec_push(&r.stage_args[RP_ACQUIRE], optarg); break;
		case RP_OPT_VAL: strvec_push(&r.stage_args[RP_VALIDATE], optarg); break;
		case RP_OPT_DET: strvec_push(&r.stage_args[RP_DETECT], optarg); break;
		case RP_OPT_PER: strvec_push(&r.stage_args[RP_PERSIST], optarg); break;
		case RP_OPT_PRO: strvec_push(&r.stage_args[RP_PROJECT], optarg); break;
		case RP_OPT_NO_PROJECT: r.no_project = 1; break;
		case RP_OPT_DEADLINE:
			if (parse_duration_ms(optarg, 1000, &ms) != 0)
				cli_usage_error("invalid duration for --deadline: '%s'", optarg);
			r.deadline = optarg;
			break;
		case RP_OPT_STALL:
			if (parse_duration_ms(optarg, 1000, &ms) != 0)
				cli_usage_error("invalid duration for --stall: '%s'", optarg);
			r.stall = optarg;
			break;
		case 'h': cli_help(usage);
		case 'V': cli_version();
		case ':': cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
		default: cli_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (!r.outdir)
		cli_usage_error("reprocess needs -o OUTDIR");
	if (task && (report || optind < argc))
		cli_usage_error("--task takes no recorded runs and no --report");
	if (report && optind < argc)
		cli_usage_error("--report takes no recorded runs");
	if (task)
		rc = reprocess_task(&r, task);
	else if (report)
		rc = reprocess_report(&r);
	else if ((rc = reprocess_plan(&r, argv + optind, argc - optind)) == KERF_EX_OK)
		rc = reprocess_batch(&r);
	reprocess_release(&r);
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
static int newest_command(json_t *st)
{
	json_t *c = json_object_get(json_object_get(st, "command"), "id");
	return json_is_integer(c) ? (int)json_integer_value(c) : 0;
}

static json_t *command_by_id(json_t *st, json_int_t id)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(st, "commands"), i, c)
		if (json_integer_value(json_object_get(c, "id")) == id)
			return c;
	return NULL;
}

/*
 * The command our request became: the first operator command of our
 * kind newer than 'after', the one from our pid first (two identical
 * signals that arrive together are one request, answered together), a
 * stop that became an abort (a second stop) too; a command merged into
 * another is answered by that one.
 */
static json_t *find_command(json_t *st, const char *op, int after)
{
	size_t i;
	json_t *c, *found = NULL;
	long me = (long)getpid();

	json_array_foreach(json_object_get(st, "commands"), i, c) {
		const char *cop = json_string_value(json_object_get(c, "op"));
		const char *by = json_string_value(json_object_get(c, "by"));
		if (json_integer_value(json_object_get(c, "id")) <= after || !cop || !by || strcmp(by, "operator"))
			continue;
		if (strcmp(cop, op) && !(!strcmp(op, "stop") && !strcmp(cop, "abort")))
			continue;
		if (json_integer_value(json_object_get(c, "from")) == me) {
			found = c;
			break;
		}
		if (!found)
			found = c;
	}
	for (int hops = 0; found && hops < 16; hops++) {
		json_t *into = json_object_get(found, "into");
		if (!json_is_integer(into) || strcmp(json_string_value(json_object_get(found, "fate")), "merged"))
			break;
		c = command_by_id(st, json_integer_value(into));
		if (!c)
			break;
		found = c;
	}
	return found;
}

/* A run's exit status as kerf stop --wait passes it on: 0 for the ends a
 * stop asks for (cancelled) or makes moot (completed). */
static int run_exit(json_t *st)
{
	json_t *code = json_object_get(json_object_get(st, "outcome"), "exit_code");
	int rc = json_is_integer(code) ? (int)json_integer_value(code) : KERF_EX_SOFTWARE;
	return rc == KERF_EX_CANCELLED ? KERF_EX_OK : rc;
}

/*
 * One line on stdout: what became of the command, and with 'ended' how
 * the run ended.  The exit status: 0 confirmed, 75 refused or
 * superseded, 124 timed out; a stop's, once the run has ended, is the
 * run's (0 for cancelled or completed).
 */
static int report_command(const char *op, json_t *c, json_t *st, int ended)
{
	const char *fate = json_string_value(json_object_get(c, "fate"));
	const char *by = json_string_value(json_object_get(c, "fate_by"));
	const char *reason = json_string_value(json_object_get(c, "reason"));
	const char *cop = json_string_value(json_object_get(c, "op"));
	int f = svc_fate_parse(fate), rc;

	printf("%s %s by %s", cop ? cop : op, fate ? fate : "?", by && !strcmp(by, "tool") ? "the tool" : "kerf");
	if (reason)
		printf(": %s", reason);
	printf(" (command %lld)", (long long)json_integer_value(json_object_get(c, "id")));
	if (ended) {
		json_t *out = json_object_get(st, "outcome");
		printf("; run %s, exit %lld", json_string_value(json_object_get(out, "state")),
		       (long long)json_integer_value(json_object_get(out, "exit_code")));
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
static int cmd_signal(struct opts *o, const char *what, int sig)
{
	const char *dir = target_dir(o);
	const char *op = sig == SIGQUIT ? "abort" : what;
	int stop = !strcmp(what, "stop"), after, rc = KERF_EX_TIMEOUT;
	uint64_t timeout = o->timeout_ms ? o->timeout_ms : COMMAND_TIMEOUT_MS, deadline;
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
	if (stop && !o->wait)
		return KERF_EX_OK;
	deadline = mono_ms() + timeout;
	for (;;) {
		/* The lock first: once it is gone, status.json is final. */
		int ended = runstate_lock_holder(dir) != pid;
		json_t *c;
		const char *fate;
		st = load_status(dir);
		c = st ? find_command(st, op, after) : NULL;
		fate = c ? json_string_value(json_object_get(c, "fate")) : NULL;
		if (c && svc_fate_final(svc_fate_parse(fate)) &&
		    (!stop || ended || !strcmp(fate, "refused") || !strcmp(fate, "timed_out"))) {
			rc = report_command(what, c, st, stop && ended);
			json_decref(st);
			return rc;
		}
		if (ended) {
			/* The run ended before kerf took the request. */
			json_t *out = json_object_get(st, "outcome");
			printf("%s: the run ended (%s, exit %lld) before kerf took the request\n", what,
			       json_string_value(json_object_get(out, "state")),
			       (long long)json_integer_value(json_object_get(out, "exit_code")));
			rc = stop && st ? run_exit(st) : KERF_EX_UNAVAILABLE;
			json_decref(st);
			return fshut(stdout, "standard output") ? KERF_EX_IOERR : rc;
		}
		if (mono_ms() >= deadline) {
			printf("%s: no outcome within %.1fs (%s)\n", what, (double)timeout / 1000.0,
			       fate ? fate : "kerf has not taken the request");
			json_decref(st);
			return fshut(stdout, "standard output") ? KERF_EX_IOERR : KERF_EX_TIMEOUT;
		}
		json_decref(st);
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	const char *sub;
	int rc;

	/* libpipeline needs 0, 1 and 2 open, and a pipe created while one
	 * is closed would take its number. */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return KERF_EX_SOFTWARE;
	log_init("kerf");
	/* A closed stderr must not kill the supervisor mid-run; the stages
	 * get SIGPIPE back at its default before they exec. */
	signal(SIGPIPE, SIG_IGN);
	memset(&o, 0, sizeof o);
	o.sv.echo = SV_ECHO_WARN;
	if (argc < 2)
		cli_usage_error("missing command (run, status, stop, pause, resume or reprocess)");
	sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help"))
		cli_help(usage);
	if (!strcmp(sub, "-V") || !strcmp(sub, "--version"))
		cli_version();
	if (!strcmp(sub, "reprocess"))
		return cmd_reprocess(argc - 1, argv + 1);
	parse(argc - 1, argv + 1, &o);
	if (strcmp(sub, "run") && o.saw_run_only)
		cli_usage_error("that option belongs to 'kerf run'");
	if (o.timeout_ms && strcmp(sub, "pause") && strcmp(sub, "resume") && (strcmp(sub, "stop") || !o.wait))
		cli_usage_error("--timeout belongs to 'kerf pause', 'kerf resume' and 'kerf stop --wait'");
	if (!strcmp(sub, "run"))
		rc = cmd_run(&o);
	else if (!strcmp(sub, "status"))
		rc = cmd_status(&o);
	else if (!strcmp(sub, "stop"))
		rc = cmd_signal(&o, "stop", o.abort_run ? SIGQUIT : SIGTERM);
	else if (!strcmp(sub, "pause"))
		rc = cmd_signal(&o, "pause", SIGUSR1);
	else if (!strcmp(sub, "resume"))
		rc = cmd_signal(&o, "resume", SIGUSR2);
	else
		cli_usage_error("unknown command '%s'", sub);
	for (int i = 0; i < o.nstages; i++)
		supervise_free_argv(o.stage[i]);
	for (int k = 0; k < 5; k++)
		strvec_clear(&o.extra[k]);
	return rc;
}

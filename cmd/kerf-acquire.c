/*
 * kerf-acquire: the machine boundary.  One source (the simulated tool,
 * a recorded stream, a live connection, a GEM tool over HSMS or KLARF
 * files) turned into the kerf event stream on stdout.  The logic lives
 * in lib/acquire_*.c, lib/simrun.c and lib/gem_host.c.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "sig.h"
#include "cli.h"
#include "out.h"
#include "acquire_run.h"
#include "hsms.h"
#include "validate.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static const char usage[] =
	"Usage: kerf-acquire [--sim] [OPTION]...\n"
	"       kerf-acquire --replay FILE|- [--speed X] [--from-seq N] [--to-seq N]\n"
	"       kerf-acquire --listen unix:PATH|tcp:127.0.0.1:PORT [--ready-timeout T]\n"
	"       kerf-acquire --connect|--listen hsms:HOST:PORT --profile NAME|FILE [OPTION]...\n"
	"       kerf-acquire --check-profile --profile NAME|FILE\n"
	"       kerf-acquire --klarf FILE...\n"
	"Emit a wafer inspection run as kerf events (NDJSON) on standard output.\n"
	"\n";

/* Everything the command line says. */
struct opts {
	struct acq *a;
	struct simrun_opts so;
	struct acq_replay_opts ro;
	struct acq_listen_opts lo;
	struct acq_hsms_opts ho;
	char *host, *port;        /* of hsms:HOST:PORT, owned */
	const char *source, *run, *record, *hsms_only;
	const struct cli_opt *gem[2]; /* the GEM host's own options: hsms_only names one given */
	int check;
};

static void set_source(struct opts *o, const char *src)
{
	if (o->source && strcmp(o->source, src))
		cli_usage_error("--%s and --%s: choose one source", o->source, src);
	o->source = src;
}

static void opt_sim(const struct cli_opt *opt, const char *arg, void *ctx)
{
	(void)arg;
	set_source(ctx, opt->long_name);
}

static void opt_replay(const struct cli_opt *opt, const char *arg, void *ctx)
{
	struct opts *o = ctx;
	(void)opt;
	set_source(o, "replay");
	o->ro.path = arg;
}

/* --connect hsms:HOST:PORT, --listen hsms:HOST:PORT or --listen ADDR. */
static void opt_link(const struct cli_opt *opt, const char *arg, void *ctx)
{
	struct opts *o = ctx;
	int listen = !strcmp(opt->long_name, "listen");

	if (listen && strncmp(arg, "hsms:", 5)) {
		set_source(o, "listen");
		o->lo.addr = arg;
		return;
	}
	set_source(o, "hsms");
	free(o->host);
	free(o->port);
	if (hsms_addr_parse(arg, &o->host, &o->port) < 0)
		cli_usage_error("--%s: '%s' is not hsms:HOST:PORT", opt->long_name, arg);
	o->ho.host = o->host;
	o->ho.port = o->port;
	o->ho.passive = listen;
}

static void opt_inject(const struct cli_opt *opt, const char *arg, void *ctx)
{
	struct opts *o = ctx;
	char err[256];
	(void)opt;
	if (acq_inject_parse(o->a, arg, err, sizeof err) < 0)
		cli_usage_error("%s", err);
}

/* After each option: note a GEM host option, for check_opts. */
static void seen(const struct cli_opt *opt, void *ctx)
{
	struct opts *o = ctx;
	for (int i = 0; i < 2; i++)
		for (const struct cli_opt *g = o->gem[i]; g->kind != CLI_END; g++)
			if (g == opt)
				o->hsms_only = opt->long_name;
}

/* What the options cannot mean together; ids kerf-validate would reject in every event. */
static void check_opts(const struct opts *o, int argc, char **argv)
{
	int hsms = !strcmp(o->source, "hsms");

	if (!hsms && (o->hsms_only || o->ho.profile))
		cli_usage_error("--%s is for the GEM host (--connect or --listen hsms:)",
				o->hsms_only ? o->hsms_only : "profile");
	if (hsms && !o->ho.profile)
		cli_usage_error("--%s hsms: needs --profile", o->ho.passive ? "listen" : "connect");
	if (strcmp(o->source, "klarf") && optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!strcmp(o->source, "klarf") && optind == argc)
		cli_usage_error("--klarf: no KLARF file given");
	if (o->ro.from_seq > o->ro.to_seq)
		cli_usage_error("--from-seq %llu is after --to-seq %llu", (unsigned long long)o->ro.from_seq,
				(unsigned long long)o->ro.to_seq);
	if (o->run && strlen(o->run) > VALIDATE_RUN_MAX)
		cli_usage_error("--run: the run id is longer than %d bytes", VALIDATE_RUN_MAX);
	if (o->so.lot && (!*o->so.lot || strlen(o->so.lot) > VALIDATE_RUN_MAX))
		cli_usage_error("--lot: the lot id must be 1 to %d bytes", VALIDATE_RUN_MAX);
}

static int check_profile(const char *name)
{
	struct profile p;
	char *path, *sum;
	int rc = acq_profile_open(name, &p, &path);

	if (rc != 0)
		return rc;
	sum = profile_summary(&p);
	printf("%s\n%s\n", path, sum);
	free(sum);
	free(path);
	profile_release(&p);
	return fshut(stdout, "standard output");
}

/* A source with no tool link: its tool checks are skipped at once (kerf-acquire(1)). */
static void skip_tool_checks(const char *source)
{
	static const char *const names[] = { "tool_link", "tool_model", "tool_online", "tool_recipe" };

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		log_msg(LOG_INFO, json_pack("{ss ss si ss}", "check", names[i], "outcome", "skipped", "ms", 0, "reason",
					    !strcmp(source, "sim") ? "the simulated tool runs in kerf-acquire: no link"
								   : "this source has no tool link"),
			"check %s: skipped", names[i]);
}

static int run_source(struct opts *o, int argc, char **argv)
{
	struct acq_hsms_opts *ho = &o->ho;

	if (strcmp(o->source, "hsms"))
		skip_tool_checks(o->source);
	if (!strcmp(o->source, "sim"))
		return acq_run_sim(o->a, &o->so);
	if (!strcmp(o->source, "replay"))
		return acq_run_replay(o->a, &o->ro);
	if (!strcmp(o->source, "listen"))
		return acq_run_listen(o->a, &o->lo);
	if (!strcmp(o->source, "klarf"))
		return acq_run_klarf(o->a, argv + optind, argc - optind);
	/* The lot and the geometry the simulated tool would use. */
	ho->lot = o->so.lot;
	ho->recipe = o->so.recipe;
	ho->wafers = o->so.cfg.wafers;
	ho->diameter_mm = o->so.cfg.diameter_mm;
	ho->edge_mm = o->so.cfg.edge_mm;
	memcpy(ho->pitch_um, o->so.cfg.pitch_um, sizeof ho->pitch_um);
	ho->die_px = o->so.cfg.die_px;
	return acq_run_hsms(o->a, ho);
}

int main(int argc, char **argv)
{
	struct acq a;
	struct opts o;
	struct cli_opt sim_opts[SIMRUN_NOPTS + 1];
	const char *sim_tool;
	uint64_t max_line = KERF_MAX_LINE_DEFAULT, ready_ms, confirm_ms;
	int rc;
	struct cli_opt link_opts[HSMS_CLI_NOPTS + 1];
	const struct cli_opt gem_opts[] = {
		OPT_DURATION(0, "reconnect", "T", &o.ho.reconnect_ms, 1, CLI_NOMAX,
			     "a lost connection back within T: the run goes on\n(default: the run fails)"),
		OPT_STRING(0, "hsms-trace", "FILE", &o.ho.trace,
			   "write one NDJSON record per HSMS message to FILE\n(default: $KERF_RUNDIR/hsms.ndjson when set)"),
		OPT_END(),
	};
	const struct cli_opt options[] = {
		OPT_GROUP("Sources:"),
		OPT_CALLBACK(0, "sim", NULL, opt_sim, "the built-in simulated inspection tool (default)"),
		OPT_CALLBACK(0, "replay", "FILE|-", opt_replay, "re-emit a recorded event stream"),
		OPT_CALLBACK(0, "listen", "ADDR", opt_link,
			     "accept one machine connection streaming events\n(unix:PATH, tcp:HOST:PORT), or with hsms:HOST:PORT\n"
			     "be the GEM host of a tool that connects to kerf"),
		OPT_CALLBACK(0, "connect", "hsms:HOST:PORT", opt_link, "be the GEM host of a tool, connecting to it"),
		OPT_CALLBACK(0, "klarf", NULL, opt_sim, "import the KLARF files named as arguments"),
		OPT_GROUP("Simulated tool:"),
		OPT_INCLUDE(sim_opts),
		OPT_GROUP("GEM host (--connect, --listen hsms:); --lot, --recipe and --wafers go\n"
			  "with START, and they, --tool, --diameter, --edge, --pitch and --die-px\n"
			  "fill in what the tool does not report:"),
		OPT_STRING(0, "profile", "NAME|FILE", &o.ho.profile,
			   "the tool's profile (kerf-profile(5)); a NAME is\nNAME.json in $KERF_PROFILE_PATH, then the\n"
			   "installed profiles, then the source tree's"),
		OPT_BOOL(0, "check-profile", &o.check, "check the profile, print its path and a summary"),
		OPT_INCLUDE(link_opts),
		OPT_INCLUDE(gem_opts),
		OPT_GROUP("Replay and listen:"),
		OPT_DOUBLE(0, "speed", "X", &o.ro.speed, 1e-6, 1e6,
			   "replay at the recorded pace times X (default:\nas fast as possible)"),
		OPT_U64(0, "from-seq", "N", &o.ro.from_seq, "replay from seq N"),
		OPT_U64(0, "to-seq", "N", &o.ro.to_seq, "replay up to seq N"),
		CLI_MAX_LINE(0, &max_line),
		OPT_GROUP("Common:"),
		OPT_STRING(0, "run", "ID", &o.run, "run id (default $KERF_RUN, else sim-SEED)"),
		OPT_STRING(0, "record", "FILE", &o.record, "also write the emitted stream to FILE"),
		OPT_DURATION(0, "ready-timeout", "T", &ready_ms, 0, CLI_NOMAX,
			     "wait this long for the machine to be ready\n(default 10s)"),
		OPT_DURATION(0, "confirm-timeout", "T", &confirm_ms, 1, CLI_NOMAX,
			     "a command the tool accepted must be confirmed by\nits event within T (default 30s)"),
		OPT_CALLBACK(0, "inject", "SPEC", opt_inject,
			     "fault injection, repeatable: alarm@DIE:ALID:CATEGORY,\ncrash@N, stall@N:SECONDS, garbage@N, hold@N, notready;\n"
			     "the simulated tool's: ignore@CMD[:N], delay@CMD:DIES,\nrefuse@CMD:HCACK[:N], wait@DIES"),
		OPT_HELP("show this help and exit"),
		OPT_VERSION(0, "show the version and exit"),
		OPT_END(),
	};
	const struct cli_spec spec = { .usage = usage, .opts = options, .width = 26, .seen = seen };

	log_init(argv[0]);
	stdout_init();
	acq_init(&a);
	memset(&o, 0, sizeof o);
	o.a = &a;
	o.gem[0] = link_opts;
	o.gem[1] = gem_opts;
	o.ro.to_seq = UINT64_MAX;
	o.run = getenv("KERF_RUN");
	simrun_opts_init(&o.so);
	acq_hsms_opts_init(&o.ho);
	simrun_cli_options(sim_opts, &o.so);
	hsms_cli_options(link_opts, &o.ho.link);
	sim_tool = o.so.tool;
	ready_ms = (uint64_t)(a.ready_timeout_s * 1000);
	confirm_ms = (uint64_t)(a.confirm_timeout_s * 1000);
	cli_parse(&spec, argc, argv, &o);
	if (!o.source)
		o.source = "sim";
	o.ro.max_line = o.lo.max_line = (size_t)max_line;
	a.ready_timeout_s = (double)ready_ms / 1000.0;
	a.confirm_timeout_s = (double)confirm_ms / 1000.0;
	/* The GEM host's tool name is the tool's own unless given. */
	if (o.so.tool != sim_tool)
		o.ho.tool = o.so.tool;
	if (o.check) {
		if (!o.ho.profile)
			cli_usage_error("--check-profile: no --profile given");
		rc = check_profile(o.ho.profile);
	} else {
		check_opts(&o, argc, argv);
		if (o.run && *o.run) {
			acq_set_run(&a, o.run);
		} else if (!strcmp(o.source, "sim")) {
			char *r = xasprintf("sim-%llu", (unsigned long long)o.so.cfg.seed);
			acq_set_run(&a, r);
			free(r);
		}
		sig_init();
		sig_init_pause();
		if (o.record && acq_record_open(&a, o.record) < 0)
			rc = KERF_EX_IOERR;
		else
			rc = acq_finish(&a, run_source(&o, argc, argv));
	}
	acq_release(&a);
	free(o.host);
	free(o.port);
	return rc;
}

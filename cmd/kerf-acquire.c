/*
 * kerf-acquire: the machine boundary.  One source (the simulated tool,
 * a recorded stream, a live connection, a GEM tool over HSMS or KLARF
 * files) turned into the kerf event stream on stdout.  The logic lives
 * in lib/acquire_*.c, lib/simrun.c and lib/gem_host.c.
 */
#include "kerf.h"
#include "acquire_run.h"
#include "hsms.h"
#include "validate.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"Usage: kerf-acquire [--sim] [OPTION]...\n"
	"       kerf-acquire --replay FILE|- [--speed X] [--from-seq N] [--to-seq N]\n"
	"       kerf-acquire --listen unix:PATH|tcp:127.0.0.1:PORT [--ready-timeout T]\n"
	"       kerf-acquire --connect|--listen hsms:HOST:PORT --profile NAME|FILE [OPTION]...\n"
	"       kerf-acquire --check-profile --profile NAME|FILE\n"
	"       kerf-acquire --klarf FILE...\n"
	"Emit a wafer inspection run as kerf events (NDJSON) on standard output.\n"
	"\n"
	"Sources:\n"
	"      --sim               the built-in simulated inspection tool (default)\n"
	"      --replay FILE|-     re-emit a recorded event stream\n"
	"      --listen ADDR       accept one machine connection streaming events\n"
	"                          (unix:PATH, tcp:HOST:PORT), or with hsms:HOST:PORT\n"
	"                          be the GEM host of a tool that connects to kerf\n"
	"      --connect hsms:HOST:PORT\n"
	"                          be the GEM host of a tool, connecting to it\n"
	"      --klarf             import the KLARF files named as arguments\n"
	"Simulated tool:\n"
	"      --seed N            random seed; same seed, same bytes (default 1)\n"
	"      --wafers N          wafers in the lot, 1..25 (default 3)\n"
	"      --diameter MM       wafer diameter in mm (default 300)\n"
	"      --edge MM           edge exclusion in mm (default 3)\n"
	"      --pitch UM[xUM]     die pitch in um (default 10000)\n"
	"      --die-px N          die image width in pixels (default 64)\n"
	"      --noise SIGMA       pixel noise in grey levels (default 3)\n"
	"      --defect-rate R     mean random particles per die (default 0.05)\n"
	"      --signature NAME    random, cluster, scratch, edge-ring, center or\n"
	"                          cycle: one after the other per wafer (default)\n"
	"      --lot ID            lot id (default SIMLOT)\n"
	"      --recipe NAME       recipe name (default sim-default)\n"
	"      --tool NAME         tool name (default kerf-sim)\n"
	"      --rate N            pace output at N dies per second on the wall\n"
	"                          clock (default: as fast as the pipe takes)\n"
	"      --truth FILE        write the injected defects as NDJSON to FILE\n"
	"      --pause-after N     take a pause N dies after accepting it (default 0)\n"
	"      --stop-after N      take a stop N dies after accepting it (default 0)\n"
	"GEM host (--connect, --listen hsms:); --lot, --recipe and --wafers go\n"
	"with START, and they, --tool, --diameter, --edge, --pitch and --die-px\n"
	"fill in what the tool does not report:\n"
	"      --profile NAME|FILE the tool's profile (kerf-profile(5)); a NAME is\n"
	"                          NAME.json in $KERF_PROFILE_PATH, then the\n"
	"                          installed profiles, then the source tree's\n"
	"      --check-profile     check the profile, print its path and a summary\n"
	"      --device-id N       HSMS session id, 0..32767 (default 0)\n"
	"      --t3 T              reply timeout (default 45s)\n"
	"      --t5 T              between connect attempts (default 10s)\n"
	"      --t6 T              control transaction timeout (default 5s)\n"
	"      --t7 T              connected but not selected (default 10s; 0 off)\n"
	"      --t8 T              between the bytes of a message (default 5s; 0 off)\n"
	"      --linktest T        Linktest.req period (default 60s; 0 off)\n"
	"      --reconnect T       a lost connection back within T: the run goes on\n"
	"                          (default: the run fails)\n"
	"      --hsms-trace FILE   write one NDJSON record per HSMS message to FILE\n"
	"                          (default: $KERF_RUNDIR/hsms.ndjson when set)\n"
	"Replay and listen:\n"
	"      --speed X           replay at the recorded pace times X (default:\n"
	"                          as fast as possible)\n"
	"      --from-seq N        replay from seq N\n"
	"      --to-seq N          replay up to seq N\n"
	"      --max-line SIZE     longest input line (default 64M)\n"
	"Common:\n"
	"      --run ID            run id (default $KERF_RUN, else sim-SEED)\n"
	"      --record FILE       also write the emitted stream to FILE\n"
	"      --ready-timeout T   wait this long for the machine to be ready\n"
	"                          (default 10s)\n"
	"      --confirm-timeout T a command the tool accepted must be confirmed by\n"
	"                          its event within T (default 30s)\n"
	"      --inject SPEC       fault injection, repeatable: alarm@DIE:ALID:CATEGORY,\n"
	"                          crash@N, stall@N:SECONDS, garbage@N, hold@N, notready;\n"
	"                          the simulated tool's: ignore@CMD[:N], delay@CMD:DIES,\n"
	"                          refuse@CMD:HCACK[:N]\n"
	"  -h, --help              show this help and exit\n"
	"      --version           show the version and exit\n";

enum {
	O_SIM = 256, O_REPLAY, O_LISTEN, O_KLARF, O_SIMOPT, O_SPEED, O_FROM, O_TO, O_MAXLINE, O_RUN,
	O_RECORD, O_READY, O_INJECT, O_VERSION, O_CONNECT, O_PROFILE, O_CHECK_PROFILE, O_DEVICE_ID, O_T3,
	O_T5, O_T6, O_T7, O_T8, O_LINKTEST, O_RECONNECT, O_TRACE, O_CONFIRM,
};

static const struct option longopts[] = {
	{"sim", no_argument, NULL, O_SIM},
	{"replay", required_argument, NULL, O_REPLAY},
	{"listen", required_argument, NULL, O_LISTEN},
	{"klarf", no_argument, NULL, O_KLARF},
	SIMRUN_LONGOPTS(O_SIMOPT),
	{"speed", required_argument, NULL, O_SPEED},
	{"from-seq", required_argument, NULL, O_FROM},
	{"to-seq", required_argument, NULL, O_TO},
	{"max-line", required_argument, NULL, O_MAXLINE},
	{"run", required_argument, NULL, O_RUN},
	{"record", required_argument, NULL, O_RECORD},
	{"ready-timeout", required_argument, NULL, O_READY},
	{"confirm-timeout", required_argument, NULL, O_CONFIRM},
	{"inject", required_argument, NULL, O_INJECT},
	{"connect", required_argument, NULL, O_CONNECT},
	{"profile", required_argument, NULL, O_PROFILE},
	{"check-profile", no_argument, NULL, O_CHECK_PROFILE},
	{"device-id", required_argument, NULL, O_DEVICE_ID},
	{"t3", required_argument, NULL, O_T3},
	{"t5", required_argument, NULL, O_T5},
	{"t6", required_argument, NULL, O_T6},
	{"t7", required_argument, NULL, O_T7},
	{"t8", required_argument, NULL, O_T8},
	{"linktest", required_argument, NULL, O_LINKTEST},
	{"reconnect", required_argument, NULL, O_RECONNECT},
	{"hsms-trace", required_argument, NULL, O_TRACE},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, O_VERSION},
	{NULL, 0, NULL, 0},
};

static double num_opt(const char *name, const char *s, double min, double max)
{
	double v;
	if (parse_double(s, min, max, &v) < 0)
		cli_usage_error("%s: '%s' is not a number in [%g, %g]", name, s, min, max);
	return v;
}

/* A duration option in ms (no unit: seconds); 'zero_ok' for timers that 0 turns off. */
static uint64_t duration_opt(const char *name, const char *s, int zero_ok)
{
	uint64_t ms;
	if (parse_duration_ms(s, 1000, &ms) < 0 || (!zero_ok && ms == 0))
		cli_usage_error("%s: '%s' is not a duration%s", name, s, zero_ok ? "" : " above 0");
	return ms;
}

/* Everything the command line says. */
struct opts {
	struct acq *a;
	struct simrun_opts so;
	struct acq_replay_opts ro;
	struct acq_listen_opts lo;
	struct acq_hsms_opts ho;
	char *host, *port;        /* of hsms:HOST:PORT, owned */
	const char *source, *run, *record, *hsms_only;
	int check;
};

/* The GEM host's own options: 1 when c was one of them. */
static int hsms_option(struct opts *o, int c)
{
	struct acq_hsms_opts *ho = &o->ho;
	const char *name = NULL;
	long l;

	switch (c) {
	case O_PROFILE: ho->profile = optarg; return 1;
	case O_CHECK_PROFILE: o->check = 1; return 1;
	case O_DEVICE_ID:
		if (parse_long(optarg, 0, 32767, &l) < 0)
			cli_usage_error("--device-id: '%s' is not a number in [0, 32767]", optarg);
		ho->device_id = (unsigned)l;
		name = "--device-id";
		break;
	case O_T3: ho->t3_ms = duration_opt(name = "--t3", optarg, 0); break;
	case O_T5: ho->t5_ms = duration_opt(name = "--t5", optarg, 0); break;
	case O_T6: ho->t6_ms = duration_opt(name = "--t6", optarg, 0); break;
	case O_T7: ho->t7_ms = duration_opt(name = "--t7", optarg, 1); break;
	case O_T8: ho->t8_ms = duration_opt(name = "--t8", optarg, 1); break;
	case O_LINKTEST: ho->linktest_ms = duration_opt(name = "--linktest", optarg, 1); break;
	case O_RECONNECT: ho->reconnect_ms = duration_opt(name = "--reconnect", optarg, 0); break;
	case O_TRACE: ho->trace = optarg; name = "--hsms-trace"; break;
	default: return 0;
	}
	o->hsms_only = name;
	return 1;
}

/* The source options: the source's name, or NULL when c is not one. */
static const char *source_option(struct opts *o, int c)
{
	const char *opt = c == O_CONNECT ? "--connect" : "--listen";

	switch (c) {
	case O_SIM: return "sim";
	case O_REPLAY: o->ro.path = optarg; return "replay";
	case O_KLARF: return "klarf";
	case O_LISTEN:
		if (strncmp(optarg, "hsms:", 5)) {
			o->lo.addr = optarg;
			return "listen";
		}
		/* fall through */
	case O_CONNECT:
		free(o->host);
		free(o->port);
		if (hsms_addr_parse(optarg, &o->host, &o->port) < 0)
			cli_usage_error("%s: '%s' is not hsms:HOST:PORT", opt, optarg);
		o->ho.host = o->host;
		o->ho.port = o->port;
		o->ho.passive = c == O_LISTEN;
		return "hsms";
	default: return NULL;
	}
}

static void other_option(struct opts *o, int c, int idx)
{
	char err[256];
	uint64_t u;

	switch (c) {
	case O_SIMOPT:
		if (simrun_option(&o->so, longopts[idx].name, optarg, err, sizeof err) < 0)
			cli_usage_error("%s", err);
		/* The GEM host's tool name is the tool's own unless given. */
		if (!strcmp(longopts[idx].name, "tool"))
			o->ho.tool = optarg;
		break;
	case O_SPEED: o->ro.speed = num_opt("--speed", optarg, 1e-6, 1e6); break;
	case O_FROM:
		if (parse_u64(optarg, &o->ro.from_seq) < 0)
			cli_usage_error("--from-seq: '%s' is not a number", optarg);
		break;
	case O_TO:
		if (parse_u64(optarg, &o->ro.to_seq) < 0)
			cli_usage_error("--to-seq: '%s' is not a number", optarg);
		break;
	case O_MAXLINE:
		if (parse_size(optarg, &u) < 0 || u < 1024)
			cli_usage_error("--max-line: '%s' is not a size of at least 1K", optarg);
		o->ro.max_line = o->lo.max_line = (size_t)u;
		break;
	case O_RUN: o->run = optarg; break;
	case O_RECORD: o->record = optarg; break;
	case O_READY:
		if (parse_duration_ms(optarg, 1000, &u) < 0)
			cli_usage_error("--ready-timeout: '%s' is not a duration", optarg);
		o->a->ready_timeout_s = (double)u / 1000.0;
		break;
	case O_CONFIRM:
		o->a->confirm_timeout_s = (double)duration_opt("--confirm-timeout", optarg, 0) / 1000.0;
		break;
	case O_INJECT:
		if (acq_inject_parse(o->a, optarg, err, sizeof err) < 0)
			cli_usage_error("%s", err);
		break;
	case 'h': cli_help(usage);
	case O_VERSION: cli_version();
	default: cli_usage_error("unknown option");
	}
}

static void parse(struct opts *o, int argc, char **argv)
{
	int c, idx = 0;

	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		const char *src = source_option(o, c);
		if (src) {
			if (o->source && strcmp(o->source, src))
				cli_usage_error("--%s and --%s: choose one source", o->source, src);
			o->source = src;
		} else if (!hsms_option(o, c)) {
			other_option(o, c, idx);
		}
	}
	if (!o->source)
		o->source = "sim";
}

/* What the options cannot mean together; ids kerf-validate would reject in every event. */
static void check_opts(const struct opts *o, int argc, char **argv)
{
	int hsms = !strcmp(o->source, "hsms");

	if (!hsms && (o->hsms_only || o->ho.profile))
		cli_usage_error("%s is for the GEM host (--connect or --listen hsms:)",
				o->hsms_only ? o->hsms_only : "--profile");
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
	int rc;

	log_init(argv[0]);
	acq_init(&a);
	memset(&o, 0, sizeof o);
	o.a = &a;
	o.ro.to_seq = UINT64_MAX;
	o.ro.max_line = o.lo.max_line = 64u << 20;
	o.run = getenv("KERF_RUN");
	simrun_opts_init(&o.so);
	acq_hsms_opts_init(&o.ho);
	parse(&o, argc, argv);
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

/*
 * kerf-tool: the simulated inspection tool as a SECS/GEM equipment over
 * HSMS-SS, for trying kerf against a live tool and for kerf's tests.
 * The work is lib/tool.c's; the lot is lib/simrun.c's, the same one
 * kerf-acquire --sim writes.
 */
#include "kerf.h"
#include "tool.h"
#include "validate.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"Usage: kerf-tool [--listen hsms:HOST:PORT] [OPTION]...\n"
	"       kerf-tool --connect hsms:HOST:PORT [OPTION]...\n"
	"Run the simulated inspection tool as a SECS/GEM equipment over HSMS-SS:\n"
	"a host selects it, sets up its reports, and starts lots with S2F41 START.\n"
	"\n"
	"Link:\n"
	"      --listen hsms:HOST:PORT   passive (the default, hsms:127.0.0.1:5000):\n"
	"                          wait for the host; port 0 picks a free one; the\n"
	"                          first line on standard output is {\"listen\":\"HOST:PORT\"}\n"
	"      --connect hsms:HOST:PORT  active: connect to a passive host\n"
	"      --device-id N       HSMS session id, 0..32767 (default 0)\n"
	"      --t3 T              reply timeout (default 45s)\n"
	"      --t5 T              between connect attempts (default 10s)\n"
	"      --t6 T              control transaction timeout (default 5s)\n"
	"      --t7 T              connected but not selected (default 10s)\n"
	"      --t8 T              between the bytes of one message (default 5s)\n"
	"      --linktest T        Linktest.req period while selected, 0 none (default 60s)\n"
	"      --hsms-trace FILE   write one NDJSON record per HSMS message to FILE\n"
	"GEM:\n"
	"      --profile NAME|FILE the tool profile: CEIDs, VIDs, alarms, remote\n"
	"                          commands (default kerf-sim)\n"
	"      --local             S1F17 makes the tool ONLINE LOCAL: it reports but\n"
	"                          refuses remote commands (default ONLINE REMOTE)\n"
	"      --refuse-online     answer S1F17 with ONLACK 1 (not allowed)\n"
	"      --model MDLN, --softrev REV\n"
	"                          answer S1F1 as this model and software revision\n"
	"                          (default the profile's)\n"
	"      --recipes LIST      the recipes S7F19 lists, comma-separated (default:\n"
	"                          the --recipe)\n"
	"      --mute SxFy         never answer the host's SxFy (repeatable)\n"
	"Simulated tool (START's LOTID, RECIPE and WAFERS override these):\n"
	"      --seed N            random seed; same seed, same lot (default 1)\n"
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
	"      --tool NAME         tool name in run_start (default kerf-sim)\n"
	"      --rate N            at most N dies per second (default: as fast as\n"
	"                          the host answers)\n"
	"      --truth FILE        write the injected defects of every lot as NDJSON\n"
	"      --pause-after N     take a PAUSE N dies after accepting it (default 0)\n"
	"      --stop-after N      take a STOP N dies after accepting it (default 0)\n"
	"      --inject SPEC       fault injection, repeatable:\n"
	"                          alarm@DIE:ALID:CATEGORY raises alarm ALID after the\n"
	"                          DIE-th die of a lot (CATEGORY is safety, irrecoverable,\n"
	"                          warning, attention or data_integrity); ignore@CMD[:N]\n"
	"                          accepts the Nth CMD (default: every) and never does it;\n"
	"                          delay@CMD:DIES does every CMD DIES dies later;\n"
	"                          refuse@CMD:HCACK[:N] answers the Nth CMD with HCACK\n"
	"      --run ID            run id of the first lot (default $KERF_RUN, else\n"
	"                          sim-SEED); later lots add -2, -3, ...\n"
	"Common:\n"
	"      --max-seconds T     stop after T (default: at SIGTERM or SIGINT only)\n"
	"  -h, --help              show this help and exit\n"
	"      --version           show the version and exit\n"
	"Times T are a number of seconds or a number with a unit: ms, s, m, h.\n";

enum {
	O_LISTEN = 256, O_CONNECT, O_DEVICE, O_T3, O_T5, O_T6, O_T7, O_T8, O_LINKTEST, O_TRACE, O_PROFILE,
	O_LOCAL, O_SIMOPT, O_INJECT, O_RUN, O_MAX, O_VERSION, O_REFUSE_ONLINE, O_MODEL, O_SOFTREV, O_RECIPES,
	O_MUTE,
};

static const struct option longopts[] = {
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "connect", required_argument, NULL, O_CONNECT },
	{ "device-id", required_argument, NULL, O_DEVICE },
	{ "t3", required_argument, NULL, O_T3 },
	{ "t5", required_argument, NULL, O_T5 },
	{ "t6", required_argument, NULL, O_T6 },
	{ "t7", required_argument, NULL, O_T7 },
	{ "t8", required_argument, NULL, O_T8 },
	{ "linktest", required_argument, NULL, O_LINKTEST },
	{ "hsms-trace", required_argument, NULL, O_TRACE },
	{ "profile", required_argument, NULL, O_PROFILE },
	{ "local", no_argument, NULL, O_LOCAL },
	{ "refuse-online", no_argument, NULL, O_REFUSE_ONLINE },
	{ "model", required_argument, NULL, O_MODEL },
	{ "softrev", required_argument, NULL, O_SOFTREV },
	{ "recipes", required_argument, NULL, O_RECIPES },
	{ "mute", required_argument, NULL, O_MUTE },
	SIMRUN_LONGOPTS(O_SIMOPT),
	{ "inject", required_argument, NULL, O_INJECT },
	{ "run", required_argument, NULL, O_RUN },
	{ "max-seconds", required_argument, NULL, O_MAX },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};

static uint64_t duration(const char *name, const char *s, uint64_t min_ms)
{
	uint64_t ms;

	if (parse_duration_ms(s, 1000, &ms) < 0 || ms < min_ms)
		cli_usage_error("--%s: '%s' is not a duration%s", name, s, min_ms ? " above 0" : "");
	return ms;
}

/* --listen or --connect: the mode and the address (new strings). */
static void address(struct tool_opts *o, enum hsms_mode mode, const char *spec, char **host, char **port)
{
	static int given;

	if (given++ && o->hsms.mode != mode)
		cli_usage_error("--listen and --connect: choose one");
	free(*host);
	free(*port);
	if (hsms_addr_parse(spec, host, port) != 0)
		cli_usage_error("'%s' is not an address hsms:HOST:PORT", spec);
	o->hsms.mode = mode;
	o->hsms.host = *host;
	o->hsms.port = *port;
}

int main(int argc, char **argv)
{
	struct tool_opts o;
	struct simrun_alarm al, *alarms = NULL;
	struct simrun_fault fault, *faults = NULL;
	char err[256], *host = NULL, *port = NULL, *run = NULL;
	const char *env_run = getenv("KERF_RUN");
	int c, idx = 0, rc;
	long v;

	log_init(argv[0]);
	tool_opts_init(&o);
	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		switch (c) {
		case O_LISTEN: address(&o, HSMS_PASSIVE, optarg, &host, &port); break;
		case O_CONNECT: address(&o, HSMS_ACTIVE, optarg, &host, &port); break;
		case O_DEVICE:
			if (parse_long(optarg, 0, 32767, &v) < 0)
				cli_usage_error("--device-id: '%s' is not a number in [0, 32767]", optarg);
			o.hsms.session_id = (uint16_t)v;
			break;
		case O_T3: o.hsms.t3_ms = duration("t3", optarg, 1); break;
		case O_T5: o.hsms.t5_ms = duration("t5", optarg, 1); break;
		case O_T6: o.hsms.t6_ms = duration("t6", optarg, 1); break;
		case O_T7: o.hsms.t7_ms = duration("t7", optarg, 1); break;
		case O_T8: o.hsms.t8_ms = duration("t8", optarg, 1); break;
		case O_LINKTEST: o.hsms.linktest_ms = duration("linktest", optarg, 0); break;
		case O_TRACE: o.trace = optarg; break;
		case O_PROFILE: o.profile = optarg; break;
		case O_LOCAL: o.local = 1; break;
		case O_REFUSE_ONLINE: o.refuse_online = 1; break;
		case O_MODEL: o.model = optarg; break;
		case O_SOFTREV: o.softrev = optarg; break;
		case O_RECIPES: o.recipes = optarg; break;
		case O_MUTE: {
			unsigned st, fn;
			char end;
			if (sscanf(optarg, "S%uF%u%c", &st, &fn, &end) != 2 || st > 127 || fn > 255 || o.nmute == 8)
				cli_usage_error("--mute: '%s' is not SxFy (at most 8)", optarg);
			o.mute[o.nmute][0] = st;
			o.mute[o.nmute][1] = fn;
			o.nmute++;
			break;
		}
		case O_SIMOPT:
			if (simrun_option(&o.sim, longopts[idx].name, optarg, err, sizeof err) < 0)
				cli_usage_error("%s", err);
			break;
		case O_INJECT:
			if ((rc = simrun_fault_parse(optarg, &fault, err, sizeof err)) < 0)
				cli_usage_error("%s", err);
			if (rc == 0) {
				faults = xrealloc(faults, (o.sim.nfaults + 1) * sizeof *faults);
				faults[o.sim.nfaults++] = fault;
				o.sim.faults = faults;
				break;
			}
			if (simrun_alarm_parse(optarg, &al, err, sizeof err) < 0)
				cli_usage_error("%s", err);
			alarms = xrealloc(alarms, (o.sim.nalarms + 1) * sizeof *alarms);
			alarms[o.sim.nalarms++] = al;
			o.sim.alarms = alarms;
			break;
		case O_RUN: o.run = optarg; break;
		case O_MAX: o.max_ms = duration("max-seconds", optarg, 1); break;
		case 'h': cli_help(usage);
		case O_VERSION: cli_version();
		default: cli_usage_error("unknown option");
		}
	}
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!*o.sim.lot || strlen(o.sim.lot) > VALIDATE_RUN_MAX)
		cli_usage_error("--lot: the lot id must be 1 to %d bytes", VALIDATE_RUN_MAX);
	if (!o.run)
		o.run = env_run && *env_run ? env_run : (run = xasprintf("sim-%llu", (unsigned long long)o.sim.cfg.seed));
	log_set_run(o.run);
	sig_init();
	rc = tool_run(&o);
	if (fshut(stdout, "standard output") != KERF_EX_OK && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	free(alarms);
	free(faults);
	free(host);
	free(port);
	free(run);
	return rc;
}

/*
 * kerf-acquire: the machine boundary.  One source (the simulated tool,
 * a recorded stream, a live connection or KLARF files) turned into the
 * kerf event stream on stdout.  The logic lives in lib/acquire_*.c and
 * lib/sim.c.
 */
#include "kerf.h"
#include "acquire_run.h"
#include "validate.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"Usage: kerf-acquire [--sim] [OPTION]...\n"
	"       kerf-acquire --replay FILE|- [--speed X] [--from-seq N] [--to-seq N]\n"
	"       kerf-acquire --listen unix:PATH|tcp:127.0.0.1:PORT [--ready-timeout T]\n"
	"       kerf-acquire --klarf FILE...\n"
	"Emit a wafer inspection run as kerf events (NDJSON) on standard output.\n"
	"\n"
	"Sources:\n"
	"      --sim               the built-in simulated inspection tool (default)\n"
	"      --replay FILE|-     re-emit a recorded event stream\n"
	"      --listen ADDR       accept one machine connection streaming events\n"
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
	"      --inject SPEC       fault injection, repeatable: alarm@DIE:ALID:CATEGORY,\n"
	"                          crash@N, stall@N:SECONDS, garbage@N, notready\n"
	"  -h, --help              show this help and exit\n"
	"      --version           show the version and exit\n";

enum {
	O_SIM = 256, O_REPLAY, O_LISTEN, O_KLARF, O_SIMOPT, O_SPEED, O_FROM, O_TO, O_MAXLINE, O_RUN,
	O_RECORD, O_READY, O_INJECT, O_VERSION,
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
	{"inject", required_argument, NULL, O_INJECT},
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

int main(int argc, char **argv)
{
	struct acq a;
	struct simrun_opts so;
	struct acq_replay_opts ro = {.to_seq = UINT64_MAX, .max_line = 64u << 20};
	struct acq_listen_opts lo = {.max_line = 64u << 20};
	const char *source = NULL, *run = getenv("KERF_RUN"), *record = NULL;
	char err[256];
	int c, rc, idx = 0;
	uint64_t u;

	log_init(argv[0]);
	acq_init(&a);
	simrun_opts_init(&so);

	while ((c = getopt_long(argc, argv, "h", longopts, &idx)) != -1) {
		const char *src = NULL;
		switch (c) {
		case O_SIM: src = "sim"; break;
		case O_REPLAY: src = "replay"; ro.path = optarg; break;
		case O_LISTEN: src = "listen"; lo.addr = optarg; break;
		case O_KLARF: src = "klarf"; break;
		case O_SIMOPT:
			if (simrun_option(&so, longopts[idx].name, optarg, err, sizeof err) < 0)
				cli_usage_error("%s", err);
			break;
		case O_SPEED: ro.speed = num_opt("--speed", optarg, 1e-6, 1e6); break;
		case O_FROM:
			if (parse_u64(optarg, &ro.from_seq) < 0)
				cli_usage_error("--from-seq: '%s' is not a number", optarg);
			break;
		case O_TO:
			if (parse_u64(optarg, &ro.to_seq) < 0)
				cli_usage_error("--to-seq: '%s' is not a number", optarg);
			break;
		case O_MAXLINE:
			if (parse_size(optarg, &u) < 0 || u < 1024)
				cli_usage_error("--max-line: '%s' is not a size of at least 1K", optarg);
			ro.max_line = lo.max_line = (size_t)u;
			break;
		case O_RUN: run = optarg; break;
		case O_RECORD: record = optarg; break;
		case O_READY:
			if (parse_duration_ms(optarg, 1000, &u) < 0)
				cli_usage_error("--ready-timeout: '%s' is not a duration", optarg);
			a.ready_timeout_s = (double)u / 1000.0;
			break;
		case O_INJECT:
			if (acq_inject_parse(&a, optarg, err, sizeof err) < 0)
				cli_usage_error("%s", err);
			break;
		case 'h': cli_help(usage);
		case O_VERSION: cli_version();
		default: cli_usage_error("unknown option");
		}
		if (src) {
			if (source && strcmp(source, src))
				cli_usage_error("--%s and --%s: choose one source", source, src);
			source = src;
		}
	}
	if (!source)
		source = "sim";
	if (strcmp(source, "klarf") && optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!strcmp(source, "klarf") && optind == argc)
		cli_usage_error("--klarf: no KLARF file given");
	if (ro.from_seq > ro.to_seq)
		cli_usage_error("--from-seq %llu is after --to-seq %llu", (unsigned long long)ro.from_seq,
				(unsigned long long)ro.to_seq);

	/* Ids kerf-validate would reject in every event: say so now. */
	if (run && strlen(run) > VALIDATE_RUN_MAX)
		cli_usage_error("--run: the run id is longer than %d bytes", VALIDATE_RUN_MAX);
	if (so.lot && (!*so.lot || strlen(so.lot) > VALIDATE_RUN_MAX))
		cli_usage_error("--lot: the lot id must be 1 to %d bytes", VALIDATE_RUN_MAX);
	if (run && *run) {
		acq_set_run(&a, run);
	} else if (!strcmp(source, "sim")) {
		char *r = xasprintf("sim-%llu", (unsigned long long)so.cfg.seed);
		acq_set_run(&a, r);
		free(r);
	}
	sig_init();
	sig_init_pause();
	if (record && acq_record_open(&a, record) < 0) {
		acq_release(&a);
		return KERF_EX_IOERR;
	}
	if (!strcmp(source, "sim"))
		rc = acq_run_sim(&a, &so);
	else if (!strcmp(source, "replay"))
		rc = acq_run_replay(&a, &ro);
	else if (!strcmp(source, "listen"))
		rc = acq_run_listen(&a, &lo);
	else
		rc = acq_run_klarf(&a, argv + optind, argc - optind);
	rc = acq_finish(&a, rc);
	acq_release(&a);
	return rc;
}

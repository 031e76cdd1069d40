/*
 * kerf-persist: durable, batched, idempotent storage of the event stream
 * in RUNDIR/journal/, a KLARF file per wafer and RUNDIR/summary.json.
 * Events go on to stdout only once their batch is durable.  The work is
 * lib/persist.c's; this is the command line.
 */
#include "kerf.h"
#include "persist.h"

#include <getopt.h>
#include <string.h>

static const char usage[] =
	"usage: kerf-persist [-C RUNDIR] [--batch N] [--batch-ms T] [--fsync batch|none]\n"
	"                    [--segment-size SIZE] [--max-line N] [--downstream-optional]\n"
	"       kerf-persist --verify [-C RUNDIR]\n"
	"\n"
	"Store the event stream on stdin durably in RUNDIR/journal/ and pass each\n"
	"event on to stdout once its batch is durable.  Events whose id is already\n"
	"journaled are passed on but not stored again.  Writes RUNDIR/klarf/ at each\n"
	"wafer_end and RUNDIR/summary.json at the end of input.\n"
	"\n"
	"  -C, --rundir RUNDIR    the run directory (default $KERF_RUNDIR)\n"
	"      --batch N          close a batch at N events (default 1000)\n"
	"      --batch-ms T       ... or T after its first event (default 20ms)\n"
	"      --fsync POLICY     batch: fsync each batch (default); none: never\n"
	"      --segment-size SIZE\n"
	"                         start a new segment past SIZE bytes (default 64M)\n"
	"      --max-line N       reject lines longer than N bytes (default 64M)\n"
	"      --downstream-optional\n"
	"                         a closed stdout is logged once; persisting goes on\n"
	"      --verify           check every commit of RUNDIR's journal and exit\n"
	"  -h, --help             this text\n"
	"  -V, --version          the version\n";

int main(int argc, char **argv)
{
	enum { OPT_BATCH = 256, OPT_BATCH_MS, OPT_FSYNC, OPT_SEGSIZE, OPT_MAXLINE, OPT_DOWNOPT, OPT_VERIFY };
	static const struct option opts[] = {
		{ "rundir", required_argument, NULL, 'C' },
		{ "batch", required_argument, NULL, OPT_BATCH },
		{ "batch-ms", required_argument, NULL, OPT_BATCH_MS },
		{ "fsync", required_argument, NULL, OPT_FSYNC },
		{ "segment-size", required_argument, NULL, OPT_SEGSIZE },
		{ "max-line", required_argument, NULL, OPT_MAXLINE },
		{ "downstream-optional", no_argument, NULL, OPT_DOWNOPT },
		{ "verify", no_argument, NULL, OPT_VERIFY },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct persist_opts o;
	int c, do_verify = 0;

	log_init(argv[0]);
	persist_opts_init(&o);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "C:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'C':
			o.rundir = optarg;
			break;
		case OPT_BATCH:
			if (parse_long(optarg, 1, 10000000, &o.batch) != 0)
				cli_usage_error("--batch: '%s' is not a number from 1 to 10000000", optarg);
			break;
		case OPT_BATCH_MS:
			if (parse_duration_ms(optarg, 1, &o.batch_ms) != 0 || o.batch_ms > 3600000)
				cli_usage_error("--batch-ms: '%s' is not a duration up to 1h", optarg);
			break;
		case OPT_FSYNC:
			if (strcmp(optarg, "batch") == 0)
				o.journal.fsync = JOURNAL_FSYNC_BATCH;
			else if (strcmp(optarg, "none") == 0)
				o.journal.fsync = JOURNAL_FSYNC_NONE;
			else
				cli_usage_error("--fsync: '%s' is not batch or none", optarg);
			break;
		case OPT_SEGSIZE:
			if (parse_size(optarg, &o.journal.segment_size) != 0 || o.journal.segment_size < 1)
				cli_usage_error("--segment-size: '%s' is not a size", optarg);
			break;
		case OPT_MAXLINE:
			if (parse_size(optarg, &o.max_line) != 0 || o.max_line < 64 || o.max_line > (1u << 30))
				cli_usage_error("--max-line: '%s' is not a size from 64 to 1G", optarg);
			break;
		case OPT_DOWNOPT:
			o.downstream_optional = 1;
			break;
		case OPT_VERIFY:
			do_verify = 1;
			break;
		case 'h':
			cli_help(usage);
		case 'V':
			cli_version();
		default:
			cli_usage_error("unrecognized option or missing argument: '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!o.rundir || !*o.rundir)
		cli_usage_error("no run directory: give -C RUNDIR or set KERF_RUNDIR");
	if (do_verify)
		return persist_verify(o.rundir);
	return persist_run(&o);
}

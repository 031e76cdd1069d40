/*
 * kerf-persist: durable, batched, idempotent storage of the event stream
 * in RUNDIR/journal/, a KLARF file per wafer and RUNDIR/summary.json.
 * Events go on to stdout only once their batch is durable.  The work is
 * lib/persist.c's; this is the command line.
 */
#include "log.h"
#include "cli.h"
#include "persist.h"

#include <getopt.h>

#include "banned.h"

static const char usage[] =
	"usage: kerf-persist [-C RUNDIR] [--batch N] [--batch-ms T] [--fsync batch|none]\n"
	"                    [--segment-size SIZE] [--max-line SIZE] [--downstream-optional]\n"
	"       kerf-persist --verify [-C RUNDIR]\n"
	"\n"
	"Store the event stream on stdin durably in RUNDIR/journal/ and pass each\n"
	"event on to stdout once its batch is durable.  Events whose id is already\n"
	"journaled are passed on but not stored again.  Writes RUNDIR/klarf/ at each\n"
	"wafer_end and RUNDIR/summary.json at the end of input.\n"
	"\n";

static const struct cli_choice fsync_policies[] = {
	{ "batch", JOURNAL_FSYNC_BATCH }, { "none", JOURNAL_FSYNC_NONE }, { NULL, 0 },
};

int main(int argc, char **argv)
{
	struct persist_opts o;
	int fsync_policy, do_verify = 0;
	const struct cli_opt opts[] = {
		OPT_STRING('C', "rundir", "RUNDIR", &o.rundir, "the run directory (default $KERF_RUNDIR)"),
		OPT_LONG(0, "batch", "N", &o.batch, 1, 10000000, "close a batch at N events (default 1000)"),
		OPT_MS(0, "batch-ms", "T", &o.batch_ms, 1, 3600000, "... or T after its first event (default 20ms)"),
		OPT_ENUM(0, "fsync", "POLICY", &fsync_policy, fsync_policies,
			 "batch: fsync each batch (default); none: never"),
		OPT_SIZE(0, "segment-size", "SIZE", &o.journal.segment_size, 1, CLI_NOMAX,
			 "start a new segment past SIZE bytes (default 64M)"),
		CLI_MAX_LINE(0, &o.max_line),
		OPT_BOOL(0, "downstream-optional", &o.downstream_optional,
			 "a closed stdout is logged once; persisting goes on"),
		OPT_BOOL(0, "verify", &do_verify, "check every commit of RUNDIR's journal and exit"),
		OPT_HELP("this text"),
		OPT_VERSION('V', "the version"),
		OPT_END(),
	};
	const struct cli_spec spec = { .usage = usage, .opts = opts, .width = 25 };

	log_init(argv[0]);
	persist_opts_init(&o);
	fsync_policy = (int)o.journal.fsync;
	if (cli_parse(&spec, argc, argv, NULL) < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	o.journal.fsync = fsync_policy;
	if (!o.rundir || !*o.rundir)
		cli_usage_error("no run directory: give -C RUNDIR or set KERF_RUNDIR");
	if (do_verify)
		return persist_verify(o.rundir);
	return persist_run(&o);
}

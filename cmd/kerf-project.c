/*
 * kerf-project: the operator's view of a run.  Drains the persisted
 * events on stdin as fast as they come, folds them into the project
 * model, and at most every --interval draws the terminal dashboard (or
 * writes one NDJSON snapshot); at the end writes the wafer maps and the
 * HTML index into the run directory.
 */
#include "cli.h"
#include "log.h"
#include "project_run.h"

#include <getopt.h>

#include "banned.h"

static const char usage[] =
	"Usage: kerf-project [-C RUNDIR] [--interval MS] [--snapshots] [--no-maps]\n"
	"                    [--max-line SIZE]\n"
	"       kerf-project --svg-only [-C RUNDIR] [FILE...]\n"
	"Show a run as it happens, from the persisted events on standard input and\n"
	"the supervisor's RUNDIR/status.json; at the end draw RUNDIR/wafermap/*.svg\n"
	"and RUNDIR/index.html.\n"
	"\n";

static const char usage_tail[] =
	"\n"
	"Standard output is a terminal: a live dashboard.  Otherwise, a short final\n"
	"summary (or the snapshots with --snapshots).\n";

int main(int argc, char **argv)
{
	struct project_opts o;
	const struct cli_opt options[] = {
		OPT_STRING('C', "rundir", "RUNDIR", &o.rundir, "run directory (default $KERF_RUNDIR, else .)"),
		OPT_MS('i', "interval", "MS", &o.interval_ms, 100, 1000,
		       "redraw at most every MS milliseconds, 100..1000\n(default 200)"),
		OPT_BOOL('s', "snapshots", &o.snapshots,
			 "write one NDJSON snapshot per interval to standard\noutput (when something changed) instead of the\n"
			 "dashboard or the final summary"),
		OPT_BOOL('n', "no-maps", &o.no_maps, "do not write the wafer maps and the index"),
		CLI_MAX_LINE('m', &o.max_line),
		OPT_BOOL(0, "svg-only", &o.svg_only,
			 "only draw the maps, from the FILEs given ('-' for\nstandard input) or else from RUNDIR/journal/"),
		OPT_HELP("show this help and exit"),
		OPT_VERSION('V', "show the version and exit"),
		OPT_END(),
	};
	const struct cli_spec spec = { .usage = usage, .opts = options, .tail = usage_tail, .width = 24 };

	log_init(argv[0]);
	project_opts_init(&o);
	cli_parse(&spec, argc, argv, NULL);
	if (optind < argc && !o.svg_only)
		cli_usage_error("unexpected argument '%s' (events are read from standard input)", argv[optind]);
	if (o.svg_only && (o.snapshots || o.no_maps))
		cli_usage_error("--svg-only draws the maps only; it takes no --snapshots or --no-maps");
	return project_run(&o, argc - optind, argv + optind);
}

/*
 * project_run.h: kerf-project's loop.  It drains the persisted events on
 * standard input as fast as they come into the project model (project.h),
 * draws the terminal dashboard or writes an NDJSON snapshot at most every
 * interval, and at the end writes the wafer maps and the HTML index
 * (svg.h) and the final summary; or, with svg_only, only draws the maps
 * from files or from the run's journal.
 *
 * Steps: project_opts_init, set the fields (from the command line);
 * project_run, whose result is the exit status.
 */
#ifndef KERF_PROJECT_RUN_H
#define KERF_PROJECT_RUN_H

#include <stdint.h>

struct project_opts {
	const char *rundir;    /* the run directory (status.json, wafermap/); NULL: $KERF_RUNDIR, else "." */
	uint64_t interval_ms;  /* redraw at most every interval_ms (default 200) */
	int snapshots;         /* NDJSON snapshots on stdout instead of the dashboard or summary */
	int no_maps;           /* no wafer maps, no index */
	int svg_only;          /* only draw the maps, from files (or the journal) */
	uint64_t max_line;     /* longer input lines are rejected (too_long) */
};

void project_opts_init(struct project_opts *o);

/*
 * Run kerf-project; the exit status.  With svg_only, 'files' (nfiles of
 * them, "-" for standard input) are the events; none means RUNDIR's
 * journal.
 */
int project_run(struct project_opts *o, int nfiles, char **files);

#endif

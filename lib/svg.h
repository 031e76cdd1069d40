/*
 * svg.h: the run's pictures, drawn from the project model: one SVG wafer
 * map per wafer (outline with notch, die grid with the inspected dies,
 * defects coloured by class and sized by area, a legend, counts and
 * density) and an HTML index that shows every map with its numbers and
 * opens from the disk with no server (maps linked by relative path).
 * Every file is written atomically (temporary file, rename).
 *
 * A wafer's file is RUNDIR/wafermap/ plus its w->file (see project.h).
 *
 * Steps: svg_wafer_write(p, w, rundir) when a wafer finishes (the
 * project's wafer_done hook: the wafer's details are freed right after);
 * svg_write_all(p, rundir) at the end for the wafers not finished yet and
 * the index.
 */
#ifndef KERF_SVG_H
#define KERF_SVG_H

#include <stdio.h>

#include "project.h"

#define SVG_MAX_MARKS 20000  /* defect markers drawn per map; more are thinned */

/* Write one wafer's map as SVG to f; 0, or -1 on a write error. */
int svg_wafer(FILE *f, const struct project *p, const struct project_wafer *w);
/* Write the HTML index to f (maps at wafermap/NAME.svg); 0 or -1. */
int svg_index(FILE *f, const struct project *p);

/* RUNDIR/wafermap/<w->file>, atomically; 0, or -1 after logging why. */
int svg_wafer_write(const struct project *p, const struct project_wafer *w, const char *rundir);

/*
 * RUNDIR/wafermap/<w->file> for every wafer not finished (the finished
 * ones were drawn when they finished, and their details are gone) and
 * RUNDIR/index.html for all.  Returns 0, or -1 after logging the first
 * failure (the rest is still attempted).
 */
int svg_write_all(const struct project *p, const char *rundir);

#endif

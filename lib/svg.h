/*
 * svg.h: the run's pictures, drawn from the project model: one SVG wafer
 * map per wafer (outline with notch, die grid with the inspected dies,
 * defects coloured by class and sized by area, a legend, counts and
 * density) and an HTML index that shows every map with its numbers and
 * opens from the disk with no server (maps linked by relative path).
 * Every file is written atomically (temporary file, rename).
 *
 * Steps: svg_write_all(p, rundir) at the end of the run; or
 * svg_wafer_write / svg_index_write one by one.
 */
#ifndef KERF_SVG_H
#define KERF_SVG_H

#include <stdio.h>

#include "project.h"

#define SVG_MAX_MARKS 20000  /* defect markers drawn per map; more are thinned */
#define SVG_NAME_MAX 120     /* bytes of a wafer id kept in its file name */

/*
 * The file names of the wafers' maps inside RUNDIR/wafermap/, in the
 * order of p->wafers: the safe name of the id plus ".svg" ("W01.svg"),
 * with a hash of the id added when two ids make the same safe name.
 * A NULL-terminated array; free it with svg_file_names_free.
 */
char **svg_file_names(const struct project *p);
void svg_file_names_free(char **names);

/* Write one wafer's map as SVG to f; 0, or -1 on a write error. */
int svg_wafer(FILE *f, const struct project *p, const struct project_wafer *w);
/* Write the HTML index to f (maps at wafermap/NAME.svg); 0 or -1. */
int svg_index(FILE *f, const struct project *p);

/*
 * RUNDIR/wafermap/<safe wafer>.svg for every wafer and RUNDIR/index.html.
 * Returns 0, or -1 after logging the first failure (the rest is still
 * attempted).
 */
int svg_write_all(const struct project *p, const char *rundir);

#endif

/*
 * wafer.h: one wafer's account, the one definition of what kerf says of a
 * wafer wherever it says it: kerf-detect's wafer_summary, kerf-persist's
 * summary.json and KLARF files, kerf-project's maps, index, summary and
 * snapshots.  It owns the wafer's die table (which dies were inspected,
 * how many defects each has), its counts, the die count its density
 * divides by, the density itself, and which events are late.
 *
 * The die count: a wafer's dies are its inspected dies, the distinct
 * (col, row) of its die and die_done events; when it has none (a KLARF
 * import, whose wafer_end says how many dies its test plan held), its
 * wafer_end's "dies"; else 0.  Its defective dies are the distinct dies
 * of its defect events.
 *
 * The density: defects per cm² of inspected area, that is the wafer's
 * defects divided by its dies (above) times the area of one die (the die
 * pitch, x times y, in µm²; 1 cm² = 1e8 µm²); 0 when either is 0.
 *
 * Late: a wafer's account is open from its first event to its wafer_end.
 * After that, one wafer_summary still belongs to it (kerf-detect writes
 * it right after the wafer_end); any other die, die_done, defect,
 * wafer_end or wafer_summary for the wafer is late: counted as an event
 * of the run and in the wafer's late count, never in its own numbers.  A
 * wafer_start after the wafer_end is a new pass of the wafer
 * (WAFER_AGAIN): kerf-persist starts the account over (its KLARF is
 * replaced), kerf-project, which draws one map per wafer id, counts the
 * new pass as late.
 *
 * Steps: wafer_acct_init; wafer_acct_fate for each event of the wafer,
 * then, for those that are its own, wafer_acct_start, wafer_acct_die,
 * wafer_acct_defect, wafer_acct_end or wafer_acct_summary (or
 * wafer_acct_late for a late one); wafer_acct_forget_dies once the die
 * table is no longer needed (the counts stay); wafer_acct_release.
 */
#ifndef KERF_WAFER_H
#define KERF_WAFER_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define WAFER_INDEX_MAX 1000000  /* die indices 0..WAFER_INDEX_MAX-1 go in the die table */

struct wafer_die {
	int32_t col, row;
	uint32_t defects;   /* defect events on this die */
	uint8_t inspected;  /* a die or die_done event seen */
	uint8_t used;       /* hash slot in use */
};

struct wafer_acct {
	long planned_dies;      /* wafer_start's "dies", -1 when unknown */
	long end_dies;          /* wafer_end's "dies", -1 when unknown */
	int started;            /* its wafer_start came */
	int ended;              /* its wafer_end came: the account is closed */
	int summarised;         /* a wafer_summary of it came */
	uint64_t defects;       /* its defect events */
	size_t inspected;       /* dies with inspected set */
	size_t defective;       /* dies with defects > 0 */
	uint64_t late;          /* its late events (see above) */
	uint64_t untracked;     /* die and defect events on dies past max_dies */
	long col_max, row_max;  /* largest die indices seen, -1 */
	/* The die table: an open-addressing hash by (col, row). */
	struct wafer_die *dies;
	size_t dcap, ndies;
	size_t max_dies;        /* distinct dies tracked, 0: no limit */
};

enum wafer_fate {
	WAFER_OWN,    /* counts in the wafer's account */
	WAFER_LATE,   /* after its wafer_end: counts as late only */
	WAFER_AGAIN,  /* a wafer_start after its wafer_end: a new pass */
};

/* max_dies: distinct dies the table holds (0: no limit); events on
 * further dies count as defects but not as inspected or defective dies. */
void wafer_acct_init(struct wafer_acct *a, size_t max_dies);
void wafer_acct_release(struct wafer_acct *a);
/* Free the die table; the counts stay. */
void wafer_acct_forget_dies(struct wafer_acct *a);
/* The one definition of late (see above) for an event of type t. */
enum wafer_fate wafer_acct_fate(const struct wafer_acct *a, enum event_type t);

/* Fold in the wafer's own events (dies: wafer_start's or wafer_end's "dies", -1 when absent). */
void wafer_acct_start(struct wafer_acct *a, long dies);
void wafer_acct_end(struct wafer_acct *a, long dies);
void wafer_acct_summary(struct wafer_acct *a);
/* A die or die_done event; 1 if the die is newly inspected. */
int wafer_acct_die(struct wafer_acct *a, long col, long row);
/* n defect events on die (col, row); an index outside the table's range
 * counts the defects only.  Returns the die, or NULL when not tracked. */
const struct wafer_die *wafer_acct_defect(struct wafer_acct *a, long col, long row, uint32_t n);
void wafer_acct_late(struct wafer_acct *a);

/* A die of the table; NULL when never seen. */
const struct wafer_die *wafer_acct_die_get(const struct wafer_acct *a, long col, long row);
/* The die count the density divides by (see above). */
long wafer_acct_dies(const struct wafer_acct *a);
/* The density of the account: defects / (dies × die_area_um2 / 1e8). */
double wafer_acct_density(const struct wafer_acct *a, double die_area_um2);
/* The one formula, for those who count elsewhere (a KLARF file). */
double wafer_density_cm2(uint64_t defects, long dies, double die_area_um2);

#endif

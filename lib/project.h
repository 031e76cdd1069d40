/*
 * project.h: the operator's model of a run, the one thing kerf-project's
 * views (terminal dashboard, NDJSON snapshots, final summary, wafer-map
 * SVG, HTML index) are drawn from.  Events fold into it one line at a
 * time (counts per wafer and class, the current wafer, defect positions,
 * inspected dies, alarms); the run's state and the stages' figures come
 * only from the supervisor's status.json, read with project_status_read.
 *
 * Folding is the hot path: defect and die_done lines are looked at with
 * event_peek, without building a JSON tree; only rare events (run_start,
 * alarms, ends) are parsed whole.  Input may lack fields: a missing field
 * is a default, never a crash.
 *
 * Memory stays flat however long the run: a wafer's die table and defect
 * positions (the map's details) live only until the wafer is finished,
 * that is when it has ended (wafer_end) and another wafer starts.  Then
 * the wafer_done hook draws its map and the details are freed; what stays
 * per wafer is a few counters and strings (id, map file name, slot, counts
 * per class, dies, density, signature, times).  A wafer's numbers are its
 * account (lib/wafer.h), so the maps say what summary.json and the KLARF
 * files say: events for a wafer after its wafer_end are late (wafer.h),
 * counted in the run's totals and in the wafer's late count, never in the
 * wafer's own numbers (which are those of its map); a new pass of a wafer
 * (a wafer_start after its wafer_end) is late as a whole, since its map is
 * drawn once.  A wafer that never ends keeps its details until the end.
 *
 * Steps: project_init; set wafer_done (optional); project_feed for every
 * line; project_status_read and project_tick at each redraw; views read
 * the struct (read only); project_release.
 */
#ifndef KERF_PROJECT_H
#define KERF_PROJECT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wafer.h"

#define PROJECT_ALARMS 8             /* last alarms kept */
#define PROJECT_CLASSES 64           /* distinct classes; more count as "other" */
#define PROJECT_WAFERS 4096          /* distinct wafers; more are not mapped */
#define PROJECT_DEFECTS_KEPT 200000  /* positions kept per wafer for the map (16 B each) */
#define PROJECT_DIES_KEPT 250000     /* distinct dies tracked per wafer (8 MiB of table at most) */
#define PROJECT_GRID_MAX 250000      /* dies of a grid walked one by one; past it, views draw only dies seen */
#define PROJECT_NAME_MAX 120         /* bytes of a wafer id kept in its map's file name */

/* What project_feed made of a line. */
enum project_fed {
	PROJECT_USED,     /* an event the model folded in */
	PROJECT_IGNORED,  /* an event of no interest (or a line without a type) */
	PROJECT_BAD,      /* not a JSON object */
};

struct project_geom {
	int known;                /* run_start gave diameter, pitch and grid */
	double diameter_mm, edge_mm;
	double pitch_x, pitch_y;  /* µm */
	double origin_x, origin_y;/* µm, lower-left of die (0,0) from the centre */
	long cols, rows;
};

struct project_defect {
	float wx, wy;      /* µm from the wafer centre, y up */
	float area;        /* µm², 0 when unknown */
	uint16_t cls;      /* index into project.classes */
};

struct project_wafer {
	char *id;
	char *file;               /* its map's name in RUNDIR/wafermap/ ("W01.svg"), unique in the run */
	long slot;                /* -1 when unknown */
	/* Its account (lib/wafer.h): dies, defects, density, late events;
	 * the die table in it is part of the details below. */
	struct wafer_acct acct;
	uint64_t *class_counts;      /* by class index, ncc of them (project_wafer_class_count) */
	size_t ncc;
	/* The details, freed when the wafer finishes: */
	struct project_defect *dv;   /* kept defect positions (at most PROJECT_DEFECTS_KEPT) */
	size_t nd, capd;
	int finished;                /* map drawn, details freed (see above) */
	char *signature;             /* its wafer_summary's signature, or NULL */
	char *t_start, *t_end;
};

struct project_class {
	char *name;
	long num;          /* class_num, -1 when unknown */
	uint64_t count;
};

struct project_alarm {
	char *t, *alid, *text, *category;
	int set, critical;
};

struct project {
	char *run, *lot, *recipe, *tool, *source;
	long wafers_planned;          /* -1 when unknown */
	struct project_geom g;
	char *tool_state;             /* last state event (the tool's, not the run's) */
	char *end_status;             /* run_end.status, or NULL */
	char *t_first, *t_last;       /* machine time of the first and last event */

	struct project_wafer *wafers;
	size_t nwafers, capw;
	long cur;                     /* index of the current wafer, -1 */
	long col_max, row_max;        /* largest die indices seen, -1 */
	long last_hit;                /* lookup cache */

	struct project_class classes[PROJECT_CLASSES + 1];
	size_t nclasses;              /* classes[nclasses] is not used; "other" is classes[PROJECT_CLASSES] */

	struct project_alarm alarms[PROJECT_ALARMS]; /* ring, newest at (nalarms-1) % PROJECT_ALARMS */
	uint64_t nalarms, alarms_set, alarms_critical;

	uint64_t lines, events, ignored, bad;
	uint64_t defects, dies_done, wafers_ended, wafers_finished, late;
	uint64_t version;             /* bumps whenever the model changes */

	/* Rates (per second), updated by project_tick. */
	double rate_events, rate_defects, rate_dies;
	uint64_t rate_ms, rate_events0, rate_defects0, rate_dies0;

	/* The supervisor's status.json, as last read (NULL if none). */
	json_t *status;
	uint64_t status_version;      /* bumps when a new status was read */
	long long status_mtime_ns;
	long long status_size;
	uint64_t start_ms;
	/* The monotonic time of the last project_tick, 0 before the first. */
	uint64_t tick_ms;

	/* log10 of the smallest and largest defect area (µm²) kept so far, for marker sizes. */
	double area_lo, area_hi;
	int area_any;

	/* Called when a wafer finishes, before its details are freed (NULL: just free them). */
	void (*wafer_done)(const struct project *p, const struct project_wafer *w, void *arg);
	void *wafer_done_arg;
};

void project_init(struct project *p);
void project_release(struct project *p);

/* Fold one line (NUL-terminated at line[len]) into the model. */
enum project_fed project_feed(struct project *p, const char *line, size_t len);

/*
 * Re-read 'path' (status.json) if it changed since the last call.
 * A missing or half-written file leaves the last status in place.
 * Returns 1 if a new status was read, else 0.
 */
int project_status_read(struct project *p, const char *path);

/* Update the rates and note the time; call at each redraw with the
 * monotonic time in ms (the time a snapshot then reports). */
void project_tick(struct project *p, uint64_t now_ms);

/* The run state from status.json ("running", ...), or NULL when unknown. */
const char *project_run_state(const struct project *p);
/* The run id: status.json's "run", else run_start's, else NULL. */
const char *project_run_id(const struct project *p);

/* Geometry to draw with: run_start's, or one guessed from what was seen. */
void project_geom_for(const struct project *p, struct project_geom *out);
/* Die (col,row) lies wholly inside the usable circle (radius - edge). */
int project_die_on_wafer(const struct project_geom *g, long col, long row);
/* The wafer's density in defects/cm² (wafer.h), over run_start's die pitch (0 without one). */
double project_wafer_density(const struct project *p, const struct project_wafer *w);
/* Defects of class index i on a wafer (its own, not the late ones). */
uint64_t project_wafer_class_count(const struct project_wafer *w, size_t i);
/* The class name of index i ("other" for the overflow slot). */
const char *project_class_name(const struct project *p, size_t i);

/* A snapshot object (new reference): see kerf-project(1) SNAPSHOTS. */
json_t *project_snapshot(const struct project *p, int final);
/* The short final summary as text. */
void project_summary(const struct project *p, FILE *f);

/* A stage's number by any of the given keys (in the stage object, its
 * "counters" or "stats" object); 1 if found. */
int project_stage_num(const json_t *stage, const char *const *keys, double *out);
/* A stage's input queue fill: bytes used and capacity (cap 0 if unknown); 1 if any. */
int project_stage_queue(const json_t *stage, double *used, double *cap);

#endif

/*
 * reprocess.h: batch reprocessing of recorded runs (kerf reprocess).
 * It owns the batch directory OUTDIR: the list of recorded runs
 * (inputs.tsv, one "NAME<TAB>PATH" a line), the job settings
 * (settings.json), GNU parallel's joblog,
 * results.ndjson (one record per job, appended by the jobs themselves)
 * and one run directory OUTDIR/NAME per recorded run.  GNU parallel is
 * the scheduler; a job is `kerf reprocess --task N`, which runs one
 * `kerf run` of the default pipeline with kerf-acquire replaying the
 * recorded stream (or importing a directory of KLARF files).
 *
 * A batch: reprocess_init; set the fields; reprocess_plan with the
 * RECORDED arguments (none: reuse inputs.tsv, when resuming);
 * reprocess_batch (runs GNU parallel, prints the table; returns the exit
 * status); reprocess_release.
 * One job (what GNU parallel runs, or a scheduler's array task):
 * reprocess_init, set the fields, reprocess_task(r, N).
 * The table alone: reprocess_report.
 */
#ifndef KERF_REPROCESS_H
#define KERF_REPROCESS_H

#include <jansson.h>
#include <stddef.h>

#include "strvec.h"

enum rp_stage { RP_ACQUIRE, RP_VALIDATE, RP_DETECT, RP_PERSIST, RP_PROJECT, RP__STAGES };
enum rp_resume { RP_FRESH, RP_RESUME, RP_RESUME_FAILED };

struct rp_entry {
	char *name;   /* OUTDIR/name is its run directory */
	char *path;   /* absolute: a stream file or a directory of KLARF files */
};

struct reprocess {
	/* Set by the caller. */
	const char *outdir;           /* -o */
	const char *jobs;             /* parallel -j, verbatim; NULL: parallel's default */
	const char *halt;             /* parallel --halt; NULL: "never" */
	struct strvec sshlogin;      /* parallel --sshlogin, each */
	const char *slf;              /* parallel --slf */
	struct strvec parallel_args; /* more arguments for parallel */
	enum rp_resume resume;
	int dry_run;                  /* print the parallel command, run nothing */
	/* Job settings: the same for every job of a batch. */
	struct strvec stage_args[RP__STAGES];
	int no_project;
	int lenient;                  /* kerf-validate without --strict */
	const char *deadline, *stall; /* kerf run --deadline, --stall */
	/* Private. */
	char *out;                    /* outdir made absolute */
	struct strvec saved;         /* owns settings read from settings.json */
	struct rp_entry *e;
	size_t n;
};

/*
 * One record of OUTDIR/results.ndjson (kerf(1), BATCH DIRECTORY FILES):
 * a job writes it with rp_result_json, the table reads it back with
 * rp_result_read; both by one table of its members in reprocess.c.
 * A member that is null (or, read back, missing or of another type) is
 * NULL, or an rp_int that is not set.
 */
struct rp_int {
	int set;
	json_int_t v;
};
struct rp_result {
	struct rp_int v;              /* 1 */
	const char *t;                /* the wall clock at the job's end */
	const char *name, *recorded, *kind, *rundir;
	struct rp_int task;
	const char *host, *outcome;
	struct rp_int exit_code;
	const char *stage, *how, *reason;
	struct rp_int events, wafers, dies, defects, wall_ms;
	json_t *argv;                 /* kerf run's arguments, an array */
};

/* The record as JSON, its members in kerf(1)'s order (new reference;
 * r is only read); NULL when a value cannot be had (a string that is not
 * UTF-8): no record rather than one without that member. */
json_t *rp_result_json(const struct rp_result *r);
/* Read rec into *r (its strings and argv borrowed from rec): 0; -1, *r
 * empty, when rec is not an object. */
int rp_result_read(const json_t *rec, struct rp_result *r);
/* The name of the i-th member, in order; NULL past the last. */
const char *rp_result_key(size_t i);

void reprocess_init(struct reprocess *r);
void reprocess_release(struct reprocess *r);
/*
 * Name each recorded run and write OUTDIR/inputs.tsv (creating OUTDIR).
 * A file is a recorded stream, named after its base name without
 * .ndjson (RUNDIR/acquired.ndjson after RUNDIR); a directory holding
 * acquired.ndjson is that run; any other directory is a KLARF import.
 * Repeated names get -2, -3, ...  A fresh batch saves its settings in
 * settings.json.  When resuming, no paths reuse the saved list and paths
 * must match it; no settings reuse the saved ones and settings must
 * match them.  Returns an exit code (0 on success; the reason is
 * logged).
 */
int reprocess_plan(struct reprocess *r, char *const paths[], int npaths);
/*
 * For kerf watch, which keeps a batch's list itself (lib/watch.h):
 * the name of a run from a file's base name (without .ndjson, .jsonl or
 * .json, made safe; caller frees); that name, or NAME-2, NAME-3, ... if
 * it is taken among e[0..n) or reserved in OUTDIR (caller frees); and
 * OUTDIR/inputs.tsv written atomically from e[0..n): 0, or -1 (logged).
 */
char *reprocess_file_name(const char *base);
char *reprocess_unique_name(const struct rp_entry *e, size_t n, const char *name);
int reprocess_write_inputs(const char *out, const struct rp_entry *e, size_t n);
/* True when spec is a --halt value we pass on: never, or
 * soon|now,fail|success|done=N[%] (GNU parallel's form). */
int reprocess_halt_ok(const char *spec);
/* Run the batch with GNU parallel and print the table; exit code. */
int reprocess_batch(struct reprocess *r);
/* Run job n (1-based line of OUTDIR/inputs.tsv) and append its record. */
int reprocess_task(struct reprocess *r, long n);
/* The table of the batch in OUTDIR to stdout; 0 when every run completed. */
int reprocess_report(struct reprocess *r);

#endif

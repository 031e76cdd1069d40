/*
 * failpoint.h: named points where a test makes a program die at an exact
 * moment, so that crash tests reach the windows where durability is
 * decided by construction and not by the luck of a timed kill.
 *
 *   KERF_FAILPOINT=NAME[:N][,NAME[:N]...]
 *
 * makes the program kill itself with SIGKILL the Nth time (default 1) it
 * reaches point NAME, after one line on stderr naming the point.  The
 * variable is read once by log_init(), which every kerf program calls
 * first; a name not in the table below is a usage error (exit 64), so a
 * typo in a test cannot silently test nothing.  The variable is
 * inherited: under `kerf run` it reaches every stage, and each program
 * counts its own reaches.  kerf(7) lists the points (keep it in step with
 * the table).
 *
 * Always compiled in: when the variable is unset, a point costs one
 * well-predicted branch on a static flag.
 */
#ifndef KERF_FAILPOINT_H
#define KERF_FAILPOINT_H

/* X(ID, "name", "program", "where it is") */
#define KERF_FAILPOINTS(X)                                                                      \
	X(JOURNAL_TORN, "journal-torn", "kerf-persist",                                         \
	  "a batch half written to the journal segment: a record cut in the middle")             \
	X(JOURNAL_UNCOMMITTED, "journal-uncommitted", "kerf-persist",                            \
	  "a batch's events written to the segment, its commit record not")                      \
	X(JOURNAL_UNSYNCED, "journal-unsynced", "kerf-persist",                                  \
	  "a batch and its commit record written, before fdatasync")                             \
	X(JOURNAL_SYNCED, "journal-synced", "kerf-persist",                                      \
	  "after fdatasync (the batch is durable), before anything of it is passed on")          \
	X(ACK_TORN, "ack-torn", "kerf-persist",                                                  \
	  "half of a durable batch's events passed on to standard output")                       \
	X(ACK_DONE, "ack-done", "kerf-persist",                                                  \
	  "a batch wholly passed on, before the next input line is read")                        \
	X(KLARF_BEFORE_RENAME, "klarf-before-rename", "kerf-persist",                            \
	  "a wafer's KLARF written to its temporary file and synced, before the rename")         \
	X(KLARF_AFTER_RENAME, "klarf-after-rename", "kerf-persist",                              \
	  "a wafer's KLARF renamed into place")                                                  \
	X(SUMMARY_BEFORE_RENAME, "summary-before-rename", "kerf-persist",                        \
	  "summary.json written to its temporary file, before the rename")                       \
	X(MAP_BEFORE_RENAME, "map-before-rename", "kerf-project",                                \
	  "a wafer map (SVG) written to its temporary file, before the rename")                  \
	X(MAP_AFTER_RENAME, "map-after-rename", "kerf-project", "a wafer map renamed into place") \
	X(STATUS_BEFORE_RENAME, "status-before-rename", "kerf",                                  \
	  "status.json written to its temporary file, before the rename")                        \
	X(STATUS_AFTER_RENAME, "status-after-rename", "kerf", "status.json renamed into place") \
	X(WATCH_SNAPSHOT, "watch-snapshot", "kerf",                                              \
	  "kerf watch: a taken file's snapshot written, before its watch.taken record")          \
	X(WATCH_TAKEN, "watch-taken", "kerf",                                                    \
	  "kerf watch: watch.taken durable, before inputs.tsv is rewritten")                     \
	X(WATCH_STARTED, "watch-started", "kerf",                                                \
	  "kerf watch: watch.start durable, before the job is forked")                           \
	X(WATCH_ENDED, "watch-ended", "kerf",                                                    \
	  "kerf watch: a job has exited, before its watch.end record")

enum failpoint {
#define FP_ENUM(id, name, prog, where) FP_##id,
	KERF_FAILPOINTS(FP_ENUM)
#undef FP_ENUM
	FP_COUNT,
	FP_NONE = -1 /* "no failpoint here", for helpers that take one */
};

/* Nonzero when KERF_FAILPOINT armed any point: the hot path's only cost. */
extern int failpoint_armed;

/*
 * Read KERF_FAILPOINT.  On a malformed value, prints why on stderr and
 * exits 64.  'program' (kept, not copied) names the program in those
 * messages and in failpoint_die's.  log_init() calls it; nothing else
 * needs to.
 */
void failpoint_init(const char *program);

/*
 * Count a reach of point 'fp'; true when this is the reach that must
 * kill.  For a point that does part of its work first (writes half a
 * buffer), then calls failpoint_die().
 */
int failpoint_due(enum failpoint fp);

/* Say which point was reached on stderr and SIGKILL this process. */
void failpoint_die(enum failpoint fp) __attribute__((noreturn));

/* Reach point 'fp': die here when it is armed and due. */
#define FAILPOINT(fp)                                                                  \
	do {                                                                           \
		if (__builtin_expect(failpoint_armed, 0) && (fp) != FP_NONE && failpoint_due(fp)) \
			failpoint_die(fp);                                             \
	} while (0)

/* The name of 'fp' ("journal-torn"), or NULL. */
const char *failpoint_name(enum failpoint fp);

/* Print the table, one point a line: "NAME\tPROGRAM\tWHERE". */
void failpoint_list(void);

#endif

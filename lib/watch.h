/*
 * watch.h: kerf watch, which follows drop directories and runs each
 * complete new file once, as one kerf reprocess job, into OUTDIR/NAME.
 * It owns OUTDIR/.watch/ (the lock, the ledger, the snapshots of taken
 * files) and is the one writer of OUTDIR/inputs.tsv, which makes OUTDIR a
 * kerf reprocess batch directory whose jobs are `kerf reprocess -o OUTDIR
 * --task N` (lib/reprocess.h): one definition of a job.
 * WATCH-STATUS.md (for now) and kerf(1) give the design: when a file is
 * complete, the ledger (a journal, lib/journal.h), keys, the scheduler,
 * restart recovery.
 *
 * Steps: fill a struct watch_opts; watch_main(&o) runs until SIGINT,
 * SIGTERM, SIGHUP or a stop command, and the running jobs have ended;
 * its result is the exit code.  From another process, watch_control
 * sends it one command over its control socket, OUTDIR/.watch/ctl.
 */
#ifndef KERF_WATCH_H
#define KERF_WATCH_H

#include <jansson.h>
#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "openmetrics.h"

/*
 * A --key rule, which gives a file its key instead of its tool:
 * "dir", the drop directory's base name, or a POSIX extended regular
 * expression matched on the file's path, whose first capture group (the
 * whole match when it has none) is the key.  watch_key_init, then
 * watch_key_release.
 */
struct watch_key {
	const char *rule;         /* as given (borrowed) */
	int dir;                  /* "dir" */
	int has_re;               /* re is compiled */
	regex_t re;
};

/* Read rule into k.  0, or -1 with why in err (a usage error). */
int watch_key_init(struct watch_key *k, const char *rule, char *err, size_t errlen);
/* Free what watch_key_init made.  Safe on a zeroed k. */
void watch_key_release(struct watch_key *k);

struct watch_opts {
	const char *outdir;       /* -o */
	char *const *dirs;        /* the drop directories (borrowed) */
	int ndirs;
	int jobs;                 /* -j: jobs at once in all, at least 1 */
	int poll;                 /* --poll: judge by the settle rule only */
	uint64_t settle_ms;       /* --settle-ms */
	const char *defer_if;     /* --defer-if: start nothing while it exists */
	uint64_t min_free;        /* --min-free: start nothing while OUTDIR has less (bytes) */
	const struct watch_key *key; /* --key, or NULL: a file's key is its tool (borrowed) */
};

/* Follow o->dirs until stopped; an exit code (kerf(1), kerf watch). */
int watch_main(const struct watch_opts *o);

/*
 * Send one command (status, "jobs N", pause, resume, stop) to the
 * watcher of outdir over OUTDIR/.watch/ctl.  An exit code: 0, and
 * *answer is the watcher's state after the command (a new reference:
 * the caller decrefs; kerf(1) lists its members); 64 a command the
 * watcher refused, 69 no watcher answers (both logged, *answer NULL).
 */
int watch_control(const char *outdir, const char *cmd, json_t **answer);
/* Print a state (watch_control's answer) on stdout: a line of totals, a line per key. */
void watch_status_print(const json_t *st);
/*
 * Add a state's metric families (kerf(1)) to m (om_init'ed, nothing
 * ended); st borrowed.  The watcher keeps OUTDIR/metrics.prom
 * (STATUS_METRICS_FILE) written from its state with them.
 */
void watch_metrics(struct om *m, const json_t *st);

#endif

/*
 * summary.h: kerf-persist's accounting of a run from its journaled events:
 * per-wafer counts, test plans and defects, alarms and the stream's end
 * status; a KLARF file per wafer at its wafer_end
 * (RUNDIR/klarf/<safe lot>_<safe wafer>.klarf, written to a temporary name
 * and renamed) and RUNDIR/summary.json at the end (written atomically).
 *
 * It is fed only journaled (durable) events, each once: at start the
 * journal's committed events (recovery), then each batch after its
 * commit.  So the accounting is a function of the journal, whatever part
 * of the run a replay feeds in again.
 *
 * Memory stays flat over a run: a wafer's die list (its KLARF test plan)
 * and defects are held only while it is open, from its first event to
 * its wafer_end; once its KLARF is written they are freed and only its
 * counts stay.  A wafer's dies, defects, density and late events are its
 * account (lib/wafer.h), the same as kerf-detect's and kerf-project's.
 * A late event (wafer.h) is journaled and passed on by kerf-persist as
 * any other, counted in the events and in the wafer's "late_events" in
 * summary.json, but neither in its dies and defects nor in its KLARF,
 * which is not written again.  A wafer_start for a wafer that had its
 * wafer_end starts the wafer over (inspected again): its account
 * restarts, and its KLARF is replaced at its next wafer_end.
 *
 * Steps: summary_new (removes temporary KLARF files a crash left);
 * summary_feed for each event (summary_set_recovering
 * around the journal's replay, so that KLARF files already written are
 * not rewritten); summary_finish (writes the KLARF of a wafer whose
 * write failed at its wafer_end, writes summary.json); summary_free.
 */
#ifndef KERF_SUMMARY_H
#define KERF_SUMMARY_H

#include <stddef.h>

struct summary;

/* rundir is copied. */
struct summary *summary_new(const char *rundir);
void summary_set_recovering(struct summary *s, int on);
/*
 * Account for one journaled event line (no newline needed).  Writes the
 * wafer's KLARF file at wafer_end.  0, or -1 when a file could not be
 * written (logged, errno set): the caller treats that as an I/O error.
 * A line it cannot parse is counted and otherwise ignored: it was
 * validated upstream and is already safely journaled.
 */
int summary_feed(struct summary *s, const char *line, size_t len);
/* Write summary.json (and KLARF files still owed).  0 or -1 (logged). */
int summary_finish(struct summary *s);
void summary_free(struct summary *s);

#endif

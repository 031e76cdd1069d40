/*
 * persist.h: kerf-persist's work.  It reads the event stream on stdin,
 * stores it in batches in RUNDIR/journal/ (journal.h: durable,
 * checksummed, each id once), passes each event on to stdout, in input
 * order, only once its batch is durable, and keeps the run's account
 * from the journaled events (summary.h: a KLARF file per wafer,
 * RUNDIR/summary.json).  Its stats counters add up: in = journaled +
 * duplicate + rejected and journaled + duplicate = out + unsent.
 *
 * Memory is flat over a run: the pending batch (at most --batch events
 * and 4 MiB of journaled bytes), the index of journal.h (per run and per
 * gap in its seqs while events are live) and summary.h's open wafers.
 *
 * Steps: persist_opts_init, set the fields (from the command line);
 * persist_run, whose result is the exit status; or persist_verify.
 */
#ifndef KERF_PERSIST_H
#define KERF_PERSIST_H

#include "journal.h"

#include <stdint.h>

struct persist_opts {
	const char *rundir;
	long batch;                /* close a batch at this many events */
	uint64_t batch_ms;         /* ... or this long after its first event */
	struct journal_opts journal;
	uint64_t max_line;         /* reject longer lines (too_long) */
	int downstream_optional;   /* a closed stdout is logged once, persisting goes on */
};

/* The defaults: --batch 1000, --batch-ms 20, --fsync batch,
 * --segment-size 64M, --max-line 64M; rundir from $KERF_RUNDIR. */
void persist_opts_init(struct persist_opts *o);

/* Persist stdin until its end or a stop signal; the exit status (0, 74
 * or 75; 65 for a damaged journal).  Sets up signals and stdout itself. */
int persist_run(const struct persist_opts *o);

/* Check RUNDIR's journal without changing it and print a line of what it
 * holds; the exit status (0, 65 or 74). */
int persist_verify(const char *rundir);

#endif

/*
 * journal.h: kerf-persist's append-only, batched, checksummed journal in
 * RUNDIR/journal/, and the index of event ids that makes storing
 * idempotent.
 *
 * On disk: segment files seg-00000001.ndjson, seg-00000002.ndjson, ...
 * of NDJSON.  Each batch is its events' original bytes, one line each,
 * followed by one commit record
 *
 *   {"commit":N,"count":C,"bytes":B,"xxh3":"16 hex"}
 *
 * N counts batches from 1 over the whole journal, C is the number of
 * event lines, B their total length in bytes (newlines included) and xxh3
 * the XXH3-64 of exactly those B bytes.  A commit record has no "type"
 * member, and every journaled event has one, so neither can be taken for
 * the other.  A batch is durable once its commit record is written (and
 * fsync'd with JOURNAL_FSYNC_BATCH).  Segments roll only after a commit,
 * so a batch never spans two segments and only the last segment can have
 * a torn tail.
 *
 * The id index is rebuilt at open by scanning the journal rather than
 * kept in a file of its own: the journal is then the one source of truth
 * and an index can never disagree with it after a crash; the scan costs
 * one pass over the segments (hashing, no JSON parsing).
 *
 * Steps: journal_open (locks the directory, verifies every commit,
 * truncates a torn tail, rebuilds the index, hands each committed event to
 * a callback); per event journal_seen, then journal_add; journal_commit
 * to close a batch; journal_last_batch for what was just committed;
 * journal_close.  journal_verify checks a journal without changing it.
 */
#ifndef KERF_JOURNAL_H
#define KERF_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

enum journal_fsync { JOURNAL_FSYNC_BATCH, JOURNAL_FSYNC_NONE };

struct journal_opts {
	enum journal_fsync fsync;
	uint64_t segment_size;   /* roll to a new segment past this many bytes */
};

/* What a scan found. */
struct journal_info {
	uint64_t segments, batches, events, bytes;
	uint64_t last_commit;      /* number of the last good commit, 0 if none */
	/* An uncommitted tail after the last good commit (last segment only). */
	uint64_t tail_bytes, tail_lines;
	char *tail_segment;        /* its path, or NULL; owned by the info */
	uint64_t tail_offset;      /* where the committed data ends in it */
	char err[512];             /* why the journal is damaged, if it is */
};
void journal_info_release(struct journal_info *ji);

/* Called with each committed event line (no newline, not NUL-terminated). */
typedef void (*journal_event_fn)(void *arg, const char *line, size_t len);

/*
 * Check every commit of the journal in 'dir' (record shape, numbering,
 * count, bytes, checksum) and that no id appears twice, without changing
 * anything.  fn (may be NULL) sees each committed event in order.
 * Returns 0 when every commit checks and there is no uncommitted tail;
 * 1 when the only fault is an uncommitted tail (ji->tail_*); -1 when the
 * journal is damaged or cannot be read (reason in ji->err).
 */
int journal_verify(const char *dir, journal_event_fn fn, void *arg, struct journal_info *ji);

struct journal;

/*
 * Open (creating it if needed) the journal in 'dir' for appending: take
 * an exclusive lock on the directory, scan and verify it, truncate an
 * uncommitted tail of the last segment (logged with what was dropped),
 * rebuild the id index.  fn (may be NULL) sees each committed event.
 * NULL on failure, with the reason logged; *code then says which exit
 * code fits (KERF_EX_IOERR, KERF_EX_DATAERR for a damaged journal,
 * KERF_EX_TEMPFAIL when another process holds the lock).
 */
struct journal *journal_open(const char *dir, const struct journal_opts *o,
			     journal_event_fn fn, void *arg, int *code);

/* True when an event with this id is journaled or in the pending batch. */
int journal_seen(const struct journal *j, uint64_t id);
/* Append one event line (without its newline) to the pending batch and
 * mark its id seen.  Copies the bytes. */
void journal_add(struct journal *j, uint64_t id, const char *line, size_t len);
/* Events and bytes in the pending batch. */
size_t journal_pending(const struct journal *j);
size_t journal_pending_bytes(const struct journal *j);
/*
 * Close the pending batch: write it and its commit record, fsync by the
 * policy, roll the segment if it is full.  Nothing to do on an empty
 * batch.  0, or -1 with errno set and the error logged naming the file;
 * then the journal on disk still ends at the last good commit (the
 * partial batch is cut off now if possible, and by the next open
 * otherwise) and the journal must not be used further.
 */
int journal_commit(struct journal *j);
/* The event bytes of the batch committed last (lines each ending in '\n'),
 * valid until the next journal_add. */
const char *journal_last_batch(const struct journal *j, size_t *len);
/* Counters since open. */
uint64_t journal_commits(const struct journal *j);
/* Release everything (the lock too).  Does not commit.  Safe on NULL. */
void journal_close(struct journal *j);

/* Parse 16 hex digits into an id; 0 or -1. */
int journal_parse_id(const char *s, size_t len, uint64_t *id);

#endif

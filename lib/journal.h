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
 * The index that makes storing idempotent is rebuilt at open by scanning
 * the journal rather than kept in a file of its own: the journal is then
 * the one source of truth and an index can never disagree with it after
 * a crash; the scan costs one pass over the segments (hashing, no JSON
 * parsing).
 *
 * The index stays small while events are live; its answers are exact.
 * It takes an event's key to be its id, its run and its seq, and relies
 * on an id standing for one event of one run at one seq (every id kerf
 * makes hashes the run with the seq, or with fields of the one event of
 * that seq: kerf-events(5)).  Per run it keeps the journaled seqs as
 * intervals (one per gap in the run's seqs, not one per event) and the
 * ids journaled at the run's highest seq (kerf-detect's events share the
 * seq of the event they came from).  An event is new, with nothing more
 * to look at, when its run is unknown or its seq is above the highest or
 * in no interval (a late event from a gap); at the highest seq its id is
 * looked up among that seq's ids.  Only a seq inside the intervals,
 * below the highest, needs every id, and that happens only when events
 * already journaled arrive again (a recording fed again, a replay after
 * a restart): the first such event builds the set of all ids by reading
 * the journal again (and the pending batch), and later lookups use it.
 * Once JOURNAL_QUIET_MIN more events than it was built with have passed
 * without needing it, the set is freed, so building it again is paid for
 * by the events in between.  Memory is then per run, per gap and per id
 * of the highest seq while events are live, and one id per event only
 * while a replay lasts.  An event without a "run" or without a "seq" (a
 * decimal integer below 2^63) has its id kept in a set of its own.
 * journal_seen never says "journaled" of an id that is not in the
 * journal or the pending batch; an id that arrives again under another
 * run or seq is taken for a new event and stored again (journal_verify
 * then reports it).
 *
 * Steps: journal_open (locks the directory, verifies every commit,
 * truncates a torn tail, rebuilds the index, hands each committed event to
 * a callback); per event journal_key_of, journal_seen, then journal_add;
 * journal_commit to close a batch; journal_last_batch for what was just
 * committed; journal_close.  journal_verify checks a journal without
 * changing it (it holds every id, being a check and not a stage).
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

/* An event's key for the index; points into the line it came from. */
struct journal_key {
	uint64_t id;
	const char *run;       /* the bytes of "run" (a string without its quotes), or NULL */
	size_t runlen;
	uint64_t seq;
	int has_seq;           /* "seq" is a decimal integer below 2^63 */
};
/* The key of an event line: 0, or -1 when it has no valid "id". */
int journal_key_of(const char *line, size_t len, struct journal_key *k);

/* Events past the set of all ids' size that free it (see above). */
#define JOURNAL_QUIET_MIN 4096

/*
 * 1 when an event with this id is journaled or in the pending batch, 0
 * when not; -1 when the journal could not be read again to answer
 * (logged, errno set: an I/O error).
 */
int journal_seen(struct journal *j, const struct journal_key *k);
/* Append one event line (without its newline) to the pending batch and
 * note its key.  Copies the bytes. */
void journal_add(struct journal *j, const struct journal_key *k, const char *line, size_t len);
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

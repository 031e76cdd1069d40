/*
 * pool.h: a bounded worker pool with an ordered output.  The reader
 * reserves one slot per input line, in input order; work for a slot runs
 * on N worker threads in any order; a writer thread hands the finished
 * slots to emit() strictly in slot order (the reorder buffer).  The
 * number of slots reserved and not yet emitted, plus the extra holds the
 * caller declares (pool_hold), never exceeds max_inflight: pool_reserve
 * blocks while it would, and that blocking is the backpressure on stdin.
 *
 * It also tracks operations (one per unit of work, e.g. a die): counts
 * pending / active / done / failed, their latency percentiles, and a
 * window of the most recent finished ones, for the stats records.
 *
 * Steps: pool_new; per input line pool_reserve, then pool_complete(slot,
 * item) once its output is known (from any thread), with pool_submit for
 * the work behind it; pool_drain at end of input; pool_free.  Any thread
 * may call pool_fail to end the program: pool_reserve and pool_drain
 * then return -1 and pool_failed gives the exit code.
 */
#ifndef KERF_POOL_H
#define KERF_POOL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct pool;

struct pool_config {
	int workers;             /* >= 1 */
	size_t max_inflight;     /* >= 1 */
	/* Writer thread, in slot order.  Owns item (frees it). */
	void (*emit)(void *arg, void *item);
	/* Frees an item that will never be emitted (after a failure). */
	void (*discard)(void *arg, void *item);
	/* Writer thread, before it waits with nothing ready (flush stdout),
	 * and at least every 100 ms (stats ticks). */
	void (*idle)(void *arg);
	/* Reader thread, inside pool_reserve when the pool is full and no
	 * work is queued or running: the caller must make some slot
	 * completable (e.g. close a row that waits for more input). */
	void (*stall)(void *arg);
	void *arg;
	/* For the tests of what must not depend on which task finishes
	 * first: tasks wait until pool_drain is called or the pool is full,
	 * then run newest first.  With one worker the order is then a fixed
	 * one, and far from the order of submission. */
	int newest_first;
};

struct pool *pool_new(const struct pool_config *cfg);
/*
 * Reserve the next slot; blocks while the pool is full.  0 and *slot, or
 * -1 when the pool failed or a stop signal (sig_stop) arrived.
 */
int pool_reserve(struct pool *p, uint64_t *slot);
/* The slot's output is ready; item goes to emit().  Any thread. */
void pool_complete(struct pool *p, uint64_t slot, void *item);
/* Run fn(arg) on a worker.  Any thread. */
void pool_submit(struct pool *p, void (*fn)(void *arg), void *arg);
/* Count delta (+/-) memory-holding units outside slots against the limit. */
void pool_hold(struct pool *p, long delta);
/* Wait until every reserved slot is emitted: 0, or -1 on failure. */
int pool_drain(struct pool *p);
/* End the program with this exit code (first call wins); logs nothing. */
void pool_fail(struct pool *p, int code);
/* The exit code given to pool_fail, or 0. */
int pool_failed(struct pool *p);
/* Stop the threads, discard what was never emitted, free. Safe on NULL. */
void pool_free(struct pool *p);

/* One tracked operation; the caller owns the storage. */
struct pool_op {
	uint64_t id;
	char key[96];
	struct timespec start;  /* wall clock, for the record */
	uint64_t start_us, active_us;
	int state;              /* 0 new, 1 pending, 2 active, 3 ended */
};
void pool_op_begin(struct pool *p, struct pool_op *op, const char *key);
void pool_op_active(struct pool *p, struct pool_op *op);
/* outcome "done" or "failed"; error NULL or a message. */
void pool_op_end(struct pool *p, struct pool_op *op, int failed, const char *error);
/*
 * {"pending","active","done","failed","held","op_p50_us","op_p90_us",
 *  "op_p99_us","recent":[{"id","key","start","dur_us","run_us","outcome",
 *  "error"}...]} (new reference).
 */
json_t *pool_stats_json(struct pool *p);

#endif

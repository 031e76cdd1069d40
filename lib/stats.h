/*
 * stats.h: a stage's counters and latency percentiles, written to the log
 * as a record with msg "stats" every interval and once at exit (with
 * "final":true).  The supervisor reads these records from each stage's
 * stderr to fill status.json.
 *
 * Every record also says how much work the stage has done, in the one way
 * every reader (kerf status, the dashboard) uses: "work", the count of
 * the stage's unit of work (one of its counters, named by stats_work),
 * "unit", that unit ("events", "lines", "dies"), and "per_s", work per
 * second since the previous record, in the final record over the whole
 * run.  Lines passed on are not the measure: kerf-detect replaces each
 * die by other events and passes few lines on while it works hardest.
 *
 * Steps: stats_init; stats_counter (or STATS_COUNTERS) for each named
 * counter (keep the pointer and increment it on the hot path) and
 * stats_work for the one that counts the work; stats_tick in the main loop; stats_emit(s, 1) at
 * exit; stats_release.
 */
#ifndef KERF_STATS_H
#define KERF_STATS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define STATS_MAX 32
#define STATS_BUCKETS 64

/*
 * A latency histogram: log2 buckets of microseconds, bucket k holding
 * [2^k, 2^(k+1)) (0 and 1 in bucket 0).  The one kept by a stage's stats
 * (lat_p50_us, lat_p99_us) and by lib/pool (op_p50_us ...).  Not locked.
 */
struct lat_hist {
	uint64_t b[STATS_BUCKETS];
	uint64_t n;
};

/* Count one latency of us microseconds. */
void lat_hist_add(struct lat_hist *h, uint64_t us);
/*
 * Percentile p (0..100, nearest rank): the lower edge 2^k of the bucket
 * that holds it, so the latency itself is below twice the figure; 0 when
 * nothing was counted.
 */
uint64_t lat_hist_percentile(const struct lat_hist *h, double p);

struct stats {
	int n;
	const char *name[STATS_MAX];
	uint64_t val[STATS_MAX];
	uint64_t interval_ms, last_ms, start_ms;
	/* The work counter (an index into val, -1 if none) and its unit;
	 * its value and the time at the previous record, for per_s. */
	int work;
	const char *unit;
	uint64_t work_prev, work_prev_ms;
	double per_s;
	/* Latencies, for lat_p50_us and lat_p99_us (only when some were recorded). */
	struct lat_hist lat;
	/* Optional: extra fields for each record (e.g. a worker pool's
	 * active/pending counts); returns a new object or NULL. */
	json_t *(*extra)(void *arg);
	void *extra_arg;
};

/* interval_ms 0 takes KERF_STATS_MS from the environment, else 1000. */
void stats_init(struct stats *s, uint64_t interval_ms);
/* A counter by name (created at 0 on first use); the pointer stays valid. */
uint64_t *stats_counter(struct stats *s, const char *name);
/*
 * Several counters at once, in order: STATS_COUNTERS(&st, { "out", &c_out },
 * { "rejected", &c_rej }) sets c_out = stats_counter(&st, "out") and so on.
 */
struct stats_slot {
	const char *name;
	uint64_t **at;
};
#define STATS_COUNTERS(s, ...)                                          \
	stats_counters((s), (const struct stats_slot[]){ __VA_ARGS__ }, \
		       sizeof((const struct stats_slot[]){ __VA_ARGS__ }) / sizeof(struct stats_slot))
void stats_counters(struct stats *s, const struct stats_slot *slots, size_t n);
/*
 * The counter 'name' (as stats_counter) is the stage's work, counted in
 * 'unit' (a static string).  Call it once, before the first record.
 */
uint64_t *stats_work(struct stats *s, const char *name, const char *unit);
/* Record one latency in microseconds. */
void stats_latency(struct stats *s, uint64_t us);
/* Latency percentile (0..100) in microseconds, as lat_hist_percentile. */
uint64_t stats_percentile(const struct stats *s, double p);
/* Emit a record if the interval has passed.  Cheap; call it often. */
void stats_tick(struct stats *s);
/* Emit a record now; final marks the last one. */
void stats_emit(struct stats *s, int final);
/* The record as an object (new reference), as stats_emit would log it. */
json_t *stats_json(const struct stats *s, int final);
void stats_release(struct stats *s);

#endif

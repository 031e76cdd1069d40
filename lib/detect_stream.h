/*
 * detect_stream.h: kerf-detect's stream: it routes each input line, keeps
 * each wafer row's dies until their neighbours are known, runs decoding
 * and detection on a worker pool (lib/pool.h) and writes the output in
 * input order: pass-through lines as they came, a die's defect events and
 * die_done in its place, a wafer_summary right after each wafer_end.
 *
 * Rows: a die joins the open group of its wafer when it has the same row,
 * else it closes that group and opens a new one.  A die's references are
 * the DETECT_MAX_REFS nearest good dies in the group (arrival order; the
 * left one first at the same distance), so a die waits for the second
 * good die on its right or the end of its group; a group with fewer than
 * three good dies uses the wafer's median reference
 * (pixel-wise median of the wafer's first three good dies) for the
 * missing ones.  A die without any reference at the end of its wafer is
 * rejected with reason no_reference.  References depend only on the
 * input (never on which worker finished first), so the output is the
 * same at any -j.
 *
 * Steps: detect_stream_new; detect_stream_line for every input line (and
 * detect_stream_reject for a line the reader refused); detect_stream_end
 * at end of input or on a stop; detect_stream_free.
 */
#ifndef KERF_DETECT_STREAM_H
#define KERF_DETECT_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "detect.h"
#include "reject.h"
#include "stats.h"

struct detect_stream_config {
	int workers;
	size_t max_inflight;   /* dies and lines held at once (>= 4) */
	int keep_images;       /* pass die events on before their defects */
	int strict;            /* a rejected die ends the program (65) */
	int newest_first;      /* for the tests: pool_config.newest_first */
	struct detect_params params;
	FILE *out;             /* written by the writer thread only */
	struct rejects *rej;
	struct stats *stats;   /* counters updated by the writer thread */
};

struct detect_stream;

struct detect_stream *detect_stream_new(const struct detect_stream_config *cfg);
/*
 * One input line (the bytes are copied as needed).  0, or -1 when the
 * program must stop (a failure, or a stop signal while waiting for
 * room).
 */
int detect_stream_line(struct detect_stream *ds, const char *line, size_t len, uint64_t lineno,
		       uint64_t offset);
/*
 * A line the reader refused (too long, or holding a raw control byte): a
 * reject record in its place, with reason (a static string) and msg; raw
 * is the line's first raw_len bytes, full_len its whole length.
 */
int detect_stream_reject(struct detect_stream *ds, const char *reason, const char *msg, const char *raw,
			 size_t raw_len, uint64_t full_len, uint64_t lineno, uint64_t offset);
/*
 * Close every row, finish every die taken so far, write everything out.
 * Returns the failure's exit code, or 0.
 */
int detect_stream_end(struct detect_stream *ds);
/* The exit code of a failure (a worker, the output, --strict), or 0. */
int detect_stream_failed(struct detect_stream *ds);
/* The stats hook (struct stats extra): pool counts and recent operations. */
json_t *detect_stream_stats(void *ds);
/* Joins the threads; safe on NULL. */
void detect_stream_free(struct detect_stream *ds);

#endif

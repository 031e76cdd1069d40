/*
 * reject.h: reject records, the one place where a stage says why a line
 * was not passed on.  One NDJSON record per rejected line:
 *   {"t","stage","run","seq","reason","msg","line","offset","len","raw","raw_cut"}
 * 'reason' is a stable code (see kerf-events(5)); 'raw' is the line's
 * first bytes (at most REJECT_RAW_MAX), invalid UTF-8 replaced by U+FFFD
 * so that the record itself is always valid JSON; run and seq are
 * omitted when unknown.  Each record is one write(2) to a file opened
 * with O_APPEND, so several stages can share RUNDIR/rejects.ndjson.
 *
 * Where records go: the path given, else $KERF_RUNDIR/rejects.ndjson
 * when the supervisor set it, else stderr.
 */
#ifndef KERF_REJECT_H
#define KERF_REJECT_H

#include <stddef.h>
#include <stdint.h>

#define REJECT_RAW_MAX 512

struct rejects;

/* NULL path: the default above.  NULL on failure (logged, errno set). */
struct rejects *rejects_open(const char *path);

struct reject_info {
	const char *reason;   /* stable code, required */
	const char *msg;      /* human message, required */
	const char *run;      /* NULL if unknown */
	int64_t seq;          /* -1 if unknown */
	uint64_t line;        /* input line number, from 1 */
	uint64_t offset;      /* byte offset of the line */
	const char *raw;      /* the line (or its first bytes) */
	size_t raw_len;       /* bytes available at raw */
	uint64_t len;         /* the line's full length */
};
/* 0, or -1 on a write error (logged once). */
int rejects_write(struct rejects *r, const struct reject_info *ri);
/* 0, or -1 if any write or the close failed.  Safe on NULL. */
int rejects_close(struct rejects *r);

/*
 * The first max bytes of s as a valid UTF-8 string: invalid sequences
 * become U+FFFD, a sequence cut at the end is dropped.  Caller frees.
 */
char *utf8_sanitize(const char *s, size_t len, size_t max, int *cut);

#endif

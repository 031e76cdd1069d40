/*
 * validate.h: the checks behind kerf-validate, one line at a time.  It
 * owns the strict parse (jansson: no duplicate keys, no NaN, valid UTF-8,
 * a memory budget; and no raw control byte, which jansson lets through
 * after a number), the envelope and each event type's fields, types
 * and ranges, the inline die image checksum, and the per-run state those
 * checks need: the geometry from run_start and the sequence tracking
 * (gaps, duplicates, order).  Nothing is allocated per line beyond
 * jansson's own parse, so fuzz targets and benchmarks drive it directly.
 *
 * A die event, most of a stream's bytes, is read in one pass instead
 * when die_fields_scan_event takes it: it takes only a line that the
 * parse would pass with the same members, and the checks read either
 * through the same event view (event.h), so a line gets the same result
 * whichever way it is read.
 *
 * Steps: validate_init; validate_line for each line the line reader
 * returns, validate_too_long for a line it cut; act on the verdict and
 * the result; validate_finish at end of input; validate_release.
 *
 * validate_init installs jansson's allocator for the whole process: while
 * a line is parsed, jansson allocates from an arena that the next
 * validate_line reuses, so the parsed event (v->ev) and every string in
 * it live only until the next call; do not keep references to them.
 * Other jansson use is unaffected (plain malloc and free).  One validator
 * per process and one thread: the arena is process-wide (two validators
 * may take turns if each calls validate_drop before the other's turn).
 *
 * Precedence: a line gets the reason of the first check it fails, in
 * this order: too_long, too_complex, not_json, duplicate_key, not_object,
 * envelope, unknown_type, bad_id, duplicate / out_of_order / gap (as
 * their policies say), no_run_start, after_run_end, then the fields one
 * by one (missing_field, bad_field, out_of_range), image_size, checksum.
 * The reason strings are static: compare them by value or by pointer.
 */
#ifndef KERF_VALIDATE_H
#define KERF_VALIDATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "die_fields.h"
#include "event.h"

#define VALIDATE_MSG_MAX 256
#define VALIDATE_RUN_MAX 256   /* longest run id accepted, bytes */
#define VALIDATE_RUNS 16       /* runs tracked at once (least recently seen goes) */
#define VALIDATE_MISSING 64    /* ranges of missing seqs remembered per run */

enum validate_policy {
	VALIDATE_WARN,    /* pass the line on, log a warning */
	VALIDATE_REJECT,  /* reject the line */
	VALIDATE_FAIL,    /* reject the line and stop (exit 65) */
};

/* The policies by name ("warn", "reject", "fail"), for an option table. */
extern const struct cli_choice validate_policies[];

struct validate_opts {
	size_t max_line;               /* the reader's limit; sets the parse budget */
	enum validate_policy on_gap;   /* default VALIDATE_WARN */
	enum validate_policy on_duplicate; /* default VALIDATE_REJECT */
	enum validate_policy on_order; /* default VALIDATE_REJECT */
	int jansson_only;              /* internal, for the differential tests:
					* every line parsed, none read in one pass */
};

/* The defaults above. */
void validate_opts_default(struct validate_opts *o);

enum validate_verdict {
	VALIDATE_PASS,    /* pass the line on as it is */
	VALIDATE_REJECTED,/* write a reject record: reason, msg, run, seq */
	VALIDATE_FATAL,   /* the same, then stop: a policy said fail */
};

enum validate_seq {
	VSEQ_OK,          /* the next seq, or a derived event's source seq */
	VSEQ_GAP,         /* seqs gap_first..gap_last never arrived */
	VSEQ_DUPLICATE,   /* this seq was seen already */
	VSEQ_OUT_OF_ORDER,/* a seq that was missing arrived late */
	VSEQ_UNKNOWN,     /* not tracked (the envelope was not valid) */
};

struct validate_result {
	enum validate_verdict verdict;
	const char *reason;            /* stable code when rejected, else NULL */
	char msg[VALIDATE_MSG_MAX];    /* human message when rejected */
	const char *run;               /* run id when known, else NULL */
	int64_t seq;                   /* -1 when unknown */
	enum event_type type;          /* EV_UNKNOWN when unknown */
	/* The sequence check, with or without a reject: a line can pass
	 * with a warning (policy warn) or be rejected for another reason
	 * and still reveal a gap. */
	enum validate_seq seq_status;
	uint64_t gap_first, gap_last;  /* VSEQ_GAP: the missing seqs, inclusive */
	int seq_warn;                  /* the policy for seq_status is warn */
};

struct validate_run;

struct validate {
	struct validate_opts opts;
	json_t *ev;                    /* the last parsed line, valid until the next call */
	char *copy;                    /* the last die line read in one pass, its strings */
	size_t copy_cap;               /* NUL-terminated (die_fields_scan_event) */
	struct die_fields die;         /* its members */
	int scanned;                   /* the last line was read so (for the tests) */
	struct validate_run *runs[VALIDATE_RUNS];
	struct validate_run *cur;      /* the run of the last line, a cache */
	uint64_t clock;                /* for least-recently-seen eviction */
	unsigned char *img;            /* decoded pixels, reused */
	size_t img_cap;
	char run_buf[VALIDATE_RUN_MAX + 1]; /* run of a too_long line */
};

void validate_init(struct validate *v, const struct validate_opts *opts);

/*
 * Check one line (len bytes at line, no newline; the line reader's
 * buffer).  Fills *res; the strings it points to stay valid until the
 * next call.  Returns res->verdict.
 */
enum validate_verdict validate_line(struct validate *v, const char *line, size_t len,
				    struct validate_result *res);

/*
 * Drop the last line's parse, which the last result may point into;
 * validate_line does it first.  Only for two validators that take turns
 * in one process (the differential tests).
 */
void validate_drop(struct validate *v);

/*
 * A line the reader cut at --max-line: reason too_long.  The run and
 * seq are taken from the line's first bytes when the envelope is there.
 */
enum validate_verdict validate_too_long(struct validate *v, const char *prefix, size_t prefix_len,
					uint64_t len, struct validate_result *res);

/*
 * End of input: log a warning for each run still tracked that had no
 * run_end, and return how many there were.
 */
int validate_finish(struct validate *v);

void validate_release(struct validate *v);

#endif

/*
 * openmetrics.h: the one writer of metrics text, in the bytes that
 * node_exporter's textfile collector, promtool and a Prometheus scrape
 * all parse: the Prometheus text exposition format (0.0.4), ended by
 * OpenMetrics' "# EOF".  Whoever exports metrics (kerf run's
 * metrics.prom and kerf status --format openmetrics, lib/status_metrics.h)
 * says what they are; this module owns how they are spelt.
 *
 * Steps: om_init; for each metric family om_family, then its samples
 * (om_sample, om_sample_int) before the next family's; then om_end for
 * the text, or om_write_file to replace a file with it; om_release.
 *
 * The two formats differ on two points, settled here for the parsers
 * that read kerf's files:
 *   - a counter named X is exposed as the sample X_total, and its HELP
 *     and TYPE lines name X_total too, as the text format requires
 *     (OpenMetrics would name the family X: promtool and node_exporter
 *     then see X_total as a second family with no help);
 *   - a HELP text cannot hold a double quote: OpenMetrics escapes it,
 *     the text format refuses the escape.  The writer spells it as '.
 * A gauge with a unit gets OpenMetrics' "# UNIT" line, which the text
 * format reads as a comment; its name must end in _UNIT.  No sample has
 * a timestamp (the textfile collector refuses them).  A family with no
 * sample writes nothing, not even its HELP.
 */
#ifndef KERF_OPENMETRICS_H
#define KERF_OPENMETRICS_H

#include <stddef.h>

enum om_type {
	OM_GAUGE,   /* a value that goes up and down */
	OM_COUNTER, /* a count that only grows (while its labels last) */
};

struct om {
	char *buf;           /* the text so far; owned */
	size_t len, cap;
	/* The current family; its strings borrowed until the next om_family. */
	const char *name, *unit, *help;
	enum om_type type;
	int header_done;     /* its HELP and TYPE are written */
	int ended;           /* "# EOF" is written */
};

/* An empty text. */
void om_init(struct om *m);
/*
 * The next family: its name ([a-zA-Z_:][a-zA-Z0-9_:]*; a counter's
 * without _total), type, unit (NULL: none; for a gauge, the name ends in
 * "_" unit) and one line of help.  Strings borrowed until the next call.
 * A name or unit that breaks these rules is a bug: the program aborts.
 */
void om_family(struct om *m, const char *name, enum om_type type, const char *unit, const char *help);
/*
 * One sample of the current family.  labels: NULL, or name, value, name,
 * value, ..., NULL (names [a-zA-Z_][a-zA-Z0-9_]*; values any UTF-8,
 * escaped here); borrowed.  A value that is not finite is written NaN,
 * +Inf or -Inf; others with 15 significant digits, so that a value that
 * went through a JSON file written with that precision (status.json)
 * comes out as the same bytes.
 */
void om_sample(struct om *m, const char *const *labels, double value);
void om_sample_int(struct om *m, const char *const *labels, long long value);
/* The text, "# EOF" written (once); *len its length.  Owned by m. */
const char *om_end(struct om *m, size_t *len);
/*
 * Replace 'path' by the text (om_end) atomically, not fsynced (lib/atomic.h:
 * a reader, the textfile collector, sees the old file or the new one);
 * on a full file system, by removing the old file first.  0, or -1 with
 * errno.
 */
int om_write_file(struct om *m, const char *path);
/* Free the text.  Safe to call twice. */
void om_release(struct om *m);

#endif

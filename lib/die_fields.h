/*
 * die_fields.h: the members of a die event that kerf-detect and
 * kerf-validate need, read either in one pass over the line's bytes
 * (die_fields_scan, die_fields_scan_event) or from a parsed event
 * (die_fields_from_json).
 *
 * die_fields_scan is the fast path and may decline any line: the caller
 * then parses the line with json_loadb (flags 0) and reads the members
 * with die_fields_from_json.  It takes a line only when that parse would
 * succeed and die_fields_from_json would read exactly the same values,
 * so whichever way a line is read, what follows from it is the same.
 */
#ifndef KERF_DIE_FIELDS_H
#define KERF_DIE_FIELDS_H

#include "image.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Strings point into the line or the parsed event and need no NUL. */
struct die_fields {
	const char *run, *t, *wafer;   /* NULL when absent or not a string */
	const char *type, *id;         /* likewise */
	size_t run_len, t_len, wafer_len, type_len, id_len;
	int64_t v;                     /* when has_v */
	bool has_v;                    /* v present as an integer */
	int64_t seq;                   /* -1 when absent or not an integer */
	long col, row;                 /* 0 when absent or not an integer */
	bool has_col, has_row;         /* col, row present as integers */
	struct image_fields img;       /* w, h, xxh3, data, path (image.h) */
};

/*
 * Read a die event line of len bytes in one pass.  Returns 1 when it took
 * the line and filled *f, its strings pointing into line; 0 when it
 * declined it (f is then unspecified).  It takes only a line that is one
 * JSON object, valid throughout (every member, to any depth it allows),
 * in which each of run, t, wafer, xxh3 (strings), seq, col, row, w, h
 * (integers) and data or path (strings) appears once; v, type and id it
 * reads as jansson does, the last one counting and one of another type
 * counting as none.  It declines,
 * rather than decide as jansson would, any escape, any byte >= 0x80 or
 * control byte (whitespace outside strings apart), a number with an
 * exponent or too many digits, and nesting deeper than a few levels.
 */
int die_fields_scan(const char *line, size_t len, struct die_fields *f);

/*
 * The same for kerf-validate, which parses with JSON_REJECT_DUPLICATES:
 * it takes only a line that json_loadb with that flag would parse into
 * an object, which no raw control byte a line may not hold
 * (line_control_at) is in, and where v (an integer), type and id
 * (strings) appear once too.  It declines besides any key that appears
 * twice at the top and any object nested in a member, whose keys it does
 * not follow.  line is a copy the caller may change: when the scanner
 * takes it, each string member that *f holds is NUL-terminated in place
 * (its closing quote overwritten).
 */
int die_fields_scan_event(char *line, size_t len, struct die_fields *f);

/* The same members of a parsed die event; they point into ev. */
void die_fields_from_json(const json_t *ev, struct die_fields *f);

/* Whether a and b hold the same values (for the differential tests). */
bool die_fields_equal(const struct die_fields *a, const struct die_fields *b);

#endif

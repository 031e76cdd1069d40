/*
 * event.h: the stream contract, schema version 1.  One JSON object per
 * line; every event carries the envelope
 *
 *   v     1
 *   type  see enum event_type
 *   run   run id (string)
 *   seq   per-run sequence number from kerf-acquire, strictly increasing;
 *         events made by kerf-detect carry the seq of the die (or
 *         wafer_end) event they came from
 *   t     machine time, RFC 3339 UTC with microseconds
 *         ("2026-11-21T09:26:26.123456Z")
 *   id    16 lowercase hex digits: XXH3-64 of the event's identity, so a
 *         replay yields the same ids (see event_id_* below)
 *
 * The fields of each type are listed in man/kerf-events.5, which is the
 * authority; the summary here is for the code's readers:
 *
 *   run_start   lot, recipe, tool, source, wafers (planned), diameter_mm,
 *               edge_mm, pitch_um [x,y], origin_um [x,y] (lower-left of die
 *               col 0 row 0 from the wafer centre), cols, rows, die_px [w,h],
 *               pixel_um
 *   state       state (idle|ready|executing|paused|stopping), prev
 *   wafer_start wafer (id), slot (1..25), lot, dies (planned)
 *   die         wafer, col, row, w, h, and either data (base64 of w*h
 *               8-bit grey pixels, row-major) with xxh3 (16 hex of the raw
 *               pixels) or path (a file of raw pixels) with xxh3
 *   alarm       alid, text, set (bool), category (safety|irrecoverable|
 *               warning|attention|data_integrity), critical (bool)
 *   wafer_end   wafer, slot, dies (inspected)
 *   run_end     status (completed|stopped|aborted), wafers, dies
 *   defect      wafer, col, row, index, x_um, y_um (in the die), wx_um,
 *               wy_um (on the wafer, from its centre), bbox [x0,y0,x1,y1] px,
 *               w_um, h_um, area_px, area_um2, polarity (bright|dark),
 *               contrast, class, class_num
 *   die_done    wafer, col, row, defects
 *   wafer_summary wafer, slot, defects, defective_dies, density_cm2, signature
 */
#ifndef KERF_EVENT_H
#define KERF_EVENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define EVENT_VERSION 1

enum event_type {
	EV_UNKNOWN = 0,
	EV_RUN_START,
	EV_STATE,
	EV_WAFER_START,
	EV_DIE,
	EV_ALARM,
	EV_WAFER_END,
	EV_RUN_END,
	EV_DEFECT,
	EV_DIE_DONE,
	EV_WAFER_SUMMARY,
	EV__COUNT
};

enum event_type event_type_of(const char *name);
const char *event_type_name(enum event_type t);

/*
 * Alarm categories (the alarm event's category) and SEMI E5's ALCD
 * codes: the one table.  event_alarm_code gives the code a category is
 * sent with (safety 1, irrecoverable 5, warning 6, attention 7,
 * data_integrity 8), 0 for a name that is no category.
 * event_alarm_category gives the category of an ALCD byte's low 7 bits:
 * 1 personal and 2 equipment safety are safety, 3 parameter control
 * warning and 6 equipment status warning are warning, 4 parameter
 * control error and 7 attention flags are attention, 5 irrecoverable
 * error, 8 data integrity; any other code is attention.  The critical
 * categories (safety, irrecoverable) end a run.
 */
int event_alarm_code(const char *category);
const char *event_alarm_category(unsigned alcd);
int event_alarm_critical(const char *category);
/*
 * The alarm event's fields, one shape for every source: alid, text,
 * set, category, critical and alcd (the byte a tool sent, or when
 * negative 128 when set | the category's code), added to ev.
 */
void event_alarm_fill(json_t *ev, uint32_t alid, const char *text, int set, const char *category, int alcd);

/*
 * Ids.  Every function hashes a byte string built from the identity
 * fields joined by '\n', so the same identity always gives the same id:
 *   acquire's events      run \n seq
 *   defect                run \n "defect" \n wafer \n col \n row \n index
 *   die_done              run \n "die_done" \n seq
 *   wafer_summary         run \n "wafer_summary" \n wafer
 */
uint64_t event_id(const char *run, uint64_t seq);
uint64_t event_id_defect(const char *run, const char *wafer, long col, long row, long index);
uint64_t event_id_derived(const char *run, const char *kind, const char *key);

/* RFC 3339 UTC with microseconds into out (at least 32 bytes). */
void event_time_fmt(const struct timespec *ts, char out[32]);
/* Parse that form (also accepts fewer fraction digits); 0 or -1. */
int event_time_parse(const char *s, struct timespec *ts);

/*
 * A new event object with the envelope set (v, type, run, seq, t, id,
 * in that order; the id from event_id(run, seq)).  Caller owns it.
 */
json_t *event_new(const char *type, const char *run, uint64_t seq, const struct timespec *t);
/* Replace the id (for derived events). */
void event_set_id(json_t *ev, uint64_t id);

/* Write ev as one compact line to f; 0 or -1 (check ferror for why). */
int event_write(FILE *f, const json_t *ev);

/*
 * An event's members as checks read them, whichever way its line was
 * read: parsed into a jansson object (obj), or a die event read in one
 * pass (die, from die_fields_scan_event, its strings NUL-terminated).
 * The latter holds only the members of a die (die_fields.h): asking it
 * for another is a bug, and aborts.
 */
struct die_fields;
struct event_view {
	const json_t *obj;
	const struct die_fields *die;   /* when obj is NULL */
};

enum event_kind {
	EVK_ABSENT, EVK_NULL, EVK_BOOL, EVK_INTEGER, EVK_REAL, EVK_STRING, EVK_ARRAY, EVK_OBJECT
};

/* One member's value; what it points to lives as long as the view's source. */
struct event_member {
	enum event_kind kind;
	long long integer;      /* EVK_INTEGER */
	double number;          /* EVK_INTEGER and EVK_REAL, as json_number_value */
	const char *str;        /* EVK_STRING, NUL-terminated, of len bytes */
	size_t len;
	const json_t *json;     /* the parsed value, else NULL (an array's items) */
};

/* The member key of ev into *m: 1, or 0 when there is none (EVK_ABSENT). */
int event_member(const struct event_view *ev, const char *key, struct event_member *m);

/*
 * The envelope of an event.  Strings point into the view's source.
 * Returns 0, or -1 with a message in msg.  envelope_get is the same for
 * a parsed event, which must be an object.
 */
struct envelope {
	long v;
	enum event_type type;
	const char *type_name;
	const char *run;
	uint64_t seq;
	const char *t;
	const char *id;
};
int envelope_read(const struct event_view *ev, struct envelope *env, char *msg, size_t msglen);
int envelope_get(const json_t *ev, struct envelope *env, char *msg, size_t msglen);

/*
 * Look at a line without parsing it: find the top-level member 'key' of
 * the JSON object on the line and return its value's bytes (for a
 * string, without the quotes and unescaped only if it has no escapes).
 * Nested objects and arrays and strings are skipped properly, so a key
 * inside a nested value or a string is never matched.  Returns 1 and
 * sets *val,*vlen when found; 0 when absent or the line is not an
 * object.  This is a fast path for stages that only route on type or
 * id; the line is assumed to have passed kerf-validate.
 */
int event_peek(const char *line, size_t len, const char *key, const char **val, size_t *vlen);
/* The same for a string member without escapes: 1 and its bytes; 0 when
 * absent, not a string or escaped (then the caller parses the line). */
int event_peek_str(const char *line, size_t len, const char *key, const char **val, size_t *vlen);
/* The top-level "type" of a line without parsing it; EV_UNKNOWN if none. */
enum event_type event_peek_type(const char *line, size_t len);

#endif

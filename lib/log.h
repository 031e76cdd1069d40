/*
 * log.h: the stage's log on stderr.  One record per line: NDJSON
 * {"t","lvl","stage","run","msg",...fields} when stderr is not a terminal
 * or KERF_LOG=json; readable text ("kerf-x: msg key=value") when stderr is
 * a terminal or KERF_LOG=text.  Each record is one write(2), so records
 * from several processes sharing a pipe do not interleave.
 *
 * Steps: log_init(program) first thing in main; log_set_run() once the run
 * id is known (KERF_RUN in the environment is used until then).
 */
#ifndef KERF_LOG_H
#define KERF_LOG_H

#include <jansson.h>
#include <stdarg.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_init(const char *program);
void log_set_run(const char *run);
const char *log_program(void);
/* True when records are NDJSON. */
int log_is_json(void);

/*
 * Log one record.  'fields' (may be NULL) is an object whose members are
 * added to the record; the reference is stolen.  Records below the level
 * set by KERF_LOG_LEVEL (debug, info, warn, error; default info) are
 * dropped.
 */
void log_msg(enum log_level lvl, json_t *fields, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* log_msg with a va_list: for a module's own wrapper that adds its fields. */
void log_vmsg(enum log_level lvl, json_t *fields, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/*
 * Write one record as readable text to stderr: "NAME: [warning: ]msg
 * key=value ...", the fields in order, skipping the keys listed in 'skip'
 * (NULL-terminated; may be NULL).  lvl is a level name or NULL.  The
 * supervisor uses it to show its stages' JSON records on a terminal.
 */
void log_write_text(const char *name, const char *lvl, const char *msg, json_t *fields,
		    const char *const *skip);

/*
 * Why a stage stopped, or stopped writing: the "reason" member of the
 * record that says so (kerf-events(5), "Log records").  kerf(1) blames
 * by this member, never by a message's wording.  One table: add a
 * reason here, in log.c's names and in kerf-events(5).
 */
enum log_reason {
	LOG_REASON_NONE = -1,
	LOG_REASON_DOWNSTREAM_CLOSED, /* the reader of its output closed the pipe (EPIPE) */
	LOG_REASON__COUNT
};

const char *log_reason_name(enum log_reason r);
/* The stop reason a record names in its "reason" member; LOG_REASON_NONE
 * when it names none of this table's (other reasons are not stops). */
enum log_reason log_reason_of(const json_t *rec);

/*
 * Writing 'what' ("standard output") failed with errno 'err': log it at
 * 'lvl'.  EPIPE is "cannot write WHAT: downstream closed (Broken pipe)"
 * with "reason":"downstream_closed"; any other error is "cannot write
 * WHAT: <strerror>".  'then' (may be NULL) is appended after "; ": what
 * the stage does next.  Every stage reports a closed output this way.
 */
void log_write_failed(enum log_level lvl, const char *what, int err, const char *then);

#endif

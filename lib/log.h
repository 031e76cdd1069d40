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

/*
 * Write one record as readable text to stderr: "NAME: [warning: ]msg
 * key=value ...", the fields in order, skipping the keys listed in 'skip'
 * (NULL-terminated; may be NULL).  lvl is a level name or NULL.  The
 * supervisor uses it to show its stages' JSON records on a terminal.
 */
void log_write_text(const char *name, const char *lvl, const char *msg, json_t *fields,
		    const char *const *skip);

#endif

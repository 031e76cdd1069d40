/* log.c: see log.h. */

#include "log.h"

#include "util.h"
#include "event.h"
#include "failpoint.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

static char program[64] = "kerf";
static char *run_id;
static int json_mode;
static enum log_level min_level = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_init(const char *prog)
{
	const char *base = strrchr(prog, '/');
	const char *mode = getenv("KERF_LOG");
	const char *lvl = getenv("KERF_LOG_LEVEL");
	const char *run = getenv("KERF_RUN");

	snprintf(program, sizeof program, "%s", base ? base + 1 : prog);
	if (mode && !strcmp(mode, "json"))
		json_mode = 1;
	else if (mode && !strcmp(mode, "text"))
		json_mode = 0;
	else
		json_mode = !isatty(2);
	if (lvl) {
		for (int i = 0; i < 4; i++)
			if (!strcmp(lvl, level_names[i]))
				min_level = (enum log_level)i;
	}
	if (run && *run)
		log_set_run(run);
	failpoint_init(program);
}

void log_set_run(const char *run)
{
	free(run_id);
	run_id = run ? xstrdup(run) : NULL;
}

const char *log_program(void)
{
	return program;
}

int log_is_json(void)
{
	return json_mode;
}

static int skipped(const char *key, const char *const *skip)
{
	for (; skip && *skip; skip++)
		if (!strcmp(key, *skip))
			return 1;
	return 0;
}

void log_write_text(const char *name, const char *lvl, const char *msg, json_t *fields,
		    const char *const *skip)
{
	char *line = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&line, &len);
	const char *key;
	json_t *val;

	if (!f)
		return;
	fprintf(f, "%s: ", name);
	if (lvl && !strcmp(lvl, "warn"))
		fputs("warning: ", f);
	else if (lvl && !strcmp(lvl, "debug"))
		fputs("debug: ", f);
	fputs(msg ? msg : "", f);
	if (fields) {
		json_object_foreach(fields, key, val) {
			if (skipped(key, skip))
				continue;
			if (json_is_string(val))
				fprintf(f, " %s=%s", key, json_string_value(val));
			else {
				char *s = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
				fprintf(f, " %s=%s", key, s ? s : "?");
				free(s);
			}
		}
	}
	fputc('\n', f);
	if (fclose(f) == 0)
		(void)write_all(2, line, len);
	free(line);
}

static void emit_json(enum log_level lvl, const char *msg, json_t *fields)
{
	struct timespec ts;
	char t[40];
	json_t *rec = json_object();
	char *s;

	real_now(&ts);
	event_time_fmt(&ts, t);
	json_object_set_new(rec, "t", json_string(t));
	json_object_set_new(rec, "lvl", json_string(level_names[lvl]));
	json_object_set_new(rec, "stage", json_string(program));
	if (run_id)
		json_object_set_new(rec, "run", json_string(run_id));
	/* A message built from hostile input may be invalid UTF-8. */
	json_t *m = json_string(msg);
	json_object_set_new(rec, "msg", m ? m : json_string("(message not valid UTF-8)"));
	if (fields)
		json_object_update_missing(rec, fields);
	s = json_dumps(rec, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (s) {
		size_t n = strlen(s);
		s[n] = '\n';
		(void)write_all(2, s, n + 1);
		free(s);
	}
	json_decref(rec);
}

void log_msg(enum log_level lvl, json_t *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, fields, fmt, ap);
	va_end(ap);
}

void log_vmsg(enum log_level lvl, json_t *fields, const char *fmt, va_list ap)
{
	char *msg;

	if (lvl < min_level) {
		json_decref(fields);
		return;
	}
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (json_mode)
		emit_json(lvl, msg ? msg : fmt, fields);
	else
		log_write_text(program, level_names[lvl], msg ? msg : fmt, fields, NULL);
	free(msg);
	json_decref(fields);
}

static const char *const reason_names[LOG_REASON__COUNT] = {
	[LOG_REASON_DOWNSTREAM_CLOSED] = "downstream_closed",
};

const char *log_reason_name(enum log_reason r)
{
	return r >= 0 && r < LOG_REASON__COUNT ? reason_names[r] : "none";
}

enum log_reason log_reason_of(const json_t *rec)
{
	const char *s = json_string_value(json_object_get(rec, "reason"));
	int r = name_index(s, reason_names, LOG_REASON__COUNT);
	return r < 0 ? LOG_REASON_NONE : (enum log_reason)r;
}

void log_write_failed(enum log_level lvl, const char *what, int err, const char *then)
{
	const char *sep = then ? "; " : "", *next = then ? then : "";

	if (err == EPIPE)
		log_msg(lvl, json_pack("{s:s}", "reason", reason_names[LOG_REASON_DOWNSTREAM_CLOSED]),
			"cannot write %s: downstream closed (%s)%s%s", what, strerror(err), sep, next);
	else
		log_msg(lvl, NULL, "cannot write %s: %s%s%s", what, strerror(err), sep, next);
}

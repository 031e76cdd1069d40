/* hsms_trace.c: see hsms_trace.h. */
#include "util.h"
#include "log.h"
#include "event.h"
#include "hsms_trace.h"
#include "secs.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

struct hsms_trace {
	int fd;
	char *path;
	int failed;
};

struct hsms_trace *hsms_trace_open(const char *path)
{
	struct hsms_trace *t;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return NULL;
	t = xcalloc(1, sizeof *t);
	t->fd = fd;
	t->path = xstrdup(path);
	return t;
}

static json_t *record(enum hsms_dir dir, const struct hsms_msg *m)
{
	struct timespec now;
	char ts[32], sf[16];
	json_t *rec;

	real_now(&now);
	event_time_fmt(&now, ts);
	snprintf(sf, sizeof sf, "S%uF%u", m->stream, m->function);
	rec = json_pack("{ss ss ss sb sI si}", "t", ts, "dir", dir == HSMS_IN ? "in" : "out", "sf",
			m->stype == HSMS_DATA ? sf : hsms_stype_name(m->stype), "w", m->wbit, "sys",
			(json_int_t)m->system, "session", (int)m->session_id);
	if (m->stype == HSMS_DATA) {
		struct secs_item *body = NULL;
		struct secs_error e;
		if (secs_decode(m->body, m->len, NULL, &body, &e) == 0) {
			char *sml = secs_sml_message(m->stream, m->function, m->wbit, body, SECS_SML_BRIEF);
			json_object_set_new(rec, "sml", json_string(sml));
			free(sml);
		} else {
			json_object_set_new(rec, "error", json_string(e.msg));
		}
		secs_free(body);
	} else if (m->stype == HSMS_SELECT_RSP || m->stype == HSMS_DESELECT_RSP) {
		/* Their status, and Reject.req's reason, are in header byte 3. */
		json_object_set_new(rec, "status", json_integer(m->function));
	} else if (m->stype == HSMS_REJECT_REQ) {
		json_object_set_new(rec, "reason", json_integer(m->function));
	}
	return rec;
}

void hsms_trace_frame(struct hsms_trace *t, enum hsms_dir dir, const struct hsms_msg *m)
{
	json_t *rec;
	char *line;
	size_t n;

	if (!t || t->failed)
		return;
	rec = record(dir, m);
	line = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	if (!line)
		return;
	/* One write per record, so that a reader (a test, tail -f) sees whole lines. */
	n = strlen(line);
	line[n] = '\n';
	if (write_all(t->fd, line, n + 1) != 0) {
		log_msg(LOG_ERROR, json_pack("{ss}", "path", t->path), "cannot write '%s': %s", t->path, strerror(errno));
		t->failed = 1;
	}
	free(line);
}

int hsms_trace_close(struct hsms_trace *t)
{
	int rc;

	if (!t)
		return 0;
	rc = t->failed ? -1 : 0;
	if (close(t->fd) != 0 && !t->failed) {
		log_msg(LOG_ERROR, json_pack("{ss}", "path", t->path), "cannot write '%s': %s", t->path, strerror(errno));
		rc = -1;
	}
	free(t->path);
	free(t);
	return rc;
}

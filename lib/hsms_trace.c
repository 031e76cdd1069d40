/* hsms_trace.c: see hsms_trace.h. */
#include "kerf.h"
#include "hsms_trace.h"
#include "secs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct hsms_trace {
	FILE *f;
	char *path;
	int failed;
};

struct hsms_trace *hsms_trace_open(const char *path)
{
	struct hsms_trace *t;
	FILE *f = fopen(path, "w");

	if (!f)
		return NULL;
	/* A record per line as it happens: a test or an engineer reads it live. */
	setvbuf(f, NULL, _IOLBF, 0);
	t = xcalloc(1, sizeof *t);
	t->f = f;
	t->path = xstrdup(path);
	return t;
}

static json_t *data_record(const struct hsms_msg *m)
{
	struct secs_item *body = NULL;
	struct secs_error err;
	char sf[16], *sml;
	json_t *rec;

	snprintf(sf, sizeof sf, "S%uF%u", m->stream, m->function);
	rec = json_pack("{ss sb sI si}", "sf", sf, "w", m->wbit, "sys", (json_int_t)m->system, "session",
			(int)m->session_id);
	if (secs_decode(m->body, m->len, NULL, &body, &err) != 0) {
		json_object_set_new(rec, "sml", json_null());
		json_object_set_new(rec, "error", json_string(err.msg));
		json_object_set_new(rec, "len", json_integer((json_int_t)m->len));
		return rec;
	}
	/* A die image shows its length and first bytes only: see SECS_SML_BRIEF. */
	sml = secs_sml_message(m->stream, m->function, m->wbit, body, SECS_SML_BRIEF);
	json_object_set_new(rec, "sml", json_string(sml));
	free(sml);
	secs_free(body);
	return rec;
}

void hsms_trace_frame(struct hsms_trace *t, enum hsms_dir dir, const struct hsms_msg *m)
{
	struct timespec now;
	char ts[32];
	json_t *rec, *head;

	if (!t || t->failed)
		return;
	real_now(&now);
	event_time_fmt(&now, ts);
	head = json_pack("{ss ss}", "t", ts, "dir", dir == HSMS_IN ? "in" : "out");
	if (m->stype == HSMS_DATA) {
		rec = data_record(m);
	} else {
		/* "sf" too, so that one jq path (.sf) names every record. */
		rec = json_pack("{ss sI si ss}", "ctl", hsms_stype_name(m->stype), "sys", (json_int_t)m->system,
				"session", (int)m->session_id, "sf", hsms_stype_name(m->stype));
		/* Select.rsp and Deselect.rsp carry a status, Reject.req a reason, in byte 3. */
		if (m->stype == HSMS_SELECT_RSP || m->stype == HSMS_DESELECT_RSP)
			json_object_set_new(rec, "status", json_integer(m->function));
		else if (m->stype == HSMS_REJECT_REQ)
			json_object_set_new(rec, "reason", json_integer(m->function));
	}
	json_object_update(head, rec);
	json_decref(rec);
	if (json_dumpf(head, t->f, JSON_COMPACT) < 0 || putc('\n', t->f) == EOF) {
		log_msg(LOG_ERROR, json_pack("{ss}", "path", t->path), "cannot write '%s': %s", t->path,
			strerror(errno));
		t->failed = 1;
	}
	json_decref(head);
}

int hsms_trace_close(struct hsms_trace *t)
{
	int rc;

	if (!t)
		return 0;
	rc = t->failed ? -1 : 0;
	if (fclose(t->f) != 0 && !t->failed) {
		log_msg(LOG_ERROR, json_pack("{ss}", "path", t->path), "cannot write '%s': %s", t->path,
			strerror(errno));
		rc = -1;
	}
	free(t->path);
	free(t);
	return rc;
}

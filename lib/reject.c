/* reject.c: see reject.h. */
#include "util.h"
#include "log.h"
#include "event.h"
#include "reject.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

struct rejects {
	int fd;
	int own;
	int failed;
	char *path;
};

struct rejects *rejects_open(const char *path)
{
	struct rejects *r = xcalloc(1, sizeof *r);
	const char *dir = getenv("KERF_RUNDIR");

	if (path && !strcmp(path, "-"))
		path = "/dev/stderr";
	if (!path && dir && *dir) {
		r->path = xasprintf("%s/rejects.ndjson", dir);
	} else if (path) {
		r->path = xstrdup(path);
	}
	if (!r->path || !strcmp(r->path, "/dev/stderr")) {
		r->fd = 2;
		return r;
	}
	r->fd = open(r->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (r->fd < 0) {
		int e = errno;
		log_msg(LOG_ERROR, NULL, "cannot open '%s': %s", r->path, strerror(e));
		free(r->path);
		free(r);
		errno = e;
		return NULL;
	}
	r->own = 1;
	return r;
}

static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t need;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4, cp = c & 0x07;
	else
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return need;
}

char *utf8_sanitize(const char *s, size_t len, size_t max, int *cut)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = len < max ? len : max, i = 0, o = 0;
	char *out = xmalloc(n * 3 + 1);
	if (cut)
		*cut = len > max;
	while (i < n) {
		size_t k = utf8_seq_len(p + i, n - i);
		if (k == 0) {
			if (n < len && n - i < 4 && p[i] >= 0xc2)
				break; /* a sequence cut by the limit */
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else if (k == 1 && p[i] == 0) {
			/* NUL cannot travel in a JSON string without escaping
			 * rules jansson refuses by default: show it as U+FFFD. */
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(out + o, p + i, k);
			o += k;
			i += k;
		}
	}
	out[o] = '\0';
	return out;
}

int rejects_write(struct rejects *r, const struct reject_info *ri)
{
	json_t *rec = json_object();
	struct timespec ts;
	char t[32];
	int cut = 0;
	char *raw, *s;
	int rc = 0;

	real_now(&ts);
	event_time_fmt(&ts, t);
	json_object_set_new(rec, "t", json_string(t));
	json_object_set_new(rec, "stage", json_string(log_program()));
	if (ri->run) {
		char *run = utf8_sanitize(ri->run, strlen(ri->run), 256, NULL);
		json_object_set_new(rec, "run", json_string(run));
		free(run);
	}
	if (ri->seq >= 0)
		json_object_set_new(rec, "seq", json_integer(ri->seq));
	json_object_set_new(rec, "reason", json_string(ri->reason));
	s = utf8_sanitize(ri->msg, strlen(ri->msg), 1024, NULL);
	json_object_set_new(rec, "msg", json_string(s));
	free(s);
	json_object_set_new(rec, "line", json_integer((json_int_t)ri->line));
	json_object_set_new(rec, "offset", json_integer((json_int_t)ri->offset));
	json_object_set_new(rec, "len", json_integer((json_int_t)ri->len));
	raw = utf8_sanitize(ri->raw ? ri->raw : "", ri->raw ? ri->raw_len : 0, REJECT_RAW_MAX, &cut);
	json_object_set_new(rec, "raw", json_string(raw));
	json_object_set_new(rec, "raw_cut", json_boolean(cut || ri->len > ri->raw_len));
	free(raw);
	s = json_dumps(rec, JSON_COMPACT);
	json_decref(rec);
	if (!s)
		return -1;
	size_t n = strlen(s);
	s[n] = '\n';
	if (write_all(r->fd, s, n + 1) != 0) {
		if (!r->failed)
			log_msg(LOG_ERROR, NULL, "cannot write reject record to '%s': %s",
				r->path ? r->path : "stderr", strerror(errno));
		r->failed = 1;
		rc = -1;
	}
	free(s);
	return rc;
}

int rejects_close(struct rejects *r)
{
	int rc;
	if (!r)
		return 0;
	rc = r->failed ? -1 : 0;
	if (r->own && close(r->fd) != 0)
		rc = -1;
	free(r->path);
	free(r);
	return rc;
}

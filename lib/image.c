/* image.c: see image.h. */
#include "util.h"
#include "base64.h"
#include "image.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

static int fail(const char **reason, const char *code, char *msg, size_t msglen, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int fail(const char **reason, const char *code, char *msg, size_t msglen, const char *fmt, ...)
{
	va_list ap;
	*reason = code;
	va_start(ap, fmt);
	vsnprintf(msg, msglen, fmt, ap);
	va_end(ap);
	return -1;
}

void image_alloc(struct image *img, int w, int h)
{
	img->w = w;
	img->h = h;
	img->px = xcalloc((size_t)w * (size_t)h > 0 ? (size_t)w * (size_t)h : 1, 1);
}

void image_release(struct image *img)
{
	free(img->px);
	img->px = NULL;
	img->w = img->h = 0;
}

static int parse_hex64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || len != 16)
		return -1;
	for (int i = 0; i < 16; i++) {
		int c = s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

/* Read exactly n bytes of a file; one more byte present is an error. */
static int read_file_exact(const char *path, uint8_t *buf, size_t n, const char **reason,
			   char *msg, size_t msglen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	if (fd < 0)
		return fail(reason, "bad_image", msg, msglen, "cannot open '%s': %s", path, strerror(errno));
	for (;;) {
		uint8_t extra;
		ssize_t r;
		if (got < n)
			r = read(fd, buf + got, n - got);
		else
			r = read(fd, &extra, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			return fail(reason, "bad_image", msg, msglen, "cannot read '%s': %s", path, strerror(e));
		}
		if (r == 0)
			break;
		if (got == n) {
			close(fd);
			return fail(reason, "image_size", msg, msglen, "'%s' holds more than %zu bytes", path, n);
		}
		got += (size_t)r;
	}
	close(fd);
	if (got != n)
		return fail(reason, "image_size", msg, msglen, "'%s' holds %zu bytes, expected %zu", path, got, n);
	return 0;
}

static long long int_member(const json_t *die, const char *key)
{
	json_t *v = json_object_get(die, key);
	return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* A C string's length: what the checks before the split looked at. */
static const char *str_member(const json_t *die, const char *key, size_t *len)
{
	const char *s = json_string_value(json_object_get(die, key));
	*len = s ? strlen(s) : 0;
	return s;
}

void image_fields_from_json(const json_t *die, struct image_fields *f)
{
	json_t *data = json_object_get(die, "data");
	memset(f, 0, sizeof *f);
	f->w = int_member(die, "w");
	f->h = int_member(die, "h");
	f->xxh3 = str_member(die, "xxh3", &f->xxh3_len);
	f->path = str_member(die, "path", &f->path_len);
	f->data = json_string_value(data);
	f->data_len = f->data ? json_string_length(data) : 0;
}

int image_from_fields(const struct image_fields *f, int want_w, int want_h, struct image *img,
		      const char **reason, char *msg, size_t msglen)
{
	long w, h;
	size_t n;
	uint64_t want_sum;

	memset(img, 0, sizeof *img);
	if (f->w < 1 || f->w > IMAGE_MAX_SIDE || f->h < 1 || f->h > IMAGE_MAX_SIDE)
		return fail(reason, "bad_image", msg, msglen, "die w and h must be integers in 1..%d", IMAGE_MAX_SIDE);
	w = (long)f->w;
	h = (long)f->h;
	if (w * h > IMAGE_MAX_PIXELS)
		return fail(reason, "image_size", msg, msglen, "die of %ldx%ld pixels is larger than %ld", w, h,
			    IMAGE_MAX_PIXELS);
	if ((want_w > 0 && w != want_w) || (want_h > 0 && h != want_h))
		return fail(reason, "image_size", msg, msglen, "die is %ldx%ld, run_start says %dx%d", w, h,
			    want_w, want_h);
	if (parse_hex64(f->xxh3, f->xxh3_len, &want_sum) < 0)
		return fail(reason, "checksum", msg, msglen, "die has no valid xxh3 (16 hex digits)");
	n = (size_t)w * (size_t)h;
	if (f->data) {
		unsigned char *buf;
		long got;
		/* Refuse before allocating: base64 of n bytes is exactly this long. */
		if (f->data_len != base64_encoded_len(n))
			return fail(reason, "image_size", msg, msglen, "data holds %zu base64 characters, %ldx%ld needs %zu",
				    f->data_len, w, h, base64_encoded_len(n));
		buf = xmalloc(f->data_len / 4 * 3 + 1);
		got = base64_decode(f->data, f->data_len, buf);
		if (got < 0) {
			free(buf);
			return fail(reason, "bad_image", msg, msglen, "data is not valid base64");
		}
		if ((size_t)got != n) {
			free(buf);
			return fail(reason, "image_size", msg, msglen, "data decodes to %ld bytes, %ldx%ld needs %zu",
				    got, w, h, n);
		}
		img->px = buf;
	} else if (f->path) {
		char *path = xstrndup(f->path, f->path_len);
		int r;
		img->px = xmalloc(n);
		r = read_file_exact(path, img->px, n, reason, msg, msglen);
		free(path);
		if (r < 0) {
			image_release(img);
			return -1;
		}
	} else {
		return fail(reason, "bad_image", msg, msglen, "die has neither data nor path");
	}
	if (kerf_xxh3(img->px, n) != want_sum) {
		image_release(img);
		return fail(reason, "checksum", msg, msglen, "pixels do not match xxh3 %.*s", (int)f->xxh3_len,
			    f->xxh3);
	}
	img->w = (int)w;
	img->h = (int)h;
	return 0;
}

int image_from_event(const json_t *die, int want_w, int want_h, struct image *img,
		     const char **reason, char *msg, size_t msglen)
{
	struct image_fields f;

	memset(img, 0, sizeof *img);
	if (!json_is_object(die))
		return fail(reason, "bad_image", msg, msglen, "die event is not an object");
	image_fields_from_json(die, &f);
	return image_from_fields(&f, want_w, want_h, img, reason, msg, msglen);
}

int image_from_line(const char *line, size_t len, int want_w, int want_h, struct image *img,
		    const char **reason, char *msg, size_t msglen)
{
	json_error_t err;
	json_t *ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	int r;
	memset(img, 0, sizeof *img);
	if (!ev)
		return fail(reason, "bad_image", msg, msglen, "not JSON: %s", err.text);
	r = image_from_event(ev, want_w, want_h, img, reason, msg, msglen);
	json_decref(ev);
	return r;
}

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

static int parse_hex64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || strlen(s) != 16)
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

static int get_side(const json_t *die, const char *key, long *out)
{
	json_t *v = json_object_get(die, key);
	if (!json_is_integer(v))
		return -1;
	*out = (long)json_integer_value(v);
	return (*out >= 1 && *out <= IMAGE_MAX_SIDE) ? 0 : -1;
}

int image_from_event(const json_t *die, int want_w, int want_h, struct image *img,
		     const char **reason, char *msg, size_t msglen)
{
	long w, h;
	size_t n;
	uint64_t want_sum;
	const char *sum;
	json_t *data, *path;

	memset(img, 0, sizeof *img);
	if (!json_is_object(die))
		return fail(reason, "bad_image", msg, msglen, "die event is not an object");
	if (get_side(die, "w", &w) < 0 || get_side(die, "h", &h) < 0)
		return fail(reason, "bad_image", msg, msglen, "die w and h must be integers in 1..%d", IMAGE_MAX_SIDE);
	if (w * h > IMAGE_MAX_PIXELS)
		return fail(reason, "image_size", msg, msglen, "die of %ldx%ld pixels is larger than %ld", w, h,
			    IMAGE_MAX_PIXELS);
	if ((want_w > 0 && w != want_w) || (want_h > 0 && h != want_h))
		return fail(reason, "image_size", msg, msglen, "die is %ldx%ld, run_start says %dx%d", w, h,
			    want_w, want_h);
	sum = json_string_value(json_object_get(die, "xxh3"));
	if (!sum || parse_hex64(sum, &want_sum) < 0)
		return fail(reason, "checksum", msg, msglen, "die has no valid xxh3 (16 hex digits)");
	n = (size_t)w * (size_t)h;
	data = json_object_get(die, "data");
	path = json_object_get(die, "path");
	if (json_is_string(data)) {
		const char *s = json_string_value(data);
		size_t slen = json_string_length(data);
		unsigned char *buf;
		long got;
		/* Refuse before allocating: base64 of n bytes is exactly this long. */
		if (slen != base64_encoded_len(n))
			return fail(reason, "image_size", msg, msglen, "data holds %zu base64 characters, %ldx%ld needs %zu",
				    slen, w, h, base64_encoded_len(n));
		buf = xmalloc(slen / 4 * 3 + 1);
		got = base64_decode(s, slen, buf);
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
	} else if (json_is_string(path)) {
		img->px = xmalloc(n);
		if (read_file_exact(json_string_value(path), img->px, n, reason, msg, msglen) < 0) {
			image_release(img);
			return -1;
		}
	} else {
		return fail(reason, "bad_image", msg, msglen, "die has neither data nor path");
	}
	if (kerf_xxh3(img->px, n) != want_sum) {
		image_release(img);
		return fail(reason, "checksum", msg, msglen, "pixels do not match xxh3 %s", sum);
	}
	img->w = (int)w;
	img->h = (int)h;
	return 0;
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

/* line.c: see line.h. */
#include "line.h"

#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

#define READ_CHUNK (64 * 1024)

void line_reader_init(struct line_reader *lr, int fd, size_t max)
{
	memset(lr, 0, sizeof *lr);
	lr->fd = fd;
	lr->max = max ? max : 1;
	lr->cap = READ_CHUNK + 1;
	lr->buf = xmalloc(lr->cap);
}

void line_reader_release(struct line_reader *lr)
{
	free(lr->buf);
	lr->buf = NULL;
}

/* The exact scan: outside strings tab, newline and CR are whitespace. */
static size_t control_exact(const unsigned char *s, size_t len)
{
	int in_str = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (c < 0x20) {
			if (in_str || (c != '\t' && c != '\n' && c != '\r'))
				return i;
		} else if (c == '"') {
			in_str = !in_str;
		} else if (c == '\\' && in_str && i + 1 < len && s[i + 1] >= 0x20) {
			i++;
		}
	}
	return len;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

size_t line_control_at(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	/* A 64-bit word at a time, whether any of its bytes is below 0x20:
	 * in (w - 0x20..20) & ~w the lowest such byte always sets its high
	 * bit (no borrow reaches it), so nothing is missed, and only a line
	 * that has one pays for the exact scan.  Four words per step. */
	for (; i + 32 <= len; i += 32) {
		uint64_t w[4];
		memcpy(w, p + i, 32);
		if ((((w[0] - ONES * 0x20) & ~w[0]) | ((w[1] - ONES * 0x20) & ~w[1]) |
		     ((w[2] - ONES * 0x20) & ~w[2]) | ((w[3] - ONES * 0x20) & ~w[3])) & HIGHS)
			return control_exact(p, len);
	}
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		if ((w - ONES * 0x20) & ~w & HIGHS)
			return control_exact(p, len);
	}
	for (; i < len; i++)
		if (p[i] < 0x20)
			return control_exact(p, len);
	return len;
}

void line_control_msg(const char *line, size_t at, char msg[LINE_CONTROL_MSG])
{
	snprintf(msg, LINE_CONTROL_MSG, "at byte %zu: raw control byte 0x%02x", at + 1,
		 (unsigned)(unsigned char)line[at]);
}

/* A whole line of n bytes at base: LINE_OK, or LINE_CONTROL. */
static enum line_status whole(struct line_reader *lr, char *base, size_t n)
{
	lr->control_at = line_control_at(base, n);
	return lr->control_at < n ? LINE_CONTROL : LINE_OK;
}

/* Read more input after buf[end].  1: got bytes or EOF, else a status. */
static int fill(struct line_reader *lr)
{
	ssize_t n;

	if (lr->start > 0 && lr->cap - lr->end < READ_CHUNK / 2) {
		memmove(lr->buf, lr->buf + lr->start, lr->end - lr->start);
		lr->end -= lr->start;
		lr->start = 0;
	}
	if (lr->cap - lr->end < READ_CHUNK / 2) {
		/* Room for a whole line of max bytes, a chunk and the NUL. */
		size_t limit = lr->max + READ_CHUNK + 1;
		size_t ncap = lr->cap * 2 < limit ? lr->cap * 2 : limit;
		if (ncap > lr->cap) {
			lr->buf = xrealloc(lr->buf, ncap);
			lr->cap = ncap;
		}
	}
	if (lr->before_read)
		lr->before_read(lr->before_read_arg);
	n = read(lr->fd, lr->buf + lr->end, lr->cap - lr->end - 1);
	if (n < 0)
		return errno == EINTR ? LINE_INTR : LINE_ERROR;
	if (n == 0)
		lr->eof = 1;
	lr->end += (size_t)n;
	return -1;
}

static void keep_prefix(struct line_reader *lr, const char *p, size_t n)
{
	size_t room = LINE_PREFIX_MAX - lr->prefix_len;
	if (n > room)
		n = room;
	memcpy(lr->prefix + lr->prefix_len, p, n);
	lr->prefix_len += n;
	lr->prefix[lr->prefix_len] = '\0';
}

static enum line_status finish_long(struct line_reader *lr, char **line, size_t *len, int had_newline)
{
	lr->discarding = 0;
	lr->lineno++;
	lr->offset = lr->consumed;
	lr->consumed += lr->disc_len + (had_newline ? 1 : 0);
	lr->missing_newline = !had_newline;
	*line = lr->prefix;
	*len = lr->disc_len;
	return LINE_TOO_LONG;
}

enum line_status line_read(struct line_reader *lr, char **line, size_t *len)
{
	for (;;) {
		char *base = lr->buf + lr->start;
		size_t avail = lr->end - lr->start;
		char *nl;
		int rc;

		if (lr->discarding) {
			nl = memchr(base, '\n', avail);
			if (nl) {
				size_t n = (size_t)(nl - base);
				keep_prefix(lr, base, n);
				lr->disc_len += n;
				lr->start += n + 1;
				return finish_long(lr, line, len, 1);
			}
			keep_prefix(lr, base, avail);
			lr->disc_len += avail;
			lr->start = lr->end = 0;
			if (lr->eof)
				return finish_long(lr, line, len, 0);
			if ((rc = fill(lr)) >= 0)
				return (enum line_status)rc;
			continue;
		}

		nl = memchr(base + lr->scan, '\n', avail - lr->scan);
		if (nl) {
			size_t n = (size_t)(nl - base);
			lr->scan = 0;
			if (n > lr->max) {
				lr->prefix_len = 0;
				keep_prefix(lr, base, n);
				lr->disc_len = n;
				lr->start += n + 1;
				return finish_long(lr, line, len, 1);
			}
			*nl = '\0';
			lr->start += n + 1;
			lr->lineno++;
			lr->offset = lr->consumed;
			lr->consumed += n + 1;
			lr->missing_newline = 0;
			*line = base;
			*len = n;
			return whole(lr, base, n);
		}
		lr->scan = avail;
		if (avail > lr->max) {
			/* Too long: keep its first bytes, drop the rest as it comes. */
			lr->prefix_len = 0;
			lr->discarding = 1;
			lr->disc_len = 0;
			lr->scan = 0;
			continue;
		}
		if (lr->eof) {
			if (avail == 0)
				return LINE_EOF;
			base[avail] = '\0'; /* fill() always leaves room for it */
			lr->start = lr->end;
			lr->scan = 0;
			lr->lineno++;
			lr->offset = lr->consumed;
			lr->consumed += avail;
			lr->missing_newline = 1;
			*line = base;
			*len = avail;
			return whole(lr, base, avail);
		}
		if ((rc = fill(lr)) >= 0)
			return (enum line_status)rc;
	}
}

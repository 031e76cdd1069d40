/*
 * line.h: the NDJSON line reader every stage reads stdin with.
 *
 * It returns lines of any length up to 'max' bytes (not counting the
 * newline) without copying them; a longer line is reported as
 * LINE_TOO_LONG with its length and its first bytes, and skipped without
 * ever being held whole in memory, so memory stays below max + 64 KiB
 * whatever the input.  The last line may lack its newline
 * (lr->missing_newline says so).  Line numbers count from 1 and byte
 * offsets from 0, both over the whole input, rejected lines included.
 * A line holding a raw control byte that JSON allows nowhere is reported
 * as LINE_CONTROL, never as LINE_OK: jansson lets a NUL right after a
 * number or a literal through ({"x":1<NUL>} parses), and stages that only
 * peek at a line would pass such bytes on, so the reader, which every
 * stage reads with, is where they are caught.
 *
 * Steps: line_reader_init; line_read until LINE_EOF or LINE_ERROR
 * (LINE_INTR means a signal arrived: check sig_stop and call again);
 * line_reader_release.
 */
#ifndef KERF_LINE_H
#define KERF_LINE_H

#include <stddef.h>
#include <stdint.h>

#define LINE_PREFIX_MAX 4096 /* bytes kept of a line that is too long */

enum line_status {
	LINE_OK,        /* *line, *len: the line, NUL-terminated, no newline */
	LINE_CONTROL,   /* as LINE_OK, but the line holds a raw control byte at
			 * lr->control_at: not JSON, to be rejected (below) */
	LINE_TOO_LONG,  /* *line: its first lr->prefix_len bytes; *len: its full length */
	LINE_EOF,       /* end of input */
	LINE_INTR,      /* read(2) was interrupted by a signal; call again */
	LINE_ERROR,     /* read(2) failed; errno is set */
};

struct line_reader {
	int fd;
	char *buf;
	size_t cap, start, end, scan;
	size_t max;
	uint64_t lineno;       /* number of the line last returned */
	uint64_t offset;       /* byte offset of the line last returned */
	uint64_t consumed;     /* bytes of input consumed so far */
	size_t control_at;     /* LINE_CONTROL: offset of the byte in the line */
	int eof;
	int missing_newline;   /* the line last returned had no newline */
	int discarding;        /* inside a line that is too long */
	uint64_t disc_len;
	char prefix[LINE_PREFIX_MAX + 1];
	size_t prefix_len;
	/* Called before every read(2) that may block, e.g. to flush output
	 * so that nothing waits in a buffer while the input is idle. */
	void (*before_read)(void *arg);
	void *before_read_arg;
};

void line_reader_init(struct line_reader *lr, int fd, size_t max);
/* The line stays valid until the next call. */
enum line_status line_read(struct line_reader *lr, char **line, size_t *len);
void line_reader_release(struct line_reader *lr);

/*
 * The offset of the first raw control byte in s that makes it not JSON,
 * or len when there is none.  RFC 8259 allows U+0000..U+001F nowhere
 * unescaped: outside strings only tab, newline and carriage return, as
 * whitespace, and inside strings none at all.
 */
size_t line_control_at(const char *s, size_t len);

/*
 * Every stage rejects such a line with this reason and the message that
 * line_control_msg writes ("at byte N: raw control byte 0xXX", N from 1
 * as in jansson's messages) into msg, of size LINE_CONTROL_MSG.
 */
#define LINE_CONTROL_REASON "not_json"
#define LINE_CONTROL_MSG 64
void line_control_msg(const char *line, size_t at, char msg[LINE_CONTROL_MSG]);

#endif

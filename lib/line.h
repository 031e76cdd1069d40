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

#endif

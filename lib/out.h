/*
 * out.h: the one writer of a kerf program's output.  Standard output (and
 * kerf-acquire's --record file) is a stdio stream with a 64 KiB buffer
 * whose writes retry on EINTR: stages install their stop handlers without
 * SA_RESTART (so a blocked read returns), and glibc's own stdout drops its
 * buffer when a write is interrupted, so lines counted as passed on would
 * never arrive.
 *
 * Steps: stdout_init() once, early in main, before anything is written to
 * stdout; write with stdio (out_line for a line without its newline);
 * fflush(stdout) before waiting for input, so nothing waits in the buffer
 * while input is idle; at the end fshut(stdout, "standard output"), or
 * stdout_shut() when a write error was already logged.  A write error is
 * logged with log_write_failed() (EPIPE as "reason":"downstream_closed")
 * and makes the exit status 74.
 */
#ifndef KERF_OUT_H
#define KERF_OUT_H

#include <stddef.h>
#include <stdio.h>

/*
 * A stream on 'fd' as described above; closing it closes fd.  NULL with
 * errno if it cannot be made.
 */
FILE *out_open(int fd);

/* Replace stdout by out_open(1); the ordinary stdout stays if that fails. */
void stdout_init(void);

/* The line and its newline.  0, or -1 with errno. */
int out_line(FILE *f, const char *line, size_t len);

/*
 * Flush, check and close a stream at exit, so that a full disk or a
 * closed pipe is an error and not a silent success.  Logs the failure
 * naming 'what' and returns KERF_EX_OK or KERF_EX_IOERR.
 */
int fshut(FILE *f, const char *what);

/*
 * The end of standard output: fshut(stdout, "standard output"), except
 * that when 'failed' (a write error was logged already) stdout is only
 * closed, so the error is said once, and the result is KERF_EX_IOERR.
 */
int stdout_shut(int failed);

#endif

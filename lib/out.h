/*
 * out.h: a kerf program's standard output: the stream every stage writes
 * its output through, and the check at exit that it all arrived.
 */
#ifndef KERF_OUT_H
#define KERF_OUT_H

#include <stdio.h>

/*
 * Replace stdout by a fully buffered stream on fd 1 whose writes retry on
 * EINTR.  Stages install their stop handlers without SA_RESTART (so a
 * blocked read returns), and glibc's stdio drops its buffer when a write
 * is interrupted: lines counted as passed on would never arrive.  Call it
 * once, early in main, before anything is written to stdout.
 */
void stdout_init(void);

/*
 * Flush, check and close a stream at exit, so that a full disk or a
 * closed pipe is an error and not a silent success.  Logs the failure
 * naming 'what' and returns KERF_EX_OK or KERF_EX_IOERR.
 */
int fshut(FILE *f, const char *what);

#endif

/*
 * tty.h: kerf-project's terminal dashboard on ncurses: run id, run state
 * and elapsed time (from status.json), wafer progress, per-stage
 * throughput and queue fill, defects per class, the last alarms and a live
 * map of the current wafer that uses the terminal's width.  It only draws;
 * input stays on stdin (the event pipe), so the keyboard is never read.
 *
 * The terminal is restored on every way out: tty_close on the normal and
 * signal paths (SIGTERM/SIGINT/SIGHUP set sig_stop and the main loop
 * calls tty_close), and an atexit hook for exit() from anywhere else.
 *
 * Steps: tty_open (NULL when stdout cannot be driven: the caller falls
 * back to the summary); tty_draw at each redraw; tty_close.
 */
#ifndef KERF_TTY_H
#define KERF_TTY_H

#include "project.h"

struct tty;

/* Take over the terminal on stdout.  NULL (with a logged reason) if it cannot. */
struct tty *tty_open(void);
/* Draw the whole dashboard from the model. */
void tty_draw(struct tty *t, const struct project *p, unsigned interval_ms);
/* Restore the terminal.  Safe on NULL and twice. */
void tty_close(struct tty *t);

#endif

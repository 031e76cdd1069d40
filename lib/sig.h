/*
 * sig.h: the stage signal conventions.
 *
 *  - SIGTERM and SIGINT set sig_stop: the stage stops promptly at a safe
 *    point, leaves every file consistent and exits.  The handler is
 *    installed without SA_RESTART, so a blocked read(2) returns EINTR and
 *    the loop sees the flag.  A stage never dies of SIGINT or SIGQUIT
 *    (libpipeline would re-raise those in the supervisor).
 *  - SIGQUIT is ignored.
 *  - SIGPIPE is ignored: a write to a closed downstream fails with EPIPE,
 *    which the stage reports and turns into an exit status.
 *  - With sig_init_pause(), SIGUSR1 sets sig_pause and SIGUSR2 clears it
 *    (kerf pause / kerf resume reach kerf-acquire this way).
 */
#ifndef KERF_SIG_H
#define KERF_SIG_H

#include <signal.h>

extern volatile sig_atomic_t sig_stop;   /* the number of the stop signal, or 0 */
extern volatile sig_atomic_t sig_pause;  /* 1 while paused */

void sig_init(void);
void sig_init_pause(void);

#endif

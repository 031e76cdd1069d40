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
 *  - Every SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 is also kept, in the order
 *    of arrival, for a program that takes each as one command
 *    (kerf-acquire: pause, resume, stop, then abort): sig_next_command.
 *    The handlers block each other, so the order is the kernel's.
 */
#ifndef KERF_SIG_H
#define KERF_SIG_H

#include <signal.h>

extern volatile sig_atomic_t sig_stop;   /* the number of the stop signal, or 0 */
extern volatile sig_atomic_t sig_pause;  /* 1 while paused */

void sig_init(void);
void sig_init_pause(void);

/*
 * The next command signal after *cursor (start at 0), advancing it; 0
 * when none came since.  At most SIG_COMMANDS_KEPT unread ones are kept:
 * older ones are skipped.
 */
#define SIG_COMMANDS_KEPT 64
int sig_next_command(unsigned *cursor);
/* How many command signals arrived so far (a cursor at the newest). */
unsigned sig_commands(void);

#endif

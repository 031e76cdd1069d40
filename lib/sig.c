/* sig.c: see sig.h. */
#include "kerf.h"

#include <string.h>

volatile sig_atomic_t sig_stop;
volatile sig_atomic_t sig_pause;

static void on_stop(int signo)
{
	sig_stop = signo;
}

static void on_pause(int signo)
{
	sig_pause = (signo == SIGUSR1);
}

static void handle(int signo, void (*fn)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: blocked reads return EINTR */
	sigaction(signo, &sa, NULL);
}

void sig_init(void)
{
	sigset_t none;
	handle(SIGTERM, on_stop);
	handle(SIGINT, on_stop);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	/* Past RLIMIT_FSIZE: write fails with EFBIG, not death by SIGXFSZ. */
	signal(SIGXFSZ, SIG_IGN);
	/* A stage may inherit a blocked mask from its launcher. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void sig_init_pause(void)
{
	handle(SIGUSR1, on_pause);
	handle(SIGUSR2, on_pause);
}

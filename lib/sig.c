/* sig.c: see sig.h. */

#include "sig.h"

#include <string.h>

#include "banned.h"

volatile sig_atomic_t sig_stop;
volatile sig_atomic_t sig_pause;

/* The command signals, a ring written by the handlers only. */
static volatile sig_atomic_t ring[SIG_COMMANDS_KEPT];
static volatile unsigned ring_w;

static void keep(int signo)
{
	unsigned w = __atomic_load_n(&ring_w, __ATOMIC_RELAXED);
	ring[w % SIG_COMMANDS_KEPT] = signo;
	__atomic_store_n(&ring_w, w + 1, __ATOMIC_RELEASE);
}

static void on_stop(int signo)
{
	sig_stop = signo;
	keep(signo);
}

static void on_pause(int signo)
{
	sig_pause = (signo == SIGUSR1);
	keep(signo);
}

static void handle(int signo, void (*fn)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	/* One handler at a time, so that the ring keeps the order of arrival. */
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGUSR1);
	sigaddset(&sa.sa_mask, SIGUSR2);
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

unsigned sig_commands(void)
{
	return __atomic_load_n(&ring_w, __ATOMIC_ACQUIRE);
}

int sig_next_command(unsigned *cursor)
{
	unsigned w = sig_commands();

	if (*cursor == w)
		return 0;
	if (w - *cursor > SIG_COMMANDS_KEPT)
		*cursor = w - SIG_COMMANDS_KEPT;
	return ring[(*cursor)++ % SIG_COMMANDS_KEPT];
}

/*
 * blame.c: see blame.h.
 *
 * The rules in words (kerf(1), kerf(7)): the first critical failure is
 * the cause; an exit after kerf signalled the stage is a consequence; a
 * broken pipe is a consequence when a stage downstream has exited to
 * explain it, and otherwise a suspect for BLAME_SUSPECT_MS, since the
 * consumer that closed its input is about to exit and its failure is
 * the cause; an optional stage's failure degrades the run; the machine
 * stage's critical alarm is data, not a fault, unless the run is being
 * torn down already.
 */
#include "blame.h"
#include "exitcode.h"

#include <signal.h>

enum blame_exit blame_exit_kind(int code, int sig, int can_break, int machine)
{
	if (!sig && code == KERF_EX_OK)
		return BLAME_EXIT_OK;
	if (machine && !sig && code == KERF_EX_ALARM)
		return BLAME_EXIT_ALARM;
	if (can_break && (sig == SIGPIPE || (!sig && code == KERF_EX_IOERR)))
		return BLAME_EXIT_PIPE;
	return sig ? BLAME_EXIT_SIGNAL : BLAME_EXIT_ERROR;
}

/* A critical or optional failure nothing else explains. */
static enum blame_verdict failure(unsigned f)
{
	if (f & BLAME_OPTIONAL)
		return BLAME_DEGRADED;
	return (f & BLAME_FIRST) ? BLAME_CAUSE : BLAME_FAILED;
}

/* A suspect judged again: explained by now, or still waiting, or blamed. */
static enum blame_verdict suspect(unsigned f, enum blame_when when)
{
	if (f & (BLAME_DOWNSTREAM | BLAME_TEARING))
		return BLAME_CONSEQUENCE;
	return when == BLAME_WAITING ? BLAME_SUSPECT : failure(f);
}

enum blame_verdict blame_judge(enum blame_exit x, unsigned f, enum blame_when when)
{
	if (x == BLAME_EXIT_PIPE && when != BLAME_AT_EXIT)
		return suspect(f, when);
	if (x == BLAME_EXIT_OK)
		return BLAME_OK;
	if (x == BLAME_EXIT_ALARM && !(f & BLAME_TEARING))
		return BLAME_ALARM; /* even after a stop: the alarm wins */
	if (f & BLAME_SIGNALLED)
		return BLAME_CONSEQUENCE;
	if (x == BLAME_EXIT_PIPE && (f & BLAME_DOWNSTREAM))
		return BLAME_CONSEQUENCE;
	if (x == BLAME_EXIT_PIPE && !(f & BLAME_TEARING))
		return BLAME_SUSPECT;
	return failure(f);
}

int blame_rank(enum blame_verdict v, enum blame_exit x)
{
	if (v != BLAME_FAILED && v != BLAME_CAUSE)
		return 0;
	return x == BLAME_EXIT_PIPE ? 1 : 2;
}

const char *blame_verdict_name(enum blame_verdict v)
{
	static const char *const names[BLAME__COUNT] = {
		[BLAME_OK] = "ok", [BLAME_CAUSE] = "cause", [BLAME_FAILED] = "failed",
		[BLAME_CONSEQUENCE] = "consequence", [BLAME_DEGRADED] = "degraded",
		[BLAME_ALARM] = "alarm", [BLAME_SUSPECT] = "suspect",
	};
	return v < BLAME__COUNT ? names[v] : "ok";
}

const char *blame_exit_name(enum blame_exit x)
{
	static const char *const names[BLAME_EXIT__COUNT] = {
		[BLAME_EXIT_OK] = "ok", [BLAME_EXIT_ERROR] = "error", [BLAME_EXIT_SIGNAL] = "signal",
		[BLAME_EXIT_PIPE] = "broken_pipe", [BLAME_EXIT_ALARM] = "alarm",
	};
	return x < BLAME_EXIT__COUNT ? names[x] : "?";
}

const char *blame_when_name(enum blame_when w)
{
	static const char *const names[BLAME_WHEN__COUNT] = {
		[BLAME_AT_EXIT] = "at_exit", [BLAME_WAITING] = "waiting", [BLAME_EXPIRED] = "expired",
	};
	return w < BLAME_WHEN__COUNT ? names[w] : "?";
}

const char *blame_fact_name(unsigned fact)
{
	switch (fact) {
	case BLAME_SIGNALLED: return "signalled";
	case BLAME_TEARING: return "tearing";
	case BLAME_DOWNSTREAM: return "downstream";
	case BLAME_OPTIONAL: return "optional";
	case BLAME_FIRST: return "first";
	default: return "?";
	}
}

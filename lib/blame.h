/*
 * blame.h: who is to blame when stages exit.  The rules are one pure
 * table, blame_judge(): what a stage's exit was x what else had happened
 * x when it is judged -> the stage's verdict.  lib/supervise.c gathers
 * the facts and acts on the verdict; tests/unit/blame-table.c prints the
 * whole table for tests/data/kerf/blame.out.
 *
 * Steps for the exits noticed together: blame_exit_kind for each; then
 * blame_judge(kind, facts, BLAME_AT_EXIT) without BLAME_FIRST; the exit
 * with the highest blame_rank (the most upstream among equals) is the
 * root cause and is judged again first, with BLAME_FIRST when the run
 * has no cause yet, then the others in turn.  A suspect is judged again
 * with BLAME_WAITING while its timer runs and BLAME_EXPIRED once it
 * has run out (or once every stage has exited).
 */
#ifndef KERF_BLAME_H
#define KERF_BLAME_H

enum blame_verdict {
	BLAME_OK,           /* still running, or exited 0 */
	BLAME_CAUSE,        /* the root cause of the run's failure */
	BLAME_FAILED,       /* a critical failure after the root cause */
	BLAME_CONSEQUENCE,  /* failed because of the cause or of kerf's signal */
	BLAME_DEGRADED,     /* an optional stage that failed */
	BLAME_ALARM,        /* the machine stage ended on a critical alarm */
	BLAME_SUSPECT,      /* a broken pipe, waiting to see whether downstream failed */
	BLAME__COUNT
};

/* What the exit was. */
enum blame_exit {
	BLAME_EXIT_OK,      /* exit 0 */
	BLAME_EXIT_ERROR,   /* a non-zero exit that is none of the below */
	BLAME_EXIT_SIGNAL,  /* death by a signal that is not a broken pipe */
	BLAME_EXIT_PIPE,    /* a broken pipe: SIGPIPE, or exit 74 with no error of its own */
	BLAME_EXIT_ALARM,   /* the machine stage's exit 3: a critical alarm */
	BLAME_EXIT__COUNT
};

/* What else had happened when the exit is judged: a set of these. */
enum blame_fact {
	BLAME_SIGNALLED = 1 << 0,  /* kerf sent it SIGTERM or SIGKILL */
	BLAME_TEARING = 1 << 1,    /* kerf is tearing the run down */
	BLAME_DOWNSTREAM = 1 << 2, /* a stage downstream exited first, or failed */
	BLAME_OPTIONAL = 1 << 3,   /* the stage is optional */
	BLAME_FIRST = 1 << 4,      /* no cause yet (or only the operator's stop) */
	BLAME_FACTS = 1 << 5       /* one past every set of facts */
};

/* When the exit is judged. */
enum blame_when {
	BLAME_AT_EXIT,   /* as it is noticed */
	BLAME_WAITING,   /* a suspect, its timer still running */
	BLAME_EXPIRED,   /* a suspect whose timer has run out */
	BLAME_WHEN__COUNT
};

/* How long a broken pipe stays a suspect, waiting for its consumer's exit. */
#define BLAME_SUSPECT_MS 250

/*
 * The exit's kind from waitid's code or signal (sig 0 for an exit).
 * 'can_break': a critical stage is downstream of it and it logged no
 * error of its own, so a broken pipe may be another stage's doing.
 * 'machine': it is the machine stage, whose exit 3 is a critical alarm.
 */
enum blame_exit blame_exit_kind(int code, int sig, int can_break, int machine);

/* The rules: the verdict on an exit of kind x with 'facts' (enum
 * blame_fact bits) at 'when'.  BLAME_WAITING and BLAME_EXPIRED judge
 * only a broken pipe (a suspect); any other kind is judged as at exit. */
enum blame_verdict blame_judge(enum blame_exit x, unsigned facts, enum blame_when when);

/* Among exits noticed together, how strongly a verdict of 'v' on an exit
 * of kind 'x' (judged without BLAME_FIRST) makes the root cause: 0 not
 * at all; otherwise the highest rank wins, the most upstream among equals. */
int blame_rank(enum blame_verdict v, enum blame_exit x);

const char *blame_verdict_name(enum blame_verdict v);
const char *blame_exit_name(enum blame_exit x);
const char *blame_when_name(enum blame_when w);
/* A fact bit's name ("signalled", ...); 'fact' is one enum blame_fact. */
const char *blame_fact_name(unsigned fact);

#endif

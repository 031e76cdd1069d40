/*
 * svcmd.h: the commands to the tool as the supervisor sees them, and
 * their fates.  kerf numbers every command it learns of (an operator's
 * pause, resume, stop or abort, and whatever the first stage reports
 * that it sent on its own, by "alarm" or "kerf"), keeps each one's
 * latest fate, and binds the first stage's command records
 * (kerf-events(5): {"command","cmd_id","fate","by",["hcack"],["reason"],
 * ["into"]}) to them.  What a fate does to the run's state is
 * lib/supervise.c's business; what a fate means to `kerf pause` and
 * `kerf stop --wait` is cmd/kerf.c's, from the names and the finality
 * defined here.
 */
#ifndef KERF_SVCMD_H
#define KERF_SVCMD_H

#include <jansson.h>

enum svc_fate {
	SVC_REQUESTED,   /* kerf has it and has signalled the first stage */
	SVC_QUEUED,      /* the first stage's coordinator queued it */
	SVC_SENT,        /* sent to the tool */
	SVC_ACCEPTED,    /* the tool will do it (HCACK 4: it finishes later) */
	SVC_CONFIRMED,   /* done: the tool says so, or kerf (fate_by) */
	SVC_REFUSED,     /* not done: the tool or kerf refused it, with a reason */
	SVC_TIMED_OUT,   /* not done: no answer or no confirmation in time */
	SVC_SUPERSEDED,  /* not done: another command or the run's end overtook it */
	SVC_MERGED,      /* joined a pending command of the same kind ("into") */
	SVC__COUNT
};

struct svc {
	int id;             /* kerf's number: 1, 2, ... as kerf learns of them */
	char op[32];        /* pause, resume, stop, abort, start, or a profile's */
	char by[16];        /* operator, alarm, kerf */
	long from;          /* the pid that asked (a signal's sender); 0 unknown */
	long cmd_id;        /* the first stage's number; -1 until it says */
	enum svc_fate fate;
	const char *fate_by; /* "tool" (the first stage's record) or "kerf" */
	long hcack;         /* -1 none */
	int into;           /* merged: kerf's number of the command it joined */
	char *reason;
	char requested[40]; /* RFC 3339: when kerf learnt of it */
	char since[40];     /* RFC 3339: when it got its fate */
};

struct svc_list {
	struct svc *v;
	int n, cap;
};

const char *svc_fate_name(enum svc_fate f);
/* The fate of that name, or -1. */
int svc_fate_parse(const char *name);
/* True for the fates after which nothing changes: confirmed, refused,
 * timed_out, superseded, merged. */
int svc_fate_final(enum svc_fate f);

/* A new command in state requested, fate_by kerf; its number is n + 1. */
struct svc *svc_new(struct svc_list *l, const char *op, const char *by, long from);
struct svc *svc_get(struct svc_list *l, int id);
/* Set the fate; reason may be NULL (then the old one stays). */
void svc_set(struct svc *c, enum svc_fate f, const char *fate_by, const char *reason);

/*
 * A first stage's stderr record: when it is a command record, apply it
 * to the command it is about and return that command, else NULL.  The
 * record is bound by cmd_id; a cmd_id seen for the first time, "by"
 * operator, goes to the oldest operator command of the same kind that
 * is not final and has no cmd_id yet (kerf sends one pause or resume,
 * and one stop, at a time, so the kind decides); anything else is a
 * new command.  A record about a command that is final already changes
 * nothing and sets *late.
 */
struct svc *svc_record(struct svc_list *l, json_t *rec, int *late);

/* {"id","op","by","from","cmd_id","fate","fate_by","hcack","into","reason",
 * "requested","since"}, absent members null. */
json_t *svc_json(const struct svc *c);
/* The last 'max' commands, oldest first. */
json_t *svc_recent_json(const struct svc_list *l, int max);
void svc_release(struct svc_list *l);

#endif

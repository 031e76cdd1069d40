/*
 * profile.h: a tool profile, the map between one tool model's SECS/GEM
 * numbering and kerf's events and operations.  Every tool numbers its
 * collection events (CEID), report variables (VID), reports (RPTID),
 * alarms (ALID) and remote commands differently; the profile, a JSON file
 * documented in kerf-profile(5), says which CEID is a wafer_start, which
 * VID carries a die's column, which remote command pauses.  kerf-acquire's
 * GEM host reads it to set up the tool's reports and to turn S6F11 into
 * events; the simulated tool reads the same file to number what it sends.
 *
 * Steps: profile_load (it validates everything and names the key at
 * fault); the lookups; profile_release.  All strings and arrays belong to
 * the profile and live until profile_release.
 */
#ifndef KERF_PROFILE_H
#define KERF_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

#define PROFILE_VERSION 1

/* How a variable's value becomes a JSON value. */
enum profile_as {
	PROFILE_AS_AUTO,    /* by the item's format: integers, reals, strings, booleans, arrays */
	PROFILE_AS_INT,     /* a whole number, from any integer, real or decimal string */
	PROFILE_AS_REAL,    /* a real, from any number */
	PROFILE_AS_STRING,  /* a string, from ASCII (numbers are refused) */
};

struct profile_var {
	uint32_t vid;
	const char *field;  /* the event field it fills; see kerf-profile(5) for t, run, image */
	enum profile_as as;
};

struct profile_report {
	uint32_t rptid;
	const uint32_t *vids;
	size_t nvids;
};

struct profile_event {
	uint32_t ceid;
	enum event_type type;  /* what kerf makes of it */
	const char *state;     /* type EV_STATE: the state it reports, or NULL (a variable says) */
	const uint32_t *rptids;
	size_t nrptids;
};

struct profile_alarm {
	uint32_t alid;
	const char *category;  /* overrides the category in ALCD; NULL: ALCD says */
};

/* The operations kerf sends to a tool. */
enum profile_op { PROFILE_START, PROFILE_PAUSE, PROFILE_RESUME, PROFILE_STOP, PROFILE_ABORT, PROFILE_OP__COUNT };

struct profile_param {
	const char *cpname;  /* the tool's parameter name */
	const char *field;   /* the run_start field whose value it takes (lot, recipe, wafers) */
};

struct profile_cmd {
	const char *rcmd;    /* NULL: the tool has no such command */
	const struct profile_param *params;
	size_t nparams;
};

struct profile {
	const char *path;
	const char *name;
	const char *model, *softrev;  /* expected in S1F2; NULL: not checked */
	int images;                   /* die reports carry images */
	/* "readiness" (kerf-profile(5)): what kerf checks before a run. */
	int model_must_match;         /* an S1F2 model or softrev other than the above fails */
	int recipes;                  /* the tool lists its recipes (S7F19): the run's must be there */
	int has_control_state;        /* control_state_vid given: S1F3 it, ONLINE REMOTE (5) needed */
	uint32_t control_state_vid;
	const struct profile_var *vars;        /* sorted by vid */
	size_t nvars;
	const struct profile_report *reports;  /* sorted by rptid */
	size_t nreports;
	const struct profile_event *events;    /* sorted by ceid */
	size_t nevents;
	const struct profile_alarm *alarms;    /* sorted by alid */
	size_t nalarms;
	struct profile_cmd cmds[PROFILE_OP__COUNT];
	void *priv;                            /* the parsed document the strings live in */
};

/*
 * Read and validate 'path'.  0, or -1 with "PATH:LINE:COL: why" (syntax)
 * or "PATH: KEY: why" (a key path such as events.1000.reports[1]) in err.
 */
int profile_load(struct profile *p, const char *path, char *err, size_t errlen);
void profile_release(struct profile *p);

/*
 * The file of profile 'name': 'name' itself when it holds a '/' or ends
 * in ".json"; else the first NAME.json found in the directories of
 * $KERF_PROFILE_PATH (colon-separated), then in DIR/../share/kerf/profiles
 * (installed) and DIR/../profiles (the source tree), DIR being the
 * running program's directory.  A new string, or NULL with *why (a new
 * string naming every place looked in); the caller frees either.
 */
char *profile_find(const char *name, char **why);
/* One line for people: name, model, images, counts, commands.  Caller frees. */
char *profile_summary(const struct profile *p);

/* Lookups by number: NULL when the profile does not know it. */
const struct profile_var *profile_var(const struct profile *p, uint32_t vid);
const struct profile_report *profile_report(const struct profile *p, uint32_t rptid);
const struct profile_event *profile_event(const struct profile *p, uint32_t ceid);
const struct profile_alarm *profile_alarm(const struct profile *p, uint32_t alid);
/* The first event of a type (the tool's CEID for it), or NULL. */
const struct profile_event *profile_event_of(const struct profile *p, enum event_type t);

/* "start", "pause", ...: the operation's name in profiles and logs. */
const char *profile_op_name(enum profile_op op);

#endif

/*
 * acquire_run.h: kerf-acquire's machine boundary.  It owns the one writer
 * of the event stream (stdout, teed to --record), the envelope sequence,
 * machine time, fault injection (--inject) and the four sources: the
 * simulated tool, replay of a recording, a live connection and KLARF
 * import.
 *
 * Steps: acq_init; acq_inject_parse for each --inject; acq_record_open if
 * recording; one acq_run_* call (it returns the exit status); acq_release.
 */
#ifndef KERF_ACQUIRE_RUN_H
#define KERF_ACQUIRE_RUN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "hsms.h"
#include "stats.h"
#include "profile.h"
#include "simrun.h"

/*
 * Faults of the boundary itself; alarms and the tool's command faults
 * are the simulated lot's (struct simrun_alarm, struct simrun_fault).
 * A hold (hold@N) keeps the output after N events until the operator's
 * next signal, so that a test sends a command at an exact point.
 */
enum acq_inject_kind { INJ_CRASH, INJ_STALL, INJ_GARBAGE, INJ_NOTREADY, INJ_HOLD };

struct acq_inject {
	enum acq_inject_kind kind;
	uint64_t at;          /* events written */
	double seconds;       /* stall */
	int done;
};

struct acq {
	char *run;                /* run id of the events made here (owned) */
	uint64_t seq;             /* last seq made here */
	uint64_t lines;           /* lines written to stdout */
	int wall;                 /* 1: t is the wall clock; 0: simulated time */
	struct timespec t;        /* simulated machine time */
	const char *state;        /* the machine's process state */
	/* Output: stdout and the --record file, both out.h's streams, so
	 * that a signal arriving while the pipe is full never tears a line. */
	FILE *rec;                /* --record FILE, or NULL */
	char *rec_path;
	int broken;               /* stdout failed: EPIPE or another error */
	int rec_failed;           /* --record FILE could not be written: exit 74 at the end */
	struct acq_inject *inj;
	size_t ninj;
	struct simrun_alarm *alarms;  /* --inject alarm@..., for the simulated tool */
	size_t nalarms;
	struct simrun_fault *faults;  /* --inject ignore@, delay@, refuse@, for the simulated tool */
	size_t nfaults;
	double ready_timeout_s;
	double confirm_timeout_s;     /* --confirm-timeout: an accepted command's completion deadline */
	/* Called about every 20 ms while a stall or hold keeps the output back
	 * (the source's commands and deadlines go on meanwhile); may be NULL. */
	void (*idle)(void *arg);
	void *idle_arg;
	struct stats stats;
	uint64_t *c_out, *c_bytes, *c_dies, *c_wafers, *c_defects, *c_alarms, *c_rejected;
};

void acq_init(struct acq *a);
void acq_release(struct acq *a);
void acq_set_run(struct acq *a, const char *run);
/* Parse one --inject SPEC; 0, or -1 with a message in err. */
int acq_inject_parse(struct acq *a, const char *spec, char *err, size_t errlen);
/* 0, or -1 (logged). */
int acq_record_open(struct acq *a, const char *path);

/*
 * The writer.  acq_event makes an event with the next seq and the current
 * time; acq_emit writes it (and frees it).  acq_line writes a line as is
 * (no newline in it).  Both apply the injections counted in lines and
 * return 0, or -1 when stdout is gone (logged once; exit 74).
 */
json_t *acq_event(struct acq *a, const char *type);
int acq_emit(struct acq *a, json_t *ev);
int acq_line(struct acq *a, const char *line, size_t len);
int acq_flush(struct acq *a);
/* A state event (state, prev) and the new state. */
int acq_state(struct acq *a, const char *state);
/* Advance simulated time by us microseconds (no-op on the wall clock). */
void acq_tick(struct acq *a, uint64_t us);
/* The exit status for the end: flushes, final stats, checks stdout. */
int acq_finish(struct acq *a, int status);

/*
 * The alarm event (event_alarm_fill: the one shape every source gives
 * an alarm) with the next seq: a set alarm is counted and logged (an
 * error when critical).  As acq_emit.
 */
int acq_alarm(struct acq *a, uint32_t alid, const char *text, int set, const char *category, int alcd);
/*
 * The virtual die image of a source without images (a KLARF import, a
 * tool that reports its own defects): 1 um per pixel, coarser when a
 * side would pass 65536 px (kerf-validate's limit), so that a defect's
 * bbox and area_px still mean something.
 */
void acq_virtual_die(const double pitch_um[2], double *pixel_um, long *w, long *h);

/* The alarm a source raises itself when the machine's connection drops. */
#define ACQ_ALID_DROPPED 9001

/* The simulated tool: o->rate paces on the wall clock (and t is the wall clock then). */
int acq_run_sim(struct acq *a, const struct simrun_opts *o);

struct acq_replay_opts {
	const char *path;     /* "-" for stdin */
	double speed;         /* 0: as fast as possible */
	uint64_t from_seq, to_seq;
	size_t max_line;
};
int acq_run_replay(struct acq *a, const struct acq_replay_opts *o);

struct acq_listen_opts {
	const char *addr;     /* unix:PATH or tcp:HOST:PORT */
	size_t max_line;
};
int acq_run_listen(struct acq *a, const struct acq_listen_opts *o);

int acq_run_klarf(struct acq *a, char *const *files, int nfiles);

/*
 * The GEM host (lib/acquire_hsms.c): kerf-acquire talks SECS/GEM over
 * HSMS to a real tool, through a tool profile.  What the tool does not
 * report in run_start (the lot, the geometry, ...) comes from here.
 */
struct acq_hsms_opts {
	const char *host, *port;  /* from --connect / --listen hsms:HOST:PORT */
	int passive;              /* --listen: the tool connects to kerf */
	const char *profile;      /* --profile NAME|FILE */
	struct hsms_config link;  /* the session id and the timers; mode, host and port come from the above */
	uint64_t reconnect_ms;    /* 0: a lost connection ends the run */
	const char *trace;        /* --hsms-trace FILE, or NULL */
	const char *lot, *recipe; /* START's parameters and run_start's defaults */
	const char *tool;         /* NULL: the tool's MDLN */
	int wafers;
	double diameter_mm, edge_mm, pitch_um[2];
	int die_px;
};
/* The defaults: E37's timers, the simulated tool's lot and geometry. */
void acq_hsms_opts_init(struct acq_hsms_opts *o);
int acq_run_hsms(struct acq *a, const struct acq_hsms_opts *o);
/*
 * Find, load and check the profile 'name' as acq_run_hsms would: 0 with
 * *path (caller frees) and p loaded (profile_release it); otherwise the
 * exit status, logged: 64 no such profile, 65 a bad one (the key named).
 */
int acq_profile_open(const char *name, struct profile *p, char **path);

#endif

/*
 * runstate.h: the one owner of a run's state.  It holds the run
 * directory's lock, checks every transition against an explicit
 * state x event table, appends every transition and note to
 * RUNDIR/timeline.ndjson, and rewrites RUNDIR/status.json atomically.
 *
 * Steps: runstate_open (creates RUNDIR, takes the lock; refuses a
 * directory another kerf run holds); runstate_fire for every event
 * (returns -1 for a transition the table does not allow, which is then
 * not made); runstate_note for everything else worth a timeline line;
 * runstate_write_status with the supervisor's view of the stages;
 * runstate_close (drops the lock last).
 *
 * Other processes (kerf status, stop, pause, resume) use
 * runstate_lock_holder to find the supervisor and read status.json
 * through lib/status_doc.h, which names its members for both sides.
 */
#ifndef KERF_RUNSTATE_H
#define KERF_RUNSTATE_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

enum runstate_state {
	RS_IDLE,
	RS_PREPARING,
	RS_RUNNING,
	RS_PAUSING,         /* a pause sent, the tool has not confirmed it */
	RS_PAUSED,
	RS_RESUMING,        /* a resume sent, the tool has not confirmed it */
	RS_STOP_REQUESTED,  /* a stop sent, the tool has not confirmed it */
	RS_STOPPING,        /* winding down: stop confirmed, abort, fault, alarm, timeout */
	RS_COMPLETED,
	RS_FAILED,
	RS_CANCELLED,
	RS_TIMED_OUT,
	RS__COUNT
};

enum runstate_event {
	RSE_PREPARE,        /* idle: checks and launch begin */
	RSE_READY,          /* every readiness check passed */
	RSE_PAUSE,          /* operator pause, sent to the first stage */
	RSE_PAUSED,         /* the tool confirmed a pause */
	RSE_RESUME,         /* operator resume, sent to the first stage */
	RSE_RESUMED,        /* the tool confirmed a resume */
	RSE_STOP,           /* operator stop, sent to the first stage */
	RSE_STOP_CONFIRMED, /* the tool confirmed the stop */
	RSE_CMD_REFUSED,    /* the awaited command was refused (or superseded) */
	RSE_CMD_TIMED_OUT,  /* the awaited command timed out */
	RSE_ABORT,          /* operator abort: every stage at once */
	RSE_FAULT,          /* a critical stage failed */
	RSE_ALARM,          /* the machine raised a critical alarm */
	RSE_TIMEOUT,        /* ready timeout, stall or deadline */
	RSE_NOT_READY,      /* a readiness check failed: preparation ends */
	RSE_DONE_OK,        /* every stage exited, nothing went wrong */
	RSE_DONE_FAILED,    /* every stage exited after a fault or alarm */
	RSE_DONE_CANCELLED, /* every stage exited after an operator stop */
	RSE_DONE_TIMEOUT,   /* every stage exited after a timeout */
	RSE__COUNT
};

struct runstate {
	char *dir;
	char *run;
	enum runstate_state state;
	/* The last state the tool is known to be in (preparing, running or
	 * paused), set by the settling events: where a refused or timed-out
	 * stop returns to.  See runstate_settles. */
	enum runstate_state settled;
	int lock_fd;
	int timeline_fd;
	uint64_t start_ms;   /* mono_ms() at open */
	uint64_t since_ms;   /* mono_ms() when the state was entered */
	char started[40];    /* RFC 3339 */
	char since[40];
	int in_place_warned; /* status.json rewritten in place (disk full) said once */
};

const char *runstate_state_name(enum runstate_state s);
/* The state of that name, or -1 (safe on NULL). */
int runstate_state_parse(const char *name);
const char *runstate_event_name(enum runstate_event e);
/* True for completed, failed, cancelled, timed-out. */
int runstate_is_final(enum runstate_state s);
/*
 * The table: the state after e in s, or -1 when e is not allowed in s.
 * RS_SETTLED (never a state of a run) means "back to the settled
 * state": runstate_fire resolves it to rs->settled.
 */
#define RS_SETTLED RS__COUNT
int runstate_next(enum runstate_state s, enum runstate_event e);
/*
 * The state that e, when allowed, tells the tool is in (ready and
 * resumed: running; paused: paused; prepare: preparing), or -1 when e
 * says nothing of it.  runstate_fire keeps rs->settled by it.
 */
int runstate_settles(enum runstate_event e);

/*
 * Create 'dir' if missing and lock it.  Returns 0; -1 with a message in
 * err on failure; -2 when another process holds the lock (its pid in
 * *holder when known).
 */
int runstate_open(struct runstate *rs, const char *dir, const char *run,
		  char *err, size_t errlen, pid_t *holder);
/*
 * Make the transition for e.  'fields' (may be NULL, stolen) are added
 * to the timeline record.  0, or -1 when the table forbids it (logged
 * in the timeline as "refused", the state unchanged).
 */
int runstate_fire(struct runstate *rs, enum runstate_event e, json_t *fields);
/* Append {"t","ms","kind",...fields} to the timeline; fields stolen. */
void runstate_note(struct runstate *rs, const char *kind, json_t *fields);
/*
 * The status.json document: the run's own members (lib/status_doc.h,
 * from STATUS_V to STATUS_ELAPSED_MS), then body's; body borrowed.
 * Caller owns the result.
 */
json_t *runstate_status_doc(struct runstate *rs, const json_t *body);
/*
 * Write doc (runstate_status_doc's; borrowed) as status.json.  Always
 * atomic (a temporary file renamed over it); fsynced only when
 * 'durable': the file is rewritten at every tick and transition, and an
 * fsync there would sit on the teardown's critical path.
 */
int runstate_write_status(struct runstate *rs, const json_t *doc, int durable);
/* Close the timeline and drop the lock.  Safe to call twice. */
void runstate_close(struct runstate *rs);

/*
 * The pid of the process that holds the lock on 'dir', 0 when none, -1
 * when the directory has no lock file or it cannot be read.
 */
pid_t runstate_lock_holder(const char *dir);

#endif

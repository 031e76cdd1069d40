/*
 * status_doc.h: the members of RUNDIR/status.json (kerf(1), RUN
 * DIRECTORY FILES; kerf-events(5)), named once.  The supervisor writes
 * the document by these names (lib/runstate.c the run's header,
 * lib/supervise_status.c the outcome, stages and options, lib/svcmd.c a
 * command, lib/supervise_watch.c a check, lib/supervise_relay.c a tool
 * link); the readers (kerf status, pause, resume and stop in
 * cmd/kerf.c, kerf-project's model and dashboard in lib/project.c and
 * lib/tty.c, kerf reprocess) get at it through the accessors below,
 * which are safe on a document, or a part of one, that lacks the
 * member: NULL, 0 or "not there".
 *
 * Every string an accessor gives is borrowed from the document: valid
 * while the caller holds it.
 */
#ifndef KERF_STATUS_DOC_H
#define KERF_STATUS_DOC_H

#include <jansson.h>
#include <stddef.h>

/*
 * X(ID, "where", "member"): ID names the member "member" of the object
 * "where" ("" the document itself).  Writers and readers use ID; the
 * table is also status_doc_keys, which tests/man.bats checks the man
 * pages against.
 */
#define STATUS_DOC_KEYS(X)                                                \
	X(STATUS_V, "", "v")                                              \
	X(STATUS_RUN, "", "run")                                          \
	X(STATUS_RUNDIR, "", "rundir")                                    \
	X(STATUS_PID, "", "pid")                                          \
	X(STATUS_STATE, "", "state")                                      \
	X(STATUS_SINCE, "", "since")                                      \
	X(STATUS_STARTED, "", "started")                                  \
	X(STATUS_UPDATED, "", "updated")                                  \
	X(STATUS_ELAPSED_MS, "", "elapsed_ms")                            \
	X(STATUS_OUTCOME, "", "outcome")                                  \
	X(STATUS_FINAL, "", "final")                                      \
	X(STATUS_COMMAND, "", "command")                                  \
	X(STATUS_COMMANDS, "", "commands")                                \
	X(STATUS_STAGES, "", "stages")                                    \
	X(STATUS_CHECKS, "", "checks")                                    \
	X(STATUS_OPTIONS, "", "options")                                  \
	X(STATUS_OUTCOME_STATE, "outcome", "state")                       \
	X(STATUS_OUTCOME_EXIT_CODE, "outcome", "exit_code")               \
	X(STATUS_OUTCOME_CAUSE, "outcome", "cause")                       \
	X(STATUS_OUTCOME_DEGRADED, "outcome", "degraded")                 \
	X(STATUS_OUTCOME_DEGRADED_STAGES, "outcome", "degraded_stages")   \
	X(STATUS_OUTCOME_PENDING_COMMAND, "outcome", "pending_command")   \
	X(STATUS_CAUSE_KIND, "outcome.cause", "kind")                     \
	X(STATUS_CAUSE_WHAT, "outcome.cause", "what")                     \
	X(STATUS_CAUSE_STAGE, "outcome.cause", "stage")                   \
	X(STATUS_CAUSE_HOW, "outcome.cause", "how")                       \
	X(STATUS_CAUSE_CHECK, "outcome.cause", "check")                   \
	X(STATUS_CAUSE_MSG, "outcome.cause", "msg")                       \
	X(STATUS_CAUSE_ERROR, "outcome.cause", "error")                   \
	X(STATUS_CMD_ID, "command", "id")                                 \
	X(STATUS_CMD_OP, "command", "op")                                 \
	X(STATUS_CMD_BY, "command", "by")                                 \
	X(STATUS_CMD_FROM, "command", "from")                             \
	X(STATUS_CMD_CMD_ID, "command", "cmd_id")                         \
	X(STATUS_CMD_FATE, "command", "fate")                             \
	X(STATUS_CMD_FATE_BY, "command", "fate_by")                       \
	X(STATUS_CMD_HCACK, "command", "hcack")                           \
	X(STATUS_CMD_INTO, "command", "into")                             \
	X(STATUS_CMD_REASON, "command", "reason")                         \
	X(STATUS_CMD_REQUESTED, "command", "requested")                   \
	X(STATUS_CMD_SINCE, "command", "since")                           \
	X(STATUS_STAGE_NAME, "stages[]", "name")                          \
	X(STATUS_STAGE_ARGV, "stages[]", "argv")                          \
	X(STATUS_STAGE_OPTIONAL, "stages[]", "optional")                  \
	X(STATUS_STAGE_PID, "stages[]", "pid")                            \
	X(STATUS_STAGE_STATE, "stages[]", "state")                        \
	X(STATUS_STAGE_EXIT, "stages[]", "exit")                          \
	X(STATUS_STAGE_SIGNAL, "stages[]", "signal")                      \
	X(STATUS_STAGE_VERDICT, "stages[]", "verdict")                    \
	X(STATUS_STAGE_COUNTERS, "stages[]", "counters")                  \
	X(STATUS_STAGE_LINK, "stages[]", "link")                          \
	X(STATUS_STAGE_QUEUE, "stages[]", "queue")                        \
	X(STATUS_STAGE_IO, "stages[]", "io")                              \
	X(STATUS_STAGE_PROGRESS_AGE_MS, "stages[]", "progress_age_ms")    \
	X(STATUS_LINK_STATE, "stages[].link", "state")                    \
	X(STATUS_LINK_SINCE, "stages[].link", "since")                    \
	X(STATUS_LINK_CAUSE, "stages[].link", "cause")                    \
	X(STATUS_QUEUE_BYTES, "stages[].queue", "bytes")                  \
	X(STATUS_QUEUE_CAP, "stages[].queue", "cap")                      \
	X(STATUS_QUEUE_FILL, "stages[].queue", "fill")                    \
	X(STATUS_IO_RCHAR, "stages[].io", "rchar")                        \
	X(STATUS_IO_WCHAR, "stages[].io", "wchar")                        \
	X(STATUS_CHECK_CHECK, "checks[]", "check")                        \
	X(STATUS_CHECK_OUTCOME, "checks[]", "outcome")                    \
	X(STATUS_CHECK_DURATION_MS, "checks[]", "duration_ms")            \
	X(STATUS_CHECK_STAGE, "checks[]", "stage")                        \
	X(STATUS_CHECK_REASON, "checks[]", "reason")                      \
	X(STATUS_OPT_GRACE_MS, "options", "grace_ms")                     \
	X(STATUS_OPT_DEADLINE_MS, "options", "deadline_ms")               \
	X(STATUS_OPT_STALL_MS, "options", "stall_ms")                     \
	X(STATUS_OPT_READY_MS, "options", "ready_ms")                     \
	X(STATUS_OPT_TICK_MS, "options", "tick_ms")                       \
	X(STATUS_OPT_MIN_FREE, "options", "min_free")

#define STATUS_DOC_DECLARE(id, where, key) extern const char id[];
STATUS_DOC_KEYS(STATUS_DOC_DECLARE)
#undef STATUS_DOC_DECLARE

/* The table above, in its order, ended by { NULL, NULL }. */
struct status_doc_key {
	const char *where;
	const char *key;
};
extern const struct status_doc_key status_doc_keys[];

/* outcome.cause; every member NULL when it has none. */
struct status_cause {
	const char *kind, *what, *stage, *how, *check, *msg, *error;
};

/* A command (status.json's command, commands[], pending_command). */
struct status_command {
	json_int_t id, from;          /* 0 when not there */
	const char *op, *by, *fate, *fate_by, *reason;
	int has_hcack;
	json_int_t hcack;
	int has_into;
	json_int_t into;
};

/* One of stages[]. */
struct status_stage {
	const char *name, *state, *verdict;
	const char *signal;           /* NULL: none (it exited, or has not) */
	json_int_t pid, exit;         /* 0 when not there */
	json_t *counters;             /* NULL when not there */
	int has_queue;                /* queue.bytes there: then queue_bytes, queue_cap, queue_fill */
	json_int_t queue_bytes, queue_cap;
	double queue_fill;
	int has_io;                   /* io there: then io_rchar, io_wchar */
	json_int_t io_rchar, io_wchar;
	int has_progress_age;         /* progress_age_ms there */
	json_int_t progress_age_ms;
	/* Its tool link (NULL when it holds none) and what else is known. */
	const char *link_state, *link_since, *link_cause;
};

/* The run's state ("running", ...) and id, or NULL. */
const char *status_doc_state(const json_t *st);
const char *status_doc_run(const json_t *st);
/* started and updated (RFC 3339), or NULL. */
const char *status_doc_started(const json_t *st);
const char *status_doc_updated(const json_t *st);
/* elapsed_ms, 0 when not there. */
json_int_t status_doc_elapsed_ms(const json_t *st);
/* True in the supervisor's last write. */
int status_doc_final(const json_t *st);
/* outcome.state, or NULL. */
const char *status_doc_outcome_state(const json_t *st);
/* 1 with *code = outcome.exit_code when it is decided; else 0 and *code = 0. */
int status_doc_exit_code(const json_t *st, json_int_t *code);
/* outcome.degraded. */
int status_doc_degraded(const json_t *st);
/* 1 and *c filled when outcome.cause is there; else 0, *c all NULL. */
int status_doc_cause(const json_t *st, struct status_cause *c);

/* The last command and the pending one of the outcome (NULL when there
 * is none), the i-th of the recent ones, oldest first (NULL past the
 * end; what the array holds, an object or not). */
json_t *status_doc_command(const json_t *st);
json_t *status_doc_pending_command(const json_t *st);
json_t *status_doc_recent_command(const json_t *st, size_t i);
/* 1 and *c filled when obj is a command object; else 0, *c zeroed. */
int status_doc_command_read(const json_t *obj, struct status_command *c);

/* The stages array (NULL when not there); the i-th stage read into *s
 * (1; 0 past the end, *s zeroed). */
json_t *status_doc_stages(const json_t *st);
int status_doc_stage(const json_t *st, size_t i, struct status_stage *s);

#endif

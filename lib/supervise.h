/*
 * supervise.h: running a pipeline of stages as one run.  It launches
 * the stages with libpipeline in one process group, watches each one
 * with a pidfd, captures and tags every stage's stderr, samples the
 * inter-stage queues, names the root cause of a failure, tears the rest
 * down (SIGTERM, then SIGKILL after the grace period) and reaps
 * everything; the run's state goes through lib/runstate.h.
 *
 * Steps: supervise_init; supervise_add for each stage in pipeline order
 * (argv is copied); set the fields of sv->opt; supervise_run with an
 * open runstate (it returns the run's exit code from lib/exitcode.h and
 * leaves status.json, timeline.ndjson, log.ndjson and summary.json
 * written); supervise_release.
 *
 * Signals while supervise_run runs: SIGINT, SIGTERM or SIGHUP stop the
 * run (the first stage gets SIGTERM and everything downstream drains);
 * a second one, or SIGQUIT, aborts (every stage gets SIGTERM, then
 * SIGKILL); SIGUSR1 pauses the first stage and SIGUSR2 resumes it.
 */
#ifndef KERF_SUPERVISE_H
#define KERF_SUPERVISE_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "blame.h"
#include "runstate.h"

struct sv_stage {
	/* Given by supervise_add. */
	char *name;          /* unique in the run: program base name, "#2" on repeats */
	char **argv;         /* NULL-terminated copy */
	int argc;
	int optional;
	/* Owned by supervise_run. */
	char *path;          /* resolved program */
	int is_acquire;      /* kerf-acquire: alarms, pause by SIGUSR1/2 */
	pid_t pid;
	int pidfd, errfd, err_w;
	int started, exited;
	int code, sig;       /* exit code, or the signal that killed it */
	uint64_t start_us, exit_us;
	int signalled;       /* the last signal kerf sent it (or its group) */
	enum blame_verdict verdict;
	enum blame_exit exit_kind;
	unsigned facts;      /* the enum blame_fact bits it was judged on at exit */
	uint64_t suspect_until; /* mono_ms() when a suspect's timer runs out */
	json_t *counters;    /* the last stats record's counters */
	uint64_t progress_ms, progress_sig, io_mark;
	uint64_t rchar, wchar, err_bytes;
	int io_ok;
	long q_bytes, q_cap; /* its input queue; q_ok when sampled */
	int q_ok;
	char *ebuf;
	size_t elen, ecap;
	void *hook;
	char *last_error;    /* its last error-level log message: status.json's cause.error */
	unsigned exit_batch; /* which check for exits noticed its exit (1, 2, ...) */
	int own_error;       /* it logged an error without reason downstream_closed */
	int said_closed;     /* it logged an error with reason downstream_closed */
	json_t *link;        /* its last log record with a "link" member (a
	                      * tool link's state): status.json's stage.link */
};

enum sv_echo { SV_ECHO_NONE, SV_ECHO_WARN, SV_ECHO_ALL };

struct sv_options {
	uint64_t grace_ms;     /* SIGTERM to SIGKILL; default 3000 */
	uint64_t deadline_ms;  /* whole run; 0 none */
	uint64_t stall_ms;     /* stall watchdog; 0 off */
	uint64_t ready_ms;     /* readiness deadline; default 30000 */
	uint64_t min_free;     /* the run directory's file system needs this many bytes free; 0 no check */
	uint64_t tick_ms;      /* status.json, samples; default 500 */
	enum sv_echo echo;     /* which stage log records reach kerf's stderr */
};

struct supervisor {
	struct sv_stage *st;
	int n, cap;
	struct sv_options opt;
	/* Private to supervise.c. */
	struct sv_private *p;
};

void supervise_init(struct supervisor *sv);
/* Add a stage; argv is copied.  The stage's name is returned by value
 * in the struct, which stays valid until supervise_release. */
struct sv_stage *supervise_add(struct supervisor *sv, char *const argv[], int optional);
/*
 * Split a command line into words without a shell: blanks separate
 * words, '...' quotes literally, "..." quotes with \" and \\ escapes, a
 * backslash outside quotes escapes the next character.  Returns a
 * NULL-terminated array (caller frees with supervise_free_argv) or NULL
 * with a message in err.
 */
char **supervise_split(const char *s, int *argc, char *err, size_t errlen);
void supervise_free_argv(char **argv);
/*
 * The program a stage runs: a name with a '/' as is; otherwise the
 * directory of kerf's own executable first, then $PATH.  NULL when not
 * found or not executable.  Caller frees.
 */
char *supervise_resolve(const char *prog);
/* Run everything; the run's exit code. */
int supervise_run(struct supervisor *sv, struct runstate *rs);
void supervise_release(struct supervisor *sv);

#endif

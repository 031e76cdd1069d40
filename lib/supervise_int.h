/*
 * supervise_int.h: private to lib/supervise*.c, the supervisor split along
 * its concerns (lib/supervise.c says how the run goes).  Every shared
 * function here starts with sv_; nothing outside those files includes it.
 */
#ifndef KERF_SUPERVISE_INT_H
#define KERF_SUPERVISE_INT_H

#include <jansson.h>
#include <pipeline.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "blame.h"
#include "runstate.h"
#include "supervise.h"
#include "svcmd.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* Recent commands in status.json's "commands", for `kerf pause` to find
 * its own. */
#define SV_RECENT_COMMANDS 16

/* What ended the run, once something did. */
enum cause_kind { C_NONE, C_FAULT, C_ALARM, C_OPERATOR, C_TIMEOUT, C_PREP };

/* A readiness check (kerf(7), "Preparation"): kerf's own, or one a stage
 * reports in its log ({"check", "outcome", "ms", "reason"}). */
enum ck_state { CK_PENDING, CK_RUNNING, CK_OK, CK_FAILED, CK_SKIPPED, CK_TIMEOUT, CK_CANCELLED };
#define SV_CHECKS_MAX 32

struct sv_check {
	char name[32];
	int stage;             /* the stage that reports it, -1 kerf's own */
	enum ck_state st;
	uint64_t start_ms;     /* when it was first heard of (kerf's clock) */
	int64_t ms;            /* its duration, -1 not known */
	char *reason;
};

/* What a stage's pre-exec hook needs (supervise_launch.c). */
struct hook {
	int err_w;
	pid_t pgid;
	pid_t parent;
};

struct sv_private {
	struct runstate *rs;
	pipeline *pl;
	int sigfd;
	int log_fd;
	pid_t holder;
	int life_w;
	/* The cause of the run's end, once there is one. */
	enum cause_kind cause;
	char cause_what[32];    /* fault, alarm, operator_stop, abort, stall, deadline, ... */
	int cause_stage;        /* index, -1 none */
	char cause_how[64];     /* "exit 2", "signal KILL" */
	char cause_msg[256];
	uint64_t cause_us;      /* when the cause was noticed */
	uint64_t cause_exit_us; /* the failing stage's exit */
	int stops;              /* operator stop signals received */
	int tearing;            /* SIGTERM sent to the group */
	uint64_t kill_at;       /* when to SIGKILL, 0 none */
	int killed;
	int degraded;
	int metrics_warned;     /* metrics.prom could not be written: said once */
	int paused_by_stop;     /* a foreign first stage was SIGSTOPped */
	uint64_t next_tick;
	uint64_t all_exited_us;
	unsigned batch;         /* how many times check_exits found exits */
	/* Commands to the tool (lib/svcmd.h). */
	struct svc_list cmds;
	int reports;            /* the first stage reports commands: 1 yes, 0 no, -1 not known yet */
	int awaiting;           /* the command a pausing, resuming or stop-requested run waits on */
	int pending_end;        /* the command still pending when the outcome was decided */
	/* Readiness checks. */
	struct sv_check checks[SV_CHECKS_MAX];
	int nchecks;
	char cause_check[32];   /* the check named as the cause, "" none */
};

#define NO_REPORTS "the first stage does not report commands"

/* supervise_status.c */
const char *sv_sig_name(int sig);
json_t *sv_stage_ref(const struct sv_stage *s);
void sv_how_str(const struct sv_stage *s, char *out, size_t len);
const char *sv_cause_kind_name(enum cause_kind c);
int sv_exit_code_of(struct supervisor *sv);
void sv_write_status(struct supervisor *sv, int final);
void sv_fire(struct supervisor *sv, enum runstate_event e, json_t *fields);
void sv_set_cause(struct supervisor *sv, enum cause_kind k, const char *what, int stage,
		  const char *how, const char *msg);
void sv_finish(struct supervisor *sv);

/* supervise_launch.c */
void sv_signal_stage(struct supervisor *sv, int i, int sig, const char *why);
int sv_live_stages(struct supervisor *sv);
void sv_teardown(struct supervisor *sv, const char *why);
void sv_kill_all(struct supervisor *sv, const char *why);
pid_t sv_start_holder(int *life_w);
int sv_launch(struct supervisor *sv, const char *rundir_abs);
void sv_reap(struct supervisor *sv);

/* supervise_relay.c */
void sv_drain_stderr(struct supervisor *sv, int i);
int sv_read_stderr(struct supervisor *sv, int i);
void sv_close_stderr(struct sv_stage *s);

/* supervise_blame.c */
void sv_resolve_suspects(struct supervisor *sv);
uint64_t sv_next_suspect(struct supervisor *sv);
void sv_check_exits(struct supervisor *sv);

/* supervise_watch.c */
json_t *sv_checks_json(struct supervisor *sv);
void sv_sample(struct supervisor *sv, int note);
int sv_ready(struct supervisor *sv);
int sv_stalled(struct supervisor *sv);
void sv_timeout(struct supervisor *sv, const char *what, int stage, const char *msg);
int sv_ck_final(enum ck_state st);
struct sv_check *sv_check_get(struct supervisor *sv, const char *name, int stage);
void sv_check_set(struct supervisor *sv, const char *name, int stage, enum ck_state st, int64_t ms,
		  const char *reason);
void sv_checks_close(struct supervisor *sv, enum ck_state running_to, const char *why);
void sv_check_heard(struct supervisor *sv, int stage, json_t *rec);
struct sv_check *sv_check_waited(struct supervisor *sv);
int sv_checks_passed(struct supervisor *sv);
int sv_prepare(struct supervisor *sv);

/* supervise_command.c */
struct svc *sv_awaited(struct supervisor *sv);
int sv_preparing(struct supervisor *sv);
json_t *sv_cmd_ref(struct supervisor *sv, int id);
void sv_cmd_decide(struct supervisor *sv, int id, enum svc_fate f, const char *reason);
void sv_decide_reports(struct supervisor *sv, int reports, const char *why);
void sv_command_record(struct supervisor *sv, json_t *rec);
void sv_cmd_close_pending(struct supervisor *sv);
void sv_handle_signals(struct supervisor *sv);

#endif

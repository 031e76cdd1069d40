/*
 * command.h: the one coordinator of every command kerf-acquire gives its
 * tool (START, PAUSE, RESUME, STOP, ABORT: the operations a tool profile
 * names, enum profile_op), whoever asks (the operator's signals, a
 * critical alarm, kerf itself) and whatever the tool is (a GEM tool over
 * HSMS, or the simulator in the same process).  It owns the queue, the
 * command identities (1, 2, ... per process), their states and deadlines,
 * the rules of what a new command does to the pending ones, and the log
 * record of every transition; the caller owns the wire and what a fate
 * means for the run.
 *
 * A command is queued, then sent (one at a time: never while another
 * awaits its answer), then, by the tool's answer (HCACK, SEMI E30):
 *   0 done       confirmed, except for pause and stop, whose effect
 *                only an event shows: accepted until that event
 *   4 accepted   accepted until the confirming event
 *   other        refused, with the tool's meaning as the reason; kerf's
 *                view of the tool does not change
 *   none         timed_out (no answer within the reply deadline, T3)
 * An accepted command is confirmed by its event (the table confirm_by in
 * command.c: state paused, state executing, run_end stopped, ...) within
 * the completion deadline (--confirm-timeout), or it is timed_out.  The
 * run's end settles what is still pending: a run_end confirms the stop or
 * abort it answers, and supersedes every other pending command.
 *
 * A new command meets the pending ones through one table, cmd_rule
 * (state x pending command x new command -> action), printed whole by
 * tests/unit/t-command and compared with tests/data/command/table.out:
 * a duplicate is merged into the pending one, STOP supersedes a queued
 * PAUSE or RESUME, ABORT supersedes everything queued and goes first,
 * a PAUSE or RESUME behind a pending STOP or ABORT is superseded by it.
 *
 * Every transition is one log record (kerf-acquire(1), "Commands"):
 *   {"msg", "command": "pause", "cmd_id": 3, "fate": "queued", "by":
 *    "operator", ["hcack": N], ["reason": "..."], ["into": ID]}
 * at level info, warn for refused and timed_out.
 *
 * Steps: commands_new; commands_ready once the tool can take commands
 * (and 0 while it cannot); commands_submit per command; feed it the
 * tool's answers (commands_reply), the tool's events (commands_event)
 * and the time (commands_tick, commands_timeout_ms); commands_end when
 * kerf ends the run itself; commands_free.  Single-threaded; the
 * callbacks may call back into the coordinator (commands_end, submit).
 */
#ifndef KERF_COMMAND_H
#define KERF_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/* X(ID, "name", final): the one list of command states ("fates"). */
#define CMD_FATES(X)                  \
	X(QUEUED, "queued", 0)        \
	X(SENT, "sent", 0)            \
	X(ACCEPTED, "accepted", 0)    \
	X(CONFIRMED, "confirmed", 1)  \
	X(REFUSED, "refused", 1)      \
	X(TIMED_OUT, "timed_out", 1)  \
	X(SUPERSEDED, "superseded", 1) \
	X(MERGED, "merged", 1)

enum cmd_fate {
#define CMD_FATE_ENUM(id, name, final) CMD_##id,
	CMD_FATES(CMD_FATE_ENUM)
#undef CMD_FATE_ENUM
	CMD_FATE__COUNT
};
const char *cmd_fate_name(enum cmd_fate f);
int cmd_fate_final(enum cmd_fate f);

/* Who asked. */
#define CMD_BYS(X) X(OPERATOR, "operator") X(ALARM, "alarm") X(KERF, "kerf")
enum cmd_by {
#define CMD_BY_ENUM(id, name) CMD_BY_##id,
	CMD_BYS(CMD_BY_ENUM)
#undef CMD_BY_ENUM
	CMD_BY__COUNT
};
const char *cmd_by_name(enum cmd_by b);

/* What a new command does, given one pending command. */
#define CMD_ACTIONS(X)                                                              \
	X(GO, "go", "goes ahead: sent now if nothing else holds it")                 \
	X(WAIT, "wait", "waits in the queue until the pending one is settled")       \
	X(MERGE, "merge", "is merged into the pending one: not sent twice")          \
	X(SUPERSEDE, "supersede", "supersedes the pending one, which is not sent")   \
	X(YIELD, "yield", "is superseded by the pending one and not sent")
enum cmd_action {
#define CMD_ACTION_ENUM(id, name, what) CMD_ACT_##id,
	CMD_ACTIONS(CMD_ACTION_ENUM)
#undef CMD_ACTION_ENUM
	CMD_ACT__COUNT
};
const char *cmd_action_name(enum cmd_action a);

/*
 * The rules: what new command 'in' does when command 'pending' is in
 * state 'st' (queued, sent or accepted; any other state is not pending
 * and the answer is GO).
 */
enum cmd_action cmd_rule(enum cmd_fate st, enum profile_op pending, enum profile_op in);

/*
 * What the tool's answer to op makes of it: accepted, confirmed or
 * refused; timed_out when none came (hcack -1).
 */
enum cmd_fate cmd_answer(enum profile_op op, int hcack);

/* The event that confirms op: its type and its state (state) or status (run_end), NULL for any. */
void cmd_confirm_by(enum profile_op op, const char **type, const char **what);

struct cmd {
	unsigned id;
	enum profile_op op;
	enum cmd_by by;
	enum cmd_fate fate;
	int hcack;            /* the tool's answer; -1 before it or when none came */
	unsigned into;        /* superseded or merged: the command it went into; 0: none */
	uint64_t deadline;    /* mono_ms of the reply or completion deadline; 0: none */
	int seen;             /* its confirming event came before the answer */
};

struct cmd_tool {
	void *arg;
	/*
	 * Send c to the tool: 0 when sent (the answer comes with
	 * commands_reply, maybe from inside this call's caller's next
	 * round), or -1 when it cannot be sent, with why filled: the
	 * command is then refused by kerf (hcack -1).
	 */
	int (*send)(void *arg, const struct cmd *c, char *why, size_t n);
	/* c changed state (after its record was written); may be NULL. */
	void (*changed)(void *arg, const struct cmd *c);
};

struct commands;

/* reply_ms: the reply deadline (T3); confirm_ms: the completion deadline. */
struct commands *commands_new(uint64_t reply_ms, uint64_t confirm_ms, const struct cmd_tool *tool);
void commands_free(struct commands *cs);

/* The tool can take commands (1) or not (0: link down, not set up yet): queued ones wait. */
void commands_ready(struct commands *cs, int ready);

/* A new command: its id.  It is queued, merged, superseded or sent at once, as the rules say. */
unsigned commands_submit(struct commands *cs, enum profile_op op, enum cmd_by by);

/* The tool's answer to the command of op that was sent: an HCACK, or -1 when none came (why says so). */
void commands_reply(struct commands *cs, enum profile_op op, int hcack, const char *why);

/*
 * An event of the tool's: type "state" with the state, "run_end" with
 * its status, "run_start" (what NULL).  It may confirm a command; a
 * run_end settles every pending one.
 */
void commands_event(struct commands *cs, const char *type, const char *what);

/* Deadlines: those passed at mono_ms() time out. */
void commands_tick(struct commands *cs);
/* Milliseconds until the next deadline, or -1 when none. */
int commands_timeout_ms(const struct commands *cs);

/* kerf ends the run itself (why): every pending command is superseded, and later ones are refused. */
void commands_end(struct commands *cs, const char *why);

/* The pending (queued, sent or accepted) command of op, or NULL. */
const struct cmd *commands_pending(const struct commands *cs, enum profile_op op);
/* The last command of op whatever its fate, or NULL. */
const struct cmd *commands_last(const struct commands *cs, enum profile_op op);
/* The tool's last reported state ("paused"), or NULL before any. */
const char *commands_tool_state(const struct commands *cs);

#endif

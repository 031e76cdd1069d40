/* command.c: see command.h (the coordinator of the commands to the tool). */
#include "util.h"
#include "log.h"
#include "command.h"
#include "gem_host.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* ---- names ---- */

static const struct {
	const char *name;
	int final;
} fates[] = {
#define CMD_FATE_ROW(id, name, final) { name, final },
	CMD_FATES(CMD_FATE_ROW)
#undef CMD_FATE_ROW
};

const char *cmd_fate_name(enum cmd_fate f)
{
	return (unsigned)f < CMD_FATE__COUNT ? fates[f].name : "?";
}

int cmd_fate_final(enum cmd_fate f)
{
	return (unsigned)f < CMD_FATE__COUNT && fates[f].final;
}

static const char *const by_names[] = {
#define CMD_BY_ROW(id, name) name,
	CMD_BYS(CMD_BY_ROW)
#undef CMD_BY_ROW
};

const char *cmd_by_name(enum cmd_by b)
{
	return (unsigned)b < CMD_BY__COUNT ? by_names[b] : "?";
}

static const char *const action_names[] = {
#define CMD_ACTION_ROW(id, name, what) name,
	CMD_ACTIONS(CMD_ACTION_ROW)
#undef CMD_ACTION_ROW
};

const char *cmd_action_name(enum cmd_action a)
{
	return (unsigned)a < CMD_ACT__COUNT ? action_names[a] : "?";
}

/* ---- the rules ---- */

#define GO CMD_ACT_GO
#define WAIT CMD_ACT_WAIT
#define MERGE CMD_ACT_MERGE
#define SUPER CMD_ACT_SUPERSEDE
#define YIELD CMD_ACT_YIELD

/*
 * rules[pending command][its state][new command]: what the new command
 * does.  One command awaits its answer at a time, so nothing goes ahead
 * of a sent one; a command the tool has accepted and not yet confirmed
 * holds back only those that would contradict it (a resume behind a
 * pause), not a stop or an abort.  The latest of two opposite wishes
 * wins while the first is still queued; a stop or abort makes a pause or
 * resume moot; an abort makes everything queued moot and goes first.
 */
enum { R_QUEUED, R_SENT, R_ACCEPTED, R__COUNT };
static const enum cmd_action rules[PROFILE_OP__COUNT][R__COUNT][PROFILE_OP__COUNT] = {
	/*                          new: start  pause  resume stop   abort */
	[PROFILE_START] = {
		[R_QUEUED]   =          { MERGE, WAIT,  WAIT,  SUPER, SUPER },
		[R_SENT]     =          { MERGE, WAIT,  WAIT,  WAIT,  WAIT  },
		[R_ACCEPTED] =          { MERGE, WAIT,  WAIT,  GO,    GO    },
	},
	[PROFILE_PAUSE] = {
		[R_QUEUED]   =          { WAIT,  MERGE, SUPER, SUPER, SUPER },
		[R_SENT]     =          { WAIT,  MERGE, WAIT,  WAIT,  WAIT  },
		[R_ACCEPTED] =          { WAIT,  MERGE, WAIT,  GO,    GO    },
	},
	[PROFILE_RESUME] = {
		[R_QUEUED]   =          { WAIT,  SUPER, MERGE, SUPER, SUPER },
		[R_SENT]     =          { WAIT,  WAIT,  MERGE, WAIT,  WAIT  },
		[R_ACCEPTED] =          { WAIT,  WAIT,  MERGE, GO,    GO    },
	},
	[PROFILE_STOP] = {
		[R_QUEUED]   =          { YIELD, YIELD, YIELD, MERGE, SUPER },
		[R_SENT]     =          { YIELD, YIELD, YIELD, MERGE, WAIT  },
		[R_ACCEPTED] =          { YIELD, YIELD, YIELD, MERGE, GO    },
	},
	[PROFILE_ABORT] = {
		[R_QUEUED]   =          { YIELD, YIELD, YIELD, YIELD, MERGE },
		[R_SENT]     =          { YIELD, YIELD, YIELD, YIELD, MERGE },
		[R_ACCEPTED] =          { YIELD, YIELD, YIELD, YIELD, MERGE },
	},
};

#undef GO
#undef WAIT
#undef MERGE
#undef SUPER
#undef YIELD

enum cmd_action cmd_rule(enum cmd_fate st, enum profile_op pending, enum profile_op in)
{
	int r = st == CMD_QUEUED ? R_QUEUED : st == CMD_SENT ? R_SENT : st == CMD_ACCEPTED ? R_ACCEPTED : -1;

	if (r < 0 || (unsigned)pending >= PROFILE_OP__COUNT || (unsigned)in >= PROFILE_OP__COUNT)
		return CMD_ACT_GO;
	return rules[pending][r][in];
}

/*
 * What confirms each command, and whether HCACK 0 (done) is enough or
 * its effect must still be seen (pause, stop: a tool says "done" when it
 * has taken the request; the state or the run's end shows it).  An abort
 * is at once: done is enough, and kerf ends the run on it.
 */
static const struct {
	const char *type, *what;
	int needs_event;
} confirm_by[PROFILE_OP__COUNT] = {
	[PROFILE_START] = { "run_start", NULL, 0 },
	[PROFILE_PAUSE] = { "state", "paused", 1 },
	[PROFILE_RESUME] = { "state", "executing", 0 },
	[PROFILE_STOP] = { "run_end", "stopped", 1 },
	[PROFILE_ABORT] = { "run_end", "aborted", 0 },
};

void cmd_confirm_by(enum profile_op op, const char **type, const char **what)
{
	*type = (unsigned)op < PROFILE_OP__COUNT ? confirm_by[op].type : NULL;
	*what = (unsigned)op < PROFILE_OP__COUNT ? confirm_by[op].what : NULL;
}

enum cmd_fate cmd_answer(enum profile_op op, int hcack)
{
	if (hcack < 0)
		return CMD_TIMED_OUT;
	if (hcack == 4 || (hcack == 0 && (unsigned)op < PROFILE_OP__COUNT && confirm_by[op].needs_event))
		return CMD_ACCEPTED;
	return hcack == 0 ? CMD_CONFIRMED : CMD_REFUSED;
}

/* ---- the coordinator ---- */

struct commands {
	uint64_t reply_ms, confirm_ms;
	struct cmd_tool tool;
	struct cmd **v;  /* every command, by id - 1 */
	size_t n, cap;
	int ready, over, depth;
	char *over_why;
	char state[32];  /* the tool's last state event */
};

struct commands *commands_new(uint64_t reply_ms, uint64_t confirm_ms, const struct cmd_tool *tool)
{
	struct commands *cs = xcalloc(1, sizeof *cs);

	cs->reply_ms = reply_ms;
	cs->confirm_ms = confirm_ms;
	if (tool)
		cs->tool = *tool;
	return cs;
}

void commands_free(struct commands *cs)
{
	if (!cs)
		return;
	for (size_t i = 0; i < cs->n; i++)
		free(cs->v[i]);
	free(cs->v);
	free(cs->over_why);
	free(cs);
}

static int pending(const struct cmd *c)
{
	return c->fate == CMD_QUEUED || c->fate == CMD_SENT || c->fate == CMD_ACCEPTED;
}

static double secs(uint64_t ms)
{
	return (double)ms / 1000.0;
}

/* The record of c's new state; why (may be NULL) becomes "reason". */
static void record(const struct cmd *c, const char *why, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void record(const struct cmd *c, const char *why, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	json_t *f = json_pack("{ss sI ss ss}", "command", profile_op_name(c->op), "cmd_id", (json_int_t)c->id, "fate",
			      cmd_fate_name(c->fate), "by", cmd_by_name(c->by));

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (c->hcack >= 0)
		json_object_set_new(f, "hcack", json_integer(c->hcack));
	if (why)
		json_object_set_new(f, "reason", json_string(why));
	if (c->into)
		json_object_set_new(f, "into", json_integer(c->into));
	log_msg(c->fate == CMD_REFUSED || c->fate == CMD_TIMED_OUT ? LOG_WARN : LOG_INFO, f, "%s",
		msg ? msg : cmd_fate_name(c->fate));
	free(msg);
}

static void changed(struct commands *cs, const struct cmd *c)
{
	if (cs->tool.changed)
		cs->tool.changed(cs->tool.arg, c);
}

/* c goes to fate: deadline, record (msg: "pause #3 " + what), callback. */
static void settle(struct commands *cs, struct cmd *c, enum cmd_fate fate, const char *why, const char *what)
{
	c->fate = fate;
	c->deadline = fate == CMD_SENT ? mono_ms() + cs->reply_ms : fate == CMD_ACCEPTED ? mono_ms() + cs->confirm_ms : 0;
	record(c, why, "%s #%u %s", profile_op_name(c->op), c->id, what);
	changed(cs, c);
}

/* Send what may go: the first queued command, when nothing holds it. */
static void pump(struct commands *cs)
{
	char why[256], what[320];

	if (cs->depth > 0)
		return;
	cs->depth++;
	while (cs->ready && !cs->over) {
		struct cmd *c = NULL;
		int held = 0;

		for (size_t i = 0; i < cs->n && !c; i++)
			if (cs->v[i]->fate == CMD_SENT)
				held = 1;
			else if (cs->v[i]->fate == CMD_QUEUED)
				c = cs->v[i];
		if (!c || held)
			break;
		for (size_t i = 0; i < cs->n && !held; i++)
			if (cs->v[i] != c && pending(cs->v[i]) && cmd_rule(cs->v[i]->fate, cs->v[i]->op, c->op) != CMD_ACT_GO)
				held = 1;
		if (held)
			break;
		/* A resume to a tool that says it is not paused is not sent. */
		if (c->op == PROFILE_RESUME && cs->state[0] && strcmp(cs->state, "paused")) {
			snprintf(why, sizeof why, "the tool is not paused (state %s): not sent", cs->state);
			settle(cs, c, CMD_REFUSED, why, "refused: the tool is not paused");
			continue;
		}
		why[0] = '\0';
		if (cs->tool.send && cs->tool.send(cs->tool.arg, c, why, sizeof why) == 0) {
			settle(cs, c, CMD_SENT, NULL, "sent to the tool");
		} else {
			snprintf(what, sizeof what, "refused: %s", why[0] ? why : "cannot be sent");
			settle(cs, c, CMD_REFUSED, why[0] ? why : "cannot be sent", what);
		}
	}
	cs->depth--;
}

void commands_ready(struct commands *cs, int ready)
{
	cs->ready = ready;
	pump(cs);
}

unsigned commands_submit(struct commands *cs, enum profile_op op, enum cmd_by by)
{
	struct cmd *c = xcalloc(1, sizeof *c);
	char why[128], what[160];
	size_t i;

	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? 2 * cs->cap : 16;
		cs->v = xrealloc(cs->v, cs->cap * sizeof *cs->v);
	}
	cs->v[cs->n++] = c;
	c->id = (unsigned)cs->n;
	c->op = op;
	c->by = by;
	c->hcack = -1;
	cs->depth++;
	if (cs->over) {
		snprintf(what, sizeof what, "refused: %s", cs->over_why ? cs->over_why : "the run is over");
		settle(cs, c, CMD_REFUSED, cs->over_why ? cs->over_why : "the run is over", what);
		goto out;
	}
	/* A duplicate is merged; a command a pending one makes moot is superseded by it. */
	for (int pass = 0; pass < 2; pass++)
		for (i = 0; i + 1 < c->id; i++) {
			struct cmd *p = cs->v[i];
			enum cmd_action a = pending(p) ? cmd_rule(p->fate, p->op, op) : CMD_ACT_GO;
			if (a != (pass ? CMD_ACT_YIELD : CMD_ACT_MERGE))
				continue;
			c->into = p->id;
			snprintf(why, sizeof why, "%s #%u is pending (%s)", profile_op_name(p->op), p->id, cmd_fate_name(p->fate));
			snprintf(what, sizeof what, pass ? "superseded by the pending %s #%u" : "merged into %s #%u",
				 profile_op_name(p->op), p->id);
			settle(cs, c, pass ? CMD_SUPERSEDED : CMD_MERGED, why, what);
			goto out;
		}
	snprintf(what, sizeof what, "queued (from the %s)", cmd_by_name(by));
	settle(cs, c, CMD_QUEUED, NULL, by == CMD_BY_KERF ? "queued (by kerf)" : what);
	for (i = 0; i + 1 < c->id; i++) {
		struct cmd *p = cs->v[i];
		if (pending(p) && cmd_rule(p->fate, p->op, op) == CMD_ACT_SUPERSEDE) {
			p->into = c->id;
			snprintf(why, sizeof why, "%s #%u supersedes it", profile_op_name(op), c->id);
			snprintf(what, sizeof what, "superseded by %s #%u", profile_op_name(op), c->id);
			settle(cs, p, CMD_SUPERSEDED, why, what);
		}
	}
out:
	cs->depth--;
	pump(cs);
	return c->id;
}

/* c's effect was seen: event 'ev' ("state paused"). */
static void confirm(struct commands *cs, struct cmd *c, const char *ev)
{
	char what[128];

	snprintf(what, sizeof what, "confirmed by the tool (%s)", ev);
	settle(cs, c, CMD_CONFIRMED, ev, what);
}

void commands_reply(struct commands *cs, enum profile_op op, int hcack, const char *why)
{
	struct cmd *c = NULL;
	char what[256], reason[160];

	for (size_t i = 0; i < cs->n && !c; i++)
		if (cs->v[i]->fate == CMD_SENT)
			c = cs->v[i];
	/* An answer to nothing we wait for (a deadline of ours came first). */
	if (!c || c->op != op)
		return;
	cs->depth++;
	c->hcack = hcack;
	switch (cmd_answer(op, hcack)) {
	case CMD_TIMED_OUT:
		snprintf(reason, sizeof reason, "no answer: %s", why ? why : "none came");
		snprintf(what, sizeof what, "timed out: %s", reason);
		settle(cs, c, CMD_TIMED_OUT, reason, what);
		break;
	case CMD_CONFIRMED:
		settle(cs, c, CMD_CONFIRMED, gem_hcack_name(hcack), "confirmed by the tool (HCACK 0, done)");
		break;
	case CMD_ACCEPTED:
		snprintf(what, sizeof what, "accepted by the tool (HCACK %d): confirmation due within %gs", hcack,
			 secs(cs->confirm_ms));
		settle(cs, c, CMD_ACCEPTED, gem_hcack_name(hcack), what);
		if (c->seen) {
			const char *t, *w;
			char ev[64];
			cmd_confirm_by(op, &t, &w);
			snprintf(ev, sizeof ev, "%s%s%s", t, w ? " " : "", w ? w : "");
			confirm(cs, c, ev);
		}
		break;
	default:
		snprintf(what, sizeof what, "refused by the tool: %s (HCACK %d)", gem_hcack_name(hcack), hcack);
		settle(cs, c, CMD_REFUSED, gem_hcack_name(hcack), what);
		break;
	}
	cs->depth--;
	pump(cs);
}

void commands_event(struct commands *cs, const char *type, const char *what)
{
	int run_end = !strcmp(type, "run_end");
	char ev[96], why[128];

	if (!strcmp(type, "state") && what)
		snprintf(cs->state, sizeof cs->state, "%s", what);
	snprintf(ev, sizeof ev, "%s%s%s", type, what ? " " : "", what ? what : "");
	cs->depth++;
	for (size_t i = 0; i < cs->n; i++) {
		struct cmd *c = cs->v[i];
		const char *t, *w;
		if (c->fate != CMD_SENT && c->fate != CMD_ACCEPTED)
			continue;
		cmd_confirm_by(c->op, &t, &w);
		if (strcmp(t, type) || (w && (!what || strcmp(w, what))))
			continue;
		if (c->fate == CMD_ACCEPTED || run_end)
			confirm(cs, c, ev);
		else
			c->seen = 1;
	}
	if (run_end && !cs->over) {
		snprintf(why, sizeof why, "the tool ended the run (%s)", what ? what : "no status");
		cs->depth--;
		commands_end(cs, why);
		return;
	}
	cs->depth--;
	pump(cs);
}

void commands_tick(struct commands *cs)
{
	uint64_t now = mono_ms();
	char why[160], what[200];

	cs->depth++;
	for (size_t i = 0; i < cs->n; i++) {
		struct cmd *c = cs->v[i];
		if (!(c->fate == CMD_SENT || c->fate == CMD_ACCEPTED) || !c->deadline || now < c->deadline)
			continue;
		if (c->fate == CMD_SENT)
			snprintf(why, sizeof why, "no answer within %gs", secs(cs->reply_ms));
		else
			snprintf(why, sizeof why, "the tool did not confirm it within %gs", secs(cs->confirm_ms));
		snprintf(what, sizeof what, "timed out: %s", why);
		settle(cs, c, CMD_TIMED_OUT, why, what);
	}
	cs->depth--;
	pump(cs);
}

int commands_timeout_ms(const struct commands *cs)
{
	uint64_t now = mono_ms(), d = UINT64_MAX;

	for (size_t i = 0; i < cs->n; i++)
		if ((cs->v[i]->fate == CMD_SENT || cs->v[i]->fate == CMD_ACCEPTED) && cs->v[i]->deadline &&
		    cs->v[i]->deadline < d)
			d = cs->v[i]->deadline;
	if (d == UINT64_MAX)
		return -1;
	return d <= now ? 0 : d - now > INT32_MAX ? INT32_MAX : (int)(d - now);
}

void commands_end(struct commands *cs, const char *why)
{
	char what[256];

	if (cs->over)
		return;
	cs->over = 1;
	cs->over_why = xstrdup(why);
	snprintf(what, sizeof what, "superseded: %s", why);
	cs->depth++;
	for (size_t i = 0; i < cs->n; i++)
		if (pending(cs->v[i]))
			settle(cs, cs->v[i], CMD_SUPERSEDED, why, what);
	cs->depth--;
}

const struct cmd *commands_pending(const struct commands *cs, enum profile_op op)
{
	for (size_t i = 0; i < cs->n; i++)
		if (cs->v[i]->op == op && pending(cs->v[i]))
			return cs->v[i];
	return NULL;
}

const struct cmd *commands_last(const struct commands *cs, enum profile_op op)
{
	for (size_t i = cs->n; i > 0; i--)
		if (cs->v[i - 1]->op == op)
			return cs->v[i - 1];
	return NULL;
}

const char *commands_tool_state(const struct commands *cs)
{
	return cs->state[0] ? cs->state : NULL;
}

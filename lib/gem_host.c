/*
 * gem_host.c: see gem_host.h.
 *
 * The session after each select is a short walk: our S1F13 goes out at
 * once, and whichever of the two S1F13 transactions succeeds first (ours
 * answered with COMMACK 0, or the tool's answered by us) makes the link
 * communicating; then the set-up steps of steps[] run one transaction at
 * a time, each checking its reply before the next is sent.  A step that
 * fails ends the walk (on_failed); the link stays up for the caller to
 * close.  Everything the tool sends on its own (events, alarms, S1F1,
 * S2F17, S10F1, unknown primaries) is answered whatever the walk's
 * state, because tools send events between S2F37 and its reply when
 * their report definitions survived a reconnect.
 */
#include "util.h"
#include "log.h"
#include "event.h"
#include "gem_host.h"
#include "base64.h"
#include "reject.h"
#include "secs.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "banned.h"

enum phase { PH_DOWN, PH_ESTABLISH, PH_SETUP, PH_READY, PH_FAILED };

/* What a transaction of ours was for; the ctx lib/hsms hands back. */
struct txn {
	enum { TX_S1F13, TX_STEP, TX_COMMAND, TX_RECIPES } kind;
	size_t step, sub;
	enum profile_op op;
};

struct gem_host {
	struct hsms_conn *c;
	struct gem_host_callbacks cb;
	const struct profile *p;
	const json_t *run;
	struct secs_limits lim;
	enum phase phase;
	int connected, communicating;
	int s1f13_open;          /* our S1F13 awaits its S1F14 */
	uint32_t dataid;
	uint64_t n6f11;
	char *mdln, *softrev;
	int recipes_open;        /* our S7F19 awaits its S7F20 */
	int steps_done;          /* the set-up steps are over; ready once recipes_open is 0 */
};

/* A set-up step: one kind of message, checked by its reply. */
struct step {
	const char *name;
	const char *chk;         /* the readiness check it belongs to, or NULL */
	uint8_t stream, function;
	/* 0 and *body (NULL: header only) to send; 1 when there is nothing to send. */
	int (*build)(struct gem_host *h, size_t sub, struct secs_item **body);
	/* 0 the step is done, 1 send its message number sub + 1, -1 failed (why filled). */
	int (*check)(struct gem_host *h, size_t sub, const struct secs_item *reply, char *why, size_t n);
};

static const char *const link_names[] = { "connected", "selected", "communicating", "online", "lost" };

const char *gem_link_name(enum gem_link link)
{
	return (unsigned)link < sizeof link_names / sizeof link_names[0] ? link_names[link] : "?";
}

const char *gem_hcack_name(int hcack)
{
	static const char *const names[] = {
		"done", "invalid command", "cannot do now", "invalid parameter",
		"accepted, completion comes as an event", "rejected, already in that state", "no such object",
	};
	return hcack >= 0 && (size_t)hcack < sizeof names / sizeof names[0] ? names[hcack] : "unknown code";
}

/* One record with "gem": what; 'extra' (may be NULL) is stolen. */
static void glog(enum log_level lvl, const char *what, json_t *extra, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void glog(enum log_level lvl, const char *what, json_t *extra, const char *fmt, ...)
{
	json_t *f = json_pack("{ss}", "gem", what);
	va_list ap;

	if (extra)
		json_object_update_new(f, extra);
	va_start(ap, fmt);
	log_vmsg(lvl, f, fmt, ap);
	va_end(ap);
}

static void check(struct gem_host *h, const char *name, const char *outcome, const char *reason)
{
	if (h->cb.on_check)
		h->cb.on_check(h, name, outcome, reason, h->cb.arg);
}

/* ---- sending ---- */

/* Encode and send body (stolen); with ctx, a W-bit transaction whose ctx comes back in on_reply. */
static int send_item(struct gem_host *h, uint8_t s, uint8_t f, struct secs_item *body, struct txn *ctx)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	struct secs_error e;
	int rc = secs_encode(body, &buf, &len, &e);

	secs_free(body);
	if (rc == 0)
		rc = hsms_send(h->c, s, f, ctx != NULL, buf, len, ctx, NULL);
	else
		errno = EMSGSIZE;
	if (rc != 0) {
		glog(LOG_ERROR, "send_failed", json_pack("{si si ss}", "stream", s, "function", f, "error", strerror(errno)),
		     "cannot send S%uF%u: %s", s, f, strerror(errno));
		free(ctx);
		return -1;
	}
	free(buf);
	return 0;
}

static int reply_item(struct gem_host *h, const struct hsms_msg *m, struct secs_item *body)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = secs_encode(body, &buf, &len, NULL);

	secs_free(body);
	if (rc == 0)
		rc = hsms_reply(h->c, m, buf, len);
	if (rc != 0)
		glog(LOG_WARN, "reply_failed", json_pack("{si si ss}", "stream", m->stream, "function", m->function + 1,
							 "error", strerror(errno)),
		     "cannot answer S%uF%u: %s", m->stream, m->function, strerror(errno));
	free(buf);
	return rc;
}

static struct txn *txn_new(int kind, size_t step, size_t sub, enum profile_op op)
{
	struct txn *t = xcalloc(1, sizeof *t);
	t->kind = kind;
	t->step = step;
	t->sub = sub;
	t->op = op;
	return t;
}

/* ---- reading replies ---- */

/* An ack code as tools send it: a one-byte B, or any small integer. */
static int ack_of(const struct secs_item *it, unsigned *v)
{
	uint8_t b;
	uint64_t u;

	if (secs_get_byte(it, &b) == 0) {
		*v = b;
		return 0;
	}
	if (secs_get_uint(it, 255, &u) == 0) {
		*v = (unsigned)u;
		return 0;
	}
	return -1;
}

/* A one-ack reply (DRACK, LRACK, ERACK, ACKC5, ONLACK): 0 when ok. */
static int check_ack(const struct secs_item *reply, const char *what, const char *const *meanings,
		     size_t nmeanings, char *why, size_t n)
{
	unsigned v;

	if (ack_of(reply, &v) != 0) {
		snprintf(why, n, "the reply holds no %s", what);
		return -1;
	}
	if (v == 0)
		return 0;
	snprintf(why, n, "%s %u (%s)", what, v, v < nmeanings ? meanings[v] : "error");
	return -1;
}

/* ---- the set-up steps ---- */

static int build_empty(struct gem_host *h, size_t sub, struct secs_item **body)
{
	(void)h;
	(void)sub;
	*body = NULL;
	return 0;
}

/* S1F2 <L <A MDLN> <A SOFTREV>>: kept, and compared with the profile's
 * (a mismatch fails the check when the profile says the model must match). */
static int check_s1f2(struct gem_host *h, size_t sub, const struct secs_item *reply, char *why, size_t n)
{
	const char *mdln = secs_get_str(secs_child(reply, 0), NULL);
	const char *softrev = secs_get_str(secs_child(reply, 1), NULL);
	int must = h->p->model_must_match && (h->p->model || h->p->softrev);

	(void)sub;
	free(h->mdln);
	free(h->softrev);
	h->mdln = mdln ? utf8_sanitize(mdln, strlen(mdln), 64, NULL) : NULL;
	h->softrev = softrev ? utf8_sanitize(softrev, strlen(softrev), 64, NULL) : NULL;
	if (!h->mdln || !h->softrev) {
		glog(must ? LOG_ERROR : LOG_WARN, "no_model", NULL, "the tool's S1F2 names no model and software revision");
		snprintf(why, n, "the tool's S1F2 names no model and software revision");
		check(h, "tool_model", must ? "failed" : "ok", why);
		return must ? -1 : 0;
	}
	glog(LOG_INFO, "identified", json_pack("{ss ss}", "mdln", h->mdln, "softrev", h->softrev),
	     "the tool is '%s', software '%s'", h->mdln, h->softrev);
	if ((h->p->model && strcmp(h->p->model, h->mdln)) || (h->p->softrev && strcmp(h->p->softrev, h->softrev))) {
		snprintf(why, n, "the tool is '%s' '%s', profile '%s' is for '%s' '%s'", h->mdln, h->softrev, h->p->name,
			 h->p->model ? h->p->model : "any", h->p->softrev ? h->p->softrev : "any");
		glog(must ? LOG_ERROR : LOG_WARN, "model_mismatch",
		     json_pack("{ss ss ss? ss? sb}", "mdln", h->mdln, "softrev", h->softrev, "profile_model", h->p->model,
			       "profile_softrev", h->p->softrev, "must_match", must),
		     "%s", why);
		check(h, "tool_model", must ? "failed" : "ok", why);
		return must ? -1 : 0;
	}
	check(h, "tool_model", "ok", NULL);
	return 0;
}

static int check_s1f18(struct gem_host *h, size_t sub, const struct secs_item *reply, char *why, size_t n)
{
	static const char *const onlack[] = { "accepted", "not allowed", "already online" };
	unsigned v;

	(void)sub;
	/* 2, already online, is as good as 0. */
	if (ack_of(reply, &v) == 0 && v == 2) {
		glog(LOG_INFO, "already_online", NULL, "the tool was already online (ONLACK 2)");
	} else if (check_ack(reply, "ONLACK", onlack, 3, why, n) != 0) {
		char w[256];
		snprintf(w, sizeof w, "the tool refused to go online: %s", why);
		check(h, "tool_online", "failed", w);
		return -1;
	}
	if (h->cb.on_link)
		h->cb.on_link(h, GEM_LINK_ONLINE, NULL, h->cb.arg);
	if (!h->p->has_control_state)
		check(h, "tool_online", "ok", "online; the profile names no control-state variable to tell remote from local");
	return 0;
}

/* S1F3 of the profile's control-state variable: only when it has one. */
static int build_control(struct gem_host *h, size_t sub, struct secs_item **body)
{
	(void)sub;
	if (!h->p->has_control_state)
		return 1;
	*body = secs_list(1, secs_u4(h->p->control_state_vid));
	return 0;
}

/* S1F4 <L <CONTROLSTATE>>: E30's 5, ONLINE REMOTE, is needed to take remote commands. */
static int check_control(struct gem_host *h, size_t sub, const struct secs_item *reply, char *why, size_t n)
{
	static const char *const names[] = { "?", "equipment offline", "attempt online", "host offline",
					     "online local", "online remote" };
	uint64_t v;

	(void)sub;
	if (secs_get_uint(secs_child(reply, 0), 255, &v) != 0) {
		snprintf(why, n, "S1F4 holds no control state for variable %lu",
			 (unsigned long)h->p->control_state_vid);
		check(h, "tool_online", "failed", why);
		return -1;
	}
	if (v != 5) {
		snprintf(why, n, "the tool is not ONLINE REMOTE: control state %u (%s)", (unsigned)v,
			 v < 6 ? names[v] : "unknown");
		check(h, "tool_online", "failed", why);
		return -1;
	}
	check(h, "tool_online", "ok", "online remote");
	return 0;
}

static struct secs_item *enable_body(int on, struct secs_item *ceids)
{
	return secs_list(2, secs_boolean(on), ceids);
}

static int build_disable(struct gem_host *h, size_t sub, struct secs_item **body)
{
	(void)h;
	(void)sub;
	*body = enable_body(0, secs_list(0));
	return 0;
}

static int build_delete(struct gem_host *h, size_t sub, struct secs_item **body)
{
	(void)sub;
	*body = secs_list(2, secs_u4(++h->dataid), secs_list(0));
	return 0;
}

static int build_define(struct gem_host *h, size_t sub, struct secs_item **body)
{
	struct secs_item *defs = secs_list(0);

	(void)sub;
	if (h->p->nreports == 0) {
		secs_free(defs);
		return 1;
	}
	for (size_t i = 0; i < h->p->nreports; i++) {
		const struct profile_report *r = &h->p->reports[i];
		struct secs_item *vids = secs_list(0);
		for (size_t j = 0; j < r->nvids; j++)
			secs_append(vids, secs_u4(r->vids[j]));
		secs_append(defs, secs_list(2, secs_u4(r->rptid), vids));
	}
	*body = secs_list(2, secs_u4(++h->dataid), defs);
	return 0;
}

static int build_link(struct gem_host *h, size_t sub, struct secs_item **body)
{
	struct secs_item *links = secs_list(0);

	(void)sub;
	for (size_t i = 0; i < h->p->nevents; i++) {
		const struct profile_event *e = &h->p->events[i];
		struct secs_item *rpts;
		if (e->nrptids == 0)
			continue;
		rpts = secs_list(0);
		for (size_t j = 0; j < e->nrptids; j++)
			secs_append(rpts, secs_u4(e->rptids[j]));
		secs_append(links, secs_list(2, secs_u4(e->ceid), rpts));
	}
	if (secs_count(links) == 0) {
		secs_free(links);
		return 1;
	}
	*body = secs_list(2, secs_u4(++h->dataid), links);
	return 0;
}

static int build_enable(struct gem_host *h, size_t sub, struct secs_item **body)
{
	struct secs_item *ceids = secs_list(0);

	(void)sub;
	for (size_t i = 0; i < h->p->nevents; i++)
		secs_append(ceids, secs_u4(h->p->events[i].ceid));
	*body = enable_body(1, ceids);
	return 0;
}

/* S5F3 <L <B ALED> <U4 ALID>>: first every alarm (an empty ALID), then,
 * if the tool refuses that, the profile's alarms one by one. */
static int build_alarms(struct gem_host *h, size_t sub, struct secs_item **body)
{
	struct secs_item *alid = sub == 0 ? secs_empty(SECS_U4) : secs_u4(h->p->alarms[sub - 1].alid);
	*body = secs_list(2, secs_binary(0x80), alid);
	return 0;
}

static const char *const drack[] = {
	"accepted", "insufficient space", "invalid format", "a report is already defined", "a variable does not exist",
};
static const char *const lrack[] = {
	"accepted", "insufficient space", "invalid format", "an event already has reports linked",
	"an event does not exist", "a report does not exist",
};
static const char *const erack[] = { "accepted", "an event does not exist" };
static const char *const ackc5[] = { "accepted", "error" };

static int check_drack(struct gem_host *h, size_t sub, const struct secs_item *reply, char *why, size_t n)
{
	(void)h;
	(void)sub;
	return check_ack(reply, "DRACK", drack, sizeof drack / sizeof drack[0], why, n);
}

static int check_lrack(struct gem_host *h, size_t sub, const struct secs_item *reply, char *why, size_t n)
{
	(void)h;
	(void)sub;
	return check_ack(reply, "LRACK", lrack, sizeof lrack / sizeof lrack[0], why, n);
}

static int check_erack(struct gem_host *h, size_t sub, const struct secs_item *reply, char *why, size_t n)
{
	(void)h;
	(void)sub;
	return check_ack(reply, "ERACK", erack, 2, why, n);
}

static int check_alarms(struct gem_host *h, size_t sub, const struct secs_item *reply, char *why, size_t n)
{
	if (check_ack(reply, "ACKC5", ackc5, 2, why, n) == 0)
		return sub == 0 || sub == h->p->nalarms ? 0 : 1;
	if (sub > 0 || h->p->nalarms == 0)
		return -1;
	glog(LOG_WARN, "alarms_one_by_one", json_pack("{ss si}", "why", why, "alarms", (int)h->p->nalarms),
	     "the tool refused to enable every alarm (%s): enabling the profile's %zu alarms one by one", why,
	     h->p->nalarms);
	return 1;
}

static const struct step steps[] = {
	{ "S1F1 identify the tool", "tool_model", 1, 1, build_empty, check_s1f2 },
	{ "S1F17 go online", "tool_online", 1, 17, build_empty, check_s1f18 },
	{ "S1F3 control state", "tool_online", 1, 3, build_control, check_control },
	{ "S2F37 disable all events", NULL, 2, 37, build_disable, check_erack },
	{ "S2F33 delete all reports", NULL, 2, 33, build_delete, check_drack },
	{ "S2F33 define reports", NULL, 2, 33, build_define, check_drack },
	{ "S2F35 link reports", NULL, 2, 35, build_link, check_lrack },
	{ "S2F37 enable events", NULL, 2, 37, build_enable, check_erack },
	{ "S5F3 enable alarms", NULL, 5, 3, build_alarms, check_alarms },
};
#define NSTEPS (sizeof steps / sizeof steps[0])

static void failed(struct gem_host *h, const char *step, const char *why)
{
	h->phase = PH_FAILED;
	glog(LOG_ERROR, "setup_failed", json_pack("{ss ss}", "step", step, "why", why), "set-up failed at %s: %s",
	     step, why);
	if (h->cb.on_failed)
		h->cb.on_failed(h, step, why, h->cb.arg);
}

/* The steps are over and the recipe list (if asked for) has come: ready. */
static void maybe_ready(struct gem_host *h)
{
	if (h->phase != PH_SETUP || !h->steps_done || h->recipes_open)
		return;
	h->phase = PH_READY;
	glog(LOG_INFO, "ready", json_pack("{ss}", "profile", h->p->name), "the tool is set up as profile '%s' says",
	     h->p->name);
	if (h->cb.on_ready)
		h->cb.on_ready(h, h->cb.arg);
}

/* Send step i's message number sub, skipping steps with nothing to send. */
static void run_step(struct gem_host *h, size_t i, size_t sub)
{
	struct secs_item *body = NULL;

	for (; i < NSTEPS; i++, sub = 0) {
		if (steps[i].build(h, sub, &body) != 0)
			continue;
		/* A check begins with its first step (S1F17 begins tool_online, S1F3 goes on with it). */
		if (sub == 0 && steps[i].chk && !(i > 0 && steps[i - 1].chk && !strcmp(steps[i - 1].chk, steps[i].chk)))
			check(h, steps[i].chk, "running", NULL);
		if (send_item(h, steps[i].stream, steps[i].function, body, txn_new(TX_STEP, i, sub, 0)) != 0) {
			if (steps[i].chk)
				check(h, steps[i].chk, "failed", "cannot send");
			failed(h, steps[i].name, "cannot send");
		}
		return;
	}
	h->steps_done = 1;
	maybe_ready(h);
}

/* S7F20 <L <A PPID>...>: the run's recipe must be one of them. */
static void recipes_reply(struct gem_host *h, enum hsms_reply_status st, const struct hsms_msg *m)
{
	const char *want = json_string_value(json_object_get(h->run, "recipe"));
	struct secs_item *body = NULL;
	struct secs_error e;
	char why[256] = "";
	size_t k, n;

	if (st == HSMS_REPLY_CLOSED || h->phase != PH_SETUP)
		return;
	h->recipes_open = 0;
	if (st != HSMS_REPLY_OK)
		snprintf(why, sizeof why, "%s", st == HSMS_REPLY_T3 ? "no reply within T3" : "the tool rejected it (Reject.req)");
	else if (m->function == 0)
		snprintf(why, sizeof why, "the tool aborted the transaction (S7F0)");
	else if (secs_decode(m->body, m->len, &h->lim, &body, &e) != 0)
		snprintf(why, sizeof why, "the reply does not decode: %s", e.msg);
	else if (!secs_is(body, SECS_L))
		snprintf(why, sizeof why, "S7F20 is not a list of recipes");
	if (!why[0]) {
		n = secs_count(body);
		for (k = 0; k < n; k++) {
			const char *ppid = secs_get_str(secs_child(body, k), NULL);
			if (ppid && want && !strcmp(ppid, want))
				break;
		}
		if (k == n)
			snprintf(why, sizeof why, "recipe '%s' is not on the tool (%zu recipes listed)", want ? want : "",
				 n);
	}
	secs_free(body);
	if (why[0]) {
		check(h, "tool_recipe", "failed", why);
		failed(h, "S7F19 list recipes", why);
		return;
	}
	check(h, "tool_recipe", "ok", NULL);
	maybe_ready(h);
}

/* S7F19 beside the set-up steps, when the profile says the tool answers it. */
static void ask_recipes(struct gem_host *h)
{
	if (!h->p->recipes) {
		check(h, "tool_recipe", "skipped", "the profile does not say the tool lists its recipes (readiness.recipes)");
		return;
	}
	check(h, "tool_recipe", "running", NULL);
	h->recipes_open = 1;
	if (send_item(h, 7, 19, NULL, txn_new(TX_RECIPES, 0, 0, 0)) != 0) {
		h->recipes_open = 0;
		check(h, "tool_recipe", "failed", "cannot send");
		failed(h, "S7F19 list recipes", "cannot send");
	}
}

static void step_reply(struct gem_host *h, const struct txn *t, enum hsms_reply_status st,
		       const struct hsms_msg *m)
{
	const struct step *s = &steps[t->step];
	struct secs_item *body = NULL;
	struct secs_error e;
	char why[256];
	int r;

	if (st == HSMS_REPLY_CLOSED || h->phase != PH_SETUP)
		return;
	why[0] = '\0';
	if (st != HSMS_REPLY_OK)
		snprintf(why, sizeof why, "%s", st == HSMS_REPLY_T3 ? "no reply within T3" : "the tool rejected it (Reject.req)");
	else if (m->function == 0)
		snprintf(why, sizeof why, "the tool aborted the transaction (S%uF0)", m->stream);
	else if (secs_decode(m->body, m->len, &h->lim, &body, &e) != 0)
		snprintf(why, sizeof why, "the reply does not decode: %s", e.msg);
	if (why[0]) {
		if (s->chk)
			check(h, s->chk, "failed", why);
		failed(h, s->name, why);
		return;
	}
	r = s->check(h, t->sub, body, why, sizeof why);
	secs_free(body);
	if (r < 0)
		failed(h, s->name, why);
	else if (r > 0)
		run_step(h, t->step, t->sub + 1);
	else
		run_step(h, t->step + 1, 0);
}

/* ---- establishing communications ---- */

/*
 * The set-up begins once communications are established and our own
 * S1F13 is over: when the tool's S1F13 came first, the tool may still be
 * handling ours, and some tools refuse anything else (S1F0) until then.
 */
static void maybe_setup(struct gem_host *h)
{
	if (h->phase == PH_ESTABLISH && h->communicating && !h->s1f13_open) {
		h->phase = PH_SETUP;
		h->steps_done = 0;
		h->recipes_open = 0;
		ask_recipes(h);
		if (h->phase == PH_SETUP)
			run_step(h, 0, 0);
	}
}

static void communicating(struct gem_host *h, const char *how)
{
	if (!h->communicating) {
		h->communicating = 1;
		glog(LOG_INFO, "communicating", json_pack("{ss}", "how", how), "communications established (%s)", how);
		if (h->cb.on_link)
			h->cb.on_link(h, GEM_LINK_COMMUNICATING, NULL, h->cb.arg);
	}
	maybe_setup(h);
}

static void s1f13_reply(struct gem_host *h, enum hsms_reply_status st, const struct hsms_msg *m)
{
	struct secs_item *body = NULL;
	unsigned commack = 1;
	char why[128];

	if (st == HSMS_REPLY_CLOSED || h->phase == PH_DOWN)
		return;
	h->s1f13_open = 0;
	if (st == HSMS_REPLY_OK && m->function == 14 && secs_decode(m->body, m->len, &h->lim, &body, NULL) == 0 &&
	    ack_of(secs_child(body, 0), &commack) == 0 && commack == 0) {
		secs_free(body);
		communicating(h, "our S1F13 answered");
		return;
	}
	secs_free(body);
	if (st == HSMS_REPLY_OK && m->function == 14)
		snprintf(why, sizeof why, "S1F14 COMMACK %u (denied)", commack);
	else if (st == HSMS_REPLY_OK)
		snprintf(why, sizeof why, "answered S1F%u", m->function);
	else
		snprintf(why, sizeof why, "%s", st == HSMS_REPLY_T3 ? "no S1F14 within T3" : "the tool rejected it");
	/* The tool's own S1F13, answered by us, is as good. */
	if (h->communicating) {
		glog(LOG_WARN, "s1f13_failed", json_pack("{ss}", "why", why),
		     "our S1F13 failed (%s) but the tool's established communications", why);
		maybe_setup(h);
	} else {
		failed(h, "S1F13 establish communications", why);
	}
}

/* Answer the tool's S1F13 with S1F14 <L <B 0> <L>>: a host names no model. */
static void on_s1f13(struct gem_host *h, const struct hsms_msg *m)
{
	if (reply_item(h, m, secs_list(2, secs_binary(0), secs_list(0))) == 0)
		communicating(h, "the tool's S1F13 answered");
}

static void on_selected(struct gem_host *h)
{
	h->phase = PH_ESTABLISH;
	h->communicating = 0;
	if (h->cb.on_link)
		h->cb.on_link(h, GEM_LINK_SELECTED, NULL, h->cb.arg);
	/* E30 lets either side begin; both at once is the usual case. */
	h->s1f13_open = 1;
	if (send_item(h, 1, 13, secs_list(0), txn_new(TX_S1F13, 0, 0, 0)) != 0) {
		h->s1f13_open = 0;
		failed(h, "S1F13 establish communications", "cannot send");
	}
}

/* ---- remote commands ---- */

static struct secs_item *param_value(const json_t *v)
{
	if (json_is_string(v))
		return secs_ascii_n(json_string_value(v), json_string_length(v));
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= UINT32_MAX)
		return secs_u4((uint32_t)json_integer_value(v));
	if (json_is_integer(v))
		return secs_i8(json_integer_value(v));
	if (json_is_real(v))
		return secs_f8(json_real_value(v));
	return NULL;
}

int gem_host_command(struct gem_host *h, enum profile_op op)
{
	const struct profile_cmd *cmd = &h->p->cmds[op];
	struct secs_item *params;

	if (!cmd->rcmd) {
		glog(LOG_WARN, "no_command", json_pack("{ss}", "op", profile_op_name(op)),
		     "profile '%s' has no '%s' command: not sent", h->p->name, profile_op_name(op));
		return -1;
	}
	if (h->phase != PH_READY) {
		glog(LOG_WARN, "not_ready", json_pack("{ss}", "op", profile_op_name(op)),
		     "cannot send '%s': the tool is not set up", profile_op_name(op));
		return -1;
	}
	params = secs_list(0);
	for (size_t i = 0; i < cmd->nparams; i++) {
		struct secs_item *v = param_value(json_object_get(h->run, cmd->params[i].field));
		if (!v) {
			glog(LOG_ERROR, "no_value", json_pack("{ss ss}", "cpname", cmd->params[i].cpname, "field",
							       cmd->params[i].field),
			     "'%s' parameter %s: no value for '%s'", cmd->rcmd, cmd->params[i].cpname, cmd->params[i].field);
			secs_free(params);
			return -1;
		}
		secs_append(params, secs_list(2, secs_ascii(cmd->params[i].cpname), v));
	}
	glog(LOG_INFO, "command_sent", json_pack("{ss ss}", "op", profile_op_name(op), "rcmd", cmd->rcmd),
	     "sent %s (S2F41 %s)", profile_op_name(op), cmd->rcmd);
	return send_item(h, 2, 41, secs_list(2, secs_ascii(cmd->rcmd), params), txn_new(TX_COMMAND, 0, 0, op));
}

/* S2F42 <L <B HCACK> <L <L <A CPNAME> <B CPACK>>...>>: the HCACK, logged with its meaning. */
static void command_reply(struct gem_host *h, const struct txn *t, enum hsms_reply_status st,
			  const struct hsms_msg *m)
{
	const char *op = profile_op_name(t->op);
	struct secs_item *body = NULL;
	unsigned hcack;
	int code = -1;

	if (st != HSMS_REPLY_OK)
		glog(LOG_WARN, "command_unanswered", json_pack("{ss ss}", "op", op, "why", hsms_reply_status_name(st)),
		     "no answer to '%s' (%s)", op, hsms_reply_status_name(st));
	else if (m->function == 0)
		glog(LOG_WARN, "command_aborted", json_pack("{ss}", "op", op), "the tool aborted '%s' (S2F0)", op);
	else if (secs_decode(m->body, m->len, &h->lim, &body, NULL) != 0 || ack_of(secs_child(body, 0), &hcack) != 0)
		glog(LOG_WARN, "command_bad_reply", json_pack("{ss}", "op", op), "the tool's answer to '%s' holds no HCACK", op);
	else {
		char *sml = hcack == 3 ? secs_sml(secs_child(body, 1), 0) : NULL;
		code = (int)hcack;
		glog(code == 0 || code == 4 ? LOG_INFO : LOG_WARN, "hcack",
		     json_pack("{ss si ss ss?}", "op", op, "hcack", code, "meaning", gem_hcack_name(code), "cpack", sml),
		     "'%s' answered HCACK %d: %s", op, code, gem_hcack_name(code));
		free(sml);
	}
	secs_free(body);
	if (h->cb.on_command)
		h->cb.on_command(h, t->op, code, h->cb.arg);
}

/* ---- reading values through the profile ---- */

/* What one value's conversion may still use, and why it failed. */
struct conv {
	size_t elements;
	char *why;
	size_t n;
};

static json_t *conv_fail(struct conv *cv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *conv_fail(struct conv *cv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cv->why, cv->n, fmt, ap);
	va_end(ap);
	return NULL;
}

/* A or J text as UTF-8, without the trailing blanks and NULs of fixed-width fields.  Caller frees. */
static char *text_of(const struct secs_item *it, size_t *len)
{
	size_t n = 0;
	const char *s = (secs_is(it, SECS_A) || secs_is(it, SECS_J)) ? (const char *)secs_data(it, &n) : NULL;
	char *t;

	if (!s)
		return NULL;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\0'))
		n--;
	t = utf8_sanitize(n ? s : "", n, n, NULL);
	if (len)
		*len = strlen(t);
	return t;
}

static json_t *text_json(const struct secs_item *it)
{
	char *t = text_of(it, NULL);
	json_t *j = json_string(t);
	free(t);
	return j;
}

/*
 * An F4 as the decimal a person would have written: the fewest digits
 * that read back to the same float, so that 6990.3 sent as F4 becomes
 * 6990.3 and not 6990.2998046875.
 */
static double f4_decimal(double v)
{
	char tmp[40];
	for (int prec = 6; prec < 9; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (strtof(tmp, NULL) == (float)v)
			return strtod(tmp, NULL);
	}
	return v;
}

/* Element i of a non-list item as a JSON scalar. */
static json_t *scalar(const struct secs_item *it, size_t i, struct conv *cv)
{
	enum secs_format f = secs_format_of(it);
	uint64_t u;
	int64_t s;
	double d;

	if (f == SECS_B || f == SECS_BOOLEAN) {
		const unsigned char *p = secs_data(it, NULL);
		return f == SECS_B ? json_integer(p[i]) : json_boolean(p[i] != 0);
	}
	if (secs_int_at(it, i, &s) == 0)
		return json_integer(s);
	if (secs_uint_at(it, i, &u) == 0)
		return conv_fail(cv, "%llu is beyond what JSON integers hold", (unsigned long long)u);
	if (secs_float_at(it, i, &d) == 0)
		return isfinite(d) ? json_real(f == SECS_F4 ? f4_decimal(d) : d)
				   : conv_fail(cv, "a %s that is not a finite number", secs_format_name(f));
	return conv_fail(cv, "an item of format %s", secs_format_name(f));
}

/* By the item's format: numbers, reals, text, booleans; several elements or a list an array. */
static json_t *auto_json(const struct secs_item *it, struct conv *cv)
{
	enum secs_format f = secs_format_of(it);
	size_t n = secs_count(it);
	json_t *arr;

	if (f == SECS_A || f == SECS_J) {
		cv->elements++;
		return text_json(it);
	}
	if (cv->elements + (f == SECS_L ? 1 : n) > GEM_VALUE_MAX_ELEMENTS)
		return conv_fail(cv, "more than %d elements", GEM_VALUE_MAX_ELEMENTS);
	cv->elements += f == SECS_L ? 1 : n;
	if (f != SECS_L && n == 1)
		return scalar(it, 0, cv);
	if (f != SECS_L && n == 0)
		return json_null();
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *j = f == SECS_L ? auto_json(secs_child(it, i), cv) : scalar(it, i, cv);
		if (!j) {
			json_decref(arr);
			return NULL;
		}
		json_array_append_new(arr, j);
	}
	return arr;
}

/* "as": int, real or string, from one element or decimal text. */
static json_t *forced_json(const struct secs_item *it, enum profile_as as, struct conv *cv)
{
	int64_t s;
	double d;
	char *t, *end;

	if (as == PROFILE_AS_STRING)
		return secs_is(it, SECS_A) || secs_is(it, SECS_J) ? text_json(it) : conv_fail(cv, "not text");
	if (secs_get_int(it, INT64_MIN, INT64_MAX, &s) == 0)
		return as == PROFILE_AS_INT ? json_integer(s) : json_real((double)s);
	t = text_of(it, NULL);
	if (t) {
		errno = 0;
		d = strtod(t, &end);
		if (!*t || *end || errno)
			d = NAN;
		free(t);
	} else if (secs_is(it, SECS_B) && secs_count(it) == 1) {
		d = secs_data(it, NULL)[0];
	} else if (secs_count(it) != 1 || secs_float_at(it, 0, &d) != 0) {
		return conv_fail(cv, "not one number");
	}
	if (!isfinite(d))
		return conv_fail(cv, "not a number");
	if (as == PROFILE_AS_REAL)
		return json_real(d);
	if (d != floor(d) || fabs(d) > 9.2e18)
		return conv_fail(cv, "%.15g is not a whole number", d);
	return json_integer((json_int_t)d);
}

/* SEMI clock text: YYYYMMDDhhmmsscc, or YYMMDDhhmmss, in local time. */
static int semi_clock(const char *s, struct timespec *ts)
{
	size_t n = strlen(s);
	struct tm tm;
	int v[7] = { 0 }, k = 0, year;

	if ((n != 16 && n != 12) || strspn(s, "0123456789") != n)
		return -1;
	year = n == 16 ? (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0')
		       : 2000 + (s[0] - '0') * 10 + (s[1] - '0');
	for (size_t i = n == 16 ? 4 : 2; i + 1 < n; i += 2)
		v[k++] = (s[i] - '0') * 10 + (s[i + 1] - '0');
	memset(&tm, 0, sizeof tm);
	tm.tm_year = year - 1900;
	tm.tm_mon = v[0] - 1;
	tm.tm_mday = v[1];
	tm.tm_hour = v[2];
	tm.tm_min = v[3];
	tm.tm_sec = v[4];
	tm.tm_isdst = -1;
	if (v[0] < 1 || v[0] > 12 || v[1] < 1 || v[1] > 31 || v[2] > 23 || v[3] > 59 || v[4] > 60)
		return -1;
	ts->tv_sec = mktime(&tm);
	ts->tv_nsec = n == 16 ? (long)v[5] * 10000000L : 0;
	return ts->tv_sec == (time_t)-1 ? -1 : 0;
}

/* The special fields of kerf-profile(5): t, run, image. */
static json_t *special_json(const struct secs_item *it, const char *field, json_t *fields, struct conv *cv)
{
	if (!strcmp(field, "image")) {
		size_t n = 0;
		const unsigned char *px = secs_is(it, SECS_B) || secs_is(it, SECS_U1) ? secs_data(it, &n) : NULL;
		char *b64, hx[17];
		if (!px || n == 0)
			return conv_fail(cv, "an image is a B item of pixels");
		b64 = xmalloc(base64_encoded_len(n) + 1);
		base64_encode(px, n, b64);
		hex64(kerf_xxh3(px, n), hx);
		json_object_set_new(fields, "xxh3", json_string(hx));
		json_object_set_new(fields, "data", json_string(b64));
		free(b64);
		return json_incref(json_object_get(fields, "data"));
	}
	char *t = text_of(it, NULL);
	json_t *j = NULL;
	if (!t)
		return conv_fail(cv, "'%s' is text (an A item)", field);
	if (!strcmp(field, "t")) {
		struct timespec ts;
		char buf[32];
		if (event_time_parse(t, &ts) == 0 || semi_clock(t, &ts) == 0) {
			event_time_fmt(&ts, buf);
			j = json_string(buf);
		} else
			conv_fail(cv, "'%s' is neither RFC 3339 UTC nor a SEMI clock", t);
	} else if (!*t || strlen(t) > 256)
		conv_fail(cv, "a run id is 1 to 256 bytes");
	else
		j = json_string(t);
	free(t);
	return j;
}

/* Variable v's value into fields[v->field]: 0, or -1 with cv->why. */
static int convert(const struct secs_item *it, const struct profile_var *v, json_t *fields, struct conv *cv)
{
	json_t *j;

	if (!strcmp(v->field, "t") || !strcmp(v->field, "run") || !strcmp(v->field, "image"))
		j = special_json(it, v->field, fields, cv);
	else if (v->as == PROFILE_AS_AUTO)
		j = auto_json(it, cv);
	else
		j = forced_json(it, v->as, cv);
	if (!j)
		return -1;
	/* "image" filled data and xxh3 itself. */
	if (!strcmp(v->field, "image"))
		json_decref(j);
	else
		json_object_set_new(fields, v->field, j);
	return 0;
}

/* ---- the tool's event reports ---- */

/* One <L <RPTID> <L V...>> into ev->fields; NULL, or the reject reason with why. */
static const char *read_report(struct gem_host *h, struct gem_event *ev, const struct secs_item *rep, char *why,
			       size_t n)
{
	const struct secs_item *vals = secs_child(rep, 1);
	const struct profile_report *pr;
	uint64_t rptid;

	if (!secs_is(rep, SECS_L) || secs_count(rep) != 2 || !secs_is(vals, SECS_L) ||
	    secs_get_uint(secs_child(rep, 0), UINT32_MAX, &rptid) != 0) {
		snprintf(why, n, "CEID %u: a report is not <L <RPTID> <L V...>>", ev->ceid);
		return "bad_report";
	}
	pr = profile_report(h->p, (uint32_t)rptid);
	if (!pr) {
		snprintf(why, n, "CEID %u: report %llu is not in profile '%s'", ev->ceid, (unsigned long long)rptid,
			 h->p->name);
		return "bad_report";
	}
	if (secs_count(vals) != pr->nvids) {
		snprintf(why, n, "CEID %u report %u has %zu values, its definition %zu", ev->ceid, pr->rptid,
			 secs_count(vals), pr->nvids);
		return "bad_report";
	}
	for (size_t j = 0; j < pr->nvids; j++) {
		const struct profile_var *v = profile_var(h->p, pr->vids[j]);
		char vwhy[160];
		struct conv cv = { 0, vwhy, sizeof vwhy };
		if (convert(secs_child(vals, j), v, ev->fields, &cv) != 0) {
			snprintf(why, n, "CEID %u report %u VID %u (%s): %s", ev->ceid, pr->rptid, v->vid, v->field, vwhy);
			return "bad_value";
		}
	}
	return NULL;
}

/* S6F11 <L <DATAID> <CEID> <L reports>>: NULL (ev->pe NULL for an unknown CEID), or a reason. */
static const char *read_event(struct gem_host *h, const struct secs_item *body, struct gem_event *ev, char *why,
			      size_t n)
{
	const struct secs_item *reports = secs_child(body, 2);
	uint64_t ceid;
	const char *reason = NULL;

	if (!secs_is(body, SECS_L) || secs_count(body) != 3 || !secs_is(reports, SECS_L) ||
	    secs_get_uint(secs_child(body, 0), UINT64_MAX, &ev->dataid) != 0 ||
	    secs_get_uint(secs_child(body, 1), UINT32_MAX, &ceid) != 0) {
		snprintf(why, n, "S6F11 is not <L <DATAID> <CEID> <L <L <RPTID> <L V...>>...>>");
		return "bad_report";
	}
	ev->ceid = (uint32_t)ceid;
	ev->pe = profile_event(h->p, ev->ceid);
	if (!ev->pe)
		return NULL;
	ev->fields = json_object();
	for (size_t i = 0; i < secs_count(reports) && !reason; i++)
		reason = read_report(h, ev, secs_child(reports, i), why, n);
	return reason;
}

static void reject(struct gem_host *h, const char *reason, const char *why, const struct hsms_msg *m,
		   const struct secs_item *body, uint64_t n)
{
	char *sml = secs_sml_message(m->stream, m->function, m->wbit, body, SECS_SML_BRIEF);

	glog(LOG_ERROR, reason, json_pack("{ss sI}", "why", why, "n", (json_int_t)n), "S%uF%u refused: %s",
	     m->stream, m->function, why);
	if (h->cb.on_reject)
		h->cb.on_reject(h, reason, why, sml, n, h->cb.arg);
	free(sml);
}

/* Every S6F11 is answered S6F12 <B 0>, with or without the W-bit, once on_event has returned. */
static void on_s6f11(struct gem_host *h, const struct hsms_msg *m)
{
	struct gem_event ev;
	struct secs_item *body = NULL;
	struct secs_error e;
	const char *reason;
	char why[320];

	memset(&ev, 0, sizeof ev);
	ev.n = ++h->n6f11;
	ev.rx_us = m->rx_us;
	if (secs_decode(m->body, m->len, &h->lim, &body, &e) != 0) {
		snprintf(why, sizeof why, "S6F11 does not decode: %s", e.msg);
		reject(h, "bad_report", why, m, NULL, ev.n);
	} else if ((reason = read_event(h, body, &ev, why, sizeof why)) != NULL) {
		reject(h, reason, why, m, body, ev.n);
	} else if (!ev.pe) {
		glog(LOG_WARN, "unknown_ceid", json_pack("{sI sI}", "ceid", (json_int_t)ev.ceid, "n", (json_int_t)ev.n),
		     "CEID %u is not in profile '%s': ignored", ev.ceid, h->p->name);
	} else if (h->cb.on_event) {
		h->cb.on_event(h, &ev, h->cb.arg);
	}
	json_decref(ev.fields);
	secs_free(body);
	reply_item(h, m, secs_binary(0));
}

/* S5F1 <L <B ALCD> <ALID> <A ALTX>>: answered S5F2 <B 0> whatever came. */
static void on_s5f1(struct gem_host *h, const struct hsms_msg *m)
{
	struct secs_item *body = NULL;
	struct gem_alarm al;
	unsigned alcd;
	uint64_t alid;
	char *text = NULL;

	if (secs_decode(m->body, m->len, &h->lim, &body, NULL) != 0 || secs_count(body) != 3 ||
	    ack_of(secs_child(body, 0), &alcd) != 0 || secs_get_uint(secs_child(body, 1), UINT32_MAX, &alid) != 0 ||
	    (text = text_of(secs_child(body, 2), NULL)) == NULL) {
		reject(h, "bad_alarm", "S5F1 is not <L <B ALCD> <ALID> <A ALTX>>", m, body, 0);
	} else {
		al.alid = (uint32_t)alid;
		al.alcd = (uint8_t)alcd;
		al.text = text;
		if (h->cb.on_alarm)
			h->cb.on_alarm(h, &al, h->cb.arg);
	}
	free(text);
	secs_free(body);
	reply_item(h, m, secs_binary(0));
}

/* ---- the tool's other primaries ---- */

static void on_s1f1(struct gem_host *h, const struct hsms_msg *m)
{
	reply_item(h, m, secs_list(0)); /* a host answers S1F2 <L> */
}

/* S2F17: the tool asks for the time; S2F18 <A YYYYMMDDhhmmsscc>, local time. */
static void on_s2f17(struct gem_host *h, const struct hsms_msg *m)
{
	struct timespec ts;
	struct tm tm;
	char buf[64];

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02d%02ld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (ts.tv_nsec / 10000000L) % 100);
	reply_item(h, m, secs_ascii(buf));
}

/* S10F1 <L <B TID> <A TEXT>>: a terminal message for the operator. */
static void on_s10f1(struct gem_host *h, const struct hsms_msg *m)
{
	struct secs_item *body = NULL;
	char *text = NULL;

	if (secs_decode(m->body, m->len, &h->lim, &body, NULL) == 0)
		text = text_of(secs_child(body, 1), NULL);
	glog(LOG_INFO, "terminal", json_pack("{ss?}", "text", text), "terminal message from the tool: %s",
	     text ? text : "(unreadable)");
	free(text);
	secs_free(body);
	reply_item(h, m, secs_binary(0));
}

/* S9Fx: the tool says something we sent was wrong; E5 gives S9 no reply. */
static void on_s9(struct gem_host *h, const struct hsms_msg *m)
{
	static const char *const meaning[] = {
		[1] = "unknown device id", [3] = "unknown stream", [5] = "unknown function", [7] = "illegal data",
		[9] = "transaction timeout", [11] = "data too long", [13] = "conversation timeout",
	};
	const char *what = m->function < sizeof meaning / sizeof meaning[0] && meaning[m->function]
				   ? meaning[m->function] : "unknown S9 function";
	struct secs_item *body = NULL;
	const unsigned char *hdr = NULL;
	size_t n = 0;
	char about[64] = "";

	if (secs_decode(m->body, m->len, &h->lim, &body, NULL) == 0 && secs_is(body, SECS_B))
		hdr = secs_data(body, &n);
	if (hdr && n == HSMS_HEADER_LEN)
		snprintf(about, sizeof about, "S%uF%u (system bytes %02x%02x%02x%02x)", hdr[2] & 0x7f, hdr[3], hdr[6],
			 hdr[7], hdr[8], hdr[9]);
	glog(LOG_ERROR, "s9", json_pack("{si ss ss?}", "function", m->function, "meaning", what, "about",
					about[0] ? about : NULL),
	     "the tool sent S9F%u (%s)%s%s", m->function, what, about[0] ? " about our " : "", about);
	secs_free(body);
}

static void on_message(struct hsms_conn *c, const struct hsms_msg *m, void *arg)
{
	static const struct {
		uint8_t stream, function;
		void (*fn)(struct gem_host *h, const struct hsms_msg *m);
	} handlers[] = {
		{ 1, 1, on_s1f1 }, { 1, 13, on_s1f13 }, { 2, 17, on_s2f17 }, { 5, 1, on_s5f1 },
		{ 6, 11, on_s6f11 }, { 10, 1, on_s10f1 },
	};
	struct gem_host *h = arg;

	(void)c;
	if (m->stream == 9) {
		on_s9(h, m);
		return;
	}
	for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
		if (handlers[i].stream == m->stream && handlers[i].function == m->function) {
			handlers[i].fn(h, m);
			return;
		}
	/* S9 is the equipment's; a host aborts the transaction instead. */
	glog(LOG_WARN, "unknown_message", json_pack("{si si sb}", "stream", m->stream, "function", m->function,
						    "wbit", m->wbit),
	     "the tool sent S%uF%u, which kerf does not handle%s", m->stream, m->function,
	     m->wbit ? ": answered with function 0 (abort)" : "");
	if (m->wbit && hsms_reply_abort(h->c, m) != 0)
		glog(LOG_WARN, "reply_failed", NULL, "cannot answer S%uF0: %s", m->stream, strerror(errno));
}

/* ---- the link ---- */

static void on_reply(struct hsms_conn *c, enum hsms_reply_status st, const struct hsms_msg *reply, void *ctx,
		     void *arg)
{
	struct gem_host *h = arg;
	struct txn *t = ctx;

	(void)c;
	if (t->kind == TX_S1F13)
		s1f13_reply(h, st, reply);
	else if (t->kind == TX_STEP)
		step_reply(h, t, st, reply);
	else if (t->kind == TX_RECIPES)
		recipes_reply(h, st, reply);
	else
		command_reply(h, t, st, reply);
	free(t);
}

static void on_state(struct hsms_conn *c, enum hsms_state state, enum hsms_cause cause, void *arg)
{
	struct gem_host *h = arg;
	enum phase was = h->phase;
	int lost;

	(void)c;
	if (state == HSMS_SELECTED) {
		on_selected(h);
		return;
	}
	/* Deselect.req ends the session as surely as a closed socket; a
	 * connection that never got selected (T6, T7) is lost too. */
	lost = state == HSMS_NOT_SELECTED ? was != PH_DOWN : h->connected;
	h->phase = PH_DOWN;
	h->communicating = 0;
	h->connected = state == HSMS_NOT_SELECTED;
	if (lost && h->cb.on_link)
		h->cb.on_link(h, GEM_LINK_LOST, state == HSMS_NOT_SELECTED ? "deselected" : hsms_cause_name(cause),
			      h->cb.arg);
	else if (state == HSMS_NOT_SELECTED && h->cb.on_link)
		h->cb.on_link(h, GEM_LINK_CONNECTED, NULL, h->cb.arg);
}

static void on_trace(struct hsms_conn *c, enum hsms_dir dir, const struct hsms_msg *m, void *arg)
{
	struct gem_host *h = arg;

	(void)c;
	if (h->cb.on_trace)
		h->cb.on_trace(h, dir, m, h->cb.arg);
}

struct gem_host *gem_host_new(const struct gem_host_config *cfg, const struct gem_host_callbacks *cb)
{
	struct gem_host *h = xcalloc(1, sizeof *h);
	struct hsms_config hc = cfg->hsms;
	struct hsms_callbacks hcb = { h, on_message, on_reply, on_state, on_trace };
	struct secs_limits lim = SECS_LIMITS_DEFAULT;

	if (cb)
		h->cb = *cb;
	h->p = cfg->profile;
	h->run = cfg->run;
	/* Bodies as large as the link takes, but a bounded tree. */
	lim.max_bytes = hc.max_msg ? hc.max_msg : HSMS_DEFAULT_MAX_MSG;
	lim.max_items = 262144;
	h->lim = lim;
	hc.is_equipment = 0;
	h->c = hsms_new(&hc, &hcb);
	return h;
}

int gem_host_start(struct gem_host *h)
{
	return hsms_start(h->c);
}

void gem_host_free(struct gem_host *h)
{
	if (!h)
		return;
	/* Its open transactions end here, in on_reply, with this host still whole. */
	hsms_free(h->c);
	free_all(h->mdln, h->softrev, h);
}

struct hsms_conn *gem_host_conn(const struct gem_host *h)
{
	return h->c;
}

int gem_host_ready(const struct gem_host *h)
{
	return h->phase == PH_READY;
}

const char *gem_host_model(const struct gem_host *h)
{
	return h->mdln;
}

const char *gem_host_softrev(const struct gem_host *h)
{
	return h->softrev;
}

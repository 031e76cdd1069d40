/*
 * tool.c: see tool.h.
 *
 * One poll loop drives everything: lib/hsms reads, writes and times the
 * link and calls back here for each message; after every round the lot
 * is pumped.  The lot moves only while a host can take its reports
 * (selected, communicating, ONLINE) and only one report of ours is open
 * at a time, so its pace is the host's (or --rate's, if slower): a lot
 * never runs ahead of its host, and nothing piles up in memory.  A
 * report the host does not answer within T3 is logged (lib/hsms also
 * sends S9F9) and counted lost; the lot goes on, as a tool without
 * spooling does.  When the link is lost in the middle of a lot, the lot
 * waits, and goes on when the host, connected again, enables events
 * (S2F37) or sends RESUME: a host sets its reports up again after a
 * reconnect, and events sent before it is done would be lost.
 */
#include "exitcode.h"
#include "version.h"
#include "util.h"
#include "log.h"
#include "sig.h"
#include "event.h"
#include "tool.h"
#include "gem_reports.h"
#include "hsms_trace.h"
#include "profile.h"
#include "secs.h"
#include "validate.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* Events made per round of the loop at most (see pump). */
#define PUMP_BATCH 64

/* E30 leaves the retry of an unanswered S1F13 to a setting; tools ship with about 10 s. */
#define ESTABLISH_RETRY_MS 10000

enum control { CTL_OFFLINE, CTL_LOCAL, CTL_REMOTE };
static const char *const control_names[] = { "offline", "online_local", "online_remote" };

/* What an open transaction of ours is: its ctx in lib/hsms. */
enum txn { TXN_S1F13 = 1, TXN_EVENT, TXN_ALARM };

struct alarm_state {
	uint32_t alid;
	int enabled;
};

struct tool {
	const struct tool_opts *o;
	char *profile_path;
	struct profile prof;
	const char *mdln, *softrev;
	struct gem_reports *rep;
	struct hsms_conn *hc;
	struct hsms_trace *trace;
	FILE *truth;
	/* GEM state. */
	enum control control;
	int communicating;
	uint64_t establish_at;   /* when to send our S1F13 again; 0: not planned */
	struct alarm_state *alarms;
	size_t nalarms;
	/* The lot. */
	struct simrun *lot;
	char *lot_id, *recipe;   /* START's values, which the lot borrows */
	int lots;
	json_t *values;          /* the lot's variables as its events set them, by field */
	json_t *pending;         /* an event made and not sent yet */
	int busy;                /* a report of ours waits for its answer */
	int was_reporting;       /* reporting() at the last pump */
	int held;                /* the link was lost mid-lot: wait for the host */
	unsigned starts;         /* START commands so far, for the injected faults */
	uint32_t dataid;
	int truth_failed;
};

void tool_opts_init(struct tool_opts *o)
{
	memset(o, 0, sizeof *o);
	simrun_opts_init(&o->sim);
	o->profile = "kerf-sim";
	hsms_config_init(&o->hsms);
	o->hsms.mode = HSMS_PASSIVE;
	o->hsms.port = "5000";
}

/* ---- sending ---- */

static int encode(struct secs_item *it, unsigned char **buf, size_t *len)
{
	struct secs_error err;
	int rc = secs_encode(it, buf, len, &err);

	if (rc != 0)
		log_msg(LOG_ERROR, NULL, "cannot encode a message: %s", err.msg);
	secs_free(it);
	return rc ? -1 : 0;
}

/* Answer m with body (stolen). */
static void reply(struct tool *t, const struct hsms_msg *m, struct secs_item *body)
{
	unsigned char *buf = NULL;
	size_t len = 0;

	if (encode(body, &buf, &len) == 0 && hsms_reply(t->hc, m, buf, len) != 0)
		log_msg(LOG_WARN, json_pack("{si si}", "stream", m->stream, "function", m->function + 1),
			"cannot answer S%uF%u: %s", m->stream, m->function + 1u, strerror(errno));
	free(buf);
}

static struct secs_item *ack(unsigned code)
{
	return secs_binary((uint8_t)code);
}

/* A W-bit primary of ours (body stolen): 0, or -1 with errno (ENOBUFS: try again later). */
static int send_primary(struct tool *t, uint8_t stream, uint8_t function, struct secs_item *body, enum txn what)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc, e;

	if (encode(body, &buf, &len) != 0) {
		errno = EINVAL;
		return -1;
	}
	rc = hsms_send(t->hc, stream, function, 1, buf, len, (void *)(uintptr_t)what, NULL);
	e = errno;
	free(buf);
	errno = e;
	return rc;
}

static void s9(struct tool *t, uint8_t function, const struct hsms_msg *m)
{
	if (hsms_send_s9(t->hc, function, m->header) != 0)
		log_msg(LOG_WARN, NULL, "cannot send S9F%u: %s", function, strerror(errno));
}

/* ---- communication and control ---- */

static struct secs_item *mdln_softrev(const struct tool *t)
{
	return secs_list(2, secs_ascii(t->mdln), secs_ascii(t->softrev));
}

static void establish(struct tool *t)
{
	t->establish_at = 0;
	if (t->communicating || hsms_state(t->hc) != HSMS_SELECTED)
		return;
	if (send_primary(t, 1, 13, mdln_softrev(t), TXN_S1F13) != 0)
		t->establish_at = mono_ms() + ESTABLISH_RETRY_MS;
}

static void communicating(struct tool *t, const char *why)
{
	if (t->communicating)
		return;
	t->communicating = 1;
	t->establish_at = 0;
	log_msg(LOG_INFO, json_pack("{ss ss}", "gem", "communicating", "why", why), "communicating (%s)", why);
}

static void set_control(struct tool *t, enum control c)
{
	if (t->control != c)
		log_msg(LOG_INFO, json_pack("{ss ss ss}", "gem", "control", "state", control_names[c], "prev",
					    control_names[t->control]),
			"control state %s", control_names[c]);
	t->control = c;
}

static int lot_active(const struct tool *t)
{
	return t->lot && (!simrun_over(t->lot) || t->pending);
}

static void on_state(struct hsms_conn *c, enum hsms_state st, enum hsms_cause cause, void *arg)
{
	struct tool *t = arg;

	(void)c;
	(void)cause;
	if (st == HSMS_SELECTED) {
		/* Equipment sends its own S1F13 at once, whether or not the host sends one too. */
		t->communicating = 0;
		establish(t);
	} else if (st == HSMS_NOT_SELECTED) {
		/* Deselected: a new select starts communication over (E30). */
		t->communicating = 0;
	} else if (st == HSMS_NOT_CONNECTED) {
		t->communicating = 0;
		t->establish_at = 0;
		if (lot_active(t) && !t->held) {
			t->held = 1;
			log_msg(LOG_WARN, json_pack("{ss}", "gem", "held"),
				"link lost in the middle of the lot: the lot waits for the host");
		}
	}
}

/* ---- the lot's events as reports ---- */

static struct secs_item *int_item(json_int_t v)
{
	if (v < 0)
		return secs_i8(v);
	return (uint64_t)v > UINT32_MAX ? secs_u8((uint64_t)v) : secs_u4((uint32_t)v);
}

/* An array of numbers as one U4, U8 or F8 item; NULL when it holds anything else. */
static struct secs_item *number_array(const json_t *a)
{
	size_t i;
	json_t *e;
	int ints = 1, big = 0;
	struct secs_item *it;

	json_array_foreach(a, i, e) {
		if (!json_is_number(e))
			return NULL;
		if (!json_is_integer(e) || json_integer_value(e) < 0)
			ints = 0;
		else if ((uint64_t)json_integer_value(e) > UINT32_MAX)
			big = 1;
	}
	it = secs_empty(ints ? (big ? SECS_U8 : SECS_U4) : SECS_F8);
	json_array_foreach(a, i, e) {
		if (ints)
			secs_add_uint(it, (uint64_t)json_integer_value(e));
		else
			secs_add_float(it, json_number_value(e));
	}
	return it;
}

/*
 * A value as kerf-tool(1) sends it: strings A, whole numbers U4 (U8
 * past 2^32 - 1, I8 below 0), reals F8, booleans BOOLEAN, arrays of
 * numbers one U4 or F8 item, anything else (no value) an empty list.
 * A profile's "as" says string, int or real instead.
 */
static struct secs_item *item_of(const json_t *j, enum profile_as as)
{
	struct secs_item *it;

	if (as == PROFILE_AS_STRING && json_is_number(j)) {
		char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
		it = secs_ascii(s ? s : "");
		free(s);
		return it;
	}
	if (json_is_number(j) && (as == PROFILE_AS_REAL || (as != PROFILE_AS_INT && json_is_real(j))))
		return secs_f8(json_number_value(j));
	if (json_is_number(j))
		return int_item(json_is_integer(j) ? json_integer_value(j) : (json_int_t)json_real_value(j));
	if (json_is_string(j))
		return secs_ascii_n(json_string_value(j), json_string_length(j));
	if (json_is_boolean(j))
		return secs_boolean(json_is_true(j));
	if (json_is_array(j) && (it = number_array(j)) != NULL)
		return it;
	if (json_is_array(j)) {
		size_t i;
		json_t *e;
		it = secs_list(0);
		json_array_foreach(j, i, e)
			secs_append(it, item_of(e, PROFILE_AS_AUTO));
		return it;
	}
	return secs_list(0);
}

/* The value of a variable in event ev (die: whether ev is the die the lot just made). */
static struct secs_item *value_of(const struct tool *t, uint32_t vid, const json_t *ev, int die)
{
	const struct profile_var *pv = profile_var(&t->prof, vid);
	const json_t *j;

	if (!pv)
		return secs_list(0);
	if (!strcmp(pv->field, "image")) {
		size_t n;
		const unsigned char *px;
		if (!die)
			return secs_list(0);
		px = simrun_pixels(t->lot, &n);
		return secs_raw(SECS_B, px, n);
	}
	j = json_object_get(ev, pv->field);
	if (!j)
		j = json_object_get(t->values, pv->field);
	return item_of(j, pv->as);
}

/* S6F11 <L <U4 DATAID> <CEID> <L <L <RPTID> <L V...>>...>> with the reports the host linked. */
static struct secs_item *event_report(struct tool *t, uint32_t ceid, const json_t *ev, int die)
{
	size_t n, nv;
	const uint32_t *rpts = gem_reports_linked(t->rep, ceid, &n);
	struct secs_item *reports = secs_list(0);

	for (size_t i = 0; i < n; i++) {
		const uint32_t *vids = gem_reports_vids(t->rep, rpts[i], &nv);
		struct secs_item *values = secs_list(0);
		for (size_t k = 0; k < nv; k++)
			secs_append(values, value_of(t, vids[k], ev, die));
		secs_append(reports, secs_list(2, secs_id(rpts[i]), values));
	}
	return secs_list(3, secs_u4(++t->dataid), secs_id(ceid), reports);
}

/* The profile's CEID for an event: for a state, the one of that state if there is one. */
static const struct profile_event *ceid_of(const struct tool *t, enum event_type type, const char *state)
{
	const struct profile_event *any = NULL;

	for (size_t i = 0; i < t->prof.nevents; i++) {
		const struct profile_event *pe = &t->prof.events[i];
		if (pe->type != type)
			continue;
		if (type != EV_STATE || (pe->state && state && !strcmp(pe->state, state)))
			return pe;
		if (!pe->state && !any)
			any = pe;
	}
	return any;
}

static struct alarm_state *alarm_of(const struct tool *t, uint32_t alid)
{
	for (size_t i = 0; i < t->nalarms; i++)
		if (t->alarms[i].alid == alid)
			return &t->alarms[i];
	return NULL;
}

/* S5F1 <L <B ALCD> <U4 ALID> <A ALTX>>, or NULL when the host did not enable the alarm. */
static struct secs_item *alarm_report(const struct tool *t, const json_t *ev)
{
	uint32_t alid = (uint32_t)json_integer_value(json_object_get(ev, "alid"));
	const struct alarm_state *a = alarm_of(t, alid);

	if (!a || !a->enabled)
		return NULL;
	return secs_list(3, secs_binary((uint8_t)json_integer_value(json_object_get(ev, "alcd"))), secs_u4(alid),
			 secs_ascii(json_string_value(json_object_get(ev, "text"))));
}

/* Send ev as the host asked (or not at all): 0, or -1 when it must wait (output full). */
static int send_event(struct tool *t, const json_t *ev)
{
	enum event_type type = event_type_of(json_string_value(json_object_get(ev, "type")));
	const struct profile_event *pe;
	struct secs_item *body;
	int rc;

	if (type == EV_ALARM) {
		if (!(body = alarm_report(t, ev)))
			return 0;
		rc = send_primary(t, 5, 1, body, TXN_ALARM);
	} else {
		pe = ceid_of(t, type, json_string_value(json_object_get(ev, "state")));
		if (!pe || !gem_reports_enabled(t->rep, pe->ceid))
			return 0;
		rc = send_primary(t, 6, 11, event_report(t, pe->ceid, ev, type == EV_DIE), TXN_EVENT);
	}
	if (rc == 0) {
		t->busy = 1;
		return 0;
	}
	if (errno == ENOBUFS || errno == EBUSY)
		return -1;
	log_msg(LOG_WARN, json_pack("{ss}", "event", event_type_name(type)), "cannot send the %s event: %s",
		event_type_name(type), strerror(errno));
	return 0;
}

static void lot_event(struct tool *t, json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));

	json_object_update(t->values, ev);
	if (!strcmp(type, "run_end"))
		log_msg(LOG_INFO,
			json_pack("{ss sO sO sO}", "gem", "lot_end", "status", json_object_get(ev, "status"), "wafers",
				  json_object_get(ev, "wafers"), "dies", json_object_get(ev, "dies")),
			"lot %s %s", t->lot_id, json_string_value(json_object_get(ev, "status")));
	if (!strcmp(type, "state"))
		log_msg(LOG_INFO, json_pack("{ss sO}", "gem", "process_state", "state", json_object_get(ev, "state")),
			"process state %s", json_string_value(json_object_get(ev, "state")));
	if (t->truth && simrun_truth_failed(t->lot))
		t->truth_failed = 1;
}

static int reporting(const struct tool *t)
{
	return hsms_state(t->hc) == HSMS_SELECTED && t->communicating && t->control != CTL_OFFLINE && !t->held;
}

/* Send the lot's events while the host can take them, one open at a time. */
static void pump(struct tool *t)
{
	/*
	 * Events the host did not enable cost no round trip: a batch of them
	 * at a time, so that the link's own work (linktests, timers, the
	 * host's commands) is never kept waiting for a whole lot.
	 */
	int now_reporting = reporting(t);

	if (t->lot && now_reporting != t->was_reporting)
		simrun_hold(t->lot, !now_reporting);
	t->was_reporting = now_reporting;
	for (int n = 0; n < PUMP_BATCH && t->lot && !t->busy && reporting(t); n++) {
		json_t *ev = t->pending;
		if (!ev) {
			if (mono_us() < simrun_due_us(t->lot) || !(ev = simrun_next(t->lot)))
				return;
			lot_event(t, ev);
		}
		t->pending = NULL;
		if (send_event(t, ev) < 0) {
			t->pending = ev;
			return;
		}
		json_decref(ev);
	}
}

/* Milliseconds until the lot has something to send, or -1 (nothing, or it cannot). */
static int lot_timeout(const struct tool *t)
{
	uint64_t due, now;

	if (!t->lot || t->busy || t->pending || !reporting(t) || simrun_over(t->lot) || simrun_paused(t->lot))
		return -1;
	due = simrun_due_us(t->lot);
	now = mono_us();
	return due <= now ? 0 : (int)((due - now + 999) / 1000);
}

static void on_reply(struct hsms_conn *c, enum hsms_reply_status st, const struct hsms_msg *m, void *ctx,
		     void *arg)
{
	struct tool *t = arg;
	enum txn what = (enum txn)(uintptr_t)ctx;
	const char *name = what == TXN_S1F13 ? "S1F13" : what == TXN_EVENT ? "S6F11" : "S5F1";
	struct secs_item *body = NULL;
	uint8_t code = 0;

	(void)c;
	if (what != TXN_S1F13)
		t->busy = 0;
	if (st == HSMS_REPLY_OK && m->function != 0 && secs_decode(m->body, m->len, NULL, &body, NULL) == 0) {
		/* S1F14 <L <B COMMACK> <L ...>>, S6F12 <B ACKC6>, S5F2 <B ACKC5>. */
		if (secs_get_byte(what == TXN_S1F13 ? secs_child(body, 0) : body, &code) != 0)
			code = 255;
		secs_free(body);
		if (what == TXN_S1F13 && code == 0)
			communicating(t, "our S1F13 answered");
		else if (code != 0)
			log_msg(LOG_WARN, json_pack("{ss si}", "request", name, "ack", code),
				"the host answered %s with code %u", name, code);
	} else if (st == HSMS_REPLY_OK) {
		log_msg(LOG_WARN, json_pack("{ss}", "request", name), "the host answered %s with S%uF%u", name,
			m->stream, m->function);
		code = 255;
	} else if (st != HSMS_REPLY_CLOSED) {
		log_msg(LOG_WARN, json_pack("{ss ss}", "request", name, "status", hsms_reply_status_name(st)),
			"no answer to %s (%s)%s", name, hsms_reply_status_name(st),
			what == TXN_S1F13 ? "" : ": it is lost, the lot goes on");
		code = 255;
	}
	if (what == TXN_S1F13 && code != 0 && !t->communicating && hsms_state(t->hc) == HSMS_SELECTED)
		t->establish_at = mono_ms() + ESTABLISH_RETRY_MS;
}

/* ---- the host's messages ---- */

static void s1f1(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	(void)body;
	reply(t, m, mdln_softrev(t));
}

/* S1F3 <L <SVID>...> -> S1F4 <L <SV>...>: the lot's current values (<L> for none). */
static void s1f3(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	struct secs_item *out = secs_list(0);
	size_t n = secs_count(body);
	uint64_t vid;

	if (!secs_is(body, SECS_L)) {
		secs_free(out);
		s9(t, 7, m);
		return;
	}
	for (size_t i = 0; i < (n ? n : t->prof.nvars); i++) {
		if (!n)
			vid = t->prof.vars[i].vid;
		else if (secs_get_uint(secs_child(body, i), UINT32_MAX, &vid) != 0)
			vid = UINT64_MAX;
		/* E30's CONTROLSTATE: 3 host offline, 4 online local, 5 online remote. */
		if (n && t->prof.has_control_state && vid == t->prof.control_state_vid) {
			secs_append(out, secs_u1((uint8_t)(t->control == CTL_REMOTE ? 5 : t->control == CTL_LOCAL ? 4 : 3)));
			continue;
		}
		secs_append(out, vid <= UINT32_MAX ? value_of(t, (uint32_t)vid, t->values, 0) : secs_list(0));
	}
	reply(t, m, out);
}

static void s1f13(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	(void)body;
	reply(t, m, secs_list(2, ack(0), mdln_softrev(t)));
	communicating(t, "host's S1F13 answered");
}

static void s1f15(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	(void)body;
	reply(t, m, ack(0));
	set_control(t, CTL_OFFLINE);
}

static void s1f17(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	(void)body;
	/* ONLACK 2: already online. */
	if (t->o->refuse_online) {
		reply(t, m, ack(1));
		log_msg(LOG_WARN, json_pack("{ss}", "gem", "online_refused"), "S1F17: ONLACK 1 (--refuse-online)");
		return;
	}
	reply(t, m, ack(t->control == CTL_OFFLINE ? 0 : 2));
	if (t->control == CTL_OFFLINE)
		set_control(t, t->o->local ? CTL_LOCAL : CTL_REMOTE);
}

/* S7F19 -> S7F20 <L <A PPID>...>: the recipes on the tool (--recipes, else the lot's). */
static void s7f19(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	struct secs_item *out = secs_list(0);
	const char *r = t->o->recipes ? t->o->recipes : t->o->sim.recipe;

	(void)body;
	while (r && *r) {
		size_t len = strcspn(r, ",");
		if (len)
			secs_append(out, secs_ascii_n(r, len));
		r += len;
		if (*r == ',')
			r++;
	}
	reply(t, m, out);
}

/* Answer with an ack code, or with S9F7 when the body had not the message's structure (code < 0). */
static void ack_or_s9f7(struct tool *t, const struct hsms_msg *m, int code)
{
	if (code < 0)
		s9(t, 7, m);
	else
		reply(t, m, ack((unsigned)code));
}

static void s2f33(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	ack_or_s9f7(t, m, gem_reports_define(t->rep, body));
}

static void s2f35(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	ack_or_s9f7(t, m, gem_reports_link(t->rep, body));
}

static void s2f37(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	int on = 0, erack = gem_reports_enable(t->rep, body, &on);

	ack_or_s9f7(t, m, erack);
	if (erack == 0 && on && t->held) {
		t->held = 0;
		log_msg(LOG_INFO, json_pack("{ss}", "gem", "resumed"), "the host enabled events again: the lot goes on");
	}
}

/* S5F3 <L <B ALED> <ALID>> -> S5F4 <B ACKC5>; an ALID with no value means every alarm. */
static void s5f3(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	const struct secs_item *id = secs_child(body, 1);
	struct alarm_state *a = NULL;
	uint8_t aled;
	uint64_t alid = 0;
	int all = id && !secs_is(id, SECS_L) && secs_count(id) == 0;

	if (secs_count(body) != 2 || !secs_is(body, SECS_L) || secs_get_byte(secs_child(body, 0), &aled) != 0) {
		s9(t, 7, m);
		return;
	}
	if (!all && (secs_get_uint(id, UINT32_MAX, &alid) != 0 || !(a = alarm_of(t, (uint32_t)alid)))) {
		reply(t, m, ack(1));
		return;
	}
	for (size_t i = 0; i < t->nalarms; i++)
		if (all || &t->alarms[i] == a)
			t->alarms[i].enabled = (aled & 0x80) != 0;
	reply(t, m, ack(0));
}

/* ---- remote commands ---- */

struct start_params {
	const char *lot, *recipe;
	size_t lot_len, recipe_len;
	long wafers;
};

/* CPACK of one START parameter <L <A CPNAME> <CPVAL>> (0: taken into p). */
static unsigned start_param(const struct tool *t, const struct secs_item *cp, struct start_params *p)
{
	const struct profile_cmd *cmd = &t->prof.cmds[PROFILE_START];
	const char *name = secs_get_str(secs_child(cp, 0), NULL);
	const struct secs_item *val = secs_child(cp, 1);
	const char *field = NULL;
	uint64_t n;

	for (size_t i = 0; name && i < cmd->nparams; i++)
		if (!strcmp(cmd->params[i].cpname, name))
			field = cmd->params[i].field;
	/* CPACK 1: no such parameter, 2: illegal value, 3: illegal format. */
	if (!field)
		return 1;
	if (!strcmp(field, "wafers")) {
		if (secs_get_uint(val, UINT64_MAX, &n) != 0)
			return 3;
		if (n < 1 || n > 25)
			return 2;
		p->wafers = (long)n;
		return 0;
	}
	if (!strcmp(field, "lot") || !strcmp(field, "recipe")) {
		size_t len;
		const char *s = secs_get_str(val, &len);
		if (!s)
			return 3;
		/* kerf-validate's limit on ids, and no NUL inside a C string. */
		if (len == 0 || len > VALIDATE_RUN_MAX || memchr(s, '\0', len))
			return 2;
		if (field[0] == 'l') {
			p->lot = s;
			p->lot_len = len;
		} else {
			p->recipe = s;
			p->recipe_len = len;
		}
		return 0;
	}
	return 1;
}

/* The parameters' CPACKs as <L <L <A CPNAME> <B CPACK>>...>; NULL when all are good. */
static struct secs_item *check_params(const struct tool *t, enum profile_op op, const struct secs_item *params,
				      struct start_params *p)
{
	struct secs_item *bad = NULL;

	for (size_t i = 0; i < secs_count(params); i++) {
		const struct secs_item *cp = secs_child(params, i);
		unsigned cpack = op == PROFILE_START ? start_param(t, cp, p) : 1;
		if (!cpack)
			continue;
		if (!bad)
			bad = secs_list(0);
		secs_append(bad, secs_list(2, secs_raw(SECS_A, secs_data(secs_child(cp, 0), NULL),
						       secs_count(secs_child(cp, 0))),
					   ack(cpack)));
	}
	return bad;
}

static int start_lot(struct tool *t, const struct start_params *p)
{
	struct simrun_opts so = t->o->sim;
	struct simrun *r;
	char err[256], *run;

	free(t->lot_id);
	free(t->recipe);
	t->lot_id = p->lot ? xstrndup(p->lot, p->lot_len) : xstrdup(so.lot);
	t->recipe = p->recipe ? xstrndup(p->recipe, p->recipe_len) : xstrdup(so.recipe);
	so.lot = t->lot_id;
	so.recipe = t->recipe;
	if (p->wafers)
		so.cfg.wafers = (int)p->wafers;
	run = t->lots ? xasprintf("%s-%d", t->o->run, t->lots + 1) : xstrdup(t->o->run);
	r = simrun_new(&so, run, err, sizeof err);
	if (!r) {
		log_msg(LOG_ERROR, NULL, "cannot start the lot: %s", err);
		free(run);
		return -1;
	}
	simrun_free(t->lot);
	t->lot = r;
	t->lots++;
	t->held = 0;
	simrun_set_truth(r, t->truth, t->o->sim.truth);
	json_object_clear(t->values);
	/* The log's records name the lot's run from here on. */
	log_set_run(run);
	log_msg(LOG_INFO, json_pack("{ss ss ss si}", "gem", "lot_start", "lot", t->lot_id, "recipe", t->recipe,
				    "wafers", so.cfg.wafers),
		"lot %s started (run %s, %d wafers)", t->lot_id, run, so.cfg.wafers);
	free(run);
	return 0;
}

/*
 * The HCACK for op, and what it does: START starts a lot when none runs
 * (0), the others are the lot's (lib/simrun answers them in its state,
 * with the injected faults, and carries them out); no lot: 2.  A RESUME
 * also lets a lot held since a lost link go on.
 */
static unsigned command(struct tool *t, enum profile_op op, const struct start_params *p)
{
	const struct simrun_fault *f;

	if (op == PROFILE_START) {
		f = simrun_fault_find(t->o->sim.faults, t->o->sim.nfaults, op, ++t->starts);
		if (f && f->kind == SIMRUN_REFUSE)
			return f->arg;
		if (lot_active(t))
			return 5;
		if (f && f->kind == SIMRUN_IGNORE)
			return 4;
		start_lot(t, p);
		return 0;
	}
	if (!lot_active(t))
		return 2;
	if (op == PROFILE_RESUME && t->held && !simrun_paused(t->lot)) {
		t->held = 0;
		return 0;
	}
	if (op == PROFILE_RESUME)
		t->held = 0;
	return (unsigned)simrun_command(t->lot, op);
}

/* S2F41 <L <A RCMD> <L <L <A CPNAME> <CPVAL>>...>> -> S2F42 <L <B HCACK> <L CPACKs>>. */
static void s2f41(struct tool *t, const struct hsms_msg *m, const struct secs_item *body)
{
	const struct secs_item *params = secs_child(body, 1);
	const char *rcmd = secs_get_str(secs_child(body, 0), NULL);
	struct start_params p = { 0 };
	struct secs_item *bad = NULL;
	int op;
	unsigned code;

	if (secs_count(body) != 2 || !secs_is(body, SECS_L) || !rcmd || !secs_is(params, SECS_L)) {
		s9(t, 7, m);
		return;
	}
	for (size_t i = 0; i < secs_count(params); i++) {
		const struct secs_item *cp = secs_child(params, i);
		if (!secs_is(cp, SECS_L) || secs_count(cp) != 2 || !secs_is(secs_child(cp, 0), SECS_A)) {
			s9(t, 7, m);
			return;
		}
	}
	for (op = 0; op < PROFILE_OP__COUNT; op++)
		if (t->prof.cmds[op].rcmd && !strcmp(t->prof.cmds[op].rcmd, rcmd))
			break;
	if (op == PROFILE_OP__COUNT)
		code = 1;
	else if (t->control != CTL_REMOTE)
		code = 2;  /* E30: remote commands only in ONLINE REMOTE */
	else if ((bad = check_params(t, (enum profile_op)op, params, &p)) != NULL)
		code = 3;
	else
		code = command(t, (enum profile_op)op, &p);
	reply(t, m, secs_list(2, ack(code), bad ? bad : secs_list(0)));
	log_msg(code == 0 || code == 4 ? LOG_INFO : LOG_WARN,
		json_pack("{ss ss si}", "gem", "command", "rcmd", rcmd, "hcack", (int)code), "%s: HCACK %u", rcmd, code);
}

/* ---- dispatching the host's messages ---- */

#define NEED_COMM 1u   /* only once communicating (E30: S1F13 first) */
#define NEED_ONLINE 2u /* not while OFFLINE */

static const struct handler {
	uint8_t stream, function;
	unsigned needs;
	void (*fn)(struct tool *t, const struct hsms_msg *m, const struct secs_item *body);
} handlers[] = {
	{ 1, 1, NEED_COMM, s1f1 },
	{ 1, 3, NEED_COMM | NEED_ONLINE, s1f3 },
	{ 1, 13, 0, s1f13 },
	{ 1, 15, NEED_COMM, s1f15 },
	{ 1, 17, NEED_COMM, s1f17 },
	{ 2, 33, NEED_COMM | NEED_ONLINE, s2f33 },
	{ 2, 35, NEED_COMM | NEED_ONLINE, s2f35 },
	{ 2, 37, NEED_COMM | NEED_ONLINE, s2f37 },
	{ 2, 41, NEED_COMM | NEED_ONLINE, s2f41 },
	{ 5, 3, NEED_COMM | NEED_ONLINE, s5f3 },
	{ 7, 19, NEED_COMM, s7f19 },
};

static void on_message(struct hsms_conn *c, const struct hsms_msg *m, void *arg)
{
	struct tool *t = arg;
	const struct handler *h = NULL;
	struct secs_item *body = NULL;
	struct secs_error err;
	int stream_known = 0;

	(void)c;
	for (size_t i = 0; i < sizeof handlers / sizeof handlers[0]; i++) {
		stream_known |= handlers[i].stream == m->stream;
		if (handlers[i].stream == m->stream && handlers[i].function == m->function)
			h = &handlers[i];
	}
	if (!h) {
		/* E5: S9F3 for a stream we do not have, S9F5 for a function. */
		s9(t, stream_known ? 5 : 3, m);
		return;
	}
	if (secs_decode(m->body, m->len, NULL, &body, &err) != 0) {
		log_msg(LOG_WARN, json_pack("{si si ss}", "stream", m->stream, "function", m->function, "error", err.msg),
			"S%uF%u: the body is not SECS-II: %s", m->stream, m->function, err.msg);
		s9(t, 7, m);
		return;
	}
	for (int k = 0; k < t->o->nmute; k++)
		if (t->o->mute[k][0] == m->stream && t->o->mute[k][1] == m->function) {
			log_msg(LOG_WARN, json_pack("{si si}", "stream", m->stream, "function", m->function),
				"S%uF%u: never answered (--mute)", m->stream, m->function);
			secs_free(body);
			return;
		}
	if ((h->needs & NEED_COMM && !t->communicating) || (h->needs & NEED_ONLINE && t->control == CTL_OFFLINE)) {
		log_msg(LOG_WARN, json_pack("{si si}", "stream", m->stream, "function", m->function),
			"S%uF%u while %s: answered S%uF0", m->stream, m->function,
			!t->communicating ? "not communicating" : "offline", m->stream);
		if (m->wbit && hsms_reply_abort(t->hc, m) != 0)
			log_msg(LOG_WARN, NULL, "cannot send S%uF0: %s", m->stream, strerror(errno));
	} else {
		h->fn(t, m, body);
	}
	secs_free(body);
}

static void on_trace(struct hsms_conn *c, enum hsms_dir dir, const struct hsms_msg *m, void *arg)
{
	struct tool *t = arg;

	(void)c;
	hsms_trace_frame(t->trace, dir, m);
}

/* ---- the run ---- */

/* The alarms the tool knows: the profile's and the injected ones, each once. */
static void known_alarms(struct tool *t)
{
	size_t n = t->prof.nalarms + t->o->sim.nalarms;

	t->alarms = xcalloc(n + 1, sizeof *t->alarms);
	for (size_t i = 0; i < n; i++) {
		uint32_t alid = i < t->prof.nalarms ? t->prof.alarms[i].alid
						    : (uint32_t)t->o->sim.alarms[i - t->prof.nalarms].alid;
		if (!alarm_of(t, alid))
			t->alarms[t->nalarms++].alid = alid;
	}
}

/* Everything but the link: 0, or the exit status. */
static int setup(struct tool *t)
{
	char err[512], *why = NULL;
	struct simrun *probe;

	if (!(t->profile_path = profile_find(t->o->profile, &why))) {
		log_msg(LOG_ERROR, json_pack("{ss}", "profile", t->o->profile), "%s", why);
		free(why);
		return KERF_EX_USAGE;
	}
	if (profile_load(&t->prof, t->profile_path, err, sizeof err) != 0) {
		log_msg(LOG_ERROR, json_pack("{ss}", "profile", t->profile_path), "bad profile: %s", err);
		return KERF_EX_DATAERR;
	}
	t->mdln = t->o->model ? t->o->model : t->prof.model ? t->prof.model : t->prof.name;
	t->softrev = t->o->softrev ? t->o->softrev : t->prof.softrev ? t->prof.softrev : KERF_VERSION;
	/* A geometry with no die is the command line's fault: say so now, not at START. */
	probe = simrun_new(&t->o->sim, t->o->run, err, sizeof err);
	if (!probe) {
		log_msg(LOG_ERROR, NULL, "%s", err);
		return KERF_EX_USAGE;
	}
	simrun_free(probe);
	known_alarms(t);
	t->rep = gem_reports_new(&t->prof);
	t->values = json_object();
	if (t->o->sim.truth && !(t->truth = fopen(t->o->sim.truth, "w"))) {
		log_msg(LOG_ERROR, json_pack("{ss}", "path", t->o->sim.truth), "cannot open '%s': %s", t->o->sim.truth,
			strerror(errno));
		return KERF_EX_IOERR;
	}
	if (t->o->trace && !(t->trace = hsms_trace_open(t->o->trace))) {
		log_msg(LOG_ERROR, json_pack("{ss}", "path", t->o->trace), "cannot open '%s': %s", t->o->trace,
			strerror(errno));
		return KERF_EX_IOERR;
	}
	return 0;
}

/* Listen or connect; in passive mode the first line of stdout says where. */
static int open_link(struct tool *t)
{
	struct hsms_callbacks cb = { t, on_message, on_reply, on_state, on_trace };
	struct hsms_config cfg = t->o->hsms;
	const char *h = cfg.host;

	cfg.is_equipment = 1;
	t->hc = hsms_new(&cfg, &cb);
	if (hsms_start(t->hc) != 0) {
		log_msg(LOG_ERROR, json_pack("{ss ss}", "host", cfg.host, "port", cfg.port), "cannot %s '%s:%s': %s",
			cfg.mode == HSMS_PASSIVE ? "listen on" : "connect to", cfg.host, cfg.port, strerror(errno));
		return KERF_EX_UNAVAILABLE;
	}
	if (cfg.mode == HSMS_PASSIVE) {
		char *addr = xasprintf(strchr(h, ':') ? "[%s]:%d" : "%s:%d", h, hsms_local_port(t->hc));
		json_t *line = json_pack("{ss}", "listen", addr);
		int rc = event_write(stdout, line);
		json_decref(line);
		free(addr);
		/* A test (or a script) reads the port while the tool runs. */
		if (rc != 0 || fflush(stdout) != 0) {
			log_msg(LOG_ERROR, NULL, "cannot write standard output: %s", strerror(errno));
			return KERF_EX_IOERR;
		}
	}
	return 0;
}

static int next_timeout(const struct tool *t, uint64_t end)
{
	int ms = hsms_timeout_ms(t->hc), lot = lot_timeout(t);
	uint64_t now = mono_ms();

#define SOONER(x) do { int x_ = (x); if (x_ >= 0 && (ms < 0 || x_ < ms)) ms = x_; } while (0)
	SOONER(lot);
	if (t->establish_at)
		SOONER(t->establish_at > now ? (int)(t->establish_at - now) : 0);
	if (end)
		SOONER(end > now ? (int)(end - now) : 0);
#undef SOONER
	return ms;
}

/* One round: wait, then let the link, our S1F13 and the lot do what is due. -1: go on. */
static int round_trip(struct tool *t, uint64_t end, const sigset_t *open_mask)
{
	struct pollfd pfd = { hsms_fd(t->hc), POLLIN, 0 };
	int ms = next_timeout(t, end);
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	if (ppoll(&pfd, 1, ms < 0 ? NULL : &ts, open_mask) < 0 && errno != EINTR) {
		log_msg(LOG_ERROR, NULL, "poll: %s", strerror(errno));
		return KERF_EX_SOFTWARE;
	}
	hsms_dispatch(t->hc);
	if (t->establish_at && mono_ms() >= t->establish_at)
		establish(t);
	pump(t);
	if (end && mono_ms() >= end) {
		log_msg(LOG_INFO, json_pack("{sI}", "max_ms", (json_int_t)t->o->max_ms), "--max-seconds ran out");
		return KERF_EX_OK;
	}
	if (hsms_done(t->hc)) {
		log_msg(LOG_ERROR, NULL, "the link is given up");
		return KERF_EX_UNAVAILABLE;
	}
	return -1;
}

static int loop(struct tool *t)
{
	uint64_t end = t->o->max_ms ? mono_ms() + t->o->max_ms : 0;
	sigset_t stops, saved, open_mask;
	int rc = -1;

	/*
	 * The stop signals are let in only while ppoll waits, so that one
	 * arriving between the check of sig_stop and the wait ends the wait
	 * instead of being noticed at the next message or deadline.
	 */
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	sigprocmask(SIG_BLOCK, &stops, &saved);
	open_mask = saved;
	sigdelset(&open_mask, SIGTERM);
	sigdelset(&open_mask, SIGINT);
	while (rc < 0 && !sig_stop)
		rc = round_trip(t, end, &open_mask);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (rc >= 0)
		return rc;
	log_msg(LOG_INFO, json_pack("{si}", "signal", (int)sig_stop), "stopped by a signal");
	return KERF_EX_OK;
}

/* Close everything; an output that could not be written whole makes the status 74. */
static int finish(struct tool *t, int rc)
{
	hsms_free(t->hc);
	if (t->lot && simrun_truth_failed(t->lot))
		t->truth_failed = 1;
	if (t->truth && fclose(t->truth) != 0 && !t->truth_failed) {
		log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", t->o->sim.truth, strerror(errno));
		t->truth_failed = 1;
	}
	if (hsms_trace_close(t->trace) != 0 || t->truth_failed)
		rc = rc ? rc : KERF_EX_IOERR;
	json_decref(t->pending);
	json_decref(t->values);
	simrun_free(t->lot);
	gem_reports_free(t->rep);
	profile_release(&t->prof);
	free_all(t->profile_path, t->alarms, t->lot_id, t->recipe);
	return rc;
}

int tool_run(const struct tool_opts *o)
{
	struct tool t;
	int rc;

	memset(&t, 0, sizeof t);
	t.o = o;
	rc = setup(&t);
	if (rc == 0)
		rc = open_link(&t);
	if (rc == 0)
		rc = loop(&t);
	return finish(&t, rc);
}

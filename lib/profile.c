/* profile.c: see profile.h.  The format is described in kerf-profile(5). */

#include "profile.h"

#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

static const char *const op_names[PROFILE_OP__COUNT] = { "start", "pause", "resume", "stop", "abort" };

/* Fields a variable may not fill: the envelope is kerf-acquire's own. */
static const char *const reserved_fields[] = { "v", "type", "seq", "id", "data", "xxh3", NULL };

/* What the parse allocated, freed by profile_release. */
struct priv {
	json_t *doc;
	struct profile_var *vars;
	struct profile_report *reports;
	struct profile_event *events;
	struct profile_alarm *alarms;
	uint32_t *ids;          /* every vids/rptids array, one after another */
	size_t nids, capids;
	struct profile_param *params;
	size_t nparams, capparams;
};

struct ctx {
	struct profile *p;
	struct priv *v;
	char *err;
	size_t errlen;
};

/* A member's name in messages: "reports.7", "events.2.reports[0]". */
#define KEY_MAX 96

__attribute__((format(printf, 3, 4))) static int fail(struct ctx *c, const char *key, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s%s%s", c->p->path, key ? key : "", key ? ": " : "", why);
	return -1;
}

const char *profile_op_name(enum profile_op op)
{
	return op >= 0 && op < PROFILE_OP__COUNT ? op_names[op] : "?";
}

/*
 * A numeric key ("1000") as an id: 0 .. 2^32-1, decimal, no sign and no
 * leading zero, so that each id has one spelling and a repeat ("1" and
 * "01") is caught as a duplicate key instead of defining it twice.
 */
static int parse_id(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v;
	if (!*s || *s < '0' || *s > '9' || strlen(s) > 10 || (s[0] == '0' && s[1]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int id_of_json(json_t *j, uint32_t *out)
{
	if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) > (json_int_t)UINT32_MAX)
		return -1;
	*out = (uint32_t)json_integer_value(j);
	return 0;
}

static int valid_field(const char *s)
{
	if (!*s || strlen(s) > 64 || !((*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (const char *q = s; *q; q++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_'))
			return 0;
	for (size_t i = 0; reserved_fields[i]; i++)
		if (!strcmp(s, reserved_fields[i]))
			return 0;
	return 1;
}

/* The object's keys must be among 'allowed' (NULL-terminated). */
static int only_keys(struct ctx *c, json_t *o, const char *where, const char *const *allowed)
{
	const char *k;
	json_t *val;
	json_object_foreach(o, k, val) {
		size_t i;
		(void)val;
		for (i = 0; allowed[i] && strcmp(allowed[i], k); i++)
			;
		if (!allowed[i])
			return fail(c, where, "unknown key '%s'", k);
	}
	return 0;
}

/*
 * An array of ids appended to the shared id store, *n of them.  A loader
 * points its lists into the store once all are in, as the store may move
 * while it grows: each list starts where the one before it ended.
 */
static int ids_of(struct ctx *c, json_t *arr, const char *key, size_t *n)
{
	size_t i;
	json_t *e;
	if (!json_is_array(arr))
		return fail(c, key, "not an array of numbers");
	*n = json_array_size(arr);
	json_array_foreach(arr, i, e) {
		uint32_t id;
		if (id_of_json(e, &id) != 0)
			return fail(c, key, "item %zu is not a number from 0 to 4294967295", i);
		if (c->v->nids == c->v->capids) {
			c->v->capids = c->v->capids ? 2 * c->v->capids : 64;
			c->v->ids = xrealloc(c->v->ids, c->v->capids * sizeof *c->v->ids);
		}
		c->v->ids[c->v->nids++] = id;
	}
	return 0;
}

/*
 * Member k of section 'sect': its name in messages, "sect.k", into key (of
 * KEY_MAX bytes), and k, which names an ID ('what': "a VID"), into *id.
 */
static int member_id(struct ctx *c, const char *sect, const char *k, const char *what, char *key, uint32_t *id)
{
	snprintf(key, KEY_MAX, "%s.%s", sect, k);
	if (parse_id(k, id) != 0)
		return fail(c, key, "%s is a number from 0 to 4294967295 without leading zeros", what);
	return 0;
}

static int cmp_u32(uint32_t a, uint32_t b)
{
	return a < b ? -1 : a > b;
}
static int cmp_var(const void *a, const void *b)
{
	return cmp_u32(((const struct profile_var *)a)->vid, ((const struct profile_var *)b)->vid);
}
static int cmp_report(const void *a, const void *b)
{
	return cmp_u32(((const struct profile_report *)a)->rptid, ((const struct profile_report *)b)->rptid);
}
static int cmp_event(const void *a, const void *b)
{
	return cmp_u32(((const struct profile_event *)a)->ceid, ((const struct profile_event *)b)->ceid);
}
static int cmp_alarm(const void *a, const void *b)
{
	return cmp_u32(((const struct profile_alarm *)a)->alid, ((const struct profile_alarm *)b)->alid);
}

static int load_vars(struct ctx *c, json_t *o)
{
	const char *k;
	json_t *val;
	size_t i = 0;
	char key[KEY_MAX];
	static const char *const var_keys[] = { "field", "as", NULL };

	if (!json_is_object(o))
		return fail(c, "variables", "not an object of VID: field");
	c->v->vars = xcalloc(json_object_size(o) + 1, sizeof *c->v->vars);
	json_object_foreach(o, k, val) {
		struct profile_var *pv = &c->v->vars[i++];
		json_t *f = val;
		if (member_id(c, "variables", k, "a VID", key, &pv->vid) != 0)
			return -1;
		if (json_is_object(val)) {
			json_t *as = json_object_get(val, "as");
			if (only_keys(c, val, key, var_keys) != 0)
				return -1;
			f = json_object_get(val, "field");
			if (as) {
				const char *a = json_string_value(as);
				pv->as = !a                   ? (enum profile_as)-1
					 : !strcmp(a, "int")    ? PROFILE_AS_INT
					 : !strcmp(a, "real")   ? PROFILE_AS_REAL
					 : !strcmp(a, "string") ? PROFILE_AS_STRING
								: (enum profile_as)-1;
				if ((int)pv->as < 0)
					return fail(c, key, "\"as\" is int, real or string");
			}
		}
		if (!json_is_string(f) || !valid_field(json_string_value(f)))
			return fail(c, key, "the field is a lowercase name (a-z, 0-9, _), not an envelope member");
		pv->field = json_string_value(f);
	}
	c->p->nvars = i;
	qsort(c->v->vars, i, sizeof *c->v->vars, cmp_var);
	c->p->vars = c->v->vars;
	return 0;
}

static int load_reports(struct ctx *c, json_t *o)
{
	const char *k;
	json_t *val;
	size_t i = 0, base = c->v->nids;
	char key[KEY_MAX];

	if (!json_is_object(o))
		return fail(c, "reports", "not an object of RPTID: [VID, ...]");
	c->v->reports = xcalloc(json_object_size(o) + 1, sizeof *c->v->reports);
	json_object_foreach(o, k, val) {
		struct profile_report *r = &c->v->reports[i++];
		if (member_id(c, "reports", k, "an RPTID", key, &r->rptid) != 0 || ids_of(c, val, key, &r->nvids) != 0)
			return -1;
	}
	for (size_t j = 0; j < i; base += c->v->reports[j++].nvids)
		c->v->reports[j].vids = c->v->ids + base;
	c->p->nreports = i;
	return 0;
}

static int load_event(struct ctx *c, const char *k, json_t *val, struct profile_event *e)
{
	static const char *const ev_keys[] = { "event", "state", "reports", NULL };
	char key[KEY_MAX];
	const char *type;
	json_t *rp;

	if (member_id(c, "events", k, "a CEID", key, &e->ceid) != 0)
		return -1;
	if (!json_is_object(val) || only_keys(c, val, key, ev_keys) != 0)
		return c->err[0] ? -1 : fail(c, key, "not an object {\"event\", \"state\", \"reports\"}");
	type = json_string_value(json_object_get(val, "event"));
	e->type = type ? event_type_of(type) : EV_UNKNOWN;
	if (e->type == EV_UNKNOWN || e->type == EV_DIE_DONE || e->type == EV_WAFER_SUMMARY)
		return fail(c, key, "\"event\" is one of run_start, state, wafer_start, die, defect, alarm, "
			    "wafer_end, run_end");
	e->state = json_string_value(json_object_get(val, "state"));
	if (json_object_get(val, "state") && (!e->state || e->type != EV_STATE))
		return fail(c, key, "\"state\" is a string, and only for a state event");
	rp = json_object_get(val, "reports");
	e->nrptids = 0;
	if (rp && ids_of(c, rp, key, &e->nrptids) != 0)
		return -1;
	return 0;
}

static int load_events(struct ctx *c, json_t *o)
{
	const char *k;
	json_t *val;
	size_t i = 0, base = c->v->nids;

	if (!json_is_object(o))
		return fail(c, "events", "not an object of CEID: {event, reports}");
	c->v->events = xcalloc(json_object_size(o) + 1, sizeof *c->v->events);
	json_object_foreach(o, k, val)
		if (load_event(c, k, val, &c->v->events[i++]) != 0)
			return -1;
	for (size_t j = 0; j < i; base += c->v->events[j++].nrptids)
		c->v->events[j].rptids = c->v->ids + base;
	c->p->nevents = i;
	return 0;
}

static int load_alarms(struct ctx *c, json_t *o)
{
	static const char *const al_keys[] = { "category", NULL };
	static const char *const categories[] = { "safety", "irrecoverable", "warning", "attention", "data_integrity", NULL };
	const char *k;
	json_t *val;
	size_t i = 0, j;
	char key[KEY_MAX];

	if (!o)
		return 0;
	if (!json_is_object(o))
		return fail(c, "alarms", "not an object of ALID: {category}");
	c->v->alarms = xcalloc(json_object_size(o) + 1, sizeof *c->v->alarms);
	json_object_foreach(o, k, val) {
		struct profile_alarm *a = &c->v->alarms[i++];
		if (member_id(c, "alarms", k, "an ALID", key, &a->alid) != 0)
			return -1;
		if (!json_is_object(val) || only_keys(c, val, key, al_keys) != 0)
			return c->err[0] ? -1 : fail(c, key, "not an object {\"category\"}");
		a->category = json_string_value(json_object_get(val, "category"));
		for (j = 0; a->category && categories[j] && strcmp(categories[j], a->category); j++)
			;
		if (a->category && !categories[j])
			return fail(c, key, "\"category\" is safety, irrecoverable, warning, attention or data_integrity");
	}
	c->p->nalarms = i;
	qsort(c->v->alarms, i, sizeof *c->v->alarms, cmp_alarm);
	c->p->alarms = c->v->alarms;
	return 0;
}

static int load_command(struct ctx *c, enum profile_op op, json_t *val)
{
	static const char *const cmd_keys[] = { "rcmd", "params", NULL };
	struct profile_cmd *cmd = &c->p->cmds[op];
	char key[KEY_MAX];
	json_t *params, *f;
	const char *cp;
	size_t first;

	snprintf(key, sizeof key, "commands.%s", op_names[op]);
	if (!json_is_object(val) || only_keys(c, val, key, cmd_keys) != 0)
		return c->err[0] ? -1 : fail(c, key, "not an object {\"rcmd\", \"params\"}");
	cmd->rcmd = json_string_value(json_object_get(val, "rcmd"));
	if (!cmd->rcmd || !*cmd->rcmd || strlen(cmd->rcmd) > 80)
		return fail(c, key, "\"rcmd\" is the tool's command name (1 to 80 characters)");
	params = json_object_get(val, "params");
	if (!params)
		return 0;
	if (!json_is_object(params))
		return fail(c, key, "\"params\" is an object of CPNAME: run_start field");
	first = c->v->nparams;
	json_object_foreach(params, cp, f) {
		if (!json_is_string(f) || !valid_field(json_string_value(f)))
			return fail(c, key, "parameter '%s' does not name a field", cp);
		if (c->v->nparams == c->v->capparams) {
			c->v->capparams = c->v->capparams ? 2 * c->v->capparams : 8;
			c->v->params = xrealloc(c->v->params, c->v->capparams * sizeof *c->v->params);
		}
		c->v->params[c->v->nparams++] = (struct profile_param){ cp, json_string_value(f) };
	}
	/* Pointed into the store once it stops growing (load_commands). */
	cmd->params = (const struct profile_param *)(uintptr_t)first;
	cmd->nparams = c->v->nparams - first;
	return 0;
}

static int load_commands(struct ctx *c, json_t *o)
{
	const char *k;
	json_t *val;
	int op;

	if (!o)
		return 0;
	if (!json_is_object(o))
		return fail(c, "commands", "not an object of operation: {rcmd, params}");
	json_object_foreach(o, k, val) {
		for (op = 0; op < PROFILE_OP__COUNT && strcmp(op_names[op], k); op++)
			;
		if (op == PROFILE_OP__COUNT)
			return fail(c, "commands", "unknown operation '%s' (start, pause, resume, stop, abort)", k);
		if (load_command(c, (enum profile_op)op, val) != 0)
			return -1;
	}
	for (op = 0; op < PROFILE_OP__COUNT; op++)
		if (c->p->cmds[op].rcmd)
			c->p->cmds[op].params = c->v->params + (uintptr_t)c->p->cmds[op].params;
	return 0;
}

/* A report's VID and an event's RPTID refer to what another section defines. */
static int var_defined(const struct profile *p, uint32_t id)
{
	return profile_var(p, id) != NULL;
}

static int report_defined(const struct profile *p, uint32_t id)
{
	return profile_report(p, id) != NULL;
}

/*
 * Each of the n ids of the list 'name' refers to a 'what' that 'defined'
 * finds in section 'sect'; with 'once', none is in the list twice.
 */
static int check_list(struct ctx *c, const char *name, const uint32_t *ids, size_t n, const char *what,
		      const char *sect, int (*defined)(const struct profile *, uint32_t), int once)
{
	char key[KEY_MAX];

	for (size_t j = 0; j < n; j++) {
		snprintf(key, sizeof key, "%s[%zu]", name, j);
		if (!defined(c->p, ids[j]))
			return fail(c, key, "no %s %u in \"%s\"", what, ids[j], sect);
		for (size_t k = 0; once && k < j; k++)
			if (ids[k] == ids[j])
				return fail(c, key, "%s %u twice in one report", what, ids[j]);
	}
	return 0;
}

/* Every number refers to something defined, nothing twice. */
static int check_refs(struct ctx *c)
{
	char name[KEY_MAX];

	for (size_t i = 0; i < c->p->nreports; i++) {
		const struct profile_report *r = &c->p->reports[i];
		snprintf(name, sizeof name, "reports.%u", r->rptid);
		if (check_list(c, name, r->vids, r->nvids, "variable", "variables", var_defined, 1) != 0)
			return -1;
	}
	for (size_t i = 0; i < c->p->nevents; i++) {
		const struct profile_event *e = &c->p->events[i];
		snprintf(name, sizeof name, "events.%u.reports", e->ceid);
		if (check_list(c, name, e->rptids, e->nrptids, "report", "reports", report_defined, 0) != 0)
			return -1;
	}
	if (!profile_event_of(c->p, EV_RUN_START) || !profile_event_of(c->p, EV_RUN_END))
		return fail(c, "events", "a run_start and a run_end event are needed");
	if (!c->p->cmds[PROFILE_START].rcmd)
		return fail(c, "commands", "a start command is needed");
	return 0;
}

/* "readiness": {"model_must_match": bool, "recipes": bool, "control_state_vid": VID}, all optional. */
static int load_readiness(struct ctx *c, json_t *r)
{
	static const char *const keys[] = { "model_must_match", "recipes", "control_state_vid", NULL };
	json_t *m, *rc, *v;

	if (!r)
		return 0;
	if (!json_is_object(r) || only_keys(c, r, "readiness", keys) != 0)
		return c->err[0] ? -1 : fail(c, "readiness", "an object {\"model_must_match\", \"recipes\", "
					 "\"control_state_vid\"}");
	m = json_object_get(r, "model_must_match");
	rc = json_object_get(r, "recipes");
	v = json_object_get(r, "control_state_vid");
	if ((m && !json_is_boolean(m)) || (rc && !json_is_boolean(rc)))
		return fail(c, "readiness", "\"model_must_match\" and \"recipes\" are true or false");
	c->p->model_must_match = json_is_true(m);
	c->p->recipes = json_is_true(rc);
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
			return fail(c, "readiness.control_state_vid", "a VID: a number from 0 to 4294967295");
		c->p->has_control_state = 1;
		c->p->control_state_vid = (uint32_t)json_integer_value(v);
	}
	return 0;
}

static int load_top(struct ctx *c, json_t *doc)
{
	static const char *const top_keys[] = { "kerf_profile", "name", "description", "model", "softrev",
						"images", "readiness", "variables", "reports", "events", "alarms", "commands",
						NULL };
	json_t *ver = json_object_get(doc, "kerf_profile");
	json_t *img = json_object_get(doc, "images");

	if (!json_is_object(doc))
		return fail(c, NULL, "not a JSON object");
	if (only_keys(c, doc, "(top)", top_keys) != 0)
		return -1;
	if (!json_is_integer(ver) || json_integer_value(ver) != PROFILE_VERSION)
		return fail(c, "kerf_profile", "must be %d (the format's version)", PROFILE_VERSION);
	c->p->name = json_string_value(json_object_get(doc, "name"));
	if (!c->p->name || !*c->p->name)
		return fail(c, "name", "a non-empty string is needed");
	c->p->model = json_string_value(json_object_get(doc, "model"));
	c->p->softrev = json_string_value(json_object_get(doc, "softrev"));
	if ((json_object_get(doc, "model") && !c->p->model) || (json_object_get(doc, "softrev") && !c->p->softrev))
		return fail(c, "model", "\"model\" and \"softrev\" are strings");
	if (img && !json_is_boolean(img))
		return fail(c, "images", "true or false");
	c->p->images = json_is_true(img);
	if (load_readiness(c, json_object_get(doc, "readiness")) != 0)
		return -1;
	if (load_vars(c, json_object_get(doc, "variables")) != 0 ||
	    load_reports(c, json_object_get(doc, "reports")) != 0 ||
	    load_events(c, json_object_get(doc, "events")) != 0 ||
	    load_alarms(c, json_object_get(doc, "alarms")) != 0 ||
	    load_commands(c, json_object_get(doc, "commands")) != 0)
		return -1;
	/* The id store is complete: sort what points into it. */
	qsort(c->v->reports, c->p->nreports, sizeof *c->v->reports, cmp_report);
	c->p->reports = c->v->reports;
	qsort(c->v->events, c->p->nevents, sizeof *c->v->events, cmp_event);
	c->p->events = c->v->events;
	return check_refs(c);
}

int profile_load(struct profile *p, const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	struct priv *v = xcalloc(1, sizeof *v);
	struct ctx c = { p, v, err, errlen };

	memset(p, 0, sizeof *p);
	p->path = path;
	p->priv = v;
	err[0] = '\0';
	v->doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!v->doc) {
		if (jerr.line > 0)
			snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		else
			snprintf(err, errlen, "%s: %s", path, jerr.text);
		profile_release(p);
		return -1;
	}
	if (load_top(&c, v->doc) != 0) {
		profile_release(p);
		return -1;
	}
	return 0;
}

void profile_release(struct profile *p)
{
	struct priv *v = p->priv;
	if (v) {
		json_decref(v->doc);
		free_all(v->vars, v->reports, v->events, v->alarms, v->ids, v->params, v);
	}
	memset(p, 0, sizeof *p);
}

#define FIND(arr, n, field, key)                                    \
	do {                                                        \
		size_t lo = 0, hi = (n);                            \
		while (lo < hi) {                                   \
			size_t mid = lo + (hi - lo) / 2;            \
			if ((arr)[mid].field == (key))              \
				return &(arr)[mid];                 \
			if ((arr)[mid].field < (key))               \
				lo = mid + 1;                       \
			else                                        \
				hi = mid;                           \
		}                                                   \
		return NULL;                                        \
	} while (0)

const struct profile_var *profile_var(const struct profile *p, uint32_t vid)
{
	FIND(p->vars, p->nvars, vid, vid);
}

const struct profile_report *profile_report(const struct profile *p, uint32_t rptid)
{
	FIND(p->reports, p->nreports, rptid, rptid);
}

const struct profile_event *profile_event(const struct profile *p, uint32_t ceid)
{
	FIND(p->events, p->nevents, ceid, ceid);
}

const struct profile_alarm *profile_alarm(const struct profile *p, uint32_t alid)
{
	FIND(p->alarms, p->nalarms, alid, alid);
}

const struct profile_event *profile_event_of(const struct profile *p, enum event_type t)
{
	for (size_t i = 0; i < p->nevents; i++)
		if (p->events[i].type == t)
			return &p->events[i];
	return NULL;
}

/* Append dir/NAME.json to the list of places; return it when it is a file. */
static char *try_dir(const char *dir, size_t dlen, const char *name, char **places)
{
	char *path = xasprintf("%.*s/%s.json", (int)dlen, dir, name);
	char *more;

	if (access(path, R_OK) == 0) {
		/* "/usr/local/share/kerf/profiles/x.json", not ".../bin/../share/...". */
		char *real = realpath(path, NULL);
		if (real) {
			free(path);
			return real;
		}
		return path;
	}
	more = xasprintf("%s%s'%s'", *places ? *places : "", *places ? ", " : "", path);
	free(*places);
	*places = more;
	free(path);
	return NULL;
}

char *profile_find(const char *name, char **why)
{
	const char *env = getenv("KERF_PROFILE_PATH"), *p;
	size_t n = strlen(name);
	char *places = NULL, *found = NULL, *self;

	*why = NULL;
	if (strchr(name, '/') || (n > 5 && !strcmp(name + n - 5, ".json")))
		return xstrdup(name);
	if (!*name) {
		*why = xstrdup("an empty profile name");
		return NULL;
	}
	for (p = env; p && *p && !found;) {
		size_t len = strcspn(p, ":");
		if (len)
			found = try_dir(p, len, name, &places);
		p += len;
		if (*p == ':')
			p++;
	}
	self = found ? NULL : self_dir();
	if (self) {
		char *share = xasprintf("%s/../share/kerf/profiles", self), *tree = xasprintf("%s/../profiles", self);
		found = try_dir(share, strlen(share), name, &places);
		if (!found)
			found = try_dir(tree, strlen(tree), name, &places);
		free(share);
		free(tree);
		free(self);
	}
	if (!found)
		*why = xasprintf("no profile '%s': looked for %s", name, places ? places : "nothing");
	free(places);
	return found;
}

char *profile_summary(const struct profile *p)
{
	char *cmds = xstrdup(""), *s;

	for (int op = 0; op < PROFILE_OP__COUNT; op++) {
		if (!p->cmds[op].rcmd)
			continue;
		s = xasprintf("%s %s=%s", cmds, op_names[op], p->cmds[op].rcmd);
		free(cmds);
		cmds = s;
	}
	s = xasprintf("%s: model %s softrev %s, %s, %zu variables, %zu reports, %zu events, %zu alarms, "
		      "commands%s",
		      p->name, p->model ? p->model : "any", p->softrev ? p->softrev : "any",
		      p->images ? "die images" : "no images (the tool reports its defects)", p->nvars,
		      p->nreports, p->nevents, p->nalarms, cmds);
	free(cmds);
	return s;
}

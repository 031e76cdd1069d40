/* event.c: see event.h. */

#include "event.h"

#include "die_fields.h"
#include "util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static const char *const type_names[EV__COUNT] = {
	[EV_UNKNOWN] = "unknown",
	[EV_RUN_START] = "run_start",
	[EV_STATE] = "state",
	[EV_WAFER_START] = "wafer_start",
	[EV_DIE] = "die",
	[EV_ALARM] = "alarm",
	[EV_WAFER_END] = "wafer_end",
	[EV_RUN_END] = "run_end",
	[EV_DEFECT] = "defect",
	[EV_DIE_DONE] = "die_done",
	[EV_WAFER_SUMMARY] = "wafer_summary",
};

enum event_type event_type_of(const char *name)
{
	/* From 1: EV_UNKNOWN has no name of its own. */
	int i = name_index(name, type_names + 1, EV__COUNT - 1);
	return i < 0 ? EV_UNKNOWN : (enum event_type)(i + 1);
}

const char *event_type_name(enum event_type t)
{
	return (t > EV_UNKNOWN && t < EV__COUNT) ? type_names[t] : "unknown";
}

static const struct {
	const char *name;
	unsigned code;
	int critical;
} categories[] = {
	{ "safety", 1, 1 }, { "irrecoverable", 5, 1 }, { "warning", 6, 0 },
	{ "attention", 7, 0 }, { "data_integrity", 8, 0 },
};
#define NCATEGORIES (sizeof categories / sizeof categories[0])

int event_alarm_code(const char *category)
{
	for (size_t i = 0; category && i < NCATEGORIES; i++)
		if (!strcmp(category, categories[i].name))
			return (int)categories[i].code;
	return 0;
}

const char *event_alarm_category(unsigned alcd)
{
	/* E5's codes 0..8: kerf folds the two safeties, the two warnings,
	 * and the errors that are not irrecoverable into attention. */
	static const char *const by_code[] = {
		"attention", "safety", "safety", "warning", "attention",
		"irrecoverable", "warning", "attention", "data_integrity",
	};

	alcd &= 0x7f;
	return alcd < sizeof by_code / sizeof by_code[0] ? by_code[alcd] : "attention";
}

int event_alarm_critical(const char *category)
{
	for (size_t i = 0; category && i < NCATEGORIES; i++)
		if (!strcmp(category, categories[i].name))
			return categories[i].critical;
	return 0;
}

void event_alarm_fill(json_t *ev, uint32_t alid, const char *text, int set, const char *category, int alcd)
{
	if (alcd < 0)
		alcd = (set ? 128 : 0) | event_alarm_code(category);
	json_object_set_new(ev, "alid", json_integer(alid));
	json_object_set_new(ev, "text", json_string(text));
	json_object_set_new(ev, "set", json_boolean(set));
	json_object_set_new(ev, "category", json_string(category));
	json_object_set_new(ev, "critical", json_boolean(event_alarm_critical(category)));
	json_object_set_new(ev, "alcd", json_integer(alcd));
}

static uint64_t hash_str(char *s)
{
	uint64_t h = kerf_xxh3(s, strlen(s));
	free(s);
	return h;
}

uint64_t event_id(const char *run, uint64_t seq)
{
	return hash_str(xasprintf("%s\n%llu", run, (unsigned long long)seq));
}

uint64_t event_id_defect(const char *run, const char *wafer, long col, long row, long index)
{
	return hash_str(xasprintf("%s\ndefect\n%s\n%ld\n%ld\n%ld", run, wafer, col, row, index));
}

uint64_t event_id_derived(const char *run, const char *kind, const char *key)
{
	return hash_str(xasprintf("%s\n%s\n%s", run, kind, key));
}

void event_time_fmt(const struct timespec *ts, char out[32])
{
	struct tm tm;
	time_t s = ts->tv_sec;
	gmtime_r(&s, &tm);
	char tmp[64]; /* roomy enough for any int the compiler can imagine */
	snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)(ts->tv_nsec / 1000));
	memcpy(out, tmp, 31);
	out[31] = '\0';
}

int event_time_parse(const char *s, struct timespec *ts)
{
	struct tm tm;
	const char *p;
	long frac = 0;
	int digits = 0;

	memset(&tm, 0, sizeof tm);
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -1;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (digits < 9) {
				frac = frac * 10 + (*p - '0');
				digits++;
			}
			p++;
		}
		if (digits == 0)
			return -1;
	}
	if (*p != 'Z' || p[1] != '\0')
		return -1;
	while (digits < 9) {
		frac *= 10;
		digits++;
	}
	ts->tv_sec = timegm(&tm);
	ts->tv_nsec = frac;
	return 0;
}

json_t *event_new(const char *type, const char *run, uint64_t seq, const struct timespec *t)
{
	json_t *ev = json_object();
	char ts[32];
	event_time_fmt(t, ts);
	json_object_set_new(ev, "v", json_integer(EVENT_VERSION));
	json_object_set_new(ev, "type", json_string(type));
	json_object_set_new(ev, "run", json_string(run));
	json_object_set_new(ev, "seq", json_integer((json_int_t)seq));
	json_object_set_new(ev, "t", json_string(ts));
	event_set_id(ev, event_id(run, seq));
	return ev;
}

void event_set_id(json_t *ev, uint64_t id)
{
	char hx[17];
	hex64(id, hx);
	json_object_set_new(ev, "id", json_string(hx));
}

int event_write(FILE *f, const json_t *ev)
{
	if (json_dumpf(ev, f, JSON_COMPACT | JSON_REAL_PRECISION(15)) != 0)
		return -1;
	return putc('\n', f) == EOF ? -1 : 0;
}

static int is_hex16(const char *s)
{
	for (int i = 0; i < 16; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[16] == '\0';
}

static void member_json(const json_t *x, struct event_member *m)
{
	m->json = x;
	switch (x ? json_typeof(x) : JSON_NULL) {
	case JSON_OBJECT:
		m->kind = EVK_OBJECT;
		break;
	case JSON_ARRAY:
		m->kind = EVK_ARRAY;
		break;
	case JSON_STRING:
		m->kind = EVK_STRING;
		m->str = json_string_value(x);
		m->len = json_string_length(x);
		break;
	case JSON_INTEGER:
		m->kind = EVK_INTEGER;
		m->integer = json_integer_value(x);
		m->number = (double)m->integer; /* json_number_value's */
		break;
	case JSON_REAL:
		m->kind = EVK_REAL;
		m->number = json_number_value(x);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		m->kind = EVK_BOOL;
		break;
	case JSON_NULL:
		m->kind = x ? EVK_NULL : EVK_ABSENT;
		break;
	}
}

static void member_str(const char *s, size_t len, struct event_member *m)
{
	if (!s)
		return;
	m->kind = EVK_STRING;
	m->str = s;
	m->len = len;
}

static void member_int(long long n, struct event_member *m)
{
	m->kind = EVK_INTEGER;
	m->integer = n;
	m->number = (double)n;
}

/* A member of a die read in one pass: die_fields_scan_event had them all
 * (but one of data and path) of their types. */
static void member_die(const struct die_fields *f, const char *key, struct event_member *m)
{
	if (!strcmp(key, "v"))
		member_int(f->v, m);
	else if (!strcmp(key, "type"))
		member_str(f->type, f->type_len, m);
	else if (!strcmp(key, "run"))
		member_str(f->run, f->run_len, m);
	else if (!strcmp(key, "seq"))
		member_int(f->seq, m);
	else if (!strcmp(key, "t"))
		member_str(f->t, f->t_len, m);
	else if (!strcmp(key, "id"))
		member_str(f->id, f->id_len, m);
	else if (!strcmp(key, "wafer"))
		member_str(f->wafer, f->wafer_len, m);
	else if (!strcmp(key, "col"))
		member_int(f->col, m);
	else if (!strcmp(key, "row"))
		member_int(f->row, m);
	else if (!strcmp(key, "w"))
		member_int(f->img.w, m);
	else if (!strcmp(key, "h"))
		member_int(f->img.h, m);
	else if (!strcmp(key, "xxh3"))
		member_str(f->img.xxh3, f->img.xxh3_len, m);
	else if (!strcmp(key, "data"))
		member_str(f->img.data, f->img.data_len, m);
	else if (!strcmp(key, "path"))
		member_str(f->img.path, f->img.path_len, m);
	else
		abort(); /* it would say absent where the line may have it */
}

int event_member(const struct event_view *ev, const char *key, struct event_member *m)
{
	memset(m, 0, sizeof *m);
	if (ev->obj)
		member_json(json_object_get(ev->obj, key), m);
	else
		member_die(ev->die, key, m);
	return m->kind != EVK_ABSENT;
}

int envelope_get(const json_t *ev, struct envelope *env, char *msg, size_t msglen)
{
	struct event_view view = {.obj = ev};
	if (!json_is_object(ev)) {
		memset(env, 0, sizeof *env);
		snprintf(msg, msglen, "event is not a JSON object");
		return -1;
	}
	return envelope_read(&view, env, msg, msglen);
}

int envelope_read(const struct event_view *ev, struct envelope *env, char *msg, size_t msglen)
{
	struct event_member v;
	struct timespec ts;

	memset(env, 0, sizeof *env);
	event_member(ev, "v", &v);
	if (v.kind != EVK_INTEGER || v.integer != EVENT_VERSION) {
		snprintf(msg, msglen, "field 'v' must be the integer %d", EVENT_VERSION);
		return -1;
	}
	env->v = EVENT_VERSION;
	event_member(ev, "type", &v);
	if (v.kind != EVK_STRING) {
		snprintf(msg, msglen, "field 'type' must be a string");
		return -1;
	}
	env->type_name = v.str;
	env->type = event_type_of(env->type_name);
	event_member(ev, "run", &v);
	if (v.kind != EVK_STRING || v.len == 0) {
		snprintf(msg, msglen, "field 'run' must be a non-empty string");
		return -1;
	}
	env->run = v.str;
	event_member(ev, "seq", &v);
	if (v.kind != EVK_INTEGER || v.integer < 0) {
		snprintf(msg, msglen, "field 'seq' must be a non-negative integer");
		return -1;
	}
	env->seq = (uint64_t)v.integer;
	event_member(ev, "t", &v);
	if (v.kind != EVK_STRING || event_time_parse(v.str, &ts) != 0) {
		snprintf(msg, msglen, "field 't' must be an RFC 3339 UTC time");
		return -1;
	}
	env->t = v.str;
	event_member(ev, "id", &v);
	if (v.kind != EVK_STRING || v.len != 16 || !is_hex16(v.str)) {
		snprintf(msg, msglen, "field 'id' must be 16 lowercase hex digits");
		return -1;
	}
	env->id = v.str;
	return 0;
}

/* Skip white space. */
static const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* p at '"': return just past the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* Skip one JSON value starting at p; NULL if malformed. */
static const char *skip_value(const char *p, const char *end)
{
	int depth = 0;
	p = ws(p, end);
	if (p >= end)
		return NULL;
	if (*p == '"')
		return skip_string(p, end);
	if (*p != '{' && *p != '[') {
		while (p < end && *p != ',' && *p != '}' && *p != ']' &&
		       *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			p++;
		return p;
	}
	for (; p < end; p++) {
		if (*p == '"') {
			p = skip_string(p, end);
			if (!p)
				return NULL;
			p--;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (--depth == 0)
				return p + 1;
		}
	}
	return NULL;
}

int event_peek(const char *line, size_t len, const char *key, const char **val, size_t *vlen)
{
	const char *p = line, *end = line + len;
	size_t klen = strlen(key);

	p = ws(p, end);
	if (p >= end || *p != '{')
		return 0;
	p++;
	for (;;) {
		const char *k, *ke, *v, *ve;
		p = ws(p, end);
		if (p >= end || *p != '"')
			return 0;
		k = p + 1;
		ke = skip_string(p, end);
		if (!ke)
			return 0;
		p = ws(ke, end);
		if (p >= end || *p != ':')
			return 0;
		v = ws(p + 1, end);
		ve = skip_value(v, end);
		if (!ve)
			return 0;
		if ((size_t)(ke - 1 - k) == klen && !memcmp(k, key, klen)) {
			if (*v == '"') {
				*val = v + 1;
				*vlen = (size_t)(ve - v - 2);
			} else {
				*val = v;
				*vlen = (size_t)(ve - v);
			}
			return 1;
		}
		p = ws(ve, end);
		if (p >= end || *p != ',')
			return 0;
		p++;
	}
}

int event_peek_str(const char *line, size_t len, const char *key, const char **val, size_t *vlen)
{
	if (!event_peek(line, len, key, val, vlen))
		return 0;
	return *val > line && (*val)[-1] == '"' && !memchr(*val, '\\', *vlen);
}

enum event_type event_peek_type(const char *line, size_t len)
{
	const char *v;
	size_t n;
	char name[32];
	if (!event_peek(line, len, "type", &v, &n) || n >= sizeof name)
		return EV_UNKNOWN;
	memcpy(name, v, n);
	name[n] = '\0';
	return event_type_of(name);
}

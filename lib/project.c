/* project.c: see project.h. */
#include "util.h"
#include "event.h"
#include "project.h"
#include "reject.h"
#include "status_doc.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "banned.h"

/*
 * A line's fields, read either by peeking at the bytes (obj NULL: the
 * fast path, for lines without escapes) or from a parsed object.
 */
struct fields {
	const char *line;
	size_t len;
	json_t *obj;
};

/* 1: a string without escapes copied to buf; 0: absent, not a string or too long. */
static int get_str(const struct fields *f, const char *key, char *buf, size_t n)
{
	const char *v;
	size_t vl;
	if (f->obj) {
		const char *s = json_string_value(json_object_get(f->obj, key));
		if (!s)
			return 0;
		snprintf(buf, n, "%s", s);
		return 1;
	}
	if (!event_peek_str(f->line, f->len, key, &v, &vl) || vl >= n)
		return 0;
	memcpy(buf, v, vl);
	buf[vl] = '\0';
	for (size_t i = 0; i < vl; i++) {
		if ((unsigned char)buf[i] >= 0x80) {
			/* Unvalidated input may hold bad UTF-8: every view wants good. */
			int cut;
			char *ok = utf8_sanitize(buf, vl, vl, &cut);
			if (strlen(ok) >= n) {
				/* Each bad byte grows to three: cut where it surely fits. */
				free(ok);
				ok = utf8_sanitize(buf, vl, (n - 1) / 3, &cut);
			}
			snprintf(buf, n, "%s", ok);
			free(ok);
			break;
		}
	}
	return 1;
}

static int get_num(const struct fields *f, const char *key, double *out)
{
	const char *v;
	size_t vl;
	char tmp[64], *end;
	double d;
	if (f->obj) {
		json_t *j = json_object_get(f->obj, key);
		if (!json_is_number(j))
			return 0;
		*out = json_number_value(j);
		return 1;
	}
	if (!event_peek(f->line, f->len, key, &v, &vl) || vl == 0 || vl >= sizeof tmp)
		return 0;
	if (v[-1] == '"')
		return 0;
	memcpy(tmp, v, vl);
	tmp[vl] = '\0';
	errno = 0;
	d = strtod(tmp, &end);
	if (end == tmp || *end || errno == ERANGE || !isfinite(d))
		return 0;
	*out = d;
	return 1;
}

static long get_long(const struct fields *f, const char *key, long def)
{
	double d;
	if (!get_num(f, key, &d) || d < -2e9 || d > 2e9)
		return def;
	return (long)d;
}

static int get_bool(const struct fields *f, const char *key, int def)
{
	const char *v;
	size_t vl;
	if (f->obj) {
		json_t *j = json_object_get(f->obj, key);
		return json_is_boolean(j) ? json_is_true(j) : def;
	}
	if (!event_peek(f->line, f->len, key, &v, &vl))
		return def;
	if (vl == 4 && !memcmp(v, "true", 4))
		return 1;
	if (vl == 5 && !memcmp(v, "false", 5))
		return 0;
	return def;
}

/* Two numbers of an array member (parsed objects only). */
static int get_pair(const struct fields *f, const char *key, double out[2])
{
	json_t *a = f->obj ? json_object_get(f->obj, key) : NULL;
	if (!json_is_array(a) || json_array_size(a) < 2 ||
	    !json_is_number(json_array_get(a, 0)) || !json_is_number(json_array_get(a, 1)))
		return 0;
	out[0] = json_number_value(json_array_get(a, 0));
	out[1] = json_number_value(json_array_get(a, 1));
	return 1;
}

static void set_from(char **dst, const struct fields *f, const char *key)
{
	char buf[512];
	if (get_str(f, key, buf, sizeof buf))
		xstrset(dst, buf);
}

void project_init(struct project *p)
{
	memset(p, 0, sizeof *p);
	p->wafers_planned = -1;
	p->col_max = p->row_max = -1;
	p->cur = -1;
	p->last_hit = -1;
	p->classes[PROJECT_CLASSES].name = xstrdup("other");
	p->classes[PROJECT_CLASSES].num = -1;
	p->start_ms = p->rate_ms = mono_ms();
}

static void wafer_free(struct project_wafer *w)
{
	free(w->id);
	free(w->file);
	free(w->class_counts);
	free(w->dv);
	wafer_acct_release(&w->acct);
	free(w->signature);
	free(w->t_start);
	free(w->t_end);
}

void project_release(struct project *p)
{
	for (size_t i = 0; i < p->nwafers; i++)
		wafer_free(&p->wafers[i]);
	free(p->wafers);
	for (size_t i = 0; i <= PROJECT_CLASSES; i++)
		free(p->classes[i].name);
	for (size_t i = 0; i < PROJECT_ALARMS; i++) {
		free(p->alarms[i].t);
		free(p->alarms[i].alid);
		free(p->alarms[i].text);
		free(p->alarms[i].category);
	}
	free(p->run);
	free(p->lot);
	free(p->recipe);
	free(p->tool);
	free(p->source);
	free(p->tool_state);
	free(p->end_status);
	free(p->t_first);
	free(p->t_last);
	json_decref(p->status);
	memset(p, 0, sizeof *p);
}

/*
 * The map's file name of a new wafer: its id made safe, ".svg"; when an
 * earlier wafer has that name already ("W/1" and "W_1"), the first eight
 * hex digits of the XXH3 of the id are added.  Names depend only on the
 * wafers before, so a name never changes once given.
 */
static char *map_file_name(const struct project *p, const char *id)
{
	char *base = safe_name(id, PROJECT_NAME_MAX), *name = xasprintf("%s.svg", base);
	for (size_t j = 0; j < p->nwafers; j++) {
		if (!strcmp(p->wafers[j].file, name)) {
			char hx[17];
			hex64(kerf_xxh3(id, strlen(id)), hx);
			free(name);
			name = xasprintf("%s-%.8s.svg", base, hx);
			break;
		}
	}
	free(base);
	return name;
}

/* The wafer with this id, created on first sight; NULL past PROJECT_WAFERS. */
static struct project_wafer *wafer_get(struct project *p, const char *id)
{
	struct project_wafer *w;
	if (p->last_hit >= 0 && !strcmp(p->wafers[p->last_hit].id, id))
		return &p->wafers[p->last_hit];
	for (size_t i = p->nwafers; i-- > 0;) {
		if (!strcmp(p->wafers[i].id, id)) {
			p->last_hit = (long)i;
			return &p->wafers[i];
		}
	}
	if (p->nwafers == PROJECT_WAFERS)
		return NULL;
	if (p->nwafers == p->capw) {
		p->capw = p->capw ? p->capw * 2 : 8;
		p->wafers = xrealloc(p->wafers, p->capw * sizeof *p->wafers);
	}
	w = &p->wafers[p->nwafers];
	memset(w, 0, sizeof *w);
	w->id = xstrdup(id);
	w->file = map_file_name(p, id);
	w->slot = -1;
	wafer_acct_init(&w->acct, PROJECT_DIES_KEPT);
	p->last_hit = (long)p->nwafers++;
	return w;
}

uint64_t project_wafer_class_count(const struct project_wafer *w, size_t i)
{
	return i < w->ncc ? w->class_counts[i] : 0;
}

static void class_add(struct project_wafer *w, size_t i)
{
	if (i >= w->ncc) {
		w->class_counts = xrealloc(w->class_counts, (i + 1) * sizeof *w->class_counts);
		memset(w->class_counts + w->ncc, 0, (i + 1 - w->ncc) * sizeof *w->class_counts);
		w->ncc = i + 1;
	}
	w->class_counts[i]++;
}

/* Draw (through the hook) and forget a wafer's details. */
static void wafer_finish(struct project *p, struct project_wafer *w)
{
	if (p->wafer_done)
		p->wafer_done(p, w, p->wafer_done_arg);
	free(w->dv);
	w->dv = NULL;
	w->nd = w->capd = 0;
	wafer_acct_forget_dies(&w->acct);
	w->finished = 1;
	p->wafers_finished++;
}

/* An event of type t that is late for its wafer (wafer.h): the run's
 * totals only.  A new pass of a wafer is late too: its map is drawn once. */
static int late(struct project *p, struct project_wafer *w, enum event_type t)
{
	if (!w || wafer_acct_fate(&w->acct, t) == WAFER_OWN)
		return 0;
	wafer_acct_late(&w->acct);
	p->late++;
	return 1;
}

/* The largest die indices of the run, for a grid when run_start gave none. */
static void seen_index(struct project *p, long col, long row)
{
	if (col > p->col_max)
		p->col_max = col;
	if (row > p->row_max)
		p->row_max = row;
}

static int valid_index(long v)
{
	return v >= 0 && v < WAFER_INDEX_MAX;
}

static uint16_t class_index(struct project *p, const char *name, long num)
{
	char buf[32];
	if (!name) {
		if (num < 0)
			name = "unclassified";
		else {
			snprintf(buf, sizeof buf, "class %ld", num);
			name = buf;
		}
	}
	for (size_t i = 0; i < p->nclasses; i++)
		if (!strcmp(p->classes[i].name, name))
			return (uint16_t)i;
	if (p->nclasses == PROJECT_CLASSES)
		return PROJECT_CLASSES;
	p->classes[p->nclasses].name = xstrdup(name);
	p->classes[p->nclasses].num = num;
	p->classes[p->nclasses].count = 0;
	return (uint16_t)p->nclasses++;
}

const char *project_class_name(const struct project *p, size_t i)
{
	return i <= PROJECT_CLASSES && p->classes[i].name ? p->classes[i].name : "?";
}

static void on_run_start(struct project *p, const struct fields *f)
{
	double pair[2], d;
	set_from(&p->lot, f, "lot");
	set_from(&p->recipe, f, "recipe");
	set_from(&p->tool, f, "tool");
	set_from(&p->source, f, "source");
	p->wafers_planned = get_long(f, "wafers", p->wafers_planned);
	if (get_num(f, "diameter_mm", &d) && d > 0 && d < 10000)
		p->g.diameter_mm = d;
	if (get_num(f, "edge_mm", &d) && d >= 0 && d < 1000)
		p->g.edge_mm = d;
	if (get_pair(f, "pitch_um", pair) && pair[0] > 0 && pair[1] > 0) {
		p->g.pitch_x = pair[0];
		p->g.pitch_y = pair[1];
	}
	if (get_pair(f, "origin_um", pair)) {
		p->g.origin_x = pair[0];
		p->g.origin_y = pair[1];
	}
	p->g.cols = get_long(f, "cols", p->g.cols);
	p->g.rows = get_long(f, "rows", p->g.rows);
	if (p->g.cols < 0 || p->g.cols > 100000)
		p->g.cols = 0;
	if (p->g.rows < 0 || p->g.rows > 100000)
		p->g.rows = 0;
	p->g.known = p->g.diameter_mm > 0 && p->g.pitch_x > 0 && p->g.cols > 0 && p->g.rows > 0;
}

static struct project_wafer *wafer_of(struct project *p, const struct fields *f)
{
	char id[256];
	if (!get_str(f, "wafer", id, sizeof id)) {
		/* A wafer id that is a number, or missing: use the current wafer. */
		double d;
		if (get_num(f, "wafer", &d))
			snprintf(id, sizeof id, "%.15g", d);
		else if (p->cur >= 0)
			return &p->wafers[p->cur];
		else
			return NULL;
	}
	return wafer_get(p, id);
}

static void make_current(struct project *p, struct project_wafer *w)
{
	p->cur = (long)(w - p->wafers);
}

static void on_defect(struct project *p, const struct fields *f)
{
	struct project_wafer *w = wafer_of(p, f);
	char cname[128];
	long col, row, num;
	double wx, wy, area, x, y;
	int have_pos;
	uint16_t ci;

	p->defects++;
	num = get_long(f, "class_num", -1);
	ci = class_index(p, get_str(f, "class", cname, sizeof cname) ? cname : NULL, num);
	p->classes[ci].count++;
	if (!w || late(p, w, EV_DEFECT))
		return;
	class_add(w, ci);
	col = get_long(f, "col", -1);
	row = get_long(f, "row", -1);
	wafer_acct_defect(&w->acct, col, row, 1);
	if (valid_index(col) && valid_index(row))
		seen_index(p, col, row);
	have_pos = get_num(f, "wx_um", &wx) && get_num(f, "wy_um", &wy);
	if (!have_pos && p->g.known && valid_index(col) && valid_index(row)) {
		/* Place it from the die and the position inside it, or the die's centre. */
		if (!get_num(f, "x_um", &x))
			x = p->g.pitch_x / 2;
		if (!get_num(f, "y_um", &y))
			y = p->g.pitch_y / 2;
		wx = p->g.origin_x + (double)col * p->g.pitch_x + x;
		wy = p->g.origin_y + (double)row * p->g.pitch_y + y;
		have_pos = 1;
	}
	/* Ten metres from the centre is no place on a wafer: do not draw it. */
	if (have_pos && fabs(wx) < 1e7 && fabs(wy) < 1e7 && w->nd < PROJECT_DEFECTS_KEPT) {
		if (w->nd == w->capd) {
			w->capd = w->capd ? w->capd * 2 : 256;
			w->dv = xrealloc(w->dv, w->capd * sizeof *w->dv);
		}
		if (!get_num(f, "area_um2", &area) || area < 0)
			area = 0;
		if (area > 0 && area < 1e30) {
			double l = log10(area);
			p->area_lo = p->area_any && p->area_lo < l ? p->area_lo : l;
			p->area_hi = p->area_any && p->area_hi > l ? p->area_hi : l;
			p->area_any = 1;
		}
		w->dv[w->nd].wx = (float)wx;
		w->dv[w->nd].wy = (float)wy;
		w->dv[w->nd].area = (float)area;
		w->dv[w->nd].cls = ci;
		w->nd++;
	}
}

static void on_die(struct project *p, const struct fields *f, int done)
{
	struct project_wafer *w = wafer_of(p, f);
	long col = get_long(f, "col", -1), row = get_long(f, "row", -1);
	if (done)
		p->dies_done++;
	if (!w || late(p, w, done ? EV_DIE_DONE : EV_DIE) || !valid_index(col) || !valid_index(row))
		return;
	wafer_acct_die(&w->acct, col, row);
	seen_index(p, col, row);
}

/* What wafer_start and wafer_end tell of a wafer: its slot, and the
 * time into *when; returns the dies they give (-1 none). */
static long wafer_bound(struct project_wafer *w, const struct fields *f, char **when)
{
	char t[64];
	w->slot = get_long(f, "slot", w->slot);
	if (get_str(f, "t", t, sizeof t))
		xstrset(when, t);
	return get_long(f, "dies", -1);
}

static void on_wafer_start(struct project *p, const struct fields *f)
{
	struct project_wafer *w = wafer_of(p, f);
	if (!w)
		return;
	/* Another wafer starts: the ended ones are done, their maps can be drawn. */
	for (size_t i = 0; i < p->nwafers; i++)
		if (&p->wafers[i] != w && p->wafers[i].acct.ended && !p->wafers[i].finished)
			wafer_finish(p, &p->wafers[i]);
	make_current(p, w);
	if (late(p, w, EV_WAFER_START))
		return;
	wafer_acct_start(&w->acct, wafer_bound(w, f, &w->t_start));
}

static void on_wafer_end(struct project *p, const struct fields *f)
{
	struct project_wafer *w = wafer_of(p, f);
	if (!w || late(p, w, EV_WAFER_END))
		return;
	p->wafers_ended++;
	wafer_acct_end(&w->acct, wafer_bound(w, f, &w->t_end));
}

static void on_wafer_summary(struct project *p, const struct fields *f)
{
	struct project_wafer *w = wafer_of(p, f);
	if (!w || late(p, w, EV_WAFER_SUMMARY))
		return;
	wafer_acct_summary(&w->acct);
	set_from(&w->signature, f, "signature");
}

static void on_alarm(struct project *p, const struct fields *f)
{
	struct project_alarm *a = &p->alarms[p->nalarms % PROJECT_ALARMS];
	char buf[64];
	double d;
	free(a->alid);
	a->alid = NULL;
	if (get_str(f, "alid", buf, sizeof buf))
		a->alid = xstrdup(buf);
	else if (get_num(f, "alid", &d))
		a->alid = xasprintf("%.15g", d);
	free(a->t);
	a->t = NULL;
	set_from(&a->t, f, "t");
	free(a->text);
	a->text = NULL;
	set_from(&a->text, f, "text");
	free(a->category);
	a->category = NULL;
	set_from(&a->category, f, "category");
	a->set = get_bool(f, "set", 1);
	a->critical = get_bool(f, "critical", 0);
	p->nalarms++;
	if (a->set)
		p->alarms_set++;
	if (a->critical)
		p->alarms_critical++;
}

enum project_fed project_feed(struct project *p, const char *line, size_t len)
{
	struct fields f = { line, len, NULL };
	enum event_type t;
	char buf[64];

	p->lines++;
	t = event_peek_type(line, len);
	if (t == EV_UNKNOWN) {
		const char *s = line;
		while (s < line + len && (*s == ' ' || *s == '\t'))
			s++;
		if (s == line + len || *s != '{') {
			p->bad++;
			return PROJECT_BAD;
		}
		p->ignored++;
		return PROJECT_IGNORED;
	}
	{
		/* The fast path trusts validated input, but a cut line is cheap to spot. */
		size_t e = len;
		while (e > 0 && (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r'))
			e--;
		if (e == 0 || line[e - 1] != '}') {
			p->bad++;
			return PROJECT_BAD;
		}
	}
	if (t == EV_DIE) {
		/* Images are large: peek, never parse. */
		if (!memchr(line, '\\', len > 4096 ? 4096 : len))
			on_die(p, &f, 0);
		p->events++;
		p->version++;
		return PROJECT_USED;
	}
	/* Rare events, and lines with escapes, are parsed whole. */
	if ((t != EV_DEFECT && t != EV_DIE_DONE) || memchr(line, '\\', len)) {
		json_error_t err;
		f.obj = json_loadb(line, len, 0, &err);
		if (!json_is_object(f.obj)) {
			json_decref(f.obj);
			p->bad++;
			return PROJECT_BAD;
		}
	}
	if (get_str(&f, "t", buf, sizeof buf)) {
		if (!p->t_first)
			p->t_first = xstrdup(buf);
		if (t != EV_DEFECT && t != EV_DIE_DONE)
			xstrset(&p->t_last, buf);
	}
	switch (t) {
	case EV_RUN_START:
		if (get_str(&f, "run", buf, sizeof buf))
			xstrset(&p->run, buf);
		on_run_start(p, &f);
		break;
	case EV_STATE:
		set_from(&p->tool_state, &f, "state");
		break;
	case EV_WAFER_START:
		on_wafer_start(p, &f);
		break;
	case EV_ALARM:
		on_alarm(p, &f);
		break;
	case EV_WAFER_END:
		on_wafer_end(p, &f);
		break;
	case EV_RUN_END:
		set_from(&p->end_status, &f, "status");
		if (!p->end_status)
			p->end_status = xstrdup("ended");
		break;
	case EV_DEFECT:
		on_defect(p, &f);
		break;
	case EV_DIE_DONE:
		on_die(p, &f, 1);
		break;
	case EV_WAFER_SUMMARY:
		on_wafer_summary(p, &f);
		break;
	default:
		break;
	}
	json_decref(f.obj);
	p->events++;
	p->version++;
	return PROJECT_USED;
}

/* ---- status.json ---- */

int project_stage_num(const json_t *stage, const char *const *keys, double *out)
{
	static const char *const nests[] = { NULL, STATUS_STAGE_COUNTERS, "stats" };
	for (size_t n = 0; n < 3; n++) {
		const json_t *o = nests[n] ? json_object_get(stage, nests[n]) : stage;
		if (!json_is_object(o))
			continue;
		for (size_t i = 0; keys[i]; i++) {
			json_t *v = json_object_get(o, keys[i]);
			if (json_is_number(v)) {
				*out = json_number_value(v);
				return 1;
			}
		}
	}
	return 0;
}

int project_stage_queue(const json_t *stage, double *used, double *cap)
{
	/* status_doc.h's members, and other names for the same figures
	 * that kerf does not write. */
	static const char *const used_keys[] = {
		STATUS_QUEUE_BYTES, STATUS_QUEUE_FILL, "used", "queued", "depth", NULL,
	};
	static const char *const cap_keys[] = { "size", "capacity", STATUS_QUEUE_CAP, "pipe_size", "max", NULL };
	static const char *const flat_used[] = { "queue_bytes", "queue_fill", "queue", "queued_bytes", NULL };
	static const char *const flat_cap[] = { "queue_size", "queue_capacity", "pipe_size", NULL };
	json_t *q = json_object_get(stage, STATUS_STAGE_QUEUE);
	*used = 0;
	*cap = 0;
	if (json_is_object(q)) {
		int got = 0;
		for (size_t i = 0; used_keys[i]; i++) {
			json_t *v = json_object_get(q, used_keys[i]);
			if (json_is_number(v)) {
				*used = json_number_value(v);
				got = 1;
				break;
			}
		}
		for (size_t i = 0; cap_keys[i]; i++) {
			json_t *v = json_object_get(q, cap_keys[i]);
			if (json_is_number(v)) {
				*cap = json_number_value(v);
				break;
			}
		}
		return got;
	}
	for (size_t i = 0; flat_used[i]; i++) {
		json_t *v = json_object_get(stage, flat_used[i]);
		if (json_is_number(v)) {
			*used = json_number_value(v);
			for (size_t j = 0; flat_cap[j]; j++) {
				json_t *c = json_object_get(stage, flat_cap[j]);
				if (json_is_number(c)) {
					*cap = json_number_value(c);
					break;
				}
			}
			return 1;
		}
	}
	return 0;
}

int project_status_read(struct project *p, const char *path)
{
	struct stat st;
	json_t *j;
	json_error_t err;
	if (!path || stat(path, &st) != 0)
		return 0;
	long long mt = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
	if (p->status && mt == p->status_mtime_ns && (long long)st.st_size == p->status_size)
		return 0;
	j = json_load_file(path, 0, &err);
	if (!json_is_object(j)) {
		/* Half-written by a writer that does not rename: keep the last one. */
		json_decref(j);
		return 0;
	}
	json_decref(p->status);
	p->status = j;
	p->status_mtime_ns = mt;
	p->status_size = (long long)st.st_size;
	p->status_version++;
	return 1;
}

const char *project_run_state(const struct project *p)
{
	return status_doc_state(p->status);
}

const char *project_run_id(const struct project *p)
{
	const char *s = status_doc_run(p->status);
	return s ? s : p->run;
}

void project_tick(struct project *p, uint64_t now)
{
	double dt = (double)(now - p->rate_ms) / 1000.0;
	p->tick_ms = now;
	if (dt < 0.5)
		return;
	/* Smooth over about two seconds so the figures do not flicker. */
	double a = dt >= 2 ? 1.0 : dt / 2;
	p->rate_events += a * ((double)(p->events - p->rate_events0) / dt - p->rate_events);
	p->rate_defects += a * ((double)(p->defects - p->rate_defects0) / dt - p->rate_defects);
	p->rate_dies += a * ((double)(p->dies_done - p->rate_dies0) / dt - p->rate_dies);
	p->rate_events0 = p->events;
	p->rate_defects0 = p->defects;
	p->rate_dies0 = p->dies_done;
	p->rate_ms = now;
}

/* ---- geometry ---- */

void project_geom_for(const struct project *p, struct project_geom *g)
{
	long cmax = p->col_max, rmax = p->row_max;
	*g = p->g;
	if (g->known)
		return;
	if (g->diameter_mm <= 0)
		g->diameter_mm = 300;
	if (g->cols <= 0)
		g->cols = cmax + 1 > 0 ? cmax + 1 : 1;
	if (g->rows <= 0)
		g->rows = rmax + 1 > 0 ? rmax + 1 : 1;
	if (g->pitch_x <= 0 || g->pitch_y <= 0) {
		/* Fit the grid in the square inscribed in the wafer. */
		long n = g->cols > g->rows ? g->cols : g->rows;
		g->pitch_x = g->pitch_y = g->diameter_mm * 1000.0 * 0.7 / (double)n;
		g->origin_x = -g->pitch_x * (double)g->cols / 2;
		g->origin_y = -g->pitch_y * (double)g->rows / 2;
	}
}

int project_die_on_wafer(const struct project_geom *g, long col, long row)
{
	double r = (g->diameter_mm / 2 - g->edge_mm) * 1000.0;
	double x0 = g->origin_x + (double)col * g->pitch_x, y0 = g->origin_y + (double)row * g->pitch_y;
	double x1 = x0 + g->pitch_x, y1 = y0 + g->pitch_y;
	double r2 = r * r;
	return x0 * x0 + y0 * y0 <= r2 && x1 * x1 + y0 * y0 <= r2 &&
	       x0 * x0 + y1 * y1 <= r2 && x1 * x1 + y1 * y1 <= r2;
}

double project_wafer_density(const struct project *p, const struct project_wafer *w)
{
	return wafer_acct_density(&w->acct, p->g.pitch_x * p->g.pitch_y);
}

/* ---- views ---- */

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *project_snapshot(const struct project *p, int final)
{
	struct timespec now;
	char t[32];
	json_t *o = json_object(), *wafers = json_array(), *classes = json_object(), *alarms = json_array();
	const char *state = project_run_state(p);
	json_t *stages = status_doc_stages(p->status);

	real_now(&now);
	event_time_fmt(&now, t);
	json_object_set_new(o, "t", json_string(t));
	json_object_set_new(o, "run", jstr(project_run_id(p)));
	json_object_set_new(o, "state", jstr(state));
	json_object_set_new(o, "tool_state", jstr(p->tool_state));
	json_object_set_new(o, "lot", jstr(p->lot));
	/* The time of the redraw that decided to write it, so that two
	 * snapshots' times are at least an interval apart, exactly. */
	json_object_set_new(o, "elapsed_ms",
			    json_integer((json_int_t)((p->tick_ms ? p->tick_ms : mono_ms()) - p->start_ms)));
	json_object_set_new(o, "events", json_integer((json_int_t)p->events));
	json_object_set_new(o, "events_per_s", json_real(round(p->rate_events * 10) / 10));
	json_object_set_new(o, "defects", json_integer((json_int_t)p->defects));
	json_object_set_new(o, "dies", json_integer((json_int_t)p->dies_done));
	json_object_set_new(o, "wafers_planned", p->wafers_planned >= 0 ?
			    json_integer(p->wafers_planned) : json_null());
	json_object_set_new(o, "wafers_done", json_integer((json_int_t)p->wafers_ended));
	json_object_set_new(o, "current_wafer", p->cur >= 0 ? json_string(p->wafers[p->cur].id) : json_null());
	for (size_t i = 0; i <= PROJECT_CLASSES; i++) {
		if (i == p->nclasses)
			i = PROJECT_CLASSES;
		if (p->classes[i].count)
			json_object_set_new(classes, p->classes[i].name,
					    json_integer((json_int_t)p->classes[i].count));
	}
	json_object_set_new(o, "classes", classes);
	for (size_t i = 0; i < p->nwafers; i++) {
		const struct project_wafer *w = &p->wafers[i];
		json_t *jw = json_pack("{s:s,s:I,s:I,s:I,s:f,s:b}",
				       "wafer", w->id,
				       "dies", (json_int_t)wafer_acct_dies(&w->acct),
				       "defects", (json_int_t)w->acct.defects,
				       "defective_dies", (json_int_t)w->acct.defective,
				       "density_cm2", project_wafer_density(p, w),
				       "done", w->acct.ended);
		if (w->slot >= 0)
			json_object_set_new(jw, "slot", json_integer(w->slot));
		if (w->signature)
			json_object_set_new(jw, "signature", json_string(w->signature));
		if (w->acct.late)
			json_object_set_new(jw, "late_events", json_integer((json_int_t)w->acct.late));
		if (w->acct.untracked)
			json_object_set_new(jw, "untracked_die_events", json_integer((json_int_t)w->acct.untracked));
		json_array_append_new(wafers, jw);
	}
	json_object_set_new(o, "wafers", wafers);
	json_object_set_new(o, "alarms_total", json_integer((json_int_t)p->nalarms));
	for (uint64_t k = p->nalarms > PROJECT_ALARMS ? p->nalarms - PROJECT_ALARMS : 0; k < p->nalarms; k++) {
		const struct project_alarm *a = &p->alarms[k % PROJECT_ALARMS];
		json_array_append_new(alarms, json_pack("{s:o,s:o,s:o,s:o,s:b,s:b}",
			"t", jstr(a->t), "alid", jstr(a->alid), "text", jstr(a->text),
			"category", jstr(a->category), "set", a->set, "critical", a->critical));
	}
	json_object_set_new(o, "alarms", alarms);
	if (stages)
		json_object_set_new(o, "stages", json_deep_copy(stages));
	if (p->end_status)
		json_object_set_new(o, "stream_status", json_string(p->end_status));
	if (final)
		json_object_set_new(o, "final", json_true());
	return o;
}

void project_summary(const struct project *p, FILE *f)
{
	const char *run = project_run_id(p), *state = project_run_state(p);
	uint64_t dies = 0;
	for (size_t i = 0; i < p->nwafers; i++)
		dies += (uint64_t)wafer_acct_dies(&p->wafers[i].acct);
	fprintf(f, "run %s", run ? run : "(unknown)");
	if (p->lot)
		fprintf(f, " lot %s", p->lot);
	/* Under the supervisor this summary is written before the run's final
	 * state exists (kerf waits for this stage to exit): once the stream has
	 * ended, its own status is the truthful one to show. */
	if (p->end_status)
		fprintf(f, " stream %s", p->end_status);
	else if (state)
		fprintf(f, " state %s", state);
	fprintf(f, ": %zu wafer%s, %llu dies inspected, %llu defects, %llu alarm%s\n",
		p->nwafers, p->nwafers == 1 ? "" : "s", (unsigned long long)dies,
		(unsigned long long)p->defects, (unsigned long long)p->nalarms,
		p->nalarms == 1 ? "" : "s");
	for (size_t i = 0; i < p->nwafers; i++) {
		const struct project_wafer *w = &p->wafers[i];
		fprintf(f, "  wafer %s", w->id);
		if (w->slot >= 0)
			fprintf(f, " slot %ld", w->slot);
		fprintf(f, ": %ld dies, %llu defects on %zu dies, %.4g /cm2%s%s%s",
			wafer_acct_dies(&w->acct), (unsigned long long)w->acct.defects, w->acct.defective,
			project_wafer_density(p, w), w->signature ? ", " : "",
			w->signature ? w->signature : "", w->acct.ended ? "" : " (not ended)");
		if (w->acct.late)
			fprintf(f, ", %llu late event%s not on its map", (unsigned long long)w->acct.late,
				w->acct.late == 1 ? "" : "s");
		fputc('\n', f);
	}
}

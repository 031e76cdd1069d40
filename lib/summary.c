/* summary.c: see summary.h. */
#include "util.h"
#include "log.h"
#include "event.h"
#include "atomic.h"
#include "failpoint.h"
#include "klarf.h"
#include "summary.h"
#include "wafer.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

struct wafer {
	char *id;
	char *lot;
	long slot;
	char *t_start, *t_end;
	int dirty, has_klarf;
	/* Its dies, defects, density and late events (wafer.h). */
	struct wafer_acct acct;
	/*
	 * Closed: its KLARF is written, and its die table and defect list
	 * are freed; the account keeps its counts.  A wafer_start opens it
	 * again (again: set from then).
	 */
	int closed, again;
	struct klarf_defect *defects;   /* its KLARF's defect list */
	size_t ndefects, capdefects;
	/* The signature of detect's wafer_summary, when one came. */
	json_t *sig;
};

struct cls {
	long num;
	char *name;
};

struct summary {
	char *rundir;
	int recovering;
	char *run, *lot, *recipe, *tool, *t_run;
	double diameter_mm, pitch[2], origin[2];
	long wafers_planned;
	char *stream_status;
	json_t *alarms;
	uint64_t events, unparsed;
	uint64_t by_type[EV__COUNT];
	struct wafer *w;
	size_t nw, capw;
	size_t last;
	struct cls *cls;
	size_t ncls;
};

/* Temporary files a crash left before a rename: never complete. */
static void clean_tmp(const char *rundir)
{
	char *dir = xasprintf("%s/klarf", rundir);
	atomic_write_cleanup(dir, ".klarf");
	atomic_write_cleanup(rundir, "summary.json");
	free(dir);
}

struct summary *summary_new(const char *rundir)
{
	struct summary *s = xcalloc(1, sizeof *s);
	clean_tmp(rundir);
	s->rundir = xstrdup(rundir);
	s->alarms = json_array();
	s->diameter_mm = 300;
	return s;
}

void summary_set_recovering(struct summary *s, int on)
{
	s->recovering = on;
}

/* *dst from o's string member key, when it has one. */
static void set_member(char **dst, json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));
	if (v)
		xstrset(dst, v);
}

static double num(json_t *o, const char *key, double def)
{
	json_t *v = json_object_get(o, key);
	return json_is_number(v) ? json_number_value(v) : def;
}

static void pair(json_t *o, const char *key, double out[2])
{
	json_t *a = json_object_get(o, key);
	if (json_is_array(a) && json_array_size(a) == 2) {
		out[0] = json_is_number(json_array_get(a, 0)) ? json_number_value(json_array_get(a, 0)) : 0;
		out[1] = json_is_number(json_array_get(a, 1)) ? json_number_value(json_array_get(a, 1)) : 0;
	}
}

static struct wafer *account_get(struct summary *s, const char *id)
{
	size_t i;
	if (s->nw && strcmp(s->w[s->last].id, id) == 0)
		return &s->w[s->last];
	for (i = 0; i < s->nw; i++)
		if (strcmp(s->w[i].id, id) == 0) {
			s->last = i;
			return &s->w[i];
		}
	if (s->nw == s->capw) {
		s->capw = s->capw ? s->capw * 2 : 32;
		s->w = xrealloc(s->w, s->capw * sizeof *s->w);
	}
	memset(&s->w[s->nw], 0, sizeof s->w[s->nw]);
	s->w[s->nw].id = xstrdup(id);
	wafer_acct_init(&s->w[s->nw].acct, 0);
	s->last = s->nw;
	return &s->w[s->nw++];
}

/* An event for an ended wafer (wafer.h): counted, not in its KLARF. */
static void late(struct wafer *w)
{
	wafer_acct_late(&w->acct);
	if (w->acct.late == 1)
		log_msg(LOG_WARN, json_pack("{ss}", "wafer", w->id),
			"an event for wafer '%s' came after its wafer_end: it is journaled and "
			"counted as late, and its KLARF is not written again", w->id);
}

/* The wafer that event o names in "wafer" (accounted from now on); NULL when it names none. */
static struct wafer *event_wafer(struct summary *s, const json_t *o)
{
	const char *wid = json_string_value(json_object_get(o, "wafer"));
	return wid ? account_get(s, wid) : NULL;
}

/* 1 if an event of type t is late for w (and counted so). */
static int is_late(struct wafer *w, enum event_type t)
{
	if (wafer_acct_fate(&w->acct, t) != WAFER_LATE)
		return 0;
	late(w);
	return 1;
}

static void add_die(struct wafer *w, enum event_type t, long col, long row)
{
	if (is_late(w, t))
		return;
	wafer_acct_die(&w->acct, col, row);
	w->dirty = 1;
}

static int known_class(const struct summary *s, long n)
{
	size_t i;
	for (i = 0; i < s->ncls; i++)
		if (s->cls[i].num == n)
			return 1;
	return 0;
}

static void note_class(struct summary *s, long n, const char *name)
{
	size_t i;
	for (i = 0; i < s->ncls; i++)
		if (s->cls[i].num == n)
			return;
	s->cls = xrealloc(s->cls, (s->ncls + 1) * sizeof *s->cls);
	s->cls[s->ncls].num = n;
	s->cls[s->ncls].name = xstrdup(name && *name ? name : "UNCLASSIFIED");
	s->ncls++;
}

static int cmp_die(const void *a, const void *b)
{
	const long *x = a, *y = b;
	int c = CMP(x[1], y[1]);
	return c ? c : CMP(x[0], y[0]);
}

static int cmp_cls(const void *a, const void *b)
{
	const struct cls *x = a, *y = b;
	return x->num < y->num ? -1 : x->num > y->num;
}

/* The KLARF test plan: the inspected dies, row by row; caller frees. */
static long (*test_plan(const struct wafer *w, size_t *n))[2]
{
	const struct wafer_acct *a = &w->acct;
	long (*plan)[2] = xmalloc((a->inspected ? a->inspected : 1) * sizeof *plan);
	size_t k = 0;
	for (size_t i = 0; i < a->dcap; i++)
		if (a->dies[i].used && a->dies[i].inspected) {
			plan[k][0] = a->dies[i].col;
			plan[k][1] = a->dies[i].row;
			k++;
		}
	qsort(plan, k, sizeof *plan, cmp_die);
	*n = k;
	return plan;
}

/* "2026-11-21T09:26:26.123456Z" → "11-21-26 09:26:26" (KLARF's form). */
static char *klarf_time(const char *t)
{
	struct timespec ts;
	struct tm tm;
	if (!t || event_time_parse(t, &ts) != 0)
		return NULL;
	gmtime_r(&ts.tv_sec, &tm);
	return xasprintf("%02d-%02d-%02d %02d:%02d:%02d", tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_year % 100, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* "<safe LOT>_<safe WAFER>"; caller frees. */
static char *klarf_base(const struct summary *s, const struct wafer *w)
{
	char *lot = safe_name(w->lot ? w->lot : s->lot ? s->lot : "", 100);
	char *wid = safe_name(w->id, 100);
	char *b = xasprintf("%s_%s", lot, wid);
	free(lot);
	free(wid);
	return b;
}

static char *klarf_path(const struct summary *s, const struct wafer *w, int relative)
{
	char *base = klarf_base(s, w), *p;
	int clash = 0;

	/* Two wafers whose safe names are the same ("W/1" and "W 1", or
	 * long ids cut alike): the later one's name gets a hash of its lot
	 * and wafer id, so that neither file replaces the other. */
	for (size_t i = 0; i < s->nw && &s->w[i] != w && !clash; i++) {
		char *other = klarf_base(s, &s->w[i]);
		clash = !strcmp(other, base);
		free(other);
	}
	if (clash) {
		const char *lot = w->lot ? w->lot : s->lot ? s->lot : "";
		char *key = xasprintf("%s%c%s", lot, 0x1f, w->id);
		char hx[17], *b2;
		hex64(kerf_xxh3(key, strlen(key)), hx);
		b2 = xasprintf("%s-%.8s", base, hx);
		free(key);
		free(base);
		base = b2;
	}
	p = relative ? xasprintf("klarf/%s.klarf", base) : xasprintf("%s/klarf/%s.klarf", s->rundir, base);
	free(base);
	return p;
}

static void fill_klarf(const struct summary *s, struct wafer *w, struct klarf *k)
{
	struct klarf_wafer *kw;
	size_t i;

	memset(k, 0, sizeof *k);
	k->file_version = xstrdup("1.2");
	k->file_timestamp = klarf_time(w->t_end ? w->t_end : w->t_start);
	k->station = xasprintf("KERF %s kerf", s->tool && *s->tool ? s->tool : "SIM");
	for (char *p = k->station; *p; p++)
		if (*p == '"')
			*p = '_';
	k->sample_type = xstrdup("WAFER");
	k->lot_id = xstrdup(w->lot ? w->lot : s->lot ? s->lot : "");
	k->setup_id = xstrdup(s->recipe ? s->recipe : "");
	k->step_id = xstrdup(s->recipe ? s->recipe : "");
	k->device_id = xstrdup(s->run ? s->run : "");
	k->orientation = xstrdup("DOWN");
	k->sample_size_mm = s->diameter_mm;
	k->die_pitch[0] = s->pitch[0];
	k->die_pitch[1] = s->pitch[1];
	/* Die (col,row)'s lower-left corner sits at origin + (col,row)·pitch
	 * from the wafer centre; in KLARF the die index grid starts at 0, so
	 * the centre is at -origin in that frame. */
	k->die_origin[0] = 0;
	k->die_origin[1] = 0;
	k->center[0] = -s->origin[0];
	k->center[1] = -s->origin[1];
	k->nclasses = s->ncls;
	k->classes = xcalloc(s->ncls ? s->ncls : 1, sizeof *k->classes);
	for (i = 0; i < s->ncls; i++) {
		k->classes[i].num = s->cls[i].num;
		k->classes[i].name = xstrdup(s->cls[i].name);
	}
	qsort(k->classes, k->nclasses, sizeof *k->classes, cmp_cls);
	k->nwafers = 1;
	k->wafers = xcalloc(1, sizeof *k->wafers);
	kw = &k->wafers[0];
	kw->wafer_id = xstrdup(w->id);
	kw->slot = w->slot;
	kw->result_timestamp = klarf_time(w->t_start ? w->t_start : w->t_end);
	kw->test_plan = test_plan(w, &kw->ntest_plan);
	kw->ndie = wafer_acct_dies(&w->acct);
	kw->area_per_test = s->pitch[0] * s->pitch[1];
	kw->ndefects = w->ndefects;
	kw->defects = xmalloc((w->ndefects ? w->ndefects : 1) * sizeof *kw->defects);
	if (w->ndefects)
		memcpy(kw->defects, w->defects, w->ndefects * sizeof *w->defects);
}

static int write_klarf(struct summary *s, struct wafer *w)
{
	struct klarf k;
	struct stat st;
	char *dir = xasprintf("%s/klarf", s->rundir);
	char *path = klarf_path(s, w, 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int rc = -1, e = 0;

	if (s->recovering && !w->again && access(path, F_OK) == 0) {
		/* Written before the restart, atomically: it is whole. */
		w->has_klarf = 1;
		w->dirty = 0;
		rc = 0;
		goto out;
	}
	fill_klarf(s, w, &k);
	f = open_memstream(&buf, &len);
	if (!f || klarf_write(f, &k) != 0 || fclose(f) != 0) {
		e = errno;
		log_msg(LOG_ERROR, NULL, "cannot format the KLARF of wafer '%s': %s", w->id, strerror(e));
		klarf_free(&k);
		goto out;
	}
	klarf_free(&k);
	/* RUNDIR/klarf must be our own directory, not a symbolic link. */
	if (mkdir_p(dir, 0755) != 0 || lstat(dir, &st) != 0 || (!S_ISDIR(st.st_mode) && (errno = ELOOP)) ||
	    atomic_write(path, buf, len, 1, FP_KLARF_BEFORE_RENAME, FP_KLARF_AFTER_RENAME) != 0) {
		e = errno;
		log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", path, strerror(e));
		goto out;
	}
	w->has_klarf = 1;
	w->dirty = 0;
	log_msg(LOG_INFO, json_pack("{ss ss sI}", "wafer", w->id, "path", path,
				    "defects", (json_int_t)w->ndefects),
		"wrote '%s'", path);
	rc = 0;
out:
	free(buf);
	free(dir);
	free(path);
	if (rc)
		errno = e;
	return rc;
}

/* Its KLARF is written: keep the counts, free the lists. */
static void close_wafer(struct wafer *w)
{
	wafer_acct_forget_dies(&w->acct);
	free(w->defects);
	w->defects = NULL;
	w->capdefects = 0;
	w->closed = 1;
}

/* A wafer_start for a wafer that had its wafer_end: inspected again, its
 * account starts over and its KLARF is replaced at the next wafer_end. */
static void reopen_wafer(struct wafer *w)
{
	log_msg(LOG_INFO, json_pack("{ss}", "wafer", w->id),
		"wafer '%s' is inspected again: its account starts over", w->id);
	wafer_acct_release(&w->acct);
	wafer_acct_init(&w->acct, 0);
	free(w->defects);
	free(w->t_end);
	json_decref(w->sig);
	w->defects = NULL;
	w->t_end = NULL;
	w->sig = NULL;
	w->ndefects = w->capdefects = 0;
	w->closed = w->dirty = 0;
	w->again = 1;
}

static long lnum(json_t *o, const char *key, long def)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (long)json_integer_value(v) : def;
}

struct defect_in {
	long col, row, class_num;
	double x, y, w, h, area;
};

static void add_defect(struct summary *s, const char *wid, const struct defect_in *in, const char *cls, size_t clslen)
{
	struct wafer *w = account_get(s, wid);
	struct klarf_defect *d;
	if (is_late(w, EV_DEFECT))
		return;
	wafer_acct_defect(&w->acct, in->col, in->row, 1);
	if (w->ndefects == w->capdefects) {
		w->capdefects = w->capdefects ? w->capdefects * 2 : 64;
		w->defects = xrealloc(w->defects, w->capdefects * sizeof *w->defects);
	}
	d = &w->defects[w->ndefects++];
	memset(d, 0, sizeof *d);
	d->id = (long)w->ndefects;
	d->xrel = in->x;
	d->yrel = in->y;
	d->xindex = in->col;
	d->yindex = in->row;
	d->xsize = in->w;
	d->ysize = in->h;
	d->area = in->area;
	/* DSIZE: the diameter of the circle of the same area. */
	d->dsize = in->area > 0 ? sqrt(4 * in->area / M_PI) : 0;
	d->classnumber = in->class_num;
	d->test = 1;
	if (!known_class(s, d->classnumber)) {
		char *name = cls ? xstrndup(cls, clslen) : NULL;
		note_class(s, d->classnumber, name);
		free(name);
	}
	w->dirty = 1;
}

static void feed_defect(struct summary *s, json_t *o)
{
	const char *wid = json_string_value(json_object_get(o, "wafer"));
	const char *cls = json_string_value(json_object_get(o, "class"));
	struct defect_in in;
	if (!wid)
		return;
	in.x = num(o, "x_um", 0);
	in.y = num(o, "y_um", 0);
	in.col = lnum(o, "col", 0);
	in.row = lnum(o, "row", 0);
	in.w = num(o, "w_um", 0);
	in.h = num(o, "h_um", 0);
	in.area = num(o, "area_um2", 0);
	in.class_num = lnum(o, "class_num", 0);
	add_defect(s, wid, &in, cls, cls ? strlen(cls) : 0);
}

/* Peek helpers for the hot event types, so they need no JSON parse. */
static int peek_long(const char *line, size_t len, const char *key, long *out)
{
	const char *v;
	size_t vl;
	char tmp[32];
	if (!event_peek(line, len, key, &v, &vl) || vl == 0 || vl >= sizeof tmp)
		return -1;
	memcpy(tmp, v, vl);
	tmp[vl] = '\0';
	return parse_long(tmp, -1000000000L, 1000000000L, out);
}

static int peek_num(const char *line, size_t len, const char *key, double *out)
{
	const char *v;
	size_t vl;
	char tmp[64], *end;
	if (!event_peek(line, len, key, &v, &vl) || vl == 0 || vl >= sizeof tmp)
		return -1;
	memcpy(tmp, v, vl);
	tmp[vl] = '\0';
	*out = strtod(tmp, &end);
	return *end ? -1 : 0;
}

/* 1 if the event was accounted for without parsing it. */
static int fast_feed(struct summary *s, enum event_type t, const char *line, size_t len)
{
	const char *v, *c = NULL;
	size_t vl, cl = 0;
	char wid[256];
	long col, row;

	if (!event_peek_str(line, len, "wafer", &v, &vl) || vl >= sizeof wid)
		return 0;
	memcpy(wid, v, vl);
	wid[vl] = '\0';
	if (peek_long(line, len, "col", &col) != 0 || peek_long(line, len, "row", &row) != 0)
		return 0;
	if (t == EV_DIE || t == EV_DIE_DONE) {
		add_die(account_get(s, wid), t, col, row);
		return 1;
	}
	{
		struct defect_in in = { col, row, 0, 0, 0, 0, 0, 0 };
		if (peek_num(line, len, "x_um", &in.x) != 0 || peek_num(line, len, "y_um", &in.y) != 0 ||
		    peek_num(line, len, "w_um", &in.w) != 0 || peek_num(line, len, "h_um", &in.h) != 0 ||
		    peek_num(line, len, "area_um2", &in.area) != 0 ||
		    peek_long(line, len, "class_num", &in.class_num) != 0)
			return 0;
		if (!event_peek_str(line, len, "class", &c, &cl))
			c = NULL, cl = 0;
		add_defect(s, wid, &in, c, cl);
		return 1;
	}
}

int summary_feed(struct summary *s, const char *line, size_t len)
{
	enum event_type t = event_peek_type(line, len);
	json_t *o;
	json_error_t jerr;
	int rc = 0;

	s->events++;
	s->by_type[t < EV__COUNT ? t : EV_UNKNOWN]++;
	if ((t == EV_DIE || t == EV_DIE_DONE || t == EV_DEFECT) && fast_feed(s, t, line, len))
		return 0;
	if (t == EV_DIE)
		return 0; /* images are never parsed here */
	if (t == EV_STATE || t == EV_UNKNOWN)
		return 0;
	o = json_loadb(line, len, 0, &jerr);
	if (!json_is_object(o)) {
		s->unparsed++;
		json_decref(o);
		return 0;
	}
	switch (t) {
	case EV_RUN_START:
		set_member(&s->run, o, "run");
		set_member(&s->lot, o, "lot");
		set_member(&s->recipe, o, "recipe");
		set_member(&s->tool, o, "tool");
		set_member(&s->t_run, o, "t");
		s->diameter_mm = num(o, "diameter_mm", 300);
		pair(o, "pitch_um", s->pitch);
		pair(o, "origin_um", s->origin);
		s->wafers_planned = lnum(o, "wafers", 0);
		break;
	case EV_WAFER_START: {
		struct wafer *w = event_wafer(s, o);
		if (!w)
			break;
		if (wafer_acct_fate(&w->acct, t) == WAFER_AGAIN)
			reopen_wafer(w);
		w->slot = lnum(o, "slot", w->slot);
		set_member(&w->lot, o, "lot");
		set_member(&w->t_start, o, "t");
		wafer_acct_start(&w->acct, lnum(o, "dies", 0));
		break;
	}
	case EV_DIE_DONE: {
		struct wafer *w = event_wafer(s, o);
		if (w)
			add_die(w, t, lnum(o, "col", 0), lnum(o, "row", 0));
		break;
	}
	case EV_DEFECT:
		feed_defect(s, o);
		break;
	case EV_WAFER_END: {
		struct wafer *w = event_wafer(s, o);
		if (!w || is_late(w, t))
			break; /* a second wafer_end: the KLARF stays */
		if (!w->slot)
			w->slot = lnum(o, "slot", 0);
		wafer_acct_end(&w->acct, lnum(o, "dies", 0));
		set_member(&w->t_end, o, "t");
		rc = write_klarf(s, w);
		if (rc == 0)
			close_wafer(w);
		break;
	}
	case EV_WAFER_SUMMARY: {
		struct wafer *w = event_wafer(s, o);
		if (!w || is_late(w, t))
			break;
		wafer_acct_summary(&w->acct);
		json_decref(w->sig);
		w->sig = json_incref(json_object_get(o, "signature"));
		break;
	}
	case EV_ALARM: {
		json_t *a = json_object();
		const char *keys[] = { "seq", "t", "alid", "text", "set", "category", "critical" };
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
			json_t *x = json_object_get(o, keys[i]);
			if (x)
				json_object_set(a, keys[i], x);
		}
		json_array_append_new(s->alarms, a);
		break;
	}
	case EV_RUN_END:
		set_member(&s->stream_status, o, "status");
		break;
	default:
		break;
	}
	json_decref(o);
	return rc;
}

static json_t *wafer_json(const struct summary *s, struct wafer *w)
{
	json_t *o = json_object();
	json_t *sig = w->sig;
	char *kp = w->has_klarf ? klarf_path(s, w, 1) : NULL;

	json_object_set_new(o, "wafer", json_string(w->id));
	json_object_set_new(o, "slot", json_integer(w->slot));
	json_object_set_new(o, "lot", json_string(w->lot ? w->lot : s->lot ? s->lot : ""));
	json_object_set_new(o, "complete", json_boolean(w->acct.ended));
	json_object_set_new(o, "dies_planned", json_integer(w->acct.planned_dies > 0 ? w->acct.planned_dies : 0));
	json_object_set_new(o, "dies", json_integer((json_int_t)wafer_acct_dies(&w->acct)));
	json_object_set_new(o, "defects", json_integer((json_int_t)w->acct.defects));
	json_object_set_new(o, "defective_dies", json_integer((json_int_t)w->acct.defective));
	json_object_set_new(o, "density_cm2", json_real(wafer_acct_density(&w->acct, s->pitch[0] * s->pitch[1])));
	json_object_set_new(o, "signature", sig ? json_incref(sig) : json_null());
	json_object_set_new(o, "klarf", kp ? json_string(kp) : json_null());
	if (w->acct.late)
		json_object_set_new(o, "late_events", json_integer((json_int_t)w->acct.late));
	free(kp);
	return o;
}

int summary_finish(struct summary *s)
{
	json_t *o = json_object(), *ws = json_array(), *by = json_object(), *tot = json_object();
	uint64_t dies = 0, defects = 0, ddies = 0;
	char *path, *text;
	size_t i;
	int rc = 0;

	for (i = 0; i < s->nw; i++) {
		struct wafer *w = &s->w[i];
		json_t *wj;
		/* One whose KLARF could not be written at its wafer_end. */
		if (w->acct.ended && !w->closed) {
			if (write_klarf(s, w) != 0)
				rc = -1;
			else
				close_wafer(w);
		}
		wj = wafer_json(s, w);
		dies += (uint64_t)json_integer_value(json_object_get(wj, "dies"));
		defects += w->acct.defects;
		ddies += (uint64_t)json_integer_value(json_object_get(wj, "defective_dies"));
		json_array_append_new(ws, wj);
	}
	for (i = 1; i < EV__COUNT; i++)
		if (s->by_type[i])
			json_object_set_new(by, event_type_name((enum event_type)i), json_integer((json_int_t)s->by_type[i]));
	if (s->by_type[EV_UNKNOWN])
		json_object_set_new(by, "other", json_integer((json_int_t)s->by_type[EV_UNKNOWN]));
	json_object_set_new(tot, "wafers", json_integer((json_int_t)s->nw));
	json_object_set_new(tot, "dies", json_integer((json_int_t)dies));
	json_object_set_new(tot, "defects", json_integer((json_int_t)defects));
	json_object_set_new(tot, "defective_dies", json_integer((json_int_t)ddies));
	json_object_set_new(tot, "alarms", json_integer((json_int_t)json_array_size(s->alarms)));

	json_object_set_new(o, "run", s->run ? json_string(s->run) : json_null());
	json_object_set_new(o, "lot", s->lot ? json_string(s->lot) : json_null());
	json_object_set_new(o, "recipe", s->recipe ? json_string(s->recipe) : json_null());
	json_object_set_new(o, "tool", s->tool ? json_string(s->tool) : json_null());
	json_object_set_new(o, "started", s->t_run ? json_string(s->t_run) : json_null());
	json_object_set_new(o, "stream_status", s->stream_status ? json_string(s->stream_status) : json_null());
	json_object_set_new(o, "wafers_planned", json_integer(s->wafers_planned));
	json_object_set_new(o, "events", json_integer((json_int_t)s->events));
	json_object_set_new(o, "events_by_type", by);
	if (s->unparsed)
		json_object_set_new(o, "events_unparsed", json_integer((json_int_t)s->unparsed));
	json_object_set_new(o, "totals", tot);
	json_object_set_new(o, "wafers", ws);
	json_object_set(o, "alarms", s->alarms);

	text = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
	json_decref(o);
	path = xasprintf("%s/summary.json", s->rundir);
	if (!text) {
		log_msg(LOG_ERROR, NULL, "cannot format '%s'", path);
		rc = -1;
	} else {
		size_t n = strlen(text);
		text = xrealloc(text, n + 2);
		text[n] = '\n';
		if (atomic_write(path, text, n + 1, 1, FP_SUMMARY_BEFORE_RENAME, FP_NONE) != 0) {
			log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", path, strerror(errno));
			rc = -1;
		}
	}
	free(text);
	free(path);
	return rc;
}

void summary_free(struct summary *s)
{
	size_t i;
	if (!s)
		return;
	for (i = 0; i < s->nw; i++) {
		struct wafer *w = &s->w[i];
		free_all(w->id, w->lot, w->t_start, w->t_end);
		wafer_acct_release(&w->acct);
		free(w->defects);
		json_decref(w->sig);
	}
	for (i = 0; i < s->ncls; i++)
		free(s->cls[i].name);
	free_all(s->cls, s->w, s->rundir, s->run, s->lot, s->recipe, s->tool, s->t_run,
	         s->stream_status);
	json_decref(s->alarms);
	free(s);
}

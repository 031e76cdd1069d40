/*
 * acquire_klarf.c: KLARF import (--klarf FILE...).  Every file is read
 * and checked first (a bad file ends the import before any event, with
 * the reader's message naming the line); then the files become one run:
 * run_start with the geometry of the first file, and per wafer
 * wafer_start, one defect event per DefectList row, wafer_end; run_end.
 *
 * KLARF die indices may be negative; kerf's grid starts at col 0, row 0,
 * so col = XINDEX - min XINDEX (likewise rows) and origin_um moves with
 * it; the original indices stay in each defect as xindex and yindex.
 * Index (for the defect's id) is its place among its die's defects in
 * file order.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "sig.h"
#include "event.h"
#include "acquire_run.h"
#include "klarf.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* "MM-DD-YY HH:MM:SS", "MM-DD-YYYY ...", "YYYY-MM-DD ..." into ts; 0 or -1. */
static int klarf_time(const char *s, struct timespec *ts)
{
	int a, b, c, H = 0, M = 0, S = 0, n;
	struct tm tm;
	if (!s)
		return -1;
	n = sscanf(s, "%d-%d-%d %d:%d:%d", &a, &b, &c, &H, &M, &S);
	if (n < 3)
		return -1;
	memset(&tm, 0, sizeof tm);
	if (a > 31) {
		tm.tm_year = a - 1900;
		tm.tm_mon = b - 1;
		tm.tm_mday = c;
	} else {
		tm.tm_year = (c < 100 ? (c < 70 ? c + 2000 : c + 1900) : c) - 1900;
		tm.tm_mon = a - 1;
		tm.tm_mday = b;
	}
	tm.tm_hour = H;
	tm.tm_min = M;
	tm.tm_sec = S;
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || H < 0 || H > 23 ||
	    M < 0 || M > 59 || S < 0 || S > 60)
		return -1;
	ts->tv_sec = timegm(&tm);
	ts->tv_nsec = 0;
	return 0;
}

static void set_num(json_t *ev, const char *key, double v)
{
	if (!isnan(v))
		json_object_set_new(ev, key, json_real(v));
}

static const char *class_name(const struct klarf *k, long num)
{
	for (size_t i = 0; i < k->nclasses; i++)
		if (k->classes[i].num == num)
			return k->classes[i].name;
	return NULL;
}

struct grid {
	long xmin, ymin, xmax, ymax;
	int any;
	double pitch[2], origin[2], pixel_um;
	long die_w, die_h;
};

static void grid_see(struct grid *g, long x, long y)
{
	if (!g->any || x < g->xmin) g->xmin = x;
	if (!g->any || x > g->xmax) g->xmax = x;
	if (!g->any || y < g->ymin) g->ymin = y;
	if (!g->any || y > g->ymax) g->ymax = y;
	g->any = 1;
}

static const double *wafer_center(const struct klarf *k, const struct klarf_wafer *w)
{
	return w->has_center ? w->center : k->center;
}

/*
 * Some files give XREL/YREL beyond the die pitch.  The position on the
 * wafer, XINDEX * pitch + XREL, is what counts, so such a defect is put in
 * the die it lies in, with its offset inside that die; the file's own
 * XINDEX/YINDEX stay in the event.
 */
struct folded {
	long xi, yi;
	double xr, yr;
};

static double fold1(double rel, double pitch, long *idx)
{
	double f;
	if (isnan(rel) || !(pitch > 0))
		return rel;
	f = floor(rel / pitch);
	if (f == 0 || fabs(f) > 1e6)
		return rel;
	*idx += (long)f;
	return rel - f * pitch;
}

static struct folded fold(const struct klarf *k, const struct klarf_defect *d)
{
	struct folded f = {d->xindex, d->yindex, d->xrel, d->yrel};
	f.xr = fold1(d->xrel, k->die_pitch[0], &f.xi);
	f.yr = fold1(d->yrel, k->die_pitch[1], &f.yi);
	return f;
}

struct order {
	long xi, yi;
	size_t i;
};

static int cmp_order(const void *a, const void *b)
{
	const struct order *x = a, *y = b;
	int c = CMP(x->xi, y->xi);
	if (!c)
		c = CMP(x->yi, y->yi);
	return c ? c : CMP(x->i, y->i);
}

/* Each defect's index: its place among the defects of its die, in file order. */
static long *die_indices(const struct klarf *k, const struct klarf_wafer *w)
{
	struct order *o = xmalloc((w->ndefects ? w->ndefects : 1) * sizeof *o);
	long *idx = xmalloc((w->ndefects ? w->ndefects : 1) * sizeof *idx);
	for (size_t i = 0; i < w->ndefects; i++) {
		struct folded f = fold(k, &w->defects[i]);
		o[i].xi = f.xi;
		o[i].yi = f.yi;
		o[i].i = i;
	}
	if (w->ndefects)
		qsort(o, w->ndefects, sizeof *o, cmp_order);
	for (size_t i = 0; i < w->ndefects; i++)
		idx[o[i].i] = (i > 0 && o[i].xi == o[i - 1].xi && o[i].yi == o[i - 1].yi) ? idx[o[i - 1].i] + 1 : 0;
	free(o);
	return idx;
}

static int emit_defect(struct acq *a, const struct grid *g, const struct klarf *k,
		       const struct klarf_wafer *w, const char *wid, const struct klarf_defect *kd, long index)
{
	const double *c = wafer_center(k, w);
	struct folded fd = fold(k, kd);
	struct klarf_defect folded = *kd, *d = &folded;
	long col, row;
	double wx, wy;
	d->xindex = fd.xi;
	d->yindex = fd.yi;
	d->xrel = fd.xr;
	d->yrel = fd.yr;
	col = d->xindex - g->xmin;
	row = d->yindex - g->ymin;
	wx = k->die_origin[0] + d->xindex * k->die_pitch[0] + d->xrel - c[0];
	wy = k->die_origin[1] + d->yindex * k->die_pitch[1] + d->yrel - c[1];
	double sx = isnan(d->xsize) ? (isnan(d->dsize) ? 0 : d->dsize) : d->xsize;
	double sy = isnan(d->ysize) ? (isnan(d->dsize) ? 0 : d->dsize) : d->ysize;
	const char *cn = class_name(k, d->classnumber);
	json_t *ev = acq_event(a, "defect");

	json_object_set_new(ev, "wafer", json_string(wid));
	json_object_set_new(ev, "col", json_integer(col));
	json_object_set_new(ev, "row", json_integer(row));
	json_object_set_new(ev, "index", json_integer(index));
	event_set_id(ev, event_id_defect(a->run, wid, col, row, index));
	set_num(ev, "x_um", d->xrel);
	set_num(ev, "y_um", d->yrel);
	set_num(ev, "wx_um", wx);
	set_num(ev, "wy_um", wy);
	if (!isnan(d->xrel) && !isnan(d->yrel)) {
		/* The die's virtual image: pixel_um per pixel, row 0 at the top. */
		double x0 = (d->xrel - sx / 2) / g->pixel_um, x1 = (d->xrel + sx / 2) / g->pixel_um;
		double y0 = ((double)g->die_h * g->pixel_um - d->yrel - sy / 2) / g->pixel_um;
		double y1 = ((double)g->die_h * g->pixel_um - d->yrel + sy / 2) / g->pixel_um;
		json_t *bb = json_array();
		json_array_append_new(bb, json_integer((json_int_t)fmax(0, floor(x0))));
		json_array_append_new(bb, json_integer((json_int_t)fmax(0, floor(y0))));
		json_array_append_new(bb, json_integer((json_int_t)fmin((double)g->die_w, ceil(x1))));
		json_array_append_new(bb, json_integer((json_int_t)fmin((double)g->die_h, ceil(y1))));
		if (x0 <= (double)g->die_w && y0 <= (double)g->die_h && x1 >= 0 && y1 >= 0)
			json_object_set_new(ev, "bbox", bb);
		else
			json_decref(bb);
	}
	set_num(ev, "w_um", d->xsize);
	set_num(ev, "h_um", d->ysize);
	if (!isnan(d->area)) {
		double apx = round(d->area / (g->pixel_um * g->pixel_um));
		if (apx <= (double)g->die_w * (double)g->die_h)
			json_object_set_new(ev, "area_px", json_integer((json_int_t)apx));
		json_object_set_new(ev, "area_um2", json_real(d->area));
	}
	set_num(ev, "dsize_um", d->dsize);
	json_object_set_new(ev, "class", json_string(cn ? cn : ""));
	if (d->classnumber >= 0)
		json_object_set_new(ev, "class_num", json_integer(d->classnumber));
	json_object_set_new(ev, "defect_id", json_integer(d->id));
	json_object_set_new(ev, "xindex", json_integer(kd->xindex));
	json_object_set_new(ev, "yindex", json_integer(kd->yindex));
	json_object_set_new(ev, "test", json_integer(d->test));
	(*a->c_defects)++;
	return acq_emit(a, ev);
}

static size_t wafer_dies(const struct klarf_wafer *w)
{
	return w->ntest_plan;
}

/* An import: the files, read whole, and what the run made of them so far. */
struct import {
	struct acq *a;
	char *const *files;
	int nfiles;
	struct klarf *k;         /* one per file */
	struct grid g;
	int nwafers;             /* in all the files */
	char **wids;             /* the wafer ids given so far, unique */
	int ord;                 /* how many */
	uint64_t dies_total;
};

/*
 * Read and check every file, and see every die of their plans and
 * defects on the grid: KERF_EX_OK, or KERF_EX_IOERR or KERF_EX_DATAERR
 * after logging why.
 */
static int import_read(struct import *im)
{
	char err[512];
	for (int i = 0; i < im->nfiles; i++) {
		const char *path = im->files[i];
		struct klarf *k = &im->k[i];
		FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
		int r;
		if (!f) {
			log_msg(LOG_ERROR, json_pack("{ss}", "path", path), "cannot open '%s': %s", path,
				strerror(errno));
			return KERF_EX_IOERR;
		}
		r = klarf_read(f, path, k, err, sizeof err);
		if (f != stdin)
			fclose(f);
		if (r < 0) {
			log_msg(LOG_ERROR, json_pack("{ssss}", "path", path, "reason", "bad_klarf"),
				"'%s': %s", path, err);
			return KERF_EX_DATAERR;
		}
		for (size_t w = 0; w < k->nwafers; w++) {
			struct klarf_wafer *kw = &k->wafers[w];
			im->nwafers++;
			for (size_t j = 0; j < kw->ntest_plan; j++)
				grid_see(&im->g, kw->test_plan[j][0], kw->test_plan[j][1]);
			for (size_t j = 0; j < kw->ndefects; j++) {
				struct folded fd = fold(k, &kw->defects[j]);
				grid_see(&im->g, fd.xi, fd.yi);
			}
		}
		if (i > 0 && (k->die_pitch[0] != im->k[0].die_pitch[0] ||
			      k->die_pitch[1] != im->k[0].die_pitch[1]))
			log_msg(LOG_WARN, json_pack("{ss}", "path", path),
				"'%s' has another die pitch than '%s'; the run uses the first", path,
				im->files[0]);
	}
	return KERF_EX_OK;
}

/*
 * The run's grid from the first file (its pitch, the virtual die, the
 * origin of the lowest indices) and, unless given, its run id from the
 * lot: KERF_EX_OK, or KERF_EX_DATAERR when the first file has no pitch.
 */
static int import_geometry(struct import *im)
{
	const struct klarf *k0 = &im->k[0];
	struct grid *g = &im->g;
	const double *c;

	if (!(k0->die_pitch[0] > 0 && k0->die_pitch[1] > 0)) {
		log_msg(LOG_ERROR, json_pack("{ssss}", "path", im->files[0], "reason", "bad_klarf"),
			"'%s': no usable DiePitch", im->files[0]);
		return KERF_EX_DATAERR;
	}
	if (!g->any)
		grid_see(g, 0, 0);
	if (im->nwafers > 25)
		log_msg(LOG_WARN, json_pack("{si}", "wafers", im->nwafers), "%d wafers is more than a lot of 25",
			im->nwafers);
	if (!im->a->run) {
		char *sn = safe_name(k0->lot_id ? k0->lot_id : "lot", 64);
		char *r = xasprintf("klarf-%s", sn);
		acq_set_run(im->a, r);
		free(r);
		free(sn);
	}
	g->pitch[0] = k0->die_pitch[0];
	g->pitch[1] = k0->die_pitch[1];
	acq_virtual_die(g->pitch, &g->pixel_um, &g->die_w, &g->die_h);
	c = wafer_center(k0, &k0->wafers[0]);
	g->origin[0] = k0->die_origin[0] + g->xmin * g->pitch[0] - c[0];
	g->origin[1] = k0->die_origin[1] + g->ymin * g->pitch[1] - c[1];
	return KERF_EX_OK;
}

/* run_start, at the first file's time; 0 or -1 (acq_emit). */
static int import_run_start(struct import *im)
{
	struct acq *a = im->a;
	const struct klarf *k0 = &im->k[0];
	const struct grid *g = &im->g;
	struct timespec ts;
	json_t *ev;

	a->wall = 0;
	if (klarf_time(k0->wafers[0].result_timestamp, &ts) == 0 || klarf_time(k0->file_timestamp, &ts) == 0)
		a->t = ts;
	ev = acq_event(a, "run_start");
	json_object_set_new(ev, "lot", json_string(k0->lot_id && *k0->lot_id ? k0->lot_id : "unknown"));
	json_object_set_new(ev, "recipe", json_string(k0->setup_id ? k0->setup_id : ""));
	json_object_set_new(ev, "tool", json_string(k0->station ? k0->station : ""));
	json_object_set_new(ev, "source", json_string("klarf"));
	json_object_set_new(ev, "wafers", json_integer(im->nwafers));
	json_object_set_new(ev, "diameter_mm", json_real(k0->sample_size_mm > 0 ? k0->sample_size_mm : 300));
	json_object_set_new(ev, "edge_mm", json_real(0));
	json_object_set_new(ev, "pitch_um", json_pack("[ff]", g->pitch[0], g->pitch[1]));
	json_object_set_new(ev, "origin_um", json_pack("[ff]", g->origin[0], g->origin[1]));
	json_object_set_new(ev, "cols", json_integer(g->xmax - g->xmin + 1));
	json_object_set_new(ev, "rows", json_integer(g->ymax - g->ymin + 1));
	json_object_set_new(ev, "die_px", json_pack("[II]", (json_int_t)g->die_w, (json_int_t)g->die_h));
	json_object_set_new(ev, "pixel_um", json_real(g->pixel_um));
	json_object_set_new(ev, "index_origin", json_pack("[II]", (json_int_t)g->xmin, (json_int_t)g->ymin));
	return acq_emit(a, ev);
}

/*
 * The wafer's id in the run, kept in im->wids: its own, or with "-N" when
 * an earlier wafer had it (defect ids are made from wafer ids).
 */
static const char *import_wafer_id(struct import *im, const struct klarf_wafer *kw)
{
	const char *own = kw->wafer_id && *kw->wafer_id ? kw->wafer_id : "wafer";
	char *wid = xstrdup(own);
	for (int n = 2, clash = 1; clash; n++) {
		clash = 0;
		for (int j = 0; j < im->ord; j++)
			if (!strcmp(im->wids[j], wid))
				clash = 1;
		if (clash) {
			free(wid);
			wid = xasprintf("%s-%d", own, n);
		}
	}
	if (strcmp(wid, kw->wafer_id ? kw->wafer_id : ""))
		log_msg(LOG_WARN, json_pack("{ssss}", "wafer", kw->wafer_id ? kw->wafer_id : "", "as", wid),
			"wafer id '%s' seen before: imported as '%s'", kw->wafer_id ? kw->wafer_id : "", wid);
	im->wids[im->ord++] = wid;
	return wid;
}

/*
 * One wafer: wafer_start (at its result time, when later than the run's
 * clock), its defects (until a stop signal), wafer_end; 0 or -1 (acq_emit).
 */
static int import_wafer(struct import *im, const struct klarf *kf, const struct klarf_wafer *kw)
{
	struct acq *a = im->a;
	long slot = kw->slot >= 1 && kw->slot <= 25 ? kw->slot : (im->ord % 25) + 1;
	const char *wid = import_wafer_id(im, kw);
	struct timespec ts;
	json_t *ev;
	long *idx;

	if (klarf_time(kw->result_timestamp, &ts) == 0 &&
	    (ts.tv_sec > a->t.tv_sec || (ts.tv_sec == a->t.tv_sec && ts.tv_nsec > a->t.tv_nsec)))
		a->t = ts;
	ev = acq_event(a, "wafer_start");
	json_object_set_new(ev, "wafer", json_string(wid));
	json_object_set_new(ev, "slot", json_integer(slot));
	json_object_set_new(ev, "lot", json_string(kf->lot_id && *kf->lot_id ? kf->lot_id : "unknown"));
	json_object_set_new(ev, "dies", json_integer((json_int_t)wafer_dies(kw)));
	json_object_set_new(ev, "defects", json_integer((json_int_t)kw->ndefects));
	if (acq_emit(a, ev) < 0)
		return -1;
	idx = die_indices(kf, kw);
	for (size_t j = 0; j < kw->ndefects && !sig_stop; j++) {
		if (emit_defect(a, &im->g, kf, kw, wid, &kw->defects[j], idx[j]) < 0) {
			free(idx);
			return -1;
		}
	}
	free(idx);
	ev = acq_event(a, "wafer_end");
	json_object_set_new(ev, "wafer", json_string(wid));
	json_object_set_new(ev, "slot", json_integer(slot));
	json_object_set_new(ev, "dies", json_integer((json_int_t)wafer_dies(kw)));
	if (acq_emit(a, ev) < 0)
		return -1;
	(*a->c_wafers)++;
	im->dies_total += wafer_dies(kw);
	return 0;
}

/* Every file's wafers in order, until a stop signal; 0 or -1 (acq_emit). */
static int import_wafers(struct import *im)
{
	im->wids = xcalloc((size_t)im->nwafers, sizeof *im->wids);
	for (int i = 0; i < im->nfiles; i++) {
		const struct klarf *kf = &im->k[i];
		log_msg(LOG_INFO, json_pack("{sssi}", "path", im->files[i], "wafers", (int)kf->nwafers),
			"importing '%s' (KLARF %s)", im->files[i], kf->file_version ? kf->file_version : "?");
		for (size_t w = 0; w < kf->nwafers; w++) {
			if (import_wafer(im, kf, &kf->wafers[w]) < 0)
				return -1;
			if (sig_stop)
				return 0;
		}
	}
	return 0;
}

/* run_end: completed, or stopped by a signal; 0 or -1 (acq_emit). */
static int import_run_end(struct import *im)
{
	json_t *ev = acq_event(im->a, "run_end");
	json_object_set_new(ev, "status", json_string(sig_stop ? "stopped" : "completed"));
	json_object_set_new(ev, "wafers", json_integer((json_int_t)(*im->a->c_wafers)));
	json_object_set_new(ev, "dies", json_integer((json_int_t)im->dies_total));
	return acq_emit(im->a, ev);
}

int acq_run_klarf(struct acq *a, char *const *files, int nfiles)
{
	struct import im = { .a = a, .files = files, .nfiles = nfiles };
	int rc;

	im.k = xcalloc((size_t)nfiles, sizeof *im.k);
	rc = import_read(&im);
	if (rc == KERF_EX_OK)
		rc = import_geometry(&im);
	if (rc == KERF_EX_OK &&
	    (import_run_start(&im) < 0 || import_wafers(&im) < 0 || import_run_end(&im) < 0))
		rc = KERF_EX_IOERR;
	for (int i = 0; i < nfiles; i++)
		klarf_free(&im.k[i]);
	free(im.k);
	for (int i = 0; i < im.ord; i++)
		free(im.wids[i]);
	free(im.wids);
	return rc;
}

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
	if (x->xi != y->xi)
		return x->xi < y->xi ? -1 : 1;
	if (x->yi != y->yi)
		return x->yi < y->yi ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
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

int acq_run_klarf(struct acq *a, char *const *files, int nfiles)
{
	struct klarf *k = xcalloc((size_t)nfiles, sizeof *k);
	struct grid g;
	struct timespec ts;
	char err[512];
	int rc = KERF_EX_OK, nwafers = 0, ord = 0;
	uint64_t dies_total = 0;
	char **wids = NULL;
	json_t *ev;

	memset(&g, 0, sizeof g);
	for (int i = 0; i < nfiles; i++) {
		FILE *f = strcmp(files[i], "-") ? fopen(files[i], "r") : stdin;
		int r;
		if (!f) {
			log_msg(LOG_ERROR, json_pack("{ss}", "path", files[i]), "cannot open '%s': %s", files[i],
				strerror(errno));
			rc = KERF_EX_IOERR;
			goto out;
		}
		r = klarf_read(f, files[i], &k[i], err, sizeof err);
		if (f != stdin)
			fclose(f);
		if (r < 0) {
			log_msg(LOG_ERROR, json_pack("{ssss}", "path", files[i], "reason", "bad_klarf"),
				"'%s': %s", files[i], err);
			rc = KERF_EX_DATAERR;
			goto out;
		}
		for (size_t w = 0; w < k[i].nwafers; w++) {
			struct klarf_wafer *kw = &k[i].wafers[w];
			nwafers++;
			for (size_t j = 0; j < kw->ntest_plan; j++)
				grid_see(&g, kw->test_plan[j][0], kw->test_plan[j][1]);
			for (size_t j = 0; j < kw->ndefects; j++) {
				struct folded fd = fold(&k[i], &kw->defects[j]);
				grid_see(&g, fd.xi, fd.yi);
			}
		}
		if (i > 0 && (k[i].die_pitch[0] != k[0].die_pitch[0] || k[i].die_pitch[1] != k[0].die_pitch[1]))
			log_msg(LOG_WARN, json_pack("{ss}", "path", files[i]),
				"'%s' has another die pitch than '%s'; the run uses the first", files[i], files[0]);
	}
	if (!(k[0].die_pitch[0] > 0 && k[0].die_pitch[1] > 0)) {
		log_msg(LOG_ERROR, json_pack("{ssss}", "path", files[0], "reason", "bad_klarf"),
			"'%s': no usable DiePitch", files[0]);
		rc = KERF_EX_DATAERR;
		goto out;
	}
	if (!g.any)
		grid_see(&g, 0, 0);
	if (nwafers > 25)
		log_msg(LOG_WARN, json_pack("{si}", "wafers", nwafers), "%d wafers is more than a lot of 25", nwafers);
	if (!a->run) {
		char *sn = safe_name(k[0].lot_id ? k[0].lot_id : "lot", 64);
		char *r = xasprintf("klarf-%s", sn);
		acq_set_run(a, r);
		free(r);
		free(sn);
	}
	g.pitch[0] = k[0].die_pitch[0];
	g.pitch[1] = k[0].die_pitch[1];
	acq_virtual_die(g.pitch, &g.pixel_um, &g.die_w, &g.die_h);
	{
		const double *c = wafer_center(&k[0], &k[0].wafers[0]);
		g.origin[0] = k[0].die_origin[0] + g.xmin * g.pitch[0] - c[0];
		g.origin[1] = k[0].die_origin[1] + g.ymin * g.pitch[1] - c[1];
	}

	a->wall = 0;
	if (klarf_time(k[0].wafers[0].result_timestamp, &ts) == 0 || klarf_time(k[0].file_timestamp, &ts) == 0)
		a->t = ts;
	ev = acq_event(a, "run_start");
	json_object_set_new(ev, "lot", json_string(k[0].lot_id && *k[0].lot_id ? k[0].lot_id : "unknown"));
	json_object_set_new(ev, "recipe", json_string(k[0].setup_id ? k[0].setup_id : ""));
	json_object_set_new(ev, "tool", json_string(k[0].station ? k[0].station : ""));
	json_object_set_new(ev, "source", json_string("klarf"));
	json_object_set_new(ev, "wafers", json_integer(nwafers));
	json_object_set_new(ev, "diameter_mm", json_real(k[0].sample_size_mm > 0 ? k[0].sample_size_mm : 300));
	json_object_set_new(ev, "edge_mm", json_real(0));
	json_object_set_new(ev, "pitch_um", json_pack("[ff]", g.pitch[0], g.pitch[1]));
	json_object_set_new(ev, "origin_um", json_pack("[ff]", g.origin[0], g.origin[1]));
	json_object_set_new(ev, "cols", json_integer(g.xmax - g.xmin + 1));
	json_object_set_new(ev, "rows", json_integer(g.ymax - g.ymin + 1));
	json_object_set_new(ev, "die_px", json_pack("[II]", (json_int_t)g.die_w, (json_int_t)g.die_h));
	json_object_set_new(ev, "pixel_um", json_real(g.pixel_um));
	json_object_set_new(ev, "index_origin", json_pack("[II]", (json_int_t)g.xmin, (json_int_t)g.ymin));
	if (acq_emit(a, ev) < 0)
		goto broken;

	wids = xcalloc((size_t)nwafers, sizeof *wids);
	for (int i = 0; i < nfiles; i++) {
		const struct klarf *kf = &k[i];
		log_msg(LOG_INFO, json_pack("{sssi}", "path", files[i], "wafers", (int)kf->nwafers),
			"importing '%s' (KLARF %s)", files[i], kf->file_version ? kf->file_version : "?");
		for (size_t w = 0; w < kf->nwafers; w++) {
			const struct klarf_wafer *kw = &kf->wafers[w];
			long slot = kw->slot >= 1 && kw->slot <= 25 ? kw->slot : (ord % 25) + 1;
			char *wid = xstrdup(kw->wafer_id && *kw->wafer_id ? kw->wafer_id : "wafer");
			/* Wafer ids must be unique in a run: defect ids are made from them. */
			for (int n = 2, clash = 1; clash; n++) {
				clash = 0;
				for (int j = 0; j < ord; j++)
					if (!strcmp(wids[j], wid))
						clash = 1;
				if (clash) {
					char *nw = xasprintf("%s-%d", kw->wafer_id && *kw->wafer_id ? kw->wafer_id : "wafer", n);
					free(wid);
					wid = nw;
				}
			}
			if (strcmp(wid, kw->wafer_id ? kw->wafer_id : ""))
				log_msg(LOG_WARN, json_pack("{ssss}", "wafer", kw->wafer_id ? kw->wafer_id : "", "as", wid),
					"wafer id '%s' seen before: imported as '%s'", kw->wafer_id ? kw->wafer_id : "", wid);
			wids[ord++] = wid;
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
				goto broken;
			long *idx = die_indices(kf, kw);
			for (size_t j = 0; j < kw->ndefects; j++) {
				if (sig_stop)
					break;
				if (emit_defect(a, &g, kf, kw, wid, &kw->defects[j], idx[j]) < 0) {
					free(idx);
					goto broken;
				}
			}
			free(idx);
			ev = acq_event(a, "wafer_end");
			json_object_set_new(ev, "wafer", json_string(wid));
			json_object_set_new(ev, "slot", json_integer(slot));
			json_object_set_new(ev, "dies", json_integer((json_int_t)wafer_dies(kw)));
			if (acq_emit(a, ev) < 0)
				goto broken;
			(*a->c_wafers)++;
			dies_total += wafer_dies(kw);
			if (sig_stop)
				goto done;
		}
	}
done:
	ev = acq_event(a, "run_end");
	json_object_set_new(ev, "status", json_string(sig_stop ? "stopped" : "completed"));
	json_object_set_new(ev, "wafers", json_integer((json_int_t)(*a->c_wafers)));
	json_object_set_new(ev, "dies", json_integer((json_int_t)dies_total));
	if (acq_emit(a, ev) < 0)
		goto broken;
	goto out;
broken:
	rc = KERF_EX_IOERR;
out:
	for (int i = 0; i < nfiles; i++)
		klarf_free(&k[i]);
	free(k);
	if (wids)
		for (int i = 0; i < ord; i++)
			free(wids[i]);
	free(wids);
	return rc;
}

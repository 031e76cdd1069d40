/* svg.c: see svg.h. */
#include "util.h"
#include "log.h"
#include "atomic.h"
#include "failpoint.h"
#include "svg.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "banned.h"

/*
 * Class colours: the Okabe-Ito palette (distinguishable with the common
 * colour-vision deficiencies) first, then a few more.  A class keeps its
 * colour on every map of the run because it is indexed by the class's
 * place in the run, not in the wafer.
 */
static const char *const palette[] = {
	"#D55E00", "#0072B2", "#009E73", "#E69F00", "#CC79A7", "#56B4E9",
	"#000000", "#8C564B", "#7F7F7F", "#BCBD22", "#17BECF", "#F0E442",
};
#define NPALETTE (sizeof palette / sizeof palette[0])

static const char *class_colour(size_t i)
{
	if (i == PROJECT_CLASSES)
		return "#999999";
	return palette[i % NPALETTE];
}

/* Map geometry, in SVG user units (px). */
#define SVG_W 1000
#define SVG_H 760
#define MAP_CX 380.0
#define MAP_CY 405.0
#define MAP_R 335.0
#define PANEL_X 745

static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			if ((unsigned char)*s >= 0x20 || *s == '\t')
				fputc(*s, f);
		}
	}
}

/*
 * Marker sizes: the radius grows with the logarithm of the area, over the
 * range of areas of the run so far (the whole run for maps drawn at the
 * end; maps drawn when their wafer finished use what was seen until then,
 * and each map's legend shows its scale), from 2.5 px for the smallest
 * to 8 px for the largest.  A range narrower than one decade is widened
 * around its middle, so that similar areas keep similar sizes.
 */
struct sizing {
	double lo, hi; /* log10 of µm² */
	int any;
};

static void sizing_of(const struct project *p, struct sizing *z)
{
	z->any = p->area_any;
	z->lo = p->area_lo;
	z->hi = p->area_hi;
	if (!z->any) {
		z->lo = 1;
		z->hi = 5;
	} else if (z->hi - z->lo < 1) {
		double mid = (z->hi + z->lo) / 2;
		z->lo = mid - 0.5;
		z->hi = mid + 0.5;
	}
}

static double mark_r(const struct sizing *z, double area)
{
	double f;
	if (!(area > 0))
		return 3;
	f = (log10(area) - z->lo) / (z->hi - z->lo);
	f = f < 0 ? 0 : f > 1 ? 1 : f;
	return 2.5 + 5.5 * f;
}

struct mark {
	const struct project_defect *d;
	double r;
};

static int by_radius_desc(const void *a, const void *b)
{
	double ra = ((const struct mark *)a)->r, rb = ((const struct mark *)b)->r;
	return ra < rb ? 1 : ra > rb ? -1 : 0;
}

static const struct project *order_p;

static int by_class(const void *a, const void *b)
{
	const struct project_class *ca = &order_p->classes[*(const size_t *)a];
	const struct project_class *cb = &order_p->classes[*(const size_t *)b];
	long na = ca->num >= 0 ? ca->num : 1L << 30, nb = cb->num >= 0 ? cb->num : 1L << 30;
	if (*(const size_t *)a == PROJECT_CLASSES || *(const size_t *)b == PROJECT_CLASSES)
		return *(const size_t *)a == PROJECT_CLASSES ? 1 : -1;
	if (na != nb)
		return na < nb ? -1 : 1;
	return strcmp(ca->name, cb->name);
}

/* The run's classes with defects, by class number then name; "other" last. */
static size_t class_order(const struct project *p, size_t *order)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nclasses; i++)
		if (p->classes[i].count)
			order[n++] = i;
	if (p->classes[PROJECT_CLASSES].count)
		order[n++] = PROJECT_CLASSES;
	order_p = p;
	qsort(order, n, sizeof *order, by_class);
	return n;
}

static void die_fill(const struct wafer_die *d, const char **fill, const char **stroke)
{
	*stroke = "#c4ccd4";
	if (!d || (!d->inspected && !d->defects)) {
		*fill = "#ffffff";
		*stroke = "#dde1e5";
	} else if (d->defects == 0) {
		*fill = "#e6eef7";
	} else if (d->defects == 1) {
		*fill = "#efe6f5";
	} else if (d->defects < 5) {
		*fill = "#dccbea";
	} else {
		*fill = "#c3a6dc";
	}
}

static void num_row(FILE *f, double y, const char *label, const char *value)
{
	fprintf(f, "<text x=\"%d\" y=\"%.0f\" class=\"k\">", PANEL_X, y);
	esc(f, label);
	fprintf(f, "</text><text x=\"%d\" y=\"%.0f\" class=\"v\">", SVG_W - 18, y);
	esc(f, value);
	fputs("</text>\n", f);
}

/* One wafer map being drawn: where to, what, and the scale. */
struct map {
	FILE *f;
	const struct project *p;
	const struct project_wafer *w;
	struct project_geom g;
	struct sizing z;
	double R;           /* wafer radius, µm */
	double s;           /* px per µm */
	long ndies;
	double density;
};

/* The XML prologue, the root element with its data attributes, the style. */
static void map_head(const struct map *m)
{
	FILE *f = m->f;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" ",
		SVG_W, SVG_H, SVG_W, SVG_H);
	fputs("data-wafer=\"", f);
	esc(f, m->w->id);
	fprintf(f, "\" data-defects=\"%llu\" data-defective-dies=\"%zu\" data-dies=\"%ld\" "
		"data-density-cm2=\"%.6g\">\n", (unsigned long long)m->w->acct.defects,
		m->w->acct.defective, m->ndies, m->density);
	fputs("<title>wafer ", f);
	esc(f, m->w->id);
	fputs("</title>\n<style>text{fill:#1d2329}.k{font-size:13px;fill:#56606a}"
	      ".v{font-size:13px;text-anchor:end;font-weight:bold}.h{font-size:12px;"
	      "font-weight:bold;fill:#56606a;letter-spacing:0.5px}.s{font-size:11px;fill:#56606a}"
	      "</style>\n", f);
	fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", SVG_W, SVG_H);
}

/* "Wafer ID", and under it the slot, lot, run and whether it ended. */
static void map_title(const struct map *m)
{
	FILE *f = m->f;
	const char *run = project_run_id(m->p);
	fputs("<text x=\"20\" y=\"34\" font-size=\"22\" font-weight=\"bold\">Wafer ", f);
	esc(f, m->w->id);
	fputs("</text>\n<text x=\"20\" y=\"56\" class=\"s\">", f);
	if (m->w->slot >= 0)
		fprintf(f, "slot %ld", m->w->slot);
	if (m->p->lot) {
		fputs(m->w->slot >= 0 ? " \xc2\xb7 lot " : "lot ", f);
		esc(f, m->p->lot);
	}
	if (run) {
		fputs(" \xc2\xb7 run ", f);
		esc(f, run);
	}
	if (!m->w->acct.ended)
		fputs(" \xc2\xb7 NOT ENDED (partial)", f);
	fputs("</text>\n", f);
}

/* Outline with the notch at 6 o'clock (OrientationMarkLocation DOWN). */
static void map_outline(const struct map *m)
{
	double notch = 3000 * m->s; /* a 3 mm notch, drawn to scale or at least visible */
	double th;
	if (notch < 6)
		notch = 6;
	th = asin((notch / 2) / MAP_R);
	fprintf(m->f, "<path d=\"M %.2f %.2f A %.2f %.2f 0 1 1 %.2f %.2f L %.2f %.2f Z\" "
		"fill=\"#f3f4f6\" stroke=\"#2b3138\" stroke-width=\"1.5\"/>\n",
		MAP_CX - MAP_R * sin(th), MAP_CY + MAP_R * cos(th), MAP_R, MAP_R,
		MAP_CX + MAP_R * sin(th), MAP_CY + MAP_R * cos(th), MAP_CX, MAP_CY + MAP_R - notch);
	if (m->g.edge_mm > 0)
		fprintf(m->f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"none\" stroke=\"#9aa3ad\" "
			"stroke-width=\"0.8\" stroke-dasharray=\"4 3\"/>\n",
			MAP_CX, MAP_CY, (m->R - m->g.edge_mm * 1000) * m->s);
}

/* Die (col,row) as a square coloured by its count (d may be NULL). */
static void map_die(const struct map *m, long col, long row, const struct wafer_die *d)
{
	const struct project_geom *g = &m->g;
	const char *fill, *stroke;
	die_fill(d, &fill, &stroke);
	fprintf(m->f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
		"fill=\"%s\" stroke=\"%s\"/>\n",
		MAP_CX + (g->origin_x + (double)col * g->pitch_x) * m->s,
		MAP_CY - (g->origin_y + (double)(row + 1) * g->pitch_y) * m->s,
		g->pitch_x * m->s, g->pitch_y * m->s, fill, stroke);
}

/*
 * Die grid: every whole die on the wafer, and any other die seen; on a
 * grid too large to walk, only the dies seen.
 */
static void map_dies(const struct map *m)
{
	const struct project_geom *g = &m->g;
	const struct wafer_acct *a = &m->w->acct;
	fputs("<g stroke-width=\"0.6\">\n", m->f);
	for (long r = 0; r < g->rows && (double)g->rows * (double)g->cols <= PROJECT_GRID_MAX; r++) {
		for (long c = 0; c < g->cols; c++) {
			const struct wafer_die *d = wafer_acct_die_get(a, c, r);
			if (!d && !project_die_on_wafer(g, c, r))
				continue;
			map_die(m, c, r, d);
		}
	}
	if ((double)g->rows * (double)g->cols > PROJECT_GRID_MAX) {
		for (size_t i = 0; i < a->dcap; i++)
			if (a->dies[i].used)
				map_die(m, a->dies[i].col, a->dies[i].row, &a->dies[i]);
	}
	fputs("</g>\n", m->f);
}

/*
 * Defects, largest first so that small ones stay on top (at most
 * SVG_MAX_MARKS: every step-th), then the notes on what is not drawn.
 */
static void map_defects(const struct map *m)
{
	FILE *f = m->f;
	const struct project_wafer *w = m->w;
	size_t step = w->nd > SVG_MAX_MARKS ? (w->nd + SVG_MAX_MARKS - 1) / SVG_MAX_MARKS : 1;
	struct mark *marks = xmalloc((w->nd / step + 1) * sizeof *marks);
	size_t nm = 0;
	for (size_t i = 0; i < w->nd; i += step) {
		marks[nm].d = &w->dv[i];
		marks[nm].r = mark_r(&m->z, w->dv[i].area);
		nm++;
	}
	qsort(marks, nm, sizeof *marks, by_radius_desc);
	fputs("<g stroke=\"#1d2329\" stroke-width=\"0.5\" fill-opacity=\"0.85\">\n", f);
	for (size_t i = 0; i < nm; i++)
		fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"%s\"/>\n",
			MAP_CX + marks[i].d->wx * m->s, MAP_CY - marks[i].d->wy * m->s, marks[i].r,
			class_colour(marks[i].d->cls));
	fputs("</g>\n", f);
	free(marks);
	if (step > 1 || w->nd < w->acct.defects) {
		fprintf(f, "<text x=\"20\" y=\"%d\" class=\"s\">showing %zu of %llu defects</text>\n",
			SVG_H - 12, nm, (unsigned long long)w->acct.defects);
	}
	if (w->acct.untracked) {
		fprintf(f, "<text x=\"20\" y=\"%d\" class=\"s\">%llu events on dies past the first %d "
			"not drawn as dies</text>\n", SVG_H - 28, (unsigned long long)w->acct.untracked,
			PROJECT_DIES_KEPT);
	}
	fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" class=\"s\" text-anchor=\"middle\">notch</text>\n",
		MAP_CX, MAP_CY + MAP_R + 16);
}

/* The panel's RESULT block from y down; returns the y below it. */
static double map_numbers(const struct map *m, double y)
{
	FILE *f = m->f;
	const struct wafer_acct *a = &m->w->acct;
	char buf[128];
	fprintf(f, "<text x=\"%d\" y=\"%.0f\" class=\"h\">RESULT</text>\n", PANEL_X, y);
	y += 22;
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)a->defects);
	num_row(f, y, "Defects", buf);
	y += 20;
	snprintf(buf, sizeof buf, "%zu", a->defective);
	num_row(f, y, "Defective dies", buf);
	y += 20;
	snprintf(buf, sizeof buf, "%ld", m->ndies);
	num_row(f, y, "Inspected dies", buf);
	y += 20;
	snprintf(buf, sizeof buf, "%.4g /cm\xc2\xb2", m->density);
	num_row(f, y, "Density", buf);
	y += 20;
	if (m->ndies > 0) {
		snprintf(buf, sizeof buf, "%.1f %%", 100.0 * (double)((size_t)m->ndies > a->defective ?
			(size_t)m->ndies - a->defective : 0) / (double)m->ndies);
		num_row(f, y, "Clean dies", buf);
		y += 20;
	}
	snprintf(buf, sizeof buf, "%.2f cm\xc2\xb2",
		 (double)m->ndies * m->g.pitch_x * m->g.pitch_y / 1e8);
	num_row(f, y, "Inspected area", buf);
	y += 20;
	if (m->w->signature) {
		num_row(f, y, "Signature", m->w->signature);
		y += 20;
	}
	return y;
}

/* The legend of the run's classes from y down; returns the y below it. */
static double map_class_legend(const struct map *m, double y)
{
	FILE *f = m->f;
	size_t order[PROJECT_CLASSES + 1], nord;
	fprintf(f, "<text x=\"%d\" y=\"%.0f\" class=\"h\">DEFECT CLASS</text>\n", PANEL_X, y);
	y += 6;
	nord = class_order(m->p, order);
	for (size_t k = 0; k < nord && y < 560; k++) {
		size_t i = order[k];
		y += 19;
		fprintf(f, "<circle cx=\"%d\" cy=\"%.0f\" r=\"5\" fill=\"%s\" stroke=\"#1d2329\" "
			"stroke-width=\"0.5\"/>\n", PANEL_X + 5, y - 4, class_colour(i));
		fprintf(f, "<text x=\"%d\" y=\"%.0f\" class=\"k\">", PANEL_X + 16, y);
		esc(f, project_class_name(m->p, i));
		fprintf(f, "</text><text x=\"%d\" y=\"%.0f\" class=\"v\">%llu</text>\n", SVG_W - 18, y,
			(unsigned long long)project_wafer_class_count(m->w, i));
	}
	return y;
}

/* The legends of marker sizes and die colours from y down. */
static void map_size_die_legend(const struct map *m, double y)
{
	static const char *const fills[] = { "#e6eef7", "#efe6f5", "#dccbea", "#c3a6dc", "#ffffff" };
	static const char *const names[] = { "inspected, clean", "1 defect", "2\u20134 defects",
					     "5 or more", "not inspected" };
	FILE *f = m->f;
	const struct sizing *z = &m->z;
	fprintf(f, "<text x=\"%d\" y=\"%.0f\" class=\"h\">AREA (\xc2\xb5m\xc2\xb2)</text>\n", PANEL_X, y);
	y += 22;
	for (int i = 0; i < 3; i++) {
		double x = PANEL_X + 8 + i * 80, a = pow(10, z->lo + (z->hi - z->lo) * i / 2);
		fprintf(f, "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"%.2f\" fill=\"#9aa3ad\" "
			"stroke=\"#1d2329\" stroke-width=\"0.5\"/><text x=\"%.0f\" y=\"%.0f\" "
			"class=\"s\">%.2g</text>\n", x, y - 4, mark_r(z, a), x + 11, y, a);
	}
	y += 24;
	fprintf(f, "<text x=\"%d\" y=\"%.0f\" class=\"h\">DIE</text>\n", PANEL_X, y);
	for (int i = 0; i < 5; i++) {
		y += 19;
		fprintf(f, "<rect x=\"%d\" y=\"%.0f\" width=\"11\" height=\"11\" fill=\"%s\" "
			"stroke=\"#9aa3ad\" stroke-width=\"0.6\"/><text x=\"%d\" y=\"%.0f\" "
			"class=\"k\">%s</text>\n", PANEL_X, y - 10, fills[i], PANEL_X + 18, y, names[i]);
	}
}

/* Footer: where it came from (geometry, recipe, tool). */
static void map_footer(const struct map *m)
{
	FILE *f = m->f;
	const struct project *p = m->p;
	double y = SVG_H - 50;
	fprintf(f, "<text x=\"%d\" y=\"%.0f\" class=\"s\">", PANEL_X, y);
	fprintf(f, "%.0f mm wafer, %.0f mm edge", m->g.diameter_mm, m->g.edge_mm);
	fprintf(f, "</text>\n<text x=\"%d\" y=\"%.0f\" class=\"s\">die %.3g \xc3\x97 %.3g mm%s</text>\n",
		PANEL_X, y + 16, m->g.pitch_x / 1000, m->g.pitch_y / 1000, p->g.known ? "" : " (assumed)");
	if (p->recipe || p->tool) {
		fprintf(f, "<text x=\"%d\" y=\"%.0f\" class=\"s\">", PANEL_X, y + 32);
		if (p->recipe) {
			fputs("recipe ", f);
			esc(f, p->recipe);
		}
		if (p->tool) {
			fputs(p->recipe ? " \xc2\xb7 tool " : "tool ", f);
			esc(f, p->tool);
		}
		fputs("</text>\n", f);
	}
}

int svg_wafer(FILE *f, const struct project *p, const struct project_wafer *w)
{
	struct map m = { .f = f, .p = p, .w = w };
	double y;

	project_geom_for(p, &m.g);
	sizing_of(p, &m.z);
	m.R = m.g.diameter_mm * 1000.0 / 2;
	m.s = MAP_R / m.R;
	m.ndies = wafer_acct_dies(&w->acct);
	m.density = project_wafer_density(p, w);

	map_head(&m);
	map_title(&m);
	map_outline(&m);
	map_dies(&m);
	map_defects(&m);
	y = map_numbers(&m, 40);
	y = map_class_legend(&m, y + 16);
	map_size_die_legend(&m, y + 30);
	map_footer(&m);
	fputs("</svg>\n", f);
	return ferror(f) ? -1 : 0;
}

static void html_row(FILE *f, const char *k, const char *v)
{
	fputs("<tr><th>", f);
	esc(f, k);
	fputs("</th><td>", f);
	esc(f, v);
	fputs("</td></tr>\n", f);
}

int svg_index(FILE *f, const struct project *p)
{
	const char *run = project_run_id(p), *state = project_run_state(p);
	char buf[128];
	uint64_t dies = 0;
	size_t order[PROJECT_CLASSES + 1], nord;

	for (size_t i = 0; i < p->nwafers; i++)
		dies += (uint64_t)wafer_acct_dies(&p->wafers[i].acct);
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>kerf run ", f);
	esc(f, run ? run : "");
	fputs("</title>\n<style>\n"
	      "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px;color:#1d2329;background:#fafbfc}\n"
	      "h1{font-size:22px;margin:0 0 4px}\n"
	      ".sub{color:#56606a;margin-bottom:16px}\n"
	      "table{border-collapse:collapse;font-size:14px}\n"
	      "th{text-align:left;color:#56606a;font-weight:normal;padding:2px 14px 2px 0}\n"
	      "td{text-align:right;font-weight:bold;padding:2px 0}\n"
	      ".grid{display:flex;flex-wrap:wrap;gap:18px;margin-top:18px}\n"
	      ".card{background:#fff;border:1px solid #dde1e5;border-radius:6px;padding:12px}\n"
	      ".card img{width:560px;max-width:100%;height:auto;display:block}\n"
	      ".card h2{font-size:16px;margin:0 0 8px}\n"
	      "</style>\n</head>\n<body>\n<h1>Run ", f);
	esc(f, run ? run : "(unknown)");
	fputs("</h1>\n<div class=\"sub\">", f);
	if (p->lot) {
		fputs("lot ", f);
		esc(f, p->lot);
		fputs(" &middot; ", f);
	}
	if (p->recipe) {
		fputs("recipe ", f);
		esc(f, p->recipe);
		fputs(" &middot; ", f);
	}
	fputs("run state when drawn ", f);
	esc(f, state ? state : "unknown");
	if (p->end_status) {
		fputs(" &middot; stream ", f);
		esc(f, p->end_status);
	}
	fputs("</div>\n<table class=\"totals\">\n", f);
	snprintf(buf, sizeof buf, "%zu", p->nwafers);
	html_row(f, "Wafers", buf);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)dies);
	html_row(f, "Dies inspected", buf);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)p->defects);
	html_row(f, "Defects", buf);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)p->nalarms);
	html_row(f, "Alarms", buf);
	nord = class_order(p, order);
	for (size_t k = 0; k < nord; k++) {
		size_t i = order[k];
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)p->classes[i].count);
		fprintf(f, "<tr><th><span style=\"color:%s\">&#9679;</span> ", class_colour(i));
		esc(f, project_class_name(p, i));
		fprintf(f, "</th><td>%s</td></tr>\n", buf);
	}
	fputs("</table>\n", f);
	if (p->nalarms) {
		fputs("<h3>Last alarms</h3>\n<table class=\"alarms\">\n", f);
		for (uint64_t k = p->nalarms; k-- > (p->nalarms > PROJECT_ALARMS ? p->nalarms - PROJECT_ALARMS : 0);) {
			const struct project_alarm *a = &p->alarms[k % PROJECT_ALARMS];
			fputs("<tr><th>", f);
			esc(f, a->t ? a->t : "");
			fputs("</th><td style=\"text-align:left;font-weight:normal\">", f);
			esc(f, a->alid ? a->alid : "-");
			fputs(a->set ? " set " : " clear ", f);
			esc(f, a->category ? a->category : "");
			fputs(a->critical ? " (critical) " : " ", f);
			esc(f, a->text ? a->text : "");
			fputs("</td></tr>\n", f);
		}
		fputs("</table>\n", f);
	}
	fputs("<div class=\"grid\">\n", f);
	for (size_t i = 0; i < p->nwafers; i++) {
		const struct project_wafer *w = &p->wafers[i];
		const char *file = w->file;
		long nd = wafer_acct_dies(&w->acct);
		fputs("<div class=\"card\">\n<h2>Wafer ", f);
		esc(f, w->id);
		if (w->slot >= 0)
			fprintf(f, " <small>(slot %ld)</small>", w->slot);
		fputs("</h2>\n<a href=\"wafermap/", f);
		esc(f, file);
		fputs("\"><img src=\"wafermap/", f);
		esc(f, file);
		fputs("\" alt=\"wafer map of ", f);
		esc(f, w->id);
		fputs("\"></a>\n<table>\n", f);
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)w->acct.defects);
		html_row(f, "Defects", buf);
		snprintf(buf, sizeof buf, "%zu", w->acct.defective);
		html_row(f, "Defective dies", buf);
		snprintf(buf, sizeof buf, "%ld", nd);
		html_row(f, "Inspected dies", buf);
		snprintf(buf, sizeof buf, "%.4g /cm\xc2\xb2", project_wafer_density(p, w));
		html_row(f, "Density", buf);
		if (w->signature)
			html_row(f, "Signature", w->signature);
		if (!w->acct.ended)
			html_row(f, "Status", "not ended");
		if (w->acct.late) {
			snprintf(buf, sizeof buf, "%llu", (unsigned long long)w->acct.late);
			html_row(f, "Late events (not on the map)", buf);
		}
		fputs("</table>\n</div>\n", f);
	}
	fputs("</div>\n</body>\n</html>\n", f);
	return ferror(f) ? -1 : 0;
}

typedef int (*draw_fn)(FILE *f, const struct project *p, const struct project_wafer *w);

static int index_adapter(FILE *f, const struct project *p, const struct project_wafer *w)
{
	(void)w;
	return svg_index(f, p);
}

/* Draw into memory, then replace 'path' atomically. */
static int write_file(const char *path, draw_fn fn, const struct project *p,
		      const struct project_wafer *w)
{
	char *data = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&data, &len);
	int rc;
	if (!m) {
		log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", path, strerror(errno));
		return -1;
	}
	rc = fn(m, p, w);
	if (fclose(m) != 0)
		rc = -1;
	/* Wafer maps have failpoints; the index, drawn at the end, has none. */
	if (rc == 0 && atomic_write(path, data, len, 1, w ? FP_MAP_BEFORE_RENAME : FP_NONE,
				    w ? FP_MAP_AFTER_RENAME : FP_NONE) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", path, strerror(errno));
		rc = -1;
	} else if (rc != 0) {
		log_msg(LOG_ERROR, NULL, "cannot write '%s': out of memory", path);
	}
	free(data);
	return rc;
}

/* RUNDIR/wafermap/, created if need be: ours, not a symbolic link planted to elsewhere. */
static char *map_dir(const char *rundir)
{
	char *dir = xasprintf("%s/wafermap", rundir);
	struct stat st;
	if (mkdir_p(dir, 0755) != 0 || lstat(dir, &st) != 0 || (!S_ISDIR(st.st_mode) && (errno = ELOOP))) {
		log_msg(LOG_ERROR, NULL, "cannot create '%s': %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	/* A crash between a map's write and its rename left its temporary. */
	atomic_write_cleanup(dir, ".svg");
	return dir;
}

int svg_wafer_write(const struct project *p, const struct project_wafer *w, const char *rundir)
{
	char *dir = map_dir(rundir), *path;
	int rc;
	if (!dir)
		return -1;
	path = xasprintf("%s/%s", dir, w->file);
	rc = write_file(path, svg_wafer, p, w);
	free(path);
	free(dir);
	return rc;
}

int svg_write_all(const struct project *p, const char *rundir)
{
	char *dir = map_dir(rundir), *path;
	int rc = 0;
	if (!dir)
		return -1;
	for (size_t i = 0; i < p->nwafers; i++) {
		if (p->wafers[i].finished)
			continue; /* drawn when it finished */
		path = xasprintf("%s/%s", dir, p->wafers[i].file);
		if (write_file(path, svg_wafer, p, &p->wafers[i]) != 0)
			rc = -1;
		free(path);
	}
	path = xasprintf("%s/index.html", rundir);
	if (write_file(path, index_adapter, p, NULL) != 0)
		rc = -1;
	free(path);
	free(dir);
	return rc;
}

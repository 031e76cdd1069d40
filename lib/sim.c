/*
 * sim.c: see sim.h.
 *
 * Every random draw comes from a splitmix64 stream seeded by XXH3 of
 * (seed, wafer, die, purpose), so a die's pixels depend only on the seed
 * and its place, never on the order or number of earlier draws.  That is
 * what makes `--seed` reproduce every byte, and a stopped run's dies equal
 * to the same dies of a full run.
 */
#include "util.h"
#include "sim.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

struct sim_feature {
	int die;
	int kind;          /* 0 particle, 1 scratch segment */
	float x, y;        /* centre (particle) or start (scratch), px */
	float x2, y2;      /* end of a scratch segment, px */
	float r;           /* radius, px (particle) */
	float contrast;    /* signed grey levels */
	int sig;           /* the signature that put it there */
};

/* ------------------------------------------------------------------ rng */

struct rng {
	uint64_t s;
};

static uint64_t rnext(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double runif(struct rng *r)
{
	return (double)(rnext(r) >> 11) * 0x1.0p-53;
}

static double rnorm(struct rng *r)
{
	double u1 = runif(r), u2 = runif(r);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static int rpois(struct rng *r, double lam)
{
	double l = exp(-lam), p = 1.0;
	int k = 0;
	if (lam <= 0)
		return 0;
	do {
		k++;
		p *= runif(r);
	} while (p > l && k < 1000);
	return k - 1;
}

static struct rng rseed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t k[4] = {seed, a, b, c};
	struct rng r = {kerf_xxh3(k, sizeof k)};
	return r;
}

enum { P_PATTERN = 1, P_WAFER, P_DIE, P_NOISE };

/* ------------------------------------------------------------- config */

static const char *const sig_names[SIM_SIG__COUNT] = {
	"random", "cluster", "scratch", "edge-ring", "center",
};

const char *sim_signature_name(int sig)
{
	return sig >= 0 && sig < SIM_SIG__COUNT ? sig_names[sig] : "cycle";
}

int sim_signature_of(const char *name)
{
	if (!strcmp(name, "cycle"))
		return SIM_SIG_CYCLE;
	int i = name_index(name, sig_names, SIM_SIG__COUNT);
	return i < 0 ? -2 : i;
}

void sim_config_default(struct sim_config *c)
{
	memset(c, 0, sizeof *c);
	c->seed = 1;
	c->wafers = 3;
	c->diameter_mm = 300;
	c->edge_mm = 3;
	c->pitch_um[0] = c->pitch_um[1] = 10000;
	c->die_px = 64;
	c->noise = 3.0;
	c->defect_rate = 0.05;
	c->signature = SIM_SIG_CYCLE;
}

void sim_wafer_id(int n, char out[16])
{
	snprintf(out, 16, "W%02d", n);
}

/* ------------------------------------------------------------ geometry */

static double usable_r(const struct sim *s)
{
	return s->cfg.diameter_mm * 500.0 - s->cfg.edge_mm * 1000.0;
}

/*
 * The grid is centred on the wafer with a die corner at the centre; a
 * die counts when all four corners lie inside the usable circle.
 */
static void layout(struct sim *s)
{
	double R = usable_r(s), px = s->cfg.pitch_um[0], py = s->cfg.pitch_um[1];
	int hc = (int)ceil(R / px), hr = (int)ceil(R / py);
	s->cols = 2 * hc;
	s->rows = 2 * hr;
	s->origin_um[0] = -hc * px;
	s->origin_um[1] = -hr * py;
	s->ndies = 0;
	s->dies = xmalloc((size_t)s->cols * (size_t)s->rows * sizeof *s->dies);
	for (int r = 0; r < s->rows; r++) {
		for (int c = 0; c < s->cols; c++) {
			double x0 = s->origin_um[0] + c * px, y0 = s->origin_um[1] + r * py;
			double fx = fmax(fabs(x0), fabs(x0 + px)), fy = fmax(fabs(y0), fabs(y0 + py));
			if (fx * fx + fy * fy <= R * R) {
				s->dies[s->ndies][0] = c;
				s->dies[s->ndies][1] = r;
				s->ndies++;
			}
		}
	}
}

int sim_die_count(const struct sim *s)
{
	return s->ndies;
}

/* The repeating layout: metal lines, vias, pads and a dense array block. */
static void make_pattern(struct sim *s)
{
	int w = s->die_w, h = s->die_h;
	struct rng r = rseed(s->cfg.seed, P_PATTERN, 0, 0);
	s->pattern = xmalloc((size_t)w * (size_t)h);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			int v = 70;
			if (y % 16 < 3)
				v = 125;
			else if (x % 12 < 2)
				v = 110;
			if (x > w / 2 && y > h / 2 && x < w - 4 && y < h - 4)
				v = ((x / 2 + y / 2) & 1) ? 95 : 80;
			s->pattern[(size_t)y * (size_t)w + (size_t)x] = (unsigned char)v;
		}
	for (int i = 0; i < 4; i++) {
		int pw = 5 + (int)(runif(&r) * 6), ph = 5 + (int)(runif(&r) * 6);
		int x0 = (int)(runif(&r) * (w / 2 - pw)), y0 = (int)(runif(&r) * (h - ph));
		for (int y = y0; y < y0 + ph && y < h; y++)
			for (int x = x0; x < x0 + pw && x < w; x++)
				if (x >= 0 && y >= 0)
					s->pattern[(size_t)y * (size_t)w + (size_t)x] = 165;
	}
}

struct sim *sim_new(const struct sim_config *c, char *err, size_t errlen)
{
	struct sim *s = xcalloc(1, sizeof *s);
	s->cfg = *c;
	if (c->diameter_mm <= 0 || c->pitch_um[0] <= 0 || c->pitch_um[1] <= 0 || c->die_px < 8) {
		snprintf(err, errlen, "bad geometry");
		free(s);
		return NULL;
	}
	layout(s);
	if (s->ndies == 0) {
		snprintf(err, errlen, "no whole die of %gx%g um fits a %g mm wafer with %g mm edge exclusion",
			 c->pitch_um[0], c->pitch_um[1], c->diameter_mm, c->edge_mm);
		sim_free(s);
		return NULL;
	}
	s->die_w = c->die_px;
	s->die_h = (int)lround(c->die_px * c->pitch_um[1] / c->pitch_um[0]);
	if (s->die_h < 8)
		s->die_h = 8;
	s->pixel_um = c->pitch_um[0] / c->die_px;
	make_pattern(s);
	return s;
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	free_all(s->dies, s->feat, s->first, s->pattern, s);
}

/* ------------------------------------------------------------ defects */

struct plan {
	struct sim *s;
	int *grid;               /* cols*rows: die index or -1 */
	struct sim_feature *f;
	size_t n, cap;
};

static struct sim_feature *feat_add(struct plan *p)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 64;
		p->f = xrealloc(p->f, p->cap * sizeof *p->f);
	}
	memset(&p->f[p->n], 0, sizeof p->f[0]);
	return &p->f[p->n++];
}

/* Die index and pixel position of wafer point (wx, wy) µm; -1 off the dies. */
static int locate(const struct plan *p, double wx, double wy, double *xp, double *yp)
{
	const struct sim *s = p->s;
	int c = (int)floor((wx - s->origin_um[0]) / s->cfg.pitch_um[0]);
	int r = (int)floor((wy - s->origin_um[1]) / s->cfg.pitch_um[1]);
	double lx, ly;
	if (c < 0 || r < 0 || c >= s->cols || r >= s->rows || p->grid[r * s->cols + c] < 0)
		return -1;
	lx = wx - (s->origin_um[0] + c * s->cfg.pitch_um[0]);
	ly = wy - (s->origin_um[1] + r * s->cfg.pitch_um[1]);
	*xp = lx / s->pixel_um;
	*yp = s->die_h - ly / s->pixel_um; /* image rows run down, the wafer's y up */
	return p->grid[r * s->cols + c];
}

/* A particle of random size, contrast and polarity at a pixel of a die. */
static void particle(struct plan *p, struct rng *r, int die, double x, double y, int sig)
{
	static const double diam[] = {3, 3, 4, 4, 5, 6, 8, 10, 14};
	struct sim_feature *f;
	const struct sim *s = p->s;
	double d = diam[rnext(r) % (sizeof diam / sizeof diam[0])];
	double rad = d / 2, sigma = s->cfg.noise > 0.5 ? s->cfg.noise : 0.5;
	double c = sigma * (4.0 + runif(r) * 12.0);
	int bright = rnext(r) & 1;
	/* Keep the whole particle inside its die. */
	x = fmin(fmax(x, rad + 1), s->die_w - rad - 1);
	y = fmin(fmax(y, rad + 1), s->die_h - rad - 1);
	f = feat_add(p);
	f->die = die;
	f->kind = 0;
	f->x = (float)x;
	f->y = (float)y;
	f->r = (float)rad;
	f->contrast = (float)(bright ? c : -c);
	f->sig = sig;
}

static void particle_at(struct plan *p, struct rng *r, double wx, double wy, int sig)
{
	double x, y;
	int die = locate(p, wx, wy, &x, &y);
	if (die >= 0)
		particle(p, r, die, x, y, sig);
}

/* A scratch: a thin line across dies, one feature per die it crosses. */
static void scratch(struct plan *p, struct rng *r)
{
	const struct sim *s = p->s;
	double R = usable_r(s);
	double a = runif(r) * 2 * M_PI, rr = runif(r) * 0.4 * R;
	double cx = rr * cos(a), cy = rr * sin(a);
	double th = runif(r) * M_PI, len = (0.3 + 0.3 * runif(r)) * 2 * R;
	double x0 = cx - cos(th) * len / 2, y0 = cy - sin(th) * len / 2;
	double step = s->pixel_um * 0.5, sigma = s->cfg.noise > 0.5 ? s->cfg.noise : 0.5;
	double contrast = sigma * (8.0 + runif(r) * 6.0) * ((rnext(r) & 1) ? 1 : -1);
	int n = (int)(len / step), cur = -1;
	struct sim_feature *f = NULL;
	for (int i = 0; i <= n; i++) {
		double wx = x0 + cos(th) * i * step, wy = y0 + sin(th) * i * step, x, y;
		int die = locate(p, wx, wy, &x, &y);
		/* Stay a pixel inside the die so the line never touches its edge. */
		if (die >= 0 && (x < 1.5 || y < 1.5 || x > s->die_w - 1.5 || y > s->die_h - 1.5))
			die = -1;
		if (die != cur) {
			if (f && hypot(f->x2 - f->x, f->y2 - f->y) < 3)
				p->n--; /* too short to see: drop it */
			f = NULL;
			cur = die;
			if (die >= 0) {
				f = feat_add(p);
				f->die = die;
				f->kind = 1;
				f->x = f->x2 = (float)x;
				f->y = f->y2 = (float)y;
				f->r = 1.0f;
				f->contrast = (float)contrast;
				f->sig = SIM_SIG_SCRATCH;
			}
		} else if (f) {
			f->x2 = (float)x;
			f->y2 = (float)y;
		}
	}
	if (f && hypot(f->x2 - f->x, f->y2 - f->y) < 3)
		p->n--;
}

static int cmp_feat(const void *a, const void *b)
{
	const struct sim_feature *x = a, *y = b;
	int c = CMP(x->die, y->die);
	/* Stable order inside a die: by position. */
	if (!c)
		c = CMP(x->y, y->y);
	return c ? c : CMP(x->x, y->x);
}

void sim_wafer_begin(struct sim *s, int wafer)
{
	struct plan p = {.s = s};
	struct rng r = rseed(s->cfg.seed, P_WAFER, (uint64_t)wafer, 0);
	double R = usable_r(s);

	s->wafer = wafer;
	s->sig = s->cfg.signature == SIM_SIG_CYCLE ? (enum sim_signature)((wafer - 1) % SIM_SIG__COUNT)
						   : (enum sim_signature)s->cfg.signature;
	p.grid = xmalloc((size_t)s->cols * (size_t)s->rows * sizeof *p.grid);
	for (int i = 0; i < s->cols * s->rows; i++)
		p.grid[i] = -1;
	for (int i = 0; i < s->ndies; i++)
		p.grid[s->dies[i][1] * s->cols + s->dies[i][0]] = i;

	/* Random particles everywhere, whatever the signature. */
	for (int i = 0; i < s->ndies; i++) {
		struct rng dr = rseed(s->cfg.seed, P_DIE, (uint64_t)wafer, (uint64_t)i);
		int k = rpois(&dr, s->cfg.defect_rate);
		for (int j = 0; j < k; j++)
			particle(&p, &dr, i, runif(&dr) * s->die_w, runif(&dr) * s->die_h, SIM_SIG_RANDOM);
	}
	switch (s->sig) {
	case SIM_SIG_CLUSTER: {
		double a = runif(&r) * 2 * M_PI, rr = sqrt(runif(&r)) * 0.6 * R;
		double cx = rr * cos(a), cy = rr * sin(a), spread = 0.05 * R;
		int k = 25 + (int)(runif(&r) * 20);
		for (int j = 0; j < k; j++)
			particle_at(&p, &r, cx + rnorm(&r) * spread, cy + rnorm(&r) * spread, SIM_SIG_CLUSTER);
		break;
	}
	case SIM_SIG_SCRATCH:
		scratch(&p, &r);
		break;
	case SIM_SIG_EDGE_RING:
	case SIM_SIG_CENTER:
		for (int i = 0; i < s->ndies; i++) {
			double dcx = s->origin_um[0] + (s->dies[i][0] + 0.5) * s->cfg.pitch_um[0];
			double dcy = s->origin_um[1] + (s->dies[i][1] + 0.5) * s->cfg.pitch_um[1];
			double d = hypot(dcx, dcy);
			int in = s->sig == SIM_SIG_EDGE_RING ? d > R - 1.5 * s->cfg.pitch_um[0] : d < 0.2 * R;
			if (!in)
				continue;
			struct rng dr = rseed(s->cfg.seed, P_DIE + 100, (uint64_t)wafer, (uint64_t)i);
			int k = rpois(&dr, 1.5);
			for (int j = 0; j < k; j++)
				particle(&p, &dr, i, runif(&dr) * s->die_w, runif(&dr) * s->die_h, s->sig);
		}
		break;
	default:
		break;
	}
	if (p.n)
		qsort(p.f, p.n, sizeof *p.f, cmp_feat);
	free(s->feat);
	s->feat = p.f;
	s->nfeat = p.n;
	free(s->first);
	s->first = xmalloc(((size_t)s->ndies + 1) * sizeof *s->first);
	for (int i = 0, j = 0; i <= s->ndies; i++) {
		while ((size_t)j < p.n && s->feat[j].die < i)
			j++;
		s->first[i] = (size_t)j;
	}
	free(p.grid);
}

/* ------------------------------------------------------------- render */

static double seg_dist2(double px, double py, const struct sim_feature *f)
{
	double vx = f->x2 - f->x, vy = f->y2 - f->y, wx = px - f->x, wy = py - f->y;
	double l2 = vx * vx + vy * vy, t = l2 > 0 ? (wx * vx + wy * vy) / l2 : 0;
	t = t < 0 ? 0 : t > 1 ? 1 : t;
	wx = px - (f->x + t * vx);
	wy = py - (f->y + t * vy);
	return wx * wx + wy * wy;
}

static void truth_add(const struct sim *s, int idx, const struct sim_feature *f, int x0, int y0,
		      int x1, int y1, int npx, json_t *truth)
{
	char wid[16];
	double cx = f->kind ? (f->x + f->x2) / 2 : f->x, cy = f->kind ? (f->y + f->y2) / 2 : f->y;
	double xu = cx * s->pixel_um, yu = (s->die_h - cy) * s->pixel_um;
	int col = s->dies[idx][0], row = s->dies[idx][1];
	json_t *o = json_object();
	sim_wafer_id(s->wafer, wid);
	json_object_set_new(o, "wafer", json_string(wid));
	json_object_set_new(o, "slot", json_integer(s->wafer));
	json_object_set_new(o, "col", json_integer(col));
	json_object_set_new(o, "row", json_integer(row));
	json_object_set_new(o, "kind", json_string(f->kind ? "scratch" : "particle"));
	json_object_set_new(o, "signature", json_string(sim_signature_name(f->sig)));
	json_object_set_new(o, "polarity", json_string(f->contrast > 0 ? "bright" : "dark"));
	json_object_set_new(o, "contrast", json_real(round(fabs(f->contrast) * 100) / 100));
	json_object_set_new(o, "x_px", json_real(round(cx * 100) / 100));
	json_object_set_new(o, "y_px", json_real(round(cy * 100) / 100));
	json_object_set_new(o, "size_px", json_real(f->kind ? round(hypot(f->x2 - f->x, f->y2 - f->y) * 100) / 100
							    : 2.0 * f->r));
	json_object_set_new(o, "area_px", json_integer(npx));
	json_object_set_new(o, "bbox", json_pack("[iiii]", x0, y0, x1, y1));
	json_object_set_new(o, "x_um", json_real(round(xu * 1000) / 1000));
	json_object_set_new(o, "y_um", json_real(round(yu * 1000) / 1000));
	json_object_set_new(o, "wx_um", json_real(round((s->origin_um[0] + col * s->cfg.pitch_um[0] + xu) * 1000) / 1000));
	json_object_set_new(o, "wy_um", json_real(round((s->origin_um[1] + row * s->cfg.pitch_um[1] + yu) * 1000) / 1000));
	json_array_append_new(truth, o);
}

void sim_render(struct sim *s, int idx, unsigned char *px, json_t *truth)
{
	static const int shift[] = {-2, -1, -1, 0, 0, 0, 1, 1, 2};
	struct rng r = rseed(s->cfg.seed, P_NOISE, (uint64_t)s->wafer, (uint64_t)idx);
	int w = s->die_w, h = s->die_h;
	int dx = shift[rnext(&r) % 9], dy = shift[rnext(&r) % 9];
	double R = usable_r(s);
	double dcx = s->origin_um[0] + (s->dies[idx][0] + 0.5) * s->cfg.pitch_um[0];
	double dcy = s->origin_um[1] + (s->dies[idx][1] + 0.5) * s->cfg.pitch_um[1];
	/* Brightness drift: a slow tilt across the wafer and a per-wafer offset. */
	double gain = 1.0 + 0.02 * dcx / R;
	double offset = 3.0 * dcy / R + ((s->wafer * 37) % 7 - 3) * 0.7;
	/* Irwin-Hall: four bytes summed have mean 510 and σ 147.8. */
	double nscale = s->cfg.noise / 147.80;
	uint64_t bits = 0;
	int nb = 0;

	for (int y = 0; y < h; y++) {
		const unsigned char *prow = s->pattern + (size_t)((y + dy + h) % h) * (size_t)w;
		unsigned char *out = px + (size_t)y * (size_t)w;
		for (int x = 0; x < w; x++) {
			double v = gain * prow[(x + dx + w) % w] + offset;
			int sum;
			if (nb == 0) {
				bits = rnext(&r);
				nb = 2;
			}
			sum = (int)(bits & 0xff) + (int)((bits >> 8) & 0xff) + (int)((bits >> 16) & 0xff) +
			      (int)((bits >> 24) & 0xff);
			bits >>= 32;
			nb--;
			v += (sum - 510) * nscale;
			out[x] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
		}
	}
	for (size_t i = s->first[idx]; i < s->first[idx + 1]; i++) {
		const struct sim_feature *f = &s->feat[i];
		double m = f->r + 1.5;
		int x0 = (int)floor(fmin(f->x, f->x2) - m), x1 = (int)ceil(fmax(f->x, f->x2) + m);
		int y0 = (int)floor(fmin(f->y, f->y2) - m), y1 = (int)ceil(fmax(f->y, f->y2) + m);
		int bx0 = w, by0 = h, bx1 = -1, by1 = -1, npx = 0;
		for (int y = y0 < 0 ? 0 : y0; y <= y1 && y < h; y++)
			for (int x = x0 < 0 ? 0 : x0; x <= x1 && x < w; x++) {
				double cx = x + 0.5, cy = y + 0.5, d2;
				int v;
				d2 = f->kind ? seg_dist2(cx, cy, f) : (cx - f->x) * (cx - f->x) + (cy - f->y) * (cy - f->y);
				if (d2 > (double)f->r * f->r)
					continue;
				v = px[(size_t)y * (size_t)w + (size_t)x] + (int)lround(f->contrast);
				px[(size_t)y * (size_t)w + (size_t)x] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
				npx++;
				if (x < bx0) bx0 = x;
				if (y < by0) by0 = y;
				if (x > bx1) bx1 = x;
				if (y > by1) by1 = y;
			}
		if (truth && npx)
			truth_add(s, idx, f, bx0, by0, bx1, by1, npx, truth);
	}
}

/* detect.c: see detect.h. */
#include "util.h"
#include "event.h"
#include "detect.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

void detect_params_default(struct detect_params *p)
{
	p->k = 3.5;
	p->hysteresis = 0.4;
	p->core = 0.6;
	p->min_area = 3;
	p->blob_k = 1.25;
	p->max_shift = 5;
	p->bin_small_px = 4.0;
	p->bin_large_px = 8.0;
	p->scratch_elong = 3.0;
	p->scratch_len_px = 8.0;
	p->max_blobs = 1000;
}

static int num_at(const json_t *v, double *out)
{
	if (!json_is_number(v))
		return -1;
	*out = json_number_value(v);
	return isfinite(*out) ? 0 : -1;
}

static int pair_at(const json_t *ev, const char *key, double out[2])
{
	json_t *a = json_object_get(ev, key);
	if (!json_is_array(a) || json_array_size(a) != 2)
		return -1;
	return (num_at(json_array_get(a, 0), &out[0]) < 0 || num_at(json_array_get(a, 1), &out[1]) < 0) ? -1 : 0;
}

int detect_geom_from_run_start(const json_t *ev, struct detect_geom *g, char *msg, size_t msglen)
{
	double px[2], v;
	memset(g, 0, sizeof *g);
	if (pair_at(ev, "pitch_um", g->pitch_um) < 0 || g->pitch_um[0] <= 0 || g->pitch_um[1] <= 0) {
		snprintf(msg, msglen, "run_start has no valid pitch_um [x,y]");
		return -1;
	}
	if (pair_at(ev, "origin_um", g->origin_um) < 0) {
		snprintf(msg, msglen, "run_start has no valid origin_um [x,y]");
		return -1;
	}
	if (pair_at(ev, "die_px", px) < 0 || px[0] < 1 || px[1] < 1 || px[0] > IMAGE_MAX_SIDE ||
	    px[1] > IMAGE_MAX_SIDE) {
		snprintf(msg, msglen, "run_start has no valid die_px [w,h]");
		return -1;
	}
	g->die_w = (int)px[0];
	g->die_h = (int)px[1];
	if (num_at(json_object_get(ev, "pixel_um"), &g->pixel_um) < 0 || g->pixel_um <= 0) {
		snprintf(msg, msglen, "run_start has no valid pixel_um");
		return -1;
	}
	if (num_at(json_object_get(ev, "diameter_mm"), &g->diameter_mm) < 0 || g->diameter_mm <= 0)
		g->diameter_mm = 300;
	if (num_at(json_object_get(ev, "edge_mm"), &g->edge_mm) < 0 || g->edge_mm < 0)
		g->edge_mm = 0;
	if (num_at(json_object_get(ev, "cols"), &v) == 0)
		g->cols = (long)v;
	if (num_at(json_object_get(ev, "rows"), &v) == 0)
		g->rows = (long)v;
	return 0;
}

/* The valid rectangle of t where reference pixels shifted by (dx,dy) exist. */
struct rect {
	int x0, y0, x1, y1; /* half-open */
};

static void rect_for_shift(int w, int h, int dx, int dy, struct rect *r)
{
	r->x0 = dx < 0 ? -dx : 0;
	r->y0 = dy < 0 ? -dy : 0;
	r->x1 = dx > 0 ? w - dx : w;
	r->y1 = dy > 0 ? h - dy : h;
}

/*
 * The sum of absolute differences of two ny x nx blocks (rows 'as' and
 * 'bs' bytes apart), or something above limit once it passes it (checked
 * per row).  Unit stride, so that the compiler vectorises it.
 */
static uint64_t sad_block(const uint8_t *a, size_t as, const uint8_t *b, size_t bs, int nx, int ny,
			  uint64_t limit)
{
	uint64_t sad = 0;
	for (int j = 0; j < ny && sad <= limit; j++) {
		const uint8_t *ap = a + (size_t)j * as, *bp = b + (size_t)j * bs;
		unsigned row = 0;
		for (int i = 0; i < nx; i++)
			row += (unsigned)abs((int)ap[i] - (int)bp[i]);
		sad += row;
	}
	return sad;
}

/*
 * The SAD of shift (dx,dy) over t's interior [s, w-s) x [s, h-s) on
 * every step-th pixel (step 1 or 2), or something above limit once it
 * passes it.
 */
static uint64_t sad_at(const struct image *t, const struct image *r, int s, int dx, int dy, int step,
		       uint64_t limit)
{
	int w = t->w, h = t->h, nx = w - 2 * s, ny = (h - 2 * s + step - 1) / step;
	const uint8_t *a = t->px + (size_t)s * w + s, *b = r->px + (size_t)(s + dy) * w + s + dx;
	uint64_t sad = 0;
	if (step == 1)
		return sad_block(a, (size_t)w, b, (size_t)w, nx, ny, limit);
	/* Every second pixel of every second row. */
	for (int j = 0; j < ny && sad <= limit; j++) {
		const uint8_t *ap = a + (size_t)j * 2 * w, *bp = b + (size_t)j * 2 * w;
		unsigned row = 0;
		for (int i = 0; i < nx; i += 2)
			row += (unsigned)abs((int)ap[i] - (int)bp[i]);
		sad += row;
	}
	return sad;
}

/*
 * The shift in [-s, s] that best matches two profiles (sums of an
 * image's rows or columns): the least sum of absolute differences of
 * a[i] and b[i + d] over i in [s, n - s); ties go to the smaller |d|.
 */
static int align_profile(const uint32_t *a, const uint32_t *b, int n, int s)
{
	uint64_t best = UINT64_MAX;
	int bd = 0;
	for (int k = 0; k <= 2 * s; k++) {
		/* 0, -1, 1, -2, 2, ...: the first of equals is the smallest. */
		int d = k % 2 ? -(k + 1) / 2 : k / 2;
		uint64_t sad = 0;
		for (int i = s; i < n - s && sad < best; i++)
			sad += a[i] > b[i + d] ? a[i] - b[i + d] : b[i + d] - a[i];
		if (sad < best) {
			best = sad;
			bd = d;
		}
	}
	return bd;
}

/* col[x]: the sum of column x over rows [s, h-s); row[y]: of row y over columns [s, w-s). */
static void profiles(const struct image *im, int s, uint32_t *col, uint32_t *row)
{
	int w = im->w, h = im->h;
	memset(col, 0, (size_t)w * sizeof *col);
	for (int y = 0; y < h; y++) {
		const uint8_t *p = im->px + (size_t)y * w;
		uint32_t sum = 0;
		for (int x = s; x < w - s; x++)
			sum += p[x];
		row[y] = sum;
		if (y >= s && y < h - s)
			for (int x = 0; x < w; x++)
				col[x] += p[x];
	}
}

/*
 * The shift (dx,dy): ref(x+dx, y+dy) matches t(x, y) best, within
 * [-s, s]^2.  Its start: the shifts that match the two dies' column and
 * row profiles, which average the noise away and cost one pass over
 * each die whatever s is; then a descent on the interior's sum of
 * absolute differences (every pixel; every second on large dies) from
 * there to the 3x3 neighbourhood's best, so that the result is a local
 * minimum of the same measure a full search minimises.
 */
static void align(const struct image *t, const uint32_t *tprof, const struct image *r, int s, int *bdx, int *bdy)
{
	int w = t->w, h = t->h, step = (long)w * h > 262144 ? 2 : 1;
	uint32_t *pt = NULL, *pr;
	*bdx = *bdy = 0;
	if (w <= 2 * s + 2 || h <= 2 * s + 2)
		return;
	if (!tprof) {
		tprof = pt = xmalloc((size_t)(w + h) * sizeof *pt);
		profiles(t, s, pt, pt + w);
	}
	pr = xmalloc((size_t)(w + h) * sizeof *pr);
	profiles(r, s, pr, pr + w);
	*bdx = align_profile(tprof, pr, w, s);
	*bdy = align_profile(tprof + w, pr + w, h, s);
	free(pt);
	free(pr);
	for (int moves = 0; moves <= 2 * s; moves++) {
		int cx = *bdx, cy = *bdy;
		uint64_t best = sad_at(t, r, s, cx, cy, step, UINT64_MAX);
		for (int dy = cy - 1; dy <= cy + 1; dy++)
			for (int dx = cx - 1; dx <= cx + 1; dx++) {
				uint64_t sad;
				if (dx < -s || dx > s || dy < -s || dy > s || (dx == cx && dy == cy))
					continue;
				/* A cut SAD is worse than best: the bound changes nothing. */
				sad = sad_at(t, r, s, dx, dy, step, best);
				/* Ties go to the smallest shift, so a flat die stays put. */
				if (sad < best || (sad == best && abs(dx) + abs(dy) < abs(*bdx) + abs(*bdy))) {
					best = sad;
					*bdx = dx;
					*bdy = dy;
				}
			}
		if (*bdx == cx && *bdy == cy)
			break;
	}
}

/* How many pixels a first estimate of the noise takes (see robust_sigma). */
#define SIGMA_SAMPLES 2048.0

#define HBINS 4096
#define HSCALE 8.0 /* bins per grey level */
#define HIST_LO -256.0f /* the first bin's lower edge: differences of 8-bit pixels */
_Static_assert(HBINS - 1 <= INT16_MAX, "a bin's index fits in 16 bits");

/*
 * Medians by histogram: HBINS bins of 1/HSCALE grey level from HIST_LO up.
 * The values are gathered first, their bins computed in one vectorised
 * pass, then counted; the bins are all zero between uses (a median clears
 * the range it used), so that a die's many medians share one histogram.
 */
struct hist {
	uint32_t *bin;
	float *v;          /* the values of the current estimate */
	int16_t *idx;      /* their bins */
	size_t cap;
};

static void hist_init(struct hist *h)
{
	h->bin = xcalloc(HBINS, sizeof *h->bin);
	h->v = NULL;
	h->idx = NULL;
	h->cap = 0;
}

static void hist_release(struct hist *h)
{
	free(h->bin);
	free(h->v);
	free(h->idx);
}

/* Room for n values in h->v. */
static float *hist_values(struct hist *h, size_t n)
{
	if (n > h->cap) {
		h->cap = n;
		h->v = xrealloc(h->v, n * sizeof *h->v);
		h->idx = xrealloc(h->idx, n * sizeof *h->idx);
	}
	return h->v;
}

/*
 * The median of h->v[0..n-1] (the centre of its bin) and, returned,
 * their median absolute deviation from it: the distance in bins around
 * the median's bin within which half of the values lie.  One histogram
 * serves both; it is left all zero.
 */
static double hist_median_mad(struct hist *h, size_t n, double *med)
{
	const float *v = h->v;
	int16_t first = HBINS - 1, last = 0;
	int32_t mb, j = 0;
	uint64_t want = (n + 1) / 2, seen = 0;
	*med = 0;
	if (!n)
		return 0;
	/* The values are differences of 8-bit pixels under a gain of at most
	 * 2 (or their means): |v| < 1024, and the conversion is in range. */
	for (size_t k = 0; k < n; k++) {
		int32_t b = (int32_t)((v[k] - HIST_LO) * (float)HSCALE);
		b = b > 0 ? b : 0;
		h->idx[k] = (int16_t)(b < HBINS - 1 ? b : HBINS - 1);
	}
	/* Bins in 16 bits, so that this vectorises too. */
	for (size_t k = 0; k < n; k++) {
		first = h->idx[k] < first ? h->idx[k] : first;
		last = h->idx[k] > last ? h->idx[k] : last;
	}
	for (size_t k = 0; k < n; k++)
		h->bin[h->idx[k]]++;
	for (mb = first; mb < last; mb++) {
		seen += h->bin[mb];
		if (seen >= want)
			break;
	}
	*med = HIST_LO + ((double)mb + 0.5) / HSCALE;
	/* Widen a window around the median's bin until it holds half. */
	for (seen = h->bin[mb]; seen < want;) {
		j++;
		seen += (mb - j >= first ? h->bin[mb - j] : 0) + (mb + j <= last ? h->bin[mb + j] : 0);
	}
	memset(h->bin + first, 0, (size_t)(last - first + 1) * sizeof *h->bin);
	return (j + 0.5) / HSCALE;
}

/*
 * A first estimate of the noise, from the median and MAD, only has to be
 * near: it sets the window of the refinement (or the fit's 3 sigma), so
 * it takes a sample: of every step-th row of the rectangle, a run of a
 * step-th of its width, the runs of successive rows taking turns across
 * it (unit stride, for the vectoriser, and spread over the whole die);
 * step is the least whose sample is at most SIGMA_SAMPLES pixels, so
 * between about SIGMA_SAMPLES / 4 and SIGMA_SAMPLES of them (all of a
 * small die's), whatever the die's size.  Fewer cost accuracy at low
 * noise on large dies (scripts/accuracy --noise 1.5 --die-px 256
 * --diameter 100); whole rows, fewer of them, did too.
 */
static int sample_step(const struct rect *r)
{
	double area = (double)(r->x1 - r->x0) * (r->y1 - r->y0);
	int k = (int)ceil(sqrt(area / SIGMA_SAMPLES));
	return k < 1 ? 1 : k;
}

/* The j-th sampled row's run (see sample_step): its offset into a row of nx, and *len. */
static int sample_run(int nx, int step, int j, int *len)
{
	int seg = nx / step > 0 ? nx / step : 1;
	*len = seg < nx ? seg : nx;
	return (j % step) * seg + *len <= nx ? (j % step) * seg : 0;
}

/* 1.4826 * the MAD of the n values gathered in hi (at least the floor); *med their median. */
static double mad_sigma(struct hist *hi, size_t n, double *med)
{
	double mad = hist_median_mad(hi, n, med) * 1.4826;
	return mad < DETECT_SIGMA_FLOOR ? DETECT_SIGMA_FLOOR : mad;
}

/* Sums over the values within a window, for a clipped mean and deviation. */
struct clip_sums {
	double s1, s2, m;
};

/*
 * Add the n values v[0..n-1] that lie within lim of c to cs.  Branch-free,
 * in float, for the vectoriser; so that float's precision holds, n is a
 * row or a sample, not a whole image.
 */
static void clip_add(const float *v, int n, float c, float lim, struct clip_sums *cs)
{
	float r1 = 0, r2 = 0, rm = 0;
	for (int x = 0; x < n; x++) {
		float a = v[x] - c, in = fabsf(a) <= lim ? 1.0f : 0.0f;
		a *= in;
		r1 += a;
		r2 += a * a;
		rm += in;
	}
	cs->s1 += r1;
	cs->s2 += r2;
	cs->m += rm;
}

/*
 * The mean and standard deviation of the values cs holds, the deviation
 * corrected for a clipping at 3.5 sigma (x 1/0.99694) and at least the
 * floor.  0, or -1 (nothing changed) when fewer than half of the 'total'
 * values looked at were within the window.
 */
static int clip_update(const struct clip_sums *cs, double total, double *med, double *mad)
{
	double m = cs->m;
	if (m < total / 2 || m < 1)
		return -1;
	*med += cs->s1 / m;
	*mad = sqrt(fmax(cs->s2 / m - (cs->s1 / m) * (cs->s1 / m), 0)) / 0.99694;
	if (*mad < DETECT_SIGMA_FLOOR)
		*mad = DETECT_SIGMA_FLOOR;
	return 0;
}

/*
 * The noise of d over the rectangle: 1.4826 * its MAD, refined into the
 * clipped standard deviation below.  *median (unless NULL): the centre.
 */
static double robust_sigma(struct hist *hi, const float *d, int w, const struct rect *r, double *median)
{
	double med, mad, area = (double)(r->x1 - r->x0) * (r->y1 - r->y0);
	int step = sample_step(r);
	size_t n = 0;
	struct clip_sums cs = {0, 0, 0};
	if (median)
		*median = 0;
	if (area <= 0)
		return DETECT_SIGMA_FLOOR;
	{
		int nx = r->x1 - r->x0, ny = (r->y1 - r->y0 + step - 1) / step, len;
		float *v = hist_values(hi, (size_t)nx * ny);
		for (int y = r->y0, j = 0; y < r->y1; y += step, j++, n += (size_t)len) {
			int x0 = sample_run(nx, step, j, &len);
			memcpy(v + n, d + (size_t)y * w + r->x0 + x0, (size_t)len * sizeof *v);
		}
		mad = mad_sigma(hi, n, &med);
	}
	/*
	 * The MAD of near-integer differences is quantised (a die with noise
	 * 1.5 gives 1.58 or 1.76 for a true 2.12): refine it into the
	 * standard deviation of the values within 3.5 sigma of the mean,
	 * twice: on the sample the MAD came from, then on every pixel (a
	 * sample of rows is not enough: on one die of the tests every second
	 * row gave 3 % less, and a false defect).
	 */
	clip_add(hi->v, (int)n, (float)med, (float)(3.5 * mad), &cs);
	if (clip_update(&cs, (double)n, &med, &mad) == 0) {
		double looked = 0;
		cs = (struct clip_sums){0, 0, 0};
		for (int y = r->y0; y < r->y1; y++) {
			clip_add(d + (size_t)y * w + r->x0, r->x1 - r->x0, (float)med, (float)(3.5 * mad), &cs);
			looked += r->x1 - r->x0;
		}
		clip_update(&cs, looked, &med, &mad);
	}
	if (median)
		*median = med;
	return mad;
}

/*
 * The pixels of t over rect r and of ref shifted by (dx,dy) under them,
 * row after row in two flat arrays of n bytes each, so that the fit's
 * sums run as long loops (a die's rows are short).
 */
struct pairs {
	uint8_t *t, *r;
	size_t n;
};

static void pairs_init(struct pairs *pp, const struct image *t, const struct image *ref, int dx, int dy,
		       const struct rect *r)
{
	int w = t->w, nx = r->x1 - r->x0;
	size_t k = 0;
	pp->n = (size_t)nx * (size_t)(r->y1 - r->y0);
	pp->t = xmalloc(2 * pp->n + 1);
	pp->r = pp->t + pp->n;
	for (int y = r->y0; y < r->y1; y++, k += (size_t)nx) {
		memcpy(pp->t + k, t->px + (size_t)y * w + r->x0, (size_t)nx);
		memcpy(pp->r + k, ref->px + (size_t)(y + dy) * w + r->x0 + dx, (size_t)nx);
	}
}

/* Sums of 8-bit pixel values for a fit: exact in integers. */
struct fit_sums {
	uint64_t st, sr, srr, srt, stt, cnt;
};

/* Pixels per pass of the sums' inner loop: its 32-bit sums of squares of bytes cannot overflow. */
#define FIT_CHUNK 4096
_Static_assert((uint64_t)FIT_CHUNK * 255 * 255 <= UINT32_MAX, "fit's 32-bit sums hold a chunk");

/* The sums over every pair. */
static void fit_sums_all(const struct pairs *pp, struct fit_sums *fs)
{
	memset(fs, 0, sizeof *fs);
	for (size_t c0 = 0; c0 < pp->n; c0 += FIT_CHUNK) {
		const uint8_t *tp = pp->t + c0, *rp = pp->r + c0;
		int cn = (int)(pp->n - c0 < FIT_CHUNK ? pp->n - c0 : FIT_CHUNK);
		uint32_t rt = 0, rr = 0, rrr = 0, rrt = 0, rtt = 0;
		/* Products in 16 bits (255 * 255 fits), sums in 32: this vectorises. */
		for (int x = 0; x < cn; x++) {
			uint16_t a = rp[x], b = tp[x];
			rt += b;
			rr += a;
			rrr += (uint16_t)(a * a);
			rrt += (uint16_t)(a * b);
			rtt += (uint16_t)(b * b);
		}
		fs->st += rt;
		fs->sr += rr;
		fs->srr += rrr;
		fs->srt += rrt;
		fs->stt += rtt;
		fs->cnt += (uint64_t)cn;
	}
}

/*
 * The sums over the pairs whose difference t - (g * r + o) is within lim:
 * those over every pair ('all') less the few beyond, found a block of 64
 * pairs at a time (most blocks have none).
 */
static void fit_sums_within(const struct pairs *pp, const struct fit_sums *all, float g, float o, float lim,
			    struct fit_sums *fs)
{
	enum { BLOCK = 64 };
	uint16_t keep[BLOCK];
	*fs = *all;
	for (size_t b0 = 0; b0 < pp->n; b0 += BLOCK) {
		const uint8_t *tp = pp->t + b0, *rp = pp->r + b0;
		int bn = (int)(pp->n - b0 < BLOCK ? pp->n - b0 : BLOCK);
		uint16_t kept = 0xffff;
		for (int x = 0; x < bn; x++) {
			keep[x] = fabsf((float)tp[x] - (g * (float)rp[x] + o)) <= lim ? 0xffff : 0;
			kept &= keep[x];
		}
		if (kept)
			continue;
		for (int x = 0; x < bn; x++) {
			uint64_t a = rp[x], b = tp[x];
			if (keep[x])
				continue;
			fs->st -= b;
			fs->sr -= a;
			fs->srr -= a * a;
			fs->srt -= a * b;
			fs->stt -= b * b;
			fs->cnt--;
		}
	}
}

/*
 * Gain and offset of the reference against t from the sums.  The gain
 * is the ratio of the standard deviations (sign of the covariance): both
 * dies carry the same noise, and a least-squares slope would shrink
 * towards 0 by the noise's share of the variance (0.86 at noise 10 on the
 * simulator's layout), leaving the layout in the difference.
 */
static void fit_solve(const struct fit_sums *fs, double *gain, double *off)
{
	double n, var, vart, cov;
	*gain = 1.0;
	if (fs->cnt < 1) {
		*off = 0;
		return;
	}
	n = (double)fs->cnt;
	var = (double)fs->srr / n - ((double)fs->sr / n) * ((double)fs->sr / n);
	vart = (double)fs->stt / n - ((double)fs->st / n) * ((double)fs->st / n);
	cov = (double)fs->srt / n - ((double)fs->sr / n) * ((double)fs->st / n);
	if (var > 1.0 && vart > 1.0 && cov > 0) {
		*gain = sqrt(vart / var);
		if (*gain < 0.5 || *gain > 2.0)
			*gain = 1.0;
	}
	*off = (double)fs->st / n - *gain * ((double)fs->sr / n);
}

/* The noise of t - (gain * ref(shifted) + off) over r, by its MAD on the sample rows. */
static double fit_noise(struct hist *hi, const struct pairs *pp, const struct rect *r, double gain, double off,
			double *med)
{
	int step = sample_step(r), nx = r->x1 - r->x0, ny = (r->y1 - r->y0 + step - 1) / step, len;
	float *v = hist_values(hi, (size_t)nx * ny), g = (float)gain, o = (float)off;
	size_t n = 0;
	for (int y = 0, j = 0; y < r->y1 - r->y0; y += step, j++, n += (size_t)len) {
		int x0 = sample_run(nx, step, j, &len);
		const uint8_t *tp = pp->t + (size_t)y * nx + x0, *rp = pp->r + (size_t)y * nx + x0;
		for (int i = 0; i < len; i++)
			v[n + i] = (float)tp[i] - (g * (float)rp[i] + o);
	}
	return mad_sigma(hi, n, med);
}

/* d = t - (gain * ref(shifted) + off) over r. */
static void apply(const struct image *t, const struct image *ref, int dx, int dy, const struct rect *r,
		  double gain, double off, float *d)
{
	int w = t->w;
	float g = (float)gain, o = (float)off;
	for (int y = r->y0; y < r->y1; y++) {
		const uint8_t *tp = t->px + (size_t)y * w;
		const uint8_t *rp = ref->px + (size_t)(y + dy) * w + dx;
		float *dp = d + (size_t)y * w;
		for (int x = r->x0; x < r->x1; x++)
			dp[x] = (float)tp[x] - (g * (float)rp[x] + o);
	}
}

/*
 * The pixels of the w x h die outside rect r (the border a shift leaves
 * without a counterpart), as indices: at most w * h - area of them.
 */
static size_t border_of(int w, int h, const struct rect *r, size_t *idx)
{
	size_t n = 0;
	for (int y = 0; y < h; y++) {
		int inside = y >= r->y0 && y < r->y1;
		for (int x = 0; x < w; x++) {
			if (inside && x == r->x0) {
				x = r->x1 - 1;
				continue;
			}
			idx[n++] = (size_t)y * w + x;
		}
	}
	return n;
}

/*
 * d = t - (gain * ref(shifted) + offset) over rect r; the rest of d is 0.
 * Returns 1 when the die's content wraps around (the border pixels that
 * the shift leaves without a counterpart match the reference's opposite
 * edge as well as the interior matches): d is then valid everywhere.
 * A real die does not wrap and keeps its border uninspected; a
 * synthetic die that does loses nothing to misregistration.
 */
static int difference(struct hist *hi, const struct image *t, const struct image *ref, int dx, int dy,
		      const struct rect *r, float *d, double *sigma)
{
	int w = t->w, h = t->h;
	size_t *bidx, nb;
	double gain, off, med, sig, bmed, bsig;
	struct pairs pp;
	struct fit_sums all, within;
	/* A first fit on every pixel, then on those within 3 sigma of it, so
	 * that defects do not bend the fit. */
	pairs_init(&pp, t, ref, dx, dy, r);
	fit_sums_all(&pp, &all);
	fit_solve(&all, &gain, &off);
	sig = fit_noise(hi, &pp, r, gain, off, &med);
	fit_sums_within(&pp, &all, (float)gain, (float)(off + med), (float)(3 * sig), &within);
	fit_solve(&within, &gain, &off);
	free(pp.t);
	apply(t, ref, dx, dy, r, gain, off, d);
	if (r->x0 == 0 && r->y0 == 0 && r->x1 == w && r->y1 == h)
		return 1;
	*sigma = sig = robust_sigma(hi, d, w, r, &med);
	bidx = xmalloc(((size_t)w * h - (size_t)(r->x1 - r->x0) * (r->y1 - r->y0)) * sizeof *bidx);
	nb = border_of(w, h, r, bidx);
	for (size_t k = 0; k < nb; k++) {
		int x = (int)(bidx[k] % (size_t)w), y = (int)(bidx[k] / (size_t)w);
		d[bidx[k]] = (float)(t->px[bidx[k]] -
			(gain * ref->px[(size_t)((y + dy + h) % h) * w + (size_t)((x + dx + w) % w)] + off));
	}
	/* The border's own median and MAD, as robust_sigma starts with. */
	{
		float *v = hist_values(hi, nb);
		for (size_t k = 0; k < nb; k++)
			v[k] = d[bidx[k]];
		bsig = hist_median_mad(hi, nb, &bmed) * 1.4826;
	}
	if (!(fabs(bmed - med) <= sig && bsig <= 1.5 * sig))
		for (size_t k = 0; k < nb; k++)
			d[bidx[k]] = 0;
	free(bidx);
	return fabs(bmed - med) <= sig && bsig <= 1.5 * sig;
}

/*
 * out = the 3x3 mean of d over rect ri (whose 1-pixel border is in d's
 * rect): a row's sums of three down, then of three across.
 */
static void box3(const float *d, int w, const struct rect *ri, float *out)
{
	float *col = xmalloc((size_t)w * sizeof *col);
	for (int y = ri->y0; y < ri->y1; y++) {
		const float *p0 = d + (size_t)(y - 1) * w, *p1 = p0 + w, *p2 = p1 + w;
		float *op = out + (size_t)y * w;
		for (int x = ri->x0 - 1; x < ri->x1 + 1; x++)
			col[x] = p0[x] + p1[x] + p2[x];
		for (int x = ri->x0; x < ri->x1; x++)
			op[x] = (col[x - 1] + col[x] + col[x + 1]) * (1.0f / 9.0f);
	}
	free(col);
}

struct acc {
	long area;
	double sx, sy, sxx, syy, sxy, sc, sz;
	int x0, y0, x1, y1;
	int seed;
};

static void acc_init(struct acc *a, int w, int h)
{
	memset(a, 0, sizeof *a);
	a->x0 = w;
	a->y0 = h;
	a->x1 = a->y1 = -1;
}

static void acc_add(struct acc *a, int x, int y, double c, double z)
{
	a->area++;
	a->sx += x;
	a->sy += y;
	a->sxx += (double)x * x;
	a->syy += (double)y * y;
	a->sxy += (double)x * y;
	a->sc += c;
	a->sz += z;
	if (x < a->x0)
		a->x0 = x;
	if (x > a->x1)
		a->x1 = x;
	if (y < a->y0)
		a->y0 = y;
	if (y > a->y1)
		a->y1 = y;
}

static int blob_cmp_pos(const void *a, const void *b)
{
	const struct detect_blob *p = a, *q = b;
	int c = CMP(p->cy, q->cy);
	return c ? c : CMP(p->cx, q->cx);
}

static int blob_cmp_area(const void *a, const void *b)
{
	const struct detect_blob *p = a, *q = b;
	int c = CMP(q->area, p->area); /* the largest first */
	return c ? c : blob_cmp_pos(a, b);
}

static void blob_from_acc(const struct acc *a, double noise, struct detect_blob *b)
{
	double n = (double)a->area;
	double mx = a->sx / n, my = a->sy / n;
	double cxx = a->sxx / n - mx * mx + 1.0 / 12, cyy = a->syy / n - my * my + 1.0 / 12;
	double cxy = a->sxy / n - mx * my;
	double tr = cxx + cyy, det = cxx * cyy - cxy * cxy;
	double disc = sqrt(fmax(tr * tr / 4 - det, 0));
	double l1 = tr / 2 + disc, l2 = fmax(tr / 2 - disc, 1.0 / 12);
	double mean = a->sc / n;

	b->cx = mx;
	b->cy = my;
	b->x0 = a->x0;
	b->y0 = a->y0;
	b->x1 = a->x1;
	b->y1 = a->y1;
	b->area = a->area;
	b->contrast = fabs(mean);
	b->polarity = mean >= 0 ? 1 : -1;
	b->snr = noise > 0 ? b->contrast / noise : 0;
	b->elong = sqrt(l1 / l2);
	b->length_px = sqrt(12 * l1);
}

/*
 * Step 4, arbitration's quorum: how many of n references must agree (m =
 * n for n <= 2, else n - 1: one odd reference changes nothing; m > n/2,
 * so never both signs).
 */
static int quorum(int n)
{
	return n <= 2 ? n : n - 1;
}

/* a and b in ascending order. */
#define ORDER2(a, b)                                 \
	do {                                         \
		float lo_ = (a) < (b) ? (a) : (b);   \
		float hi_ = (a) < (b) ? (b) : (a);   \
		(a) = lo_;                           \
		(b) = hi_;                           \
	} while (0)

/*
 * Arbitration over one row (an offset into the images) from x0 to x1,
 * for n references (a constant where inlined): with the scores z_i =
 * v[i] * inv[i], up[x] is the largest score that m = quorum(n) of them
 * reach or exceed (the m-th largest) and down[x] the smallest that m of
 * them stay at or below (the m-th smallest).  So m scores exceed t > 0
 * exactly where up[x] > t, and m are below -t exactly where down[x] < -t;
 * since m > n/2, up[x] <= down[x], and at most one of the two holds.
 * Branch-free: a sorting network over four lanes, the lanes beyond n
 * sorting last, so that the loop vectorises.
 */
static inline __attribute__((always_inline)) void quorum_row_n(float *const *v, const float *inv, int n,
							       size_t row, int x0, int x1, float *up,
							       float *down)
{
	const float *p0 = v[0] + row, *p1 = v[n > 1 ? 1 : 0] + row;
	const float *p2 = v[n > 2 ? 2 : 0] + row, *p3 = v[n > 3 ? 3 : 0] + row;
	float i0 = inv[0], i1 = inv[n > 1 ? 1 : 0], i2 = inv[n > 2 ? 2 : 0], i3 = inv[n > 3 ? 3 : 0];
	int m = quorum(n);

	for (int x = x0; x < x1; x++) {
		float s[4] = {p0[x] * i0, n > 1 ? p1[x] * i1 : INFINITY, n > 2 ? p2[x] * i2 : INFINITY,
			      n > 3 ? p3[x] * i3 : INFINITY};
		ORDER2(s[0], s[1]);
		ORDER2(s[2], s[3]);
		ORDER2(s[0], s[2]);
		ORDER2(s[1], s[3]);
		ORDER2(s[1], s[2]);
		up[x] = s[n - m];
		down[x] = s[m - 1];
	}
}

static void quorum_row(float *const *v, const float *inv, int n, size_t row, int x0, int x1, float *up,
		       float *down)
{
	switch (n) {
	case 1: quorum_row_n(v, inv, 1, row, x0, x1, up, down); break;
	case 2: quorum_row_n(v, inv, 2, row, x0, x1, up, down); break;
	case 3: quorum_row_n(v, inv, 3, row, x0, x1, up, down); break;
	default: quorum_row_n(v, inv, 4, row, x0, x1, up, down); break;
	}
}

/* The median of n values (the mean of the middle two for even n). */
static double median_n(const double *v, int n)
{
	double s[DETECT_MAX_REFS];
	for (int i = 0; i < n; i++) {
		int j = i;
		for (; j > 0 && s[j - 1] > v[i]; j--)
			s[j] = s[j - 1];
		s[j] = v[i];
	}
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* A pixel of the mask: what steps 5 found there, for step 6. */
enum mask_px { MASK_NONE, MASK_CANDIDATE, MASK_SEED };

/* What detect_die's steps hand on to the next ones. */
struct work {
	int w, h;
	size_t n;                       /* pixels */
	int nref;
	int dup[DETECT_MAX_REFS];       /* -1, or an earlier index of the same reference */
	struct rect r;                  /* where every difference is valid */
	float *d[DETECT_MAX_REFS];      /* the differences; a repeated reference shares one */
	double dsigma[DETECT_MAX_REFS]; /* a shifted difference's sigma, found by step 2; else 0 */
	double noise;                   /* the die's own noise, for the blobs' SNR */
	uint8_t *mask;                  /* enum mask_px per pixel */
	float *up, *down;               /* one row's arbitration (quorum_row) */
	float *z, *con;                 /* a candidate's score and contrast */
	struct hist hi;
};

static void work_init(struct work *wk, int w, int h, int nref)
{
	memset(wk, 0, sizeof *wk);
	wk->w = w;
	wk->h = h;
	wk->n = (size_t)w * h;
	wk->nref = nref;
	hist_init(&wk->hi);
}

/* Step 1: each reference's shift (a repeated reference shares its work). */
static void align_refs(const struct image *t, const struct image *const *refs, int max_shift, struct work *wk,
		       struct detect_result *out)
{
	/* t's profiles, for the alignment with each reference. */
	uint32_t *tprof = xmalloc((size_t)(wk->w + wk->h) * sizeof *tprof);

	profiles(t, max_shift, tprof, tprof + wk->w);
	for (int i = 0; i < wk->nref; i++) {
		int dup = -1;
		/* The same reference twice (single arbitration) shares its work. */
		for (int j = 0; j < i; j++)
			if (refs[j] == refs[i])
				dup = j;
		wk->dup[i] = dup;
		if (dup >= 0) {
			out->shift[i][0] = out->shift[dup][0];
			out->shift[i][1] = out->shift[dup][1];
			continue;
		}
		align(t, tprof, refs[i], max_shift, &out->shift[i][0], &out->shift[i][1]);
	}
	free(tprof);
}

/*
 * Step 2: the fitted differences, and the rect where all of them are
 * valid; a shifted difference's noise is measured on the way (step 3
 * takes it).
 */
static void differences(const struct image *t, const struct image *const *refs, struct work *wk,
			const struct detect_result *out)
{
	int w = wk->w, h = wk->h;
	struct rect *r = &wk->r;

	*r = (struct rect){0, 0, w, h};
	for (int i = 0; i < wk->nref; i++) {
		struct rect ri;
		if (wk->dup[i] >= 0) {
			wk->d[i] = wk->d[wk->dup[i]];
			continue;
		}
		rect_for_shift(w, h, out->shift[i][0], out->shift[i][1], &ri);
		wk->d[i] = xmalloc(wk->n * sizeof *wk->d[i]);
		if (difference(&wk->hi, t, refs[i], out->shift[i][0], out->shift[i][1], &ri, wk->d[i],
			       &wk->dsigma[i]))
			ri = (struct rect){0, 0, w, h};
		r->x0 = ri.x0 > r->x0 ? ri.x0 : r->x0;
		r->y0 = ri.y0 > r->y0 ? ri.y0 : r->y0;
		r->x1 = ri.x1 < r->x1 ? ri.x1 : r->x1;
		r->y1 = ri.y1 < r->y1 ? ri.y1 : r->y1;
	}
}

/* Step 3: each difference's sigma, and the die's own noise. */
static void estimate_noise(struct work *wk, struct detect_result *out)
{
	double noise = 0;

	for (int i = 0; i < wk->nref; i++) {
		if (wk->dup[i] >= 0)
			out->sigma[i] = out->sigma[wk->dup[i]];
		else if (wk->dsigma[i] > 0)
			out->sigma[i] = wk->dsigma[i];   /* over its own rectangle */
		else
			out->sigma[i] = robust_sigma(&wk->hi, wk->d[i], wk->w, &wk->r, NULL);
		noise += out->sigma[i];
	}
	/* A difference of two dies holds the noise of both; the die's own
	 * noise is 1/sqrt(2) of it (against a median reference, a bit more). */
	wk->noise = noise / wk->nref / M_SQRT2;
}

/*
 * Step 5, seeds: MASK_SEED where the 3x3 means of the differences pass
 * the arbitration with the threshold k.
 *
 * Seeds come from the 3x3 means of the differences (a matched filter
 * for a small disc): a defect of a few pixels adds up there while the
 * noise averages out (about 3x better for a 3-pixel particle), so
 * faint defects seed where a single pixel would not.  Their sigma is
 * measured the same robust way.  The blob's pixels themselves come
 * from the pixel-wise test (mark_candidates).
 */
static void mark_seeds(struct work *wk, const struct detect_params *p)
{
	const struct rect *r = &wk->r;
	struct rect ri = {r->x0 + 1, r->y0 + 1, r->x1 - 1, r->y1 - 1};
	int w = wk->w, nref = wk->nref;
	uint8_t *mask = wk->mask;
	float *m[DETECT_MAX_REFS], inv[DETECT_MAX_REFS], *up = wk->up, *down = wk->down, k = (float)p->k;
	double sk[DETECT_MAX_REFS];

	if (r->x1 - r->x0 < 3 || r->y1 - r->y0 < 3)
		return;
	for (int i = 0; i < nref; i++) {
		if (wk->dup[i] >= 0) {
			m[i] = m[wk->dup[i]];
			sk[i] = sk[wk->dup[i]];
			continue;
		}
		m[i] = xmalloc(wk->n * sizeof *m[i]);   /* read over ri only */
		box3(wk->d[i], w, &ri, m[i]);
		sk[i] = robust_sigma(&wk->hi, m[i], w, &ri, NULL);
	}
	for (int i = 0; i < nref; i++)
		inv[i] = (float)(1.0 / sk[i]);
	for (int y = ri.y0; y < ri.y1; y++) {
		uint8_t *mk = mask + (size_t)y * w;
		quorum_row(m, inv, nref, (size_t)y * w, ri.x0, ri.x1, up, down);
		for (int x = ri.x0; x < ri.x1; x++)
			mk[x] = up[x] > k || down[x] < -k ? MASK_SEED : mk[x];
	}
	for (int i = 0; i < nref; i++)
		if (wk->dup[i] < 0)
			free(m[i]);
}

/*
 * Step 5, candidates: the pixels that pass the arbitration with the
 * threshold k * hysteresis (MASK_CANDIDATE, or MASK_SEED where a seed
 * is), with their score (|z|) and contrast (the median difference).
 * z and con are written only where the mask is set, and read only there.
 */
static void mark_candidates(struct work *wk, const struct detect_params *p, const struct detect_result *out)
{
	int w = wk->w, nref = wk->nref;
	struct rect r = wk->r;
	uint8_t *mask = wk->mask;
	float *d[DETECT_MAX_REFS], inv[DETECT_MAX_REFS], *z, *con, *up = wk->up, *down = wk->down;
	float klo = (float)(p->k * p->hysteresis);

	z = wk->z = xmalloc(wk->n * sizeof *z);
	con = wk->con = xmalloc(wk->n * sizeof *con);
	for (int i = 0; i < nref; i++) {
		d[i] = wk->d[i];
		inv[i] = (float)(1.0 / out->sigma[i]);
	}
	for (int y = r.y0; y < r.y1; y++) {
		quorum_row(d, inv, nref, (size_t)y * w, r.x0, r.x1, up, down);
		for (int x = r.x0; x < r.x1; x++) {
			size_t k = (size_t)y * w + x;
			double g[DETECT_MAX_REFS], s;
			if (!(up[x] > klo || down[x] < -klo)) {
				mask[k] = MASK_NONE;
				continue;
			}
			/* The score the quorum agrees on, signed. */
			s = up[x] > klo ? up[x] : down[x];
			for (int i = 0; i < nref; i++)
				g[i] = d[i][k];
			if (mask[k] == MASK_NONE)
				mask[k] = MASK_CANDIDATE;
			z[k] = (float)fabs(s);
			con[k] = (float)median_n(g, nref);
			/* A pixel whose median difference has the other sign
			 * than its score belongs to no blob. */
			if (con[k] * s <= 0)
				mask[k] = MASK_NONE;
		}
	}
}

/* What steps 1 to 5 needed and step 6 does not. */
static void drop_differences(struct work *wk)
{
	for (int i = 0; i < wk->nref; i++)
		if (wk->dup[i] < 0)
			free(wk->d[i]);
	hist_release(&wk->hi);
	free(wk->up);
	free(wk->down);
}

/*
 * The 8-connected blob of candidates from pixel i0 into ac, and its core
 * (the pixels scoring above kcore) into core; its pixels leave the mask.
 * stack has room for every pixel.
 */
static void grow_blob(struct work *wk, int *stack, size_t i0, double kcore, struct acc *ac, struct acc *core)
{
	int w = wk->w, h = wk->h;
	uint8_t *mask = wk->mask;
	const float *z = wk->z, *con = wk->con;
	size_t sp = 0;

	acc_init(ac, w, h);
	acc_init(core, w, h);
	stack[sp++] = (int)i0;
	ac->seed = mask[i0] == MASK_SEED;
	mask[i0] = MASK_NONE;
	while (sp) {
		int i = stack[--sp], x = i % w, y = i / w;
		acc_add(ac, x, y, con[i], z[i]);
		if (z[i] > kcore)
			acc_add(core, x, y, con[i], z[i]);
		for (int ny = y - 1; ny <= y + 1; ny++) {
			if (ny < 0 || ny >= h)
				continue;
			for (int nx = x - 1; nx <= x + 1; nx++) {
				size_t j;
				if (nx < 0 || nx >= w)
					continue;
				j = (size_t)ny * w + nx;
				if (mask[j] == MASK_NONE)
					continue;
				if (mask[j] == MASK_SEED)
					ac->seed = 1;
				mask[j] = MASK_NONE;
				stack[sp++] = (int)j;
			}
		}
	}
}

/* Step 6: the blobs kept, in out (in pixel order). */
static void find_blobs(struct work *wk, const struct detect_params *p, struct detect_result *out)
{
	const uint8_t *mask = wk->mask;
	size_t n = wk->n, cap = 0;
	int *stack = xmalloc(n * sizeof *stack);
	double kcore = p->k * p->core;

	for (size_t i0 = 0; i0 < n; i0++) {
		struct acc ac, core;
		uint64_t eight;
		/* Eight empty pixels at a time (most are). */
		if (i0 % 8 == 0 && i0 + 8 <= n && (memcpy(&eight, mask + i0, 8), eight == 0)) {
			i0 += 7;
			continue;
		}
		if (mask[i0] == MASK_NONE)
			continue;
		grow_blob(wk, stack, i0, kcore, &ac, &core);
		/* The blob as a whole must stand out: its summed score over the
		 * square root of its area (what averaging over it gains). */
		if (!ac.seed || ac.area < p->min_area || ac.sz / sqrt((double)ac.area) < p->k * p->blob_k)
			continue;
		if (out->n == cap) {
			cap = cap ? cap * 2 : 16;
			out->blobs = xrealloc(out->blobs, cap * sizeof *out->blobs);
		}
		/* Its place, size and contrast: from its core when that is big
		 * enough (the noise around a defect joins the wider blob). */
		blob_from_acc(core.area >= p->min_area ? &core : &ac, wk->noise, &out->blobs[out->n++]);
	}
	free(stack);
}

/* The max_blobs largest blobs, in (cy, cx) order. */
static void keep_largest(struct detect_result *out, size_t max_blobs)
{
	if (out->n > max_blobs) {
		qsort(out->blobs, out->n, sizeof *out->blobs, blob_cmp_area);
		out->dropped = out->n - max_blobs;
		out->n = max_blobs;
	}
	if (out->n)
		qsort(out->blobs, out->n, sizeof *out->blobs, blob_cmp_pos);
}

/* The six steps of detect.h, in order; a step hands its results on in wk. */
int detect_die(const struct image *t, const struct image *const *refs, int nref,
	       const struct detect_params *p, struct detect_result *out)
{
	struct work wk;

	memset(out, 0, sizeof *out);
	if (nref < 1 || nref > DETECT_MAX_REFS)
		return -1;
	for (int i = 0; i < nref; i++)
		if (refs[i]->w != t->w || refs[i]->h != t->h)
			return -1;
	out->nref = nref;
	work_init(&wk, t->w, t->h, nref);
	align_refs(t, refs, p->max_shift, &wk, out);    /* 1. align */
	differences(t, refs, &wk, out);                  /* 2. fit, difference */
	estimate_noise(&wk, out);                        /* 3. noise */
	wk.mask = xcalloc(wk.n, 1);
	wk.up = xmalloc((size_t)wk.w * sizeof *wk.up);
	wk.down = xmalloc((size_t)wk.w * sizeof *wk.down);
	mark_seeds(&wk, p);                              /* 4. arbitration: 5. seeds, */
	mark_candidates(&wk, p, out);                    /*    candidates */
	drop_differences(&wk);
	find_blobs(&wk, p, out);                         /* 6. blobs */
	free(wk.mask);
	free(wk.z);
	free(wk.con);
	keep_largest(out, p->max_blobs);
	return 0;
}

void detect_result_release(struct detect_result *r)
{
	free(r->blobs);
	memset(r, 0, sizeof *r);
}

static inline uint8_t px_clamped(const struct image *im, int x, int y)
{
	if (x < 0)
		x = 0;
	if (x >= im->w)
		x = im->w - 1;
	if (y < 0)
		y = 0;
	if (y >= im->h)
		y = im->h - 1;
	return im->px[(size_t)y * im->w + x];
}

void detect_median3(const struct image *a, const struct image *b, const struct image *c,
		    int max_shift, struct image *out)
{
	int bx, by, cx, cy;
	align(a, NULL, b, max_shift, &bx, &by);
	align(a, NULL, c, max_shift, &cx, &cy);
	image_alloc(out, a->w, a->h);
	for (int y = 0; y < a->h; y++)
		for (int x = 0; x < a->w; x++) {
			int p = a->px[(size_t)y * a->w + x];
			int q = px_clamped(b, x + bx, y + by);
			int s = px_clamped(c, x + cx, y + cy);
			int lo = p < q ? p : q, hi = p < q ? q : p;
			out->px[(size_t)y * a->w + x] = (uint8_t)(s < lo ? lo : s > hi ? hi : s);
		}
}

const char *detect_classify(const struct detect_blob *b, const struct detect_geom *g,
			    const struct detect_params *p, int *class_num)
{
	double d = 2 * sqrt((double)b->area / M_PI);
	(void)g;
	if (b->elong >= p->scratch_elong && b->length_px >= p->scratch_len_px) {
		*class_num = 4;
		return "scratch";
	}
	if (d < p->bin_small_px) {
		*class_num = 1;
		return "particle_small";
	}
	if (d < p->bin_large_px) {
		*class_num = 2;
		return "particle_medium";
	}
	*class_num = 3;
	return "particle_large";
}

/* Two decimals are plenty for µm and grey levels, and read better. */
static double r2(double v)
{
	return round(v * 100) / 100;
}

json_t *detect_defect_event(const char *run, uint64_t seq, const struct timespec *t,
			    const char *wafer, long col, long row, long index,
			    const struct detect_blob *b, const struct detect_geom *g,
			    const struct detect_params *p)
{
	json_t *ev = event_new("defect", run, seq, t);
	json_t *bbox = json_array();
	double pu = g->pixel_um;
	/* Pixel centres; image rows run down, die y runs up. */
	double x_um = (b->cx + 0.5) * pu;
	double y_um = ((double)g->die_h - (b->cy + 0.5)) * pu;
	int num;
	const char *cls = detect_classify(b, g, p, &num);

	event_set_id(ev, event_id_defect(run, wafer, col, row, index));
	json_object_set_new(ev, "wafer", json_string(wafer));
	json_object_set_new(ev, "col", json_integer(col));
	json_object_set_new(ev, "row", json_integer(row));
	json_object_set_new(ev, "index", json_integer(index));
	json_object_set_new(ev, "x_um", json_real(r2(x_um)));
	json_object_set_new(ev, "y_um", json_real(r2(y_um)));
	json_object_set_new(ev, "wx_um", json_real(r2(g->origin_um[0] + (double)col * g->pitch_um[0] + x_um)));
	json_object_set_new(ev, "wy_um", json_real(r2(g->origin_um[1] + (double)row * g->pitch_um[1] + y_um)));
	json_array_append_new(bbox, json_integer(b->x0));
	json_array_append_new(bbox, json_integer(b->y0));
	json_array_append_new(bbox, json_integer(b->x1));
	json_array_append_new(bbox, json_integer(b->y1));
	json_object_set_new(ev, "bbox", bbox);
	json_object_set_new(ev, "w_um", json_real(r2((b->x1 - b->x0 + 1) * pu)));
	json_object_set_new(ev, "h_um", json_real(r2((b->y1 - b->y0 + 1) * pu)));
	json_object_set_new(ev, "area_px", json_integer(b->area));
	json_object_set_new(ev, "area_um2", json_real(r2((double)b->area * pu * pu)));
	json_object_set_new(ev, "polarity", json_string(b->polarity > 0 ? "bright" : "dark"));
	json_object_set_new(ev, "contrast", json_real(r2(b->contrast)));
	json_object_set_new(ev, "snr", json_real(r2(b->snr)));
	json_object_set_new(ev, "class", json_string(cls));
	json_object_set_new(ev, "class_num", json_integer(num));
	return ev;
}

static double usable_radius_um(const struct detect_geom *g)
{
	double r = (g->diameter_mm / 2 - g->edge_mm) * 1000;
	return r > 0 ? r : g->diameter_mm * 500;
}

/* Defects within tol of the line through pts[i] and pts[j], and their span. */
static size_t line_inliers(const struct detect_point *pts, size_t n, size_t i, size_t j, double tol,
			   double *span)
{
	double ux = pts[j].wx - pts[i].wx, uy = pts[j].wy - pts[i].wy;
	double len = hypot(ux, uy), lo = 0, hi = 0;
	size_t k = 0;
	if (len <= 0)
		return 0;
	ux /= len;
	uy /= len;
	for (size_t m = 0; m < n; m++) {
		double vx = pts[m].wx - pts[i].wx, vy = pts[m].wy - pts[i].wy;
		double along = vx * ux + vy * uy, across = fabs(vx * uy - vy * ux);
		if (across <= tol) {
			if (!k || along < lo)
				lo = along;
			if (!k || along > hi)
				hi = along;
			k++;
		}
	}
	*span = hi - lo;
	return k;
}

const char *detect_signature(const struct detect_point *pts, size_t n, const struct detect_geom *g)
{
	double R = usable_radius_um(g), dn = (double)n;
	size_t lim = n < 300 ? n : 300, outer = 0, inner = 0;
	if (n == 0)
		return "none";
	{
		/* Lines through pairs of elongated defects: a wafer scratch
		 * crosses dies and leaves one elongated piece in each. */
		struct detect_point *sc = xmalloc((n ? n : 1) * sizeof *sc);
		size_t ns = 0;
		int hit = 0;
		for (size_t i = 0; i < n; i++)
			if (pts[i].class_num == 4)
				sc[ns++] = pts[i];
		lim = ns < 300 ? ns : 300;
		for (size_t i = 0; i < lim && !hit; i++)
			for (size_t j = i + 1; j < lim && !hit; j++) {
				double span;
				size_t k = line_inliers(sc, ns, i, j, 0.01 * R, &span);
				hit = k >= 3 && span >= 0.2 * R;
			}
		free(sc);
		if (hit)
			return "scratch";
	}
	if (n >= 8) {
		for (size_t i = 0; i < n && i < 2000; i++) {
			size_t k = 0;
			for (size_t m = 0; m < n; m++)
				if (hypot(pts[m].wx - pts[i].wx, pts[m].wy - pts[i].wy) <= 0.1 * R)
					k++;
			if (k >= 8 && (double)k >= 0.25 * dn)
				return "cluster";
		}
	}
	if (n >= 5) {
		for (size_t i = 0; i < n; i++) {
			double r = hypot(pts[i].wx, pts[i].wy);
			outer += r > 0.85 * R;
			inner += r < 0.35 * R;
		}
		if ((double)outer >= 0.5 * dn)
			return "edge_ring";
		if ((double)inner >= 0.4 * dn)
			return "center";
	}
	return "random";
}

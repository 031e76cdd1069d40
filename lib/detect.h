/*
 * detect.h: die-to-die defect detection and the rules that turn blobs
 * into defect events and a wafer's defects into a signature.  Pure
 * computation on images: no I/O, no threads, safe to call from several
 * threads at once on different data.
 *
 * The method, for a die T and n reference dies (up to DETECT_MAX_REFS:
 * its nearest row neighbours, or a median reference when the row is too
 * short):
 *   1. align each reference to T to the pixel: a shift in
 *      [-max_shift, max_shift]^2 whose sum of absolute differences over
 *      the die's interior is least among its neighbours, reached by a
 *      descent from the shifts that match the dies' row and column sums;
 *      the border the shift leaves without a counterpart is inspected
 *      only when the content wraps around (it matches the reference's
 *      opposite edge);
 *   2. fit the reference's brightness to T (gain and offset, refitted
 *      without the pixels beyond 3 sigma), and take the differences
 *      d_i = T - R_i';
 *   3. estimate the noise of each difference robustly: 1.4826 * MAD,
 *      refined into the standard deviation of the pixels within 3.5
 *      sigma (the MAD of near-integer values is quantised), never below
 *      DETECT_SIGMA_FLOOR grey levels;
 *   4. arbitration: a pixel is brighter than its references where m of
 *      its n scores z_i = d_i / sigma_i exceed a threshold, darker where
 *      m are below its negative (m = n for n <= 2, else n - 1): one odd
 *      reference (a defect of its own, or one it shares with T) changes
 *      nothing;
 *   5. seeds: that test on the 3x3 means of the d_i (each with its own
 *      robust sigma) with the threshold k; candidates: the test on the
 *      pixels with k * hysteresis, scored by the m-th z;
 *   6. candidates are grouped into 8-connected blobs; a blob is kept
 *      when it holds a seed, has at least min_area pixels, and its summed
 *      score over the square root of its area reaches k * blob_k; its
 *      geometry and contrast come from its core (pixels scoring above
 *      k * core) when that has min_area pixels, else from all of it.
 *
 * Steps: detect_params_default; detect_geom_from_run_start once per run;
 * detect_die per die (detect_result_release after); detect_classify and
 * detect_defect_event per blob; detect_signature per wafer.
 */
#ifndef KERF_DETECT_H
#define KERF_DETECT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "image.h"

#define DETECT_SIGMA_FLOOR 0.5
#define DETECT_MAX_REFS 4

struct detect_params {
	double k;             /* seed threshold in sigmas (--k) */
	double hysteresis;    /* candidate threshold = k * hysteresis (0.4) */
	double core;          /* a blob's core: pixels beyond k * core (0.6) */
	long min_area;        /* pixels (--min-area) */
	double blob_k;        /* a blob's sum of z / sqrt(area) >= k * blob_k (1.25) */
	int max_shift;        /* alignment search radius, pixels */
	double bin_small_px;  /* particle size bins: equivalent diameter, pixels */
	double bin_large_px;
	double scratch_elong; /* elongation from which a blob is a scratch */
	double scratch_len_px;/* and the least length, pixels */
	size_t max_blobs;     /* blobs kept per die, largest first */
};

void detect_params_default(struct detect_params *p);

/* The geometry of run_start. */
struct detect_geom {
	double diameter_mm, edge_mm;
	double pitch_um[2], origin_um[2];
	double pixel_um;
	long cols, rows;
	int die_w, die_h;
};

/* 0, or -1 with a message when a field is missing or out of range. */
int detect_geom_from_run_start(const json_t *ev, struct detect_geom *g, char *msg, size_t msglen);

struct detect_blob {
	double cx, cy;            /* centroid, pixels (x right, y down the image) */
	int x0, y0, x1, y1;       /* bounding box, inclusive */
	long area;                /* pixels */
	double contrast;          /* mean |difference| over the blob, grey levels */
	double snr;               /* contrast in sigmas of the die's own noise */
	int polarity;             /* +1 bright, -1 dark */
	double elong;             /* major/minor axis ratio from second moments */
	double length_px;         /* major axis length */
};

struct detect_result {
	struct detect_blob *blobs;  /* sorted by (cy, cx) */
	size_t n;
	size_t dropped;             /* blobs beyond max_blobs */
	int nref;                   /* references compared with */
	double sigma[DETECT_MAX_REFS];   /* of each difference image */
	int shift[DETECT_MAX_REFS][2];   /* (dx, dy) found for each reference */
};

/*
 * Detect defects in t against nref (1..DETECT_MAX_REFS) references of
 * its size (one: single arbitration, used with a median reference).
 * Returns 0, or -1 when a size differs or nref is out of range.  Caller
 * releases out.
 */
int detect_die(const struct image *t, const struct image *const *refs, int nref,
	       const struct detect_params *p, struct detect_result *out);
void detect_result_release(struct detect_result *r);

/*
 * The pixel-wise median of three dies, each aligned to the first (the
 * reference for a row too short to have two neighbours).  out is
 * allocated; release it with image_release.
 */
void detect_median3(const struct image *a, const struct image *b, const struct image *c,
		    int max_shift, struct image *out);

/*
 * Classes, in this order of rules:
 *   4 scratch        elong >= scratch_elong and length >= scratch_len_px
 *   1 particle_small equivalent diameter d = 2 sqrt(area_px / pi) < bin_small_px
 *                    (pixels, so that the bins follow the image's resolution)
 *   2 particle_medium d < bin_large_px
 *   3 particle_large otherwise
 */
const char *detect_classify(const struct detect_blob *b, const struct detect_geom *g,
			    const struct detect_params *p, int *class_num);

/* A defect event (new reference) for a blob of a die. */
json_t *detect_defect_event(const char *run, uint64_t seq, const struct timespec *t,
			    const char *wafer, long col, long row, long index,
			    const struct detect_blob *b, const struct detect_geom *g,
			    const struct detect_params *p);

/* One defect's place on the wafer, for the signature. */
struct detect_point {
	double wx, wy;   /* µm from the wafer centre */
	int class_num;
};

/*
 * The wafer signature from its defects (R = usable radius =
 * diameter/2 - edge, r = a defect's distance from the centre, n = the
 * number of defects).  Each rule asks for far more defects in one place
 * than uniformly random ones would put there:
 *   none       n = 0
 *   scratch    at least 3 defects of class scratch lie within 0.01 R of
 *              one straight line through two of them and span at least
 *              0.2 R along it (a wafer scratch crosses dies and leaves an
 *              elongated piece in each; particles are never elongated)
 *   cluster    at least 8 defects, and 25 % of n, lie within 0.1 R of
 *              one defect (random: ~1 % of n)
 *   edge_ring  at least 5 defects and 50 % of n at r > 0.85 R
 *              (random: 28 %)
 *   center     at least 5 defects and 40 % of n at r < 0.35 R
 *              (random: 12 %)
 *   random     anything else
 * The first rule that holds wins.
 */
const char *detect_signature(const struct detect_point *pts, size_t n, const struct detect_geom *g);

#endif

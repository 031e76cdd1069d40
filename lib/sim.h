/*
 * sim.h: the simulated inspection tool behind kerf-acquire --sim.  It owns
 * the die grid of a wafer (whole dies inside the usable circle), the die
 * images (a repeating pattern with noise, misregistration and brightness
 * drift) and the defects it injects (particles and wafer signatures), with
 * their ground truth.  Everything follows from the seed: the same config
 * gives the same bytes.
 *
 * Steps: sim_config_default; change fields; sim_new; for each wafer
 * (1..wafers) sim_wafer_begin, then sim_render for each die index in
 * 0..sim->ndies-1 (in that order or any other); sim_free.
 */
#ifndef KERF_SIM_H
#define KERF_SIM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Simulated machine time starts here: 2026-01-05T06:00:00Z. */
#define SIM_EPOCH 1767592800

enum sim_signature {
	SIM_SIG_RANDOM, SIM_SIG_CLUSTER, SIM_SIG_SCRATCH, SIM_SIG_EDGE_RING, SIM_SIG_CENTER,
	SIM_SIG__COUNT,
	SIM_SIG_CYCLE = -1,  /* wafer n gets signature (n - 1) mod SIM_SIG__COUNT */
};

struct sim_config {
	uint64_t seed;
	int wafers;
	double diameter_mm;      /* 300 or 200 (any value > 0 works) */
	double edge_mm;          /* edge exclusion */
	double pitch_um[2];      /* die pitch x, y */
	int die_px;              /* image width; height follows the pitch ratio */
	double noise;            /* σ of the per-pixel noise, grey levels */
	double defect_rate;      /* mean random particles per die */
	int signature;           /* enum sim_signature, or SIM_SIG_CYCLE */
};

struct sim_feature;

struct sim {
	struct sim_config cfg;
	/* Geometry (see kerf-events(5) run_start). */
	int cols, rows;
	double origin_um[2];     /* lower-left of die col 0, row 0, from the centre */
	double pixel_um;
	int die_w, die_h;
	int ndies;               /* dies per wafer */
	int (*dies)[2];          /* their (col, row), row-major from row 0 */
	/* The current wafer. */
	int wafer;
	enum sim_signature sig;
	struct sim_feature *feat;     /* sorted by die */
	size_t nfeat;
	size_t *first;                /* per die: index of its first feature */
	unsigned char *pattern;       /* die_w * die_h, the layout */
};

void sim_config_default(struct sim_config *c);
/* NULL with a message in err when the geometry holds no die. */
struct sim *sim_new(const struct sim_config *c, char *err, size_t errlen);
void sim_free(struct sim *s);

const char *sim_signature_name(int sig);
/* -1 if unknown; "cycle" gives SIM_SIG_CYCLE. */
int sim_signature_of(const char *name);

/* The whole dies of a wafer for this geometry (exposed for tests/docs). */
int sim_die_count(const struct sim *s);

/* Plan wafer 'wafer' (1-based): its signature and injected defects. */
void sim_wafer_begin(struct sim *s, int wafer);

/*
 * Render die 'idx' of the current wafer into px (die_w * die_h bytes,
 * row-major, row 0 at the top of the die).  When truth is not NULL, one
 * object per injected defect is appended to it (new references).
 */
void sim_render(struct sim *s, int idx, unsigned char *px, json_t *truth);

/* Wafer id of wafer n ("W01"...), into out. */
void sim_wafer_id(int n, char out[16]);

#endif

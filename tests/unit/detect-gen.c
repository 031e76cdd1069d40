/*
 * detect-gen: a small die-event generator for kerf-detect's tests, with a
 * known layout, Gaussian noise, misregistration and injected blobs, so
 * that a test knows exactly what must be found.  Not the simulator
 * (kerf-acquire --sim): simpler, and independent of it.
 *
 * usage: detect-gen [--wafers N] [--cols C] [--rows R] [--size WxH]
 *                   [--noise SIGMA] [--seed N] [--shift MAX] [--pixel UM]
 *                   [--defect W,COL,ROW,X,Y,RADIUS,CONTRAST]...
 *                   [--line W,COL,ROW,X0,Y0,X1,Y1,CONTRAST]...
 *                   [--bad W,COL,ROW,KIND]... [--path DIR] [--truth FILE]
 *                   [--no-run-start] [--extra] [--last-row N]
 * KIND: checksum | base64 | size.  Wafers count from 1.  --path DIR writes
 * the images as files in DIR and puts "path" in the die events.  --extra
 * adds an alarm event inside the first wafer.  --last-row N puts only N
 * dies (columns 0..N-1) in the last row.
 */
#include "util.h"
#include "log.h"
#include "event.h"
#include "cli.h"
#include "out.h"
#include "base64.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

struct blob {
	int wafer, col, row;
	double x, y, r, c;
	double x1, y1; /* lines */
	int line;
};

struct bad {
	int wafer, col, row;
	char kind[16];
};

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnext(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double runif(void)
{
	return (double)(rnext() >> 11) / 9007199254740992.0;
}

static double rnorm(void)
{
	double u = runif(), v = runif();
	if (u < 1e-300)
		u = 1e-300;
	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* A layout that does not repeat within a few pixels, so alignment is unique. */
static double pattern(int x, int y)
{
	double v = 90;
	v += 50 * (((x >> 3) + (y >> 3)) & 1);
	v += 25 * ((x % 13) < 3);
	v += 15 * sin(x * 0.37) + 12 * cos(y * 0.23 + x * 0.05);
	return v;
}

static double seg_dist(double px, double py, const struct blob *b)
{
	double vx = b->x1 - b->x, vy = b->y1 - b->y, wx = px - b->x, wy = py - b->y;
	double l2 = vx * vx + vy * vy, t = l2 > 0 ? (wx * vx + wy * vy) / l2 : 0;
	t = t < 0 ? 0 : t > 1 ? 1 : t;
	return hypot(px - (b->x + t * vx), py - (b->y + t * vy));
}

static uint64_t seq;
static const char *run;

static json_t *ev_new(const char *type)
{
	struct timespec ts = {1795000000 + (time_t)(seq / 1000), (long)(seq % 1000) * 1000000L};
	return event_new(type, run, seq++, &ts);
}

static void put(json_t *ev)
{
	event_write(stdout, ev);
	json_decref(ev);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"wafers", 1, NULL, 'n'}, {"cols", 1, NULL, 'c'}, {"rows", 1, NULL, 'r'},
		{"size", 1, NULL, 's'}, {"noise", 1, NULL, 'N'}, {"seed", 1, NULL, 'S'},
		{"shift", 1, NULL, 'm'}, {"pixel", 1, NULL, 'p'}, {"defect", 1, NULL, 'd'},
		{"line", 1, NULL, 'l'}, {"bad", 1, NULL, 'b'}, {"path", 1, NULL, 'P'},
		{"truth", 1, NULL, 'T'}, {"no-run-start", 0, NULL, 'R'}, {"extra", 0, NULL, 'x'},
		{"last-row", 1, NULL, 'L'},
		{NULL, 0, NULL, 0},
	};
	int last_row = -1, wafers = 1, cols = 5, rows = 3, w = 64, h = 64, maxshift = 2, no_rs = 0, extra = 0, o;
	double noise = 3.0, pixel = 10.0;
	uint64_t seed = 1;
	struct blob *bl = NULL;
	struct bad *bad = NULL;
	size_t nbl = 0, nbad = 0;
	const char *dir = NULL, *truth_path = NULL;
	FILE *truth = NULL;
	char runid[64];
	unsigned char *px;
	char *b64;

	log_init(argv[0]);
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'n': wafers = atoi(optarg); break;
		case 'c': cols = atoi(optarg); break;
		case 'r': rows = atoi(optarg); break;
		case 's':
			if (sscanf(optarg, "%dx%d", &w, &h) != 2 || w < 8 || h < 8)
				cli_usage_error("bad --size '%s'", optarg);
			break;
		case 'N': noise = atof(optarg); break;
		case 'S': seed = strtoull(optarg, NULL, 10); break;
		case 'm': maxshift = atoi(optarg); break;
		case 'p': pixel = atof(optarg); break;
		case 'd':
		case 'l': {
			struct blob b;
			memset(&b, 0, sizeof b);
			b.line = o == 'l';
			if (!b.line && sscanf(optarg, "%d,%d,%d,%lf,%lf,%lf,%lf", &b.wafer, &b.col, &b.row, &b.x, &b.y,
					      &b.r, &b.c) != 7)
				cli_usage_error("bad --defect '%s'", optarg);
			if (b.line) {
				if (sscanf(optarg, "%d,%d,%d,%lf,%lf,%lf,%lf,%lf", &b.wafer, &b.col, &b.row, &b.x, &b.y,
					   &b.x1, &b.y1, &b.c) != 8)
					cli_usage_error("bad --line '%s'", optarg);
				b.r = 1.0;
			}
			bl = xrealloc(bl, (nbl + 1) * sizeof *bl);
			bl[nbl++] = b;
			break;
		}
		case 'b': {
			struct bad b;
			memset(&b, 0, sizeof b);
			if (sscanf(optarg, "%d,%d,%d,%15s", &b.wafer, &b.col, &b.row, b.kind) != 4)
				cli_usage_error("bad --bad '%s'", optarg);
			bad = xrealloc(bad, (nbad + 1) * sizeof *bad);
			bad[nbad++] = b;
			break;
		}
		case 'P': dir = optarg; break;
		case 'T': truth_path = optarg; break;
		case 'R': no_rs = 1; break;
		case 'x': extra = 1; break;
		case 'L': last_row = atoi(optarg); break;
		default: cli_usage_error("see the comment at the top of tests/unit/detect-gen.c");
		}
	}
	rng ^= seed * 0x9E3779B97F4A7C15ULL;
	if (!rng)
		rng = 1;
	snprintf(runid, sizeof runid, "gen-%llu", (unsigned long long)seed);
	run = runid;
	if (truth_path && !(truth = fopen(truth_path, "w")))
		cli_die(74, "cannot open '%s'", truth_path);
	px = xmalloc((size_t)w * h);
	b64 = xmalloc(base64_encoded_len((size_t)w * h + 16) + 1);

	if (!no_rs) {
		json_t *ev = ev_new("run_start");
		double pu[2] = {w * pixel, h * pixel};
		json_object_set_new(ev, "lot", json_string("LOTGEN"));
		json_object_set_new(ev, "recipe", json_string("gen"));
		json_object_set_new(ev, "tool", json_string("detect-gen"));
		json_object_set_new(ev, "source", json_string("gen"));
		json_object_set_new(ev, "wafers", json_integer(wafers));
		json_object_set_new(ev, "diameter_mm", json_real(fmax(cols * pu[0], rows * pu[1]) * 1.5 / 1000));
		json_object_set_new(ev, "edge_mm", json_real(0));
		json_object_set_new(ev, "pitch_um", json_pack("[ff]", pu[0], pu[1]));
		json_object_set_new(ev, "origin_um", json_pack("[ff]", -cols * pu[0] / 2, -rows * pu[1] / 2));
		json_object_set_new(ev, "cols", json_integer(cols));
		json_object_set_new(ev, "rows", json_integer(rows));
		json_object_set_new(ev, "die_px", json_pack("[ii]", w, h));
		json_object_set_new(ev, "pixel_um", json_real(pixel));
		put(ev);
	}
	for (int wf = 1; wf <= wafers; wf++) {
		char wid[16];
		json_t *ev;
		int ndies = 0;
		snprintf(wid, sizeof wid, "W%02d", wf);
		ev = ev_new("wafer_start");
		json_object_set_new(ev, "wafer", json_string(wid));
		json_object_set_new(ev, "slot", json_integer(wf));
		json_object_set_new(ev, "lot", json_string("LOTGEN"));
		json_object_set_new(ev, "dies", json_integer(cols * rows));
		put(ev);
		for (int row = 0; row < rows; row++) {
			for (int col = 0; col < cols; col++) {
				if (row == rows - 1 && last_row >= 0 && col >= last_row)
					break;
				int sx = maxshift ? (int)(rnext() % (2 * maxshift + 1)) - maxshift : 0;
				int sy = maxshift ? (int)(rnext() % (2 * maxshift + 1)) - maxshift : 0;
				double off = (runif() - 0.5) * 6, gain = 1 + (runif() - 0.5) * 0.04;
				const char *kind = NULL;
				size_t n = (size_t)w * h;
				for (size_t i = 0; i < nbad; i++)
					if (bad[i].wafer == wf && bad[i].col == col && bad[i].row == row)
						kind = bad[i].kind;
				for (int y = 0; y < h; y++)
					for (int x = 0; x < w; x++) {
						double v = gain * pattern(x + sx, y + sy) + off + noise * rnorm();
						px[(size_t)y * w + x] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
					}
				for (size_t i = 0; i < nbl; i++) {
					const struct blob *b = &bl[i];
					int npx = 0, bx0 = w, by0 = h, bx1 = -1, by1 = -1;
					if (b->wafer != wf || b->col != col || b->row != row)
						continue;
					for (int y = 0; y < h; y++)
						for (int x = 0; x < w; x++) {
							double d = b->line ? seg_dist(x + 0.5, y + 0.5, b)
									   : hypot(x + 0.5 - b->x, y + 0.5 - b->y);
							int v;
							if (d > b->r)
								continue;
							v = px[(size_t)y * w + x] + (int)lround(b->c);
							px[(size_t)y * w + x] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
							npx++;
							bx0 = x < bx0 ? x : bx0;
							by0 = y < by0 ? y : by0;
							bx1 = x > bx1 ? x : bx1;
							by1 = y > by1 ? y : by1;
						}
					if (truth && npx) {
						double cx = b->line ? (b->x + b->x1) / 2 : b->x;
						double cy = b->line ? (b->y + b->y1) / 2 : b->y;
						double size = b->line ? hypot(b->x1 - b->x, b->y1 - b->y) : 2 * b->r;
						json_t *t = json_object();
						json_object_set_new(t, "run", json_string(run));
						json_object_set_new(t, "wafer", json_string(wid));
						json_object_set_new(t, "bbox", json_pack("[iiii]", bx0, by0, bx1, by1));
						json_object_set_new(t, "col", json_integer(col));
						json_object_set_new(t, "row", json_integer(row));
						json_object_set_new(t, "kind", json_string(b->line ? "scratch" : "particle"));
						json_object_set_new(t, "contrast", json_real(fabs(b->c)));
						json_object_set_new(t, "x_px", json_real(cx));
						json_object_set_new(t, "y_px", json_real(cy));
						json_object_set_new(t, "size_px", json_real(size));
						json_object_set_new(t, "area_px", json_integer(npx));
						json_object_set_new(t, "x_um", json_real(cx * pixel));
						json_object_set_new(t, "y_um", json_real((h - cy) * pixel));
						json_dumpf(t, truth, JSON_COMPACT);
						fputc('\n', truth);
						json_decref(t);
					}
				}
				ev = ev_new("die");
				json_object_set_new(ev, "wafer", json_string(wid));
				json_object_set_new(ev, "col", json_integer(col));
				json_object_set_new(ev, "row", json_integer(row));
				json_object_set_new(ev, "w", json_integer(w));
				json_object_set_new(ev, "h", json_integer(h));
				{
					char hx[17];
					hex64(kerf_xxh3(px, n), hx);
					if (kind && !strcmp(kind, "checksum"))
						hx[0] = hx[0] == '0' ? '1' : '0';
					if (dir) {
						char *path = xasprintf("%s/%s_%d_%d.raw", dir, wid, col, row);
						FILE *f = fopen(path, "wb");
						if (!f || fwrite(px, 1, n, f) != n || fclose(f) != 0)
							cli_die(74, "cannot write '%s'", path);
						json_object_set_new(ev, "path", json_string(path));
						free(path);
					} else {
						size_t bn = kind && !strcmp(kind, "size") ? n - (size_t)w : n;
						base64_encode(px, bn, b64);
						if (kind && !strcmp(kind, "base64"))
							b64[5] = '*';
						json_object_set_new(ev, "data", json_string(b64));
					}
					json_object_set_new(ev, "xxh3", json_string(hx));
				}
				put(ev);
				ndies++;
				if (extra && wf == 1 && row == 0 && col == 1) {
					ev = ev_new("alarm");
					json_object_set_new(ev, "alid", json_integer(17));
					json_object_set_new(ev, "text", json_string("stage vacuum low"));
					json_object_set_new(ev, "set", json_true());
					json_object_set_new(ev, "category", json_string("warning"));
					json_object_set_new(ev, "critical", json_false());
					put(ev);
				}
			}
		}
		ev = ev_new("wafer_end");
		json_object_set_new(ev, "wafer", json_string(wid));
		json_object_set_new(ev, "slot", json_integer(wf));
		json_object_set_new(ev, "dies", json_integer(ndies));
		put(ev);
	}
	{
		json_t *ev = ev_new("run_end");
		json_object_set_new(ev, "status", json_string("completed"));
		json_object_set_new(ev, "wafers", json_integer(wafers));
		json_object_set_new(ev, "dies", json_integer(wafers * cols * rows));
		put(ev);
	}
	free(px);
	free(b64);
	free(bl);
	free(bad);
	if (truth)
		fclose(truth);
	return fshut(stdout, "standard output");
}

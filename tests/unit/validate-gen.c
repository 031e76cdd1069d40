/*
 * validate-gen: write a valid event stream for measuring kerf-validate.
 * Usage: validate-gen EVENTS [small|images]
 *  small   run_start, then wafers of die_done events with a defect on
 *          every third die (events of 150 to 400 bytes)
 *  images  the same run with a 64x64 inline image per die
 * Deterministic: the same arguments give the same bytes.
 */
#include "util.h"
#include "log.h"
#include "event.h"
#include "cli.h"
#include "out.h"
#include "base64.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define RUN "bench-1"
#define COLS 30
#define ROWS 30
#define PITCH 10000.0
#define PX 64

static uint64_t seq;
static unsigned long long emitted, limit;

static json_t *ev_new(const char *type, uint64_t s)
{
	struct timespec ts = { 1795000000 + (time_t)(s / 1000), (long)(s % 1000) * 1000000L };
	return event_new(type, RUN, s, &ts);
}

static void emit(json_t *ev)
{
	event_write(stdout, ev);
	json_decref(ev);
	emitted++;
}

int main(int argc, char **argv)
{
	int images;
	unsigned char px[PX * PX];
	char *b64 = xmalloc(base64_encoded_len(sizeof px) + 1);
	char hx[17];
	json_t *ev;

	log_init(argv[0]);
	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "small") && strcmp(argv[2], "images")))
		cli_usage_error("usage: validate-gen EVENTS [small|images]");
	limit = strtoull(argv[1], NULL, 10);
	images = argc == 3 && !strcmp(argv[2], "images");

	ev = ev_new("run_start", ++seq);
	json_object_set_new(ev, "lot", json_string("LOT-BENCH"));
	json_object_set_new(ev, "recipe", json_string("bench"));
	json_object_set_new(ev, "tool", json_string("validate-gen"));
	json_object_set_new(ev, "source", json_string("sim"));
	json_object_set_new(ev, "wafers", json_integer(25));
	json_object_set_new(ev, "diameter_mm", json_real(300));
	json_object_set_new(ev, "edge_mm", json_real(3));
	json_object_set_new(ev, "pitch_um", json_pack("[f,f]", PITCH, PITCH));
	json_object_set_new(ev, "origin_um", json_pack("[f,f]", -COLS * PITCH / 2, -ROWS * PITCH / 2));
	json_object_set_new(ev, "cols", json_integer(COLS));
	json_object_set_new(ev, "rows", json_integer(ROWS));
	json_object_set_new(ev, "die_px", json_pack("[i,i]", PX, PX));
	json_object_set_new(ev, "pixel_um", json_real(PITCH / PX));
	emit(ev);

	for (int w = 0; emitted < limit; w++) {
		char wafer[16];
		int slot = w % 25 + 1, dies = 0, defects = 0, ddies = 0;
		snprintf(wafer, sizeof wafer, "W%04d", w);
		ev = ev_new("wafer_start", ++seq);
		json_object_set_new(ev, "wafer", json_string(wafer));
		json_object_set_new(ev, "slot", json_integer(slot));
		json_object_set_new(ev, "lot", json_string("LOT-BENCH"));
		json_object_set_new(ev, "dies", json_integer(COLS * ROWS));
		emit(ev);
		for (int row = 0; row < ROWS && emitted < limit; row++) {
			for (int col = 0; col < COLS && emitted < limit; col++) {
				double cx = -COLS * PITCH / 2 + (col + 0.5) * PITCH;
				double cy = -ROWS * PITCH / 2 + (row + 0.5) * PITCH;
				int ndef = (col + row + w) % 3 == 0;
				if (hypot(cx, cy) > 150000 - PITCH)
					continue;
				dies++;
				++seq;
				if (images) {
					for (size_t i = 0; i < sizeof px; i++)
						px[i] = (unsigned char)((i * 7 + seq * 13) & 0xff);
					base64_encode(px, sizeof px, b64);
					hex64(kerf_xxh3(px, sizeof px), hx);
					ev = ev_new("die", seq);
					json_object_set_new(ev, "wafer", json_string(wafer));
					json_object_set_new(ev, "col", json_integer(col));
					json_object_set_new(ev, "row", json_integer(row));
					json_object_set_new(ev, "w", json_integer(PX));
					json_object_set_new(ev, "h", json_integer(PX));
					json_object_set_new(ev, "data", json_string(b64));
					json_object_set_new(ev, "xxh3", json_string(hx));
					emit(ev);
					continue;
				}
				if (ndef) {
					double x = 1234.5 + col * 10, y = 4321.25 + row * 10;
					ev = ev_new("defect", seq);
					event_set_id(ev, event_id_defect(RUN, wafer, col, row, 0));
					json_object_set_new(ev, "wafer", json_string(wafer));
					json_object_set_new(ev, "col", json_integer(col));
					json_object_set_new(ev, "row", json_integer(row));
					json_object_set_new(ev, "index", json_integer(0));
					json_object_set_new(ev, "x_um", json_real(x));
					json_object_set_new(ev, "y_um", json_real(y));
					json_object_set_new(ev, "wx_um", json_real(cx - PITCH / 2 + x));
					json_object_set_new(ev, "wy_um", json_real(cy - PITCH / 2 + y));
					json_object_set_new(ev, "bbox", json_pack("[i,i,i,i]", 7, 27, 9, 29));
					json_object_set_new(ev, "w_um", json_real(468.75));
					json_object_set_new(ev, "h_um", json_real(468.75));
					json_object_set_new(ev, "area_px", json_integer(7));
					json_object_set_new(ev, "area_um2", json_real(170898.4375));
					json_object_set_new(ev, "polarity", json_string("bright"));
					json_object_set_new(ev, "contrast", json_real(41.5));
					json_object_set_new(ev, "class", json_string("particle-s"));
					json_object_set_new(ev, "class_num", json_integer(1));
					emit(ev);
					defects++;
					ddies++;
				}
				char key[24];
				snprintf(key, sizeof key, "%llu", (unsigned long long)seq);
				ev = ev_new("die_done", seq);
				event_set_id(ev, event_id_derived(RUN, "die_done", key));
				json_object_set_new(ev, "wafer", json_string(wafer));
				json_object_set_new(ev, "col", json_integer(col));
				json_object_set_new(ev, "row", json_integer(row));
				json_object_set_new(ev, "defects", json_integer(ndef));
				emit(ev);
			}
		}
		ev = ev_new("wafer_end", ++seq);
		json_object_set_new(ev, "wafer", json_string(wafer));
		json_object_set_new(ev, "slot", json_integer(slot));
		json_object_set_new(ev, "dies", json_integer(dies));
		emit(ev);
		if (!images) {
			ev = ev_new("wafer_summary", seq);
			event_set_id(ev, event_id_derived(RUN, "wafer_summary", wafer));
			json_object_set_new(ev, "wafer", json_string(wafer));
			json_object_set_new(ev, "slot", json_integer(slot));
			json_object_set_new(ev, "defects", json_integer(defects));
			json_object_set_new(ev, "defective_dies", json_integer(ddies));
			json_object_set_new(ev, "density_cm2", json_real(defects / 706.858));
			json_object_set_new(ev, "signature", json_string("random"));
			emit(ev);
		}
	}
	ev = ev_new("run_end", ++seq);
	json_object_set_new(ev, "status", json_string("completed"));
	json_object_set_new(ev, "wafers", json_integer(25));
	json_object_set_new(ev, "dies", json_integer(0));
	emit(ev);
	free(b64);
	return fshut(stdout, "standard output");
}

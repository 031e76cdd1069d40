/*
 * acquire_sim.c: the simulated tool's event sequence (SECS/GEM-like):
 * run_start, state ready, state executing, then per wafer wafer_start,
 * one die event per die, wafer_end; at the end state idle and run_end.
 * Stop, pause, alarms and readiness are handled at die boundaries.
 */
#include "kerf.h"
#include "acquire_run.h"
#include "base64.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOAD_US 2000000   /* simulated wafer load / unload */
#define STATE_US 100000   /* simulated state change */

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Pause at a die boundary until resumed or stopped.  -1 on a write error. */
static int pause_point(struct acq *a, uint64_t *pace_base_us)
{
	uint64_t t0;
	if (!sig_pause || sig_stop)
		return 0;
	log_msg(LOG_INFO, NULL, "paused");
	if (acq_state(a, "paused") < 0 || acq_flush(a) < 0)
		return -1;
	t0 = mono_us();
	while (sig_pause && !sig_stop)
		nap_ms(20);
	acq_tick(a, 1000000);
	if (sig_stop)
		return 0;
	log_msg(LOG_INFO, NULL, "resumed");
	/* Pacing restarts from here, so no burst makes up for the pause. */
	*pace_base_us += mono_us() - t0;
	return acq_state(a, "executing");
}

/* Sleep until die n is due at the given rate. */
static int pace(struct acq *a, double rate, uint64_t base_us, uint64_t n)
{
	uint64_t due = base_us + (uint64_t)((double)n * 1e6 / rate);
	if (acq_flush(a) < 0)
		return -1;
	while (!sig_stop && !sig_pause) {
		uint64_t now = mono_us();
		struct timespec ts;
		if (now >= due)
			break;
		ts.tv_sec = (time_t)((due - now) / 1000000);
		ts.tv_nsec = (long)((due - now) % 1000000) * 1000;
		nanosleep(&ts, NULL);
	}
	return 0;
}

static json_t *run_start(struct acq *a, const struct acq_sim_opts *o, const struct sim *s)
{
	json_t *ev = acq_event(a, "run_start");
	json_object_set_new(ev, "lot", json_string(o->lot));
	json_object_set_new(ev, "recipe", json_string(o->recipe));
	json_object_set_new(ev, "tool", json_string(o->tool));
	json_object_set_new(ev, "source", json_string("sim"));
	json_object_set_new(ev, "wafers", json_integer(o->cfg.wafers));
	json_object_set_new(ev, "diameter_mm", json_real(o->cfg.diameter_mm));
	json_object_set_new(ev, "edge_mm", json_real(o->cfg.edge_mm));
	json_object_set_new(ev, "pitch_um", json_pack("[ff]", o->cfg.pitch_um[0], o->cfg.pitch_um[1]));
	json_object_set_new(ev, "origin_um", json_pack("[ff]", s->origin_um[0], s->origin_um[1]));
	json_object_set_new(ev, "cols", json_integer(s->cols));
	json_object_set_new(ev, "rows", json_integer(s->rows));
	json_object_set_new(ev, "die_px", json_pack("[ii]", s->die_w, s->die_h));
	json_object_set_new(ev, "pixel_um", json_real(s->pixel_um));
	json_object_set_new(ev, "dies", json_integer(s->ndies));
	json_object_set_new(ev, "seed", json_integer((json_int_t)o->cfg.seed));
	return ev;
}

static int wafer_end(struct acq *a, const char *wid, int wafer, int dies)
{
	json_t *ev = acq_event(a, "wafer_end");
	json_object_set_new(ev, "wafer", json_string(wid));
	json_object_set_new(ev, "slot", json_integer(wafer));
	json_object_set_new(ev, "dies", json_integer(dies));
	(*a->c_wafers)++;
	return acq_emit(a, ev);
}

static int run_end(struct acq *a, const char *status, int wafers, uint64_t dies)
{
	json_t *ev = acq_event(a, "run_end");
	json_object_set_new(ev, "status", json_string(status));
	json_object_set_new(ev, "wafers", json_integer(wafers));
	json_object_set_new(ev, "dies", json_integer((json_int_t)dies));
	return acq_emit(a, ev);
}

static int emit_alarm(struct acq *a, const struct acq_inject *in, int set)
{
	static const struct { const char *cat; int code; } alcd[] = {
		{"safety", 1}, {"irrecoverable", 5}, {"warning", 6}, {"attention", 7}, {"data_integrity", 8},
	};
	json_t *ev = acq_event(a, "alarm");
	int code = 0;
	for (size_t i = 0; i < sizeof alcd / sizeof alcd[0]; i++)
		if (!strcmp(alcd[i].cat, in->category))
			code = alcd[i].code;
	json_object_set_new(ev, "alid", json_integer(in->alid));
	json_object_set_new(ev, "text", json_sprintf("simulated %s alarm %ld", in->category, in->alid));
	json_object_set_new(ev, "set", json_boolean(set));
	json_object_set_new(ev, "category", json_string(in->category));
	json_object_set_new(ev, "critical", json_boolean(acq_category_critical(in->category)));
	json_object_set_new(ev, "alcd", json_integer((set ? 128 : 0) | code));
	if (set) {
		(*a->c_alarms)++;
		log_msg(acq_category_critical(in->category) ? LOG_ERROR : LOG_WARN,
			json_pack("{sisssb}", "alid", (int)in->alid, "category", in->category, "critical",
				  acq_category_critical(in->category)),
			"machine alarm %ld (%s)", in->alid, in->category);
	}
	return acq_emit(a, ev);
}

static int not_ready(struct acq *a)
{
	uint64_t end = mono_ms() + (uint64_t)(a->ready_timeout_s * 1000);
	for (size_t i = 0; i < a->ninj; i++) {
		if (a->inj[i].kind != INJ_NOTREADY)
			continue;
		while (!sig_stop && mono_ms() < end)
			nap_ms(20);
		if (sig_stop) {
			log_msg(LOG_WARN, NULL, "stopped while waiting for the machine to become ready");
			return KERF_EX_TEMPFAIL;
		}
		log_msg(LOG_ERROR, json_pack("{sfss}", "ready_timeout_s", a->ready_timeout_s, "state", a->state),
			"machine not ready after %gs: still in state '%s'", a->ready_timeout_s, a->state);
		return KERF_EX_UNAVAILABLE;
	}
	return 0;
}

static int write_truth(FILE *tf, struct acq *a, json_t *truth, uint64_t die_seq)
{
	size_t i;
	json_t *o;
	json_array_foreach(truth, i, o) {
		json_object_set_new(o, "run", json_string(a->run));
		json_object_set_new(o, "die_seq", json_integer((json_int_t)die_seq));
		if (json_dumpf(o, tf, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) < 0 || putc('\n', tf) == EOF)
			return -1;
	}
	*a->c_defects += json_array_size(truth);
	json_array_clear(truth);
	return 0;
}

int acq_run_sim(struct acq *a, const struct acq_sim_opts *o)
{
	char err[256], wid[16];
	struct sim *s;
	FILE *tf = NULL;
	json_t *truth = NULL;
	unsigned char *px;
	char *b64;
	const char *status = "completed";
	int rc = KERF_EX_OK, wafers_done = 0, stopped = 0, aborted = 0, truth_failed = 0;
	uint64_t dieno = 0, pace_base = 0, die_us;
	size_t b64len;

	s = sim_new(&o->cfg, err, sizeof err);
	if (!s) {
		log_msg(LOG_ERROR, NULL, "%s", err);
		return KERF_EX_USAGE;
	}
	a->wall = o->rate > 0;
	die_us = o->rate > 0 ? (uint64_t)(1e6 / o->rate) : 20000;
	if ((rc = not_ready(a)) != 0) {
		sim_free(s);
		return rc;
	}
	if (o->truth) {
		tf = fopen(o->truth, "w");
		if (!tf) {
			log_msg(LOG_ERROR, json_pack("{ss}", "path", o->truth), "cannot open '%s': %s", o->truth,
				strerror(errno));
			sim_free(s);
			return KERF_EX_IOERR;
		}
		truth = json_array();
	}
	px = xmalloc((size_t)s->die_w * (size_t)s->die_h);
	b64len = base64_encoded_len((size_t)s->die_w * (size_t)s->die_h);
	b64 = xmalloc(b64len + 1);
	log_msg(LOG_INFO, json_pack("{sisisisi}", "wafers", o->cfg.wafers, "dies_per_wafer", s->ndies, "cols",
				    s->cols, "rows", s->rows),
		"simulated tool ready");

	if (acq_emit(a, run_start(a, o, s)) < 0)
		goto broken;
	acq_tick(a, STATE_US);
	if (acq_state(a, "ready") < 0)
		goto broken;
	acq_tick(a, STATE_US);
	if (acq_state(a, "executing") < 0)
		goto broken;
	pace_base = mono_us();

	for (int w = 1; w <= o->cfg.wafers && !stopped && !aborted; w++) {
		json_t *ev;
		int dies = 0;
		if (pause_point(a, &pace_base) < 0)
			goto broken;
		if (sig_stop) {
			stopped = 1;
			break;
		}
		sim_wafer_begin(s, w);
		sim_wafer_id(w, wid);
		acq_tick(a, LOAD_US);
		ev = acq_event(a, "wafer_start");
		json_object_set_new(ev, "wafer", json_string(wid));
		json_object_set_new(ev, "slot", json_integer(w));
		json_object_set_new(ev, "lot", json_string(o->lot));
		json_object_set_new(ev, "dies", json_integer(s->ndies));
		json_object_set_new(ev, "signature", json_string(sim_signature_name(s->sig)));
		if (acq_emit(a, ev) < 0)
			goto broken;
		for (int i = 0; i < s->ndies; i++) {
			char hx[17];
			size_t npx = (size_t)s->die_w * (size_t)s->die_h;
			if (pause_point(a, &pace_base) < 0)
				goto broken;
			if (sig_stop) {
				stopped = 1;
				break;
			}
			sim_render(s, i, px, truth);
			base64_encode(px, npx, b64);
			hex64(kerf_xxh3(px, npx), hx);
			acq_tick(a, die_us);
			ev = acq_event(a, "die");
			json_object_set_new(ev, "wafer", json_string(wid));
			json_object_set_new(ev, "col", json_integer(s->dies[i][0]));
			json_object_set_new(ev, "row", json_integer(s->dies[i][1]));
			json_object_set_new(ev, "w", json_integer(s->die_w));
			json_object_set_new(ev, "h", json_integer(s->die_h));
			json_object_set_new(ev, "data", json_stringn(b64, b64len));
			json_object_set_new(ev, "xxh3", json_string(hx));
			if (acq_emit(a, ev) < 0)
				goto broken;
			if (!tf)
				*a->c_defects += s->first[i + 1] - s->first[i];
			if (tf && write_truth(tf, a, truth, a->seq) < 0) {
				/* The lot goes on without its truth; the exit status says so. */
				log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", o->truth, strerror(errno));
				fclose(tf);
				tf = NULL;
				truth_failed = 1;
			}
			dies++;
			dieno++;
			(*a->c_dies)++;
			for (size_t k = 0; k < a->ninj; k++) {
				struct acq_inject *in = &a->inj[k];
				if (in->kind != INJ_ALARM || in->done || in->at != dieno)
					continue;
				in->done = 1;
				if (emit_alarm(a, in, 1) < 0)
					goto broken;
				if (acq_category_critical(in->category))
					aborted = 1;
			}
			if (aborted)
				break;
			if (o->rate > 0 && pace(a, o->rate, pace_base, dieno) < 0)
				goto broken;
		}
		if (stopped && acq_state(a, "stopping") < 0)
			goto broken;
		acq_tick(a, LOAD_US);
		if (wafer_end(a, wid, w, dies) < 0)
			goto broken;
		wafers_done++;
	}
	if (sig_stop && !stopped && !aborted) {
		stopped = 1;
		if (acq_state(a, "stopping") < 0)
			goto broken;
	}
	acq_tick(a, STATE_US);
	if (aborted) {
		status = "aborted";
		rc = KERF_EX_ALARM;
	} else if (stopped) {
		status = "stopped";
		log_msg(LOG_INFO, json_pack("{si}", "signal", (int)sig_stop), "stopped at a die boundary");
	} else if (acq_state(a, "idle") < 0) {
		goto broken;
	}
	if (run_end(a, status, wafers_done, dieno) < 0)
		goto broken;
	goto out;
broken:
	rc = KERF_EX_IOERR;
out:
	if (tf && fclose(tf) != 0) {
		log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", o->truth, strerror(errno));
		truth_failed = 1;
	}
	if (truth_failed && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	json_decref(truth);
	free(px);
	free(b64);
	sim_free(s);
	return rc;
}

/*
 * acquire_hsms.c: kerf-acquire as a GEM host (--connect / --listen
 * hsms:HOST:PORT).  lib/gem_host speaks to the tool; this file runs the
 * poll loop, starts the lot, turns the operator's signals into remote
 * commands, and makes each collection event the tool reports into one
 * kerf event, filling in what kerf's schema needs and the tool did not
 * send (kerf-acquire(1), "The GEM host", says which and how).
 *
 * Every command to the tool (START, and the operator's and alarms'
 * pause, resume, stop and abort) goes through the command coordinator
 * (lib/command.c): one at a time, each with its answer and completion
 * deadlines and its log records.
 *
 * The run ends when the tool's run_end arrives (exit 0, or 3 after a
 * critical alarm), when the link is lost and not back within
 * --reconnect (69), when the set-up or START fails (69), or when the
 * operator stops and the tool cannot say so itself: the profile has no
 * STOP, or the tool does not confirm it within --confirm-timeout.  Whenever kerf ends
 * a run the tool did not end, it closes the stream as every source does:
 * the open wafer's wafer_end, then run_end.
 *
 * Nothing the tool sent and kerf acknowledged is lost: each event is
 * written to standard output before its S6F12 goes out.  Events the tool
 * sent while the link was down never reached kerf; one seq number is left
 * out at each loss, so that kerf-validate reports the gap where it was.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "stats.h"
#include "sig.h"
#include "event.h"
#include "acquire_run.h"
#include "command.h"
#include "gem_host.h"
#include "hsms_trace.h"
#include "reject.h"
#include "secs.h"
#include "sim.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* Events before run_start wait for it, up to this many and this many bytes of images. */
#define PENDING_MAX 1024
#define PENDING_BYTES_MAX (16u << 20)
/* Signals interrupt poll; this bounds the wait when one lands just before it. */
#define TICK_MS 100

/* Defects per die, to number a tool's defects when it does not. */
struct die_count {
	uint64_t key; /* row * cols + col + 1; 0 is a free slot */
	uint32_t n;
};

/* What the run has seen and what kerf fills in from it. */
struct geom {
	long cols, rows, die_w, die_h;
	double pitch[2], origin[2];
	long index_origin[2];
	long ndies;              /* dies per wafer in the grid: wafer_start's default */
};

struct session {
	struct acq *a;
	const struct acq_hsms_opts *o;
	struct profile prof;
	char *prof_path;
	struct gem_host *g;
	json_t *run;             /* lot, recipe, wafers */
	int uses_index;          /* the profile maps die indices (xindex, yindex) */
	/* The run's progress. */
	int started, run_open, run_ended, done, rc;
	int ever_connected;
	uint64_t ready_deadline, lost_at;
	char *lost_cause;
	json_t *pending;         /* [type, ceid, fields] before run_start */
	size_t pending_bytes;    /* the images among them */
	struct geom geo;
	char *wafer;             /* the open wafer, NULL when none */
	long slot, wafers, wafer_dies;
	uint64_t dies;
	struct die_count *dc;
	size_t ndc, capdc;
	/* The commands, and the operator's signals. */
	struct commands *cmds;
	unsigned sig_cursor;
	int stops, stop_sent, abort_sent, critical;
	/* Records. */
	struct hsms_trace *trace;
	struct rejects *rj;
	/* Latency: the rx_us of each S6F11 that made lines not yet written
	 * out; taken into the stats when they are (lat_p50_us, lat_p99_us). */
	uint64_t *rx;
	size_t nrx, caprx;
	/* The readiness checks (kerf-acquire(1)): 0 pending, 1 running, 2 over. */
	int chk_state[4];
	uint64_t chk_start[4];
};

static const char *const check_names[] = { "tool_link", "tool_model", "tool_online", "tool_recipe" };

static void end_run(struct session *s, const char *status, int rc);
static void heard(struct session *s, enum event_type t, const struct profile_event *pe, const json_t *f);

/* ---- the profile ---- */

/* Every command parameter must take a value kerf-acquire has. */
static int check_params(const struct profile *p, char *why, size_t n)
{
	static const char *const known[] = { "lot", "recipe", "wafers", NULL };
	for (int op = 0; op < PROFILE_OP__COUNT; op++)
		for (size_t i = 0; i < p->cmds[op].nparams; i++) {
			const struct profile_param *pp = &p->cmds[op].params[i];
			size_t k;
			for (k = 0; known[k] && strcmp(known[k], pp->field); k++)
				;
			if (!known[k]) {
				snprintf(why, n, "%s: commands.%s: parameter '%s' takes '%s', which kerf-acquire does "
					 "not know (lot, recipe, wafers)", p->path, profile_op_name(op), pp->cpname,
					 pp->field);
				return -1;
			}
		}
	return 0;
}

int acq_profile_open(const char *name, struct profile *p, char **path)
{
	char err[1024], *why = NULL;

	*path = profile_find(name, &why);
	if (!*path) {
		log_msg(LOG_ERROR, json_pack("{ss}", "profile", name), "%s", why);
		free(why);
		return KERF_EX_USAGE;
	}
	if (profile_load(p, *path, err, sizeof err) != 0 || (check_params(p, err, sizeof err) != 0)) {
		if (p->priv)
			profile_release(p);
		log_msg(LOG_ERROR, json_pack("{ss ss}", "profile", *path, "reason", "bad_profile"), "%s", err);
		free(*path);
		*path = NULL;
		return KERF_EX_DATAERR;
	}
	return 0;
}

void acq_hsms_opts_init(struct acq_hsms_opts *o)
{
	struct sim_config sc;

	sim_config_default(&sc);
	memset(o, 0, sizeof *o);
	hsms_config_init(&o->link);
	o->lot = "SIMLOT";
	o->recipe = "sim-default";
	o->wafers = sc.wafers;
	o->diameter_mm = sc.diameter_mm;
	o->edge_mm = sc.edge_mm;
	o->pitch_um[0] = sc.pitch_um[0];
	o->pitch_um[1] = sc.pitch_um[1];
	o->die_px = sc.die_px;
}

/* ---- records: link states, rejects, the trace ---- */

static void link_record(const char *link, const char *cause, enum log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void link_record(const char *link, const char *cause, enum log_level lvl, const char *fmt, ...)
{
	json_t *f = json_pack("{ss}", "link", link);
	va_list ap;

	if (cause)
		json_object_set_new(f, "cause", json_string(cause));
	va_start(ap, fmt);
	log_vmsg(lvl, f, fmt, ap);
	va_end(ap);
}

static void reject(struct session *s, const char *reason, const char *msg, const char *raw, uint64_t n)
{
	struct reject_info ri = {
		.reason = reason, .msg = msg, .run = s->a->run, .seq = -1, .line = n, .offset = 0,
		.raw = raw, .raw_len = raw ? strlen(raw) : 0, .len = raw ? strlen(raw) : 0,
	};
	if (!s->rj)
		s->rj = rejects_open(NULL);
	if (s->rj)
		rejects_write(s->rj, &ri);
	(*s->a->c_rejected)++;
}

/* --hsms-trace: lib/hsms_trace's records, the same as kerf-tool's. */
static void trace(struct gem_host *g, enum hsms_dir dir, const struct hsms_msg *m, void *arg)
{
	struct session *s = arg;

	(void)g;
	hsms_trace_frame(s->trace, dir, m);
}

/* ---- filling in what the tool did not send ---- */

static int num_of(const json_t *j, double *d)
{
	if (!json_is_number(j))
		return -1;
	*d = json_number_value(j);
	return 0;
}

static int pair_of(const json_t *j, double d[2])
{
	return json_array_size(j) == 2 && num_of(json_array_get(j, 0), &d[0]) == 0 &&
			       num_of(json_array_get(j, 1), &d[1]) == 0
		       ? 0 : -1;
}

static long long_of(const json_t *j, long def)
{
	return json_is_integer(j) ? (long)json_integer_value(j) : def;
}

/* f[k] = v unless the tool sent k; the names kerf filled go to 'filled'. */
static void put_default(json_t *f, const char *k, json_t *v, json_t *filled)
{
	if (!v || json_object_get(f, k)) {
		json_decref(v);
		return;
	}
	json_object_set_new(f, k, v);
	if (filled)
		json_array_append_new(filled, json_string(k));
}

/*
 * The die grid as kerf-acquire --sim makes it, from the diameter, edge
 * exclusion and pitch the tool reported or the options give; the die
 * image is --die-px wide for a tool with images, else the virtual image
 * of a KLARF import.
 */
static void fill_grid(struct session *s, json_t *f, json_t *filled)
{
	struct sim_config sc;
	struct sim *sim;
	char err[128];
	double pitch[2];

	sim_config_default(&sc);
	sc.wafers = 1;
	sc.die_px = s->o->die_px;
	if (num_of(json_object_get(f, "diameter_mm"), &sc.diameter_mm) != 0)
		sc.diameter_mm = s->o->diameter_mm;
	if (num_of(json_object_get(f, "edge_mm"), &sc.edge_mm) != 0)
		sc.edge_mm = s->o->edge_mm;
	if (pair_of(json_object_get(f, "pitch_um"), sc.pitch_um) != 0)
		memcpy(sc.pitch_um, s->o->pitch_um, sizeof sc.pitch_um);
	put_default(f, "diameter_mm", json_real(sc.diameter_mm), filled);
	put_default(f, "edge_mm", json_real(sc.edge_mm), filled);
	put_default(f, "pitch_um", json_pack("[ff]", sc.pitch_um[0], sc.pitch_um[1]), filled);
	sim = sc.diameter_mm > 0 && sc.pitch_um[0] > 0 && sc.pitch_um[1] > 0 ? sim_new(&sc, err, sizeof err) : NULL;
	if (sim) {
		put_default(f, "cols", json_integer(sim->cols), filled);
		put_default(f, "rows", json_integer(sim->rows), filled);
		put_default(f, "origin_um", json_pack("[ff]", sim->origin_um[0], sim->origin_um[1]), filled);
		s->geo.ndies = sim->ndies;
	}
	memcpy(pitch, sc.pitch_um, sizeof pitch);
	if (s->prof.images && sim) {
		put_default(f, "die_px", json_pack("[ii]", sim->die_w, sim->die_h), filled);
		put_default(f, "pixel_um", json_real(sim->pixel_um), filled);
	} else if (!s->prof.images) {
		double px;
		long w, h;
		acq_virtual_die(pitch, &px, &w, &h);
		put_default(f, "die_px", json_pack("[II]", (json_int_t)w, (json_int_t)h), filled);
		put_default(f, "pixel_um", json_real(px), filled);
	}
	sim_free(sim);
}

/* Keep the run's geometry for the events that follow. */
static void keep_geometry(struct session *s, json_t *f, json_t *filled)
{
	struct geom *g = &s->geo;
	double px[2] = { 0, 0 }, io[2];

	g->cols = long_of(json_object_get(f, "cols"), 0);
	g->rows = long_of(json_object_get(f, "rows"), 0);
	pair_of(json_object_get(f, "pitch_um"), g->pitch);
	pair_of(json_object_get(f, "origin_um"), g->origin);
	pair_of(json_object_get(f, "die_px"), px);
	g->die_w = (long)px[0];
	g->die_h = (long)px[1];
	if (g->ndies <= 0)
		g->ndies = long_of(json_object_get(f, "dies"), g->cols * g->rows);
	/* Index (0, 0) is the die whose lower-left corner is the wafer centre. */
	if (pair_of(json_object_get(f, "index_origin"), io) == 0) {
		g->index_origin[0] = lround(io[0]);
		g->index_origin[1] = lround(io[1]);
	} else if (s->uses_index && g->pitch[0] > 0 && g->pitch[1] > 0) {
		g->index_origin[0] = -lround(-g->origin[0] / g->pitch[0]);
		g->index_origin[1] = -lround(-g->origin[1] / g->pitch[1]);
		put_default(f, "index_origin", json_pack("[II]", (json_int_t)g->index_origin[0],
							 (json_int_t)g->index_origin[1]), filled);
	}
}

static void fill_run_start(struct session *s, json_t *f)
{
	const char *tool = s->o->tool ? s->o->tool : gem_host_model(s->g) ? gem_host_model(s->g) : s->prof.name;
	json_t *filled = json_array();

	put_default(f, "lot", json_string(s->o->lot), filled);
	put_default(f, "recipe", json_string(s->o->recipe), filled);
	put_default(f, "tool", json_string(tool), filled);
	put_default(f, "wafers", json_integer(s->o->wafers), filled);
	json_object_set_new(f, "source", json_string("hsms"));
	fill_grid(s, f, filled);
	keep_geometry(s, f, filled);
	if (json_array_size(filled)) {
		char *names = json_dumps(filled, JSON_COMPACT);
		log_msg(LOG_INFO, json_pack("{sO}", "filled", filled),
			"run_start: the tool did not report %s: kerf-acquire's values used", names ? names : "?");
		free(names);
	}
	json_decref(filled);
}

/* col and row from the tool's die indices (xindex, yindex) or its wafer position. */
static void fill_cell(struct session *s, json_t *f)
{
	const struct geom *g = &s->geo;
	double wx, wy;

	if (json_object_get(f, "col") && json_object_get(f, "row"))
		return;
	if (json_is_integer(json_object_get(f, "xindex")) && json_is_integer(json_object_get(f, "yindex"))) {
		put_default(f, "col", json_integer(long_of(json_object_get(f, "xindex"), 0) - g->index_origin[0]), NULL);
		put_default(f, "row", json_integer(long_of(json_object_get(f, "yindex"), 0) - g->index_origin[1]), NULL);
	} else if (num_of(json_object_get(f, "wx_um"), &wx) == 0 && num_of(json_object_get(f, "wy_um"), &wy) == 0 &&
		   g->pitch[0] > 0 && g->pitch[1] > 0) {
		put_default(f, "col", json_integer((json_int_t)floor((wx - g->origin[0]) / g->pitch[0])), NULL);
		put_default(f, "row", json_integer((json_int_t)floor((wy - g->origin[1]) / g->pitch[1])), NULL);
	}
}

/* The next index among the defects of die (col, row): 0, 1, ... per wafer. */
static long next_index(struct session *s, long col, long row)
{
	const struct geom *g = &s->geo;
	uint64_t key;
	size_t i;

	/* A die outside the grid gets no slot: kerf-validate refuses it anyway,
	 * and the table stays as small as the grid whatever the tool sends. */
	if (col < 0 || row < 0 || col >= g->cols || row >= g->rows)
		return 0;
	key = (uint64_t)row * (uint64_t)g->cols + (uint64_t)col + 1;
	if (2 * (s->ndc + 1) > s->capdc) {
		struct die_count *old = s->dc;
		size_t oldcap = s->capdc;
		s->capdc = s->capdc ? 2 * s->capdc : 64;
		s->dc = xcalloc(s->capdc, sizeof *s->dc);
		s->ndc = 0;
		for (size_t j = 0; j < oldcap; j++)
			if (old[j].key) {
				for (i = old[j].key * 0x9E3779B97F4A7C15ull % s->capdc; s->dc[i].key; i = (i + 1) % s->capdc)
					;
				s->dc[i] = old[j];
				s->ndc++;
			}
		free(old);
	}
	for (i = key * 0x9E3779B97F4A7C15ull % s->capdc; s->dc[i].key && s->dc[i].key != key; i = (i + 1) % s->capdc)
		;
	if (!s->dc[i].key) {
		s->dc[i].key = key;
		s->ndc++;
	}
	return (long)s->dc[i].n++;
}

static void forget_indices(struct session *s)
{
	free(s->dc);
	s->dc = NULL;
	s->ndc = s->capdc = 0;
}

/* A tool's own defect: its die, its position both ways, its index. */
static void fill_defect(struct session *s, json_t *f)
{
	const struct geom *g = &s->geo;
	long col, row;
	double x, y, wx, wy;

	fill_cell(s, f);
	col = long_of(json_object_get(f, "col"), -1);
	row = long_of(json_object_get(f, "row"), -1);
	if (num_of(json_object_get(f, "x_um"), &x) == 0 && num_of(json_object_get(f, "y_um"), &y) == 0) {
		put_default(f, "wx_um", json_real(g->origin[0] + (double)col * g->pitch[0] + x), NULL);
		put_default(f, "wy_um", json_real(g->origin[1] + (double)row * g->pitch[1] + y), NULL);
	} else if (num_of(json_object_get(f, "wx_um"), &wx) == 0 && num_of(json_object_get(f, "wy_um"), &wy) == 0) {
		put_default(f, "x_um", json_real(wx - g->origin[0] - (double)col * g->pitch[0]), NULL);
		put_default(f, "y_um", json_real(wy - g->origin[1] - (double)row * g->pitch[1]), NULL);
	}
	if (!json_is_integer(json_object_get(f, "index")))
		json_object_set_new(f, "index", json_integer(next_index(s, col, row)));
	(*s->a->c_defects)++;
}

static void open_wafer(struct session *s, json_t *f)
{
	char wid[16];

	put_default(f, "slot", json_integer(s->wafers + 1), NULL);
	if (!json_object_get(f, "wafer")) {
		sim_wafer_id((int)long_of(json_object_get(f, "slot"), 0), wid);
		put_default(f, "wafer", json_string(wid), NULL);
	}
	put_default(f, "lot", json_incref(json_object_get(s->run, "lot")), NULL);
	put_default(f, "dies", json_integer(s->geo.ndies), NULL);
	free(s->wafer);
	s->wafer = json_is_string(json_object_get(f, "wafer")) ? xstrdup(json_string_value(json_object_get(f, "wafer")))
								 : NULL;
	s->slot = long_of(json_object_get(f, "slot"), s->wafers + 1);
	s->wafer_dies = 0;
	s->wafers++;
	forget_indices(s);
}

static void close_wafer(struct session *s, json_t *f)
{
	if (s->wafer)
		put_default(f, "wafer", json_string(s->wafer), NULL);
	put_default(f, "slot", json_integer(s->slot), NULL);
	put_default(f, "dies", json_integer(s->wafer_dies), NULL);
	free(s->wafer);
	s->wafer = NULL;
	(*s->a->c_wafers)++;
	forget_indices(s);
}

/* A text among kerf's names, case aside; NULL when none (or not text). */
static const char *known_name(const char *t, const char *const *names)
{
	for (size_t i = 0; t && names[i]; i++)
		if (!strcasecmp(t, names[i]))
			return names[i];
	return NULL;
}

static const char *known_value(const json_t *v, const char *const *names)
{
	return known_name(json_string_value(v), names);
}

static const char *const states[] = { "idle", "ready", "executing", "paused", "stopping", NULL };
static const char *const statuses[] = { "completed", "stopped", "aborted", NULL };

/* 0, or -1 when the event cannot be made right (why filled). */
static int fill_state(struct session *s, const struct profile_event *pe, json_t *f, char *why, size_t n)
{
	const char *st = pe ? known_name(pe->state, states) : NULL;

	if (json_object_get(f, "state"))
		st = known_value(json_object_get(f, "state"), states);
	if (!st) {
		snprintf(why, n, "state event without a state kerf knows (idle, ready, executing, paused, stopping)");
		return -1;
	}
	json_object_set_new(f, "state", json_string(st));
	json_object_set_new(f, "prev", json_string(known_value(json_object_get(f, "prev"), states)
						   ? known_value(json_object_get(f, "prev"), states) : s->a->state));
	s->a->state = st;
	return 0;
}

static void fill_run_end(struct session *s, json_t *f)
{
	const char *st = known_value(json_object_get(f, "status"), statuses);

	if (!st) {
		if (json_object_get(f, "status"))
			json_object_set(f, "tool_status", json_object_get(f, "status"));
		st = s->critical ? "aborted" : s->stop_sent || s->abort_sent ? "stopped" : "completed";
	}
	json_object_set_new(f, "status", json_string(st));
	put_default(f, "wafers", json_integer(s->wafers), NULL);
	put_default(f, "dies", json_integer((json_int_t)s->dies), NULL);
}

/* ---- events out ---- */

/* Write one event with the fields f (stolen), at the machine time f says. */
static int emit(struct session *s, enum event_type t, json_t *f)
{
	struct acq *a = s->a;
	const char *ts = json_string_value(json_object_get(f, "t"));
	json_t *ev;

	a->wall = !(ts && event_time_parse(ts, &a->t) == 0);
	json_object_del(f, "t");
	ev = acq_event(a, event_type_name(t));
	json_object_update(ev, f);
	if (t == EV_DEFECT) {
		const char *w = json_string_value(json_object_get(f, "wafer"));
		event_set_id(ev, event_id_defect(a->run, w ? w : "", long_of(json_object_get(f, "col"), -1),
						 long_of(json_object_get(f, "row"), -1),
						 long_of(json_object_get(f, "index"), 0)));
	}
	json_decref(f);
	if (acq_emit(a, ev) < 0) {
		s->done = 1;
		s->rc = KERF_EX_IOERR;
		return -1;
	}
	return 0;
}

static void reject_fields(struct session *s, const char *why, json_t *f)
{
	char *raw = json_dumps(f, JSON_COMPACT);
	log_msg(LOG_ERROR, json_pack("{ss}", "reason", "bad_value"), "event refused: %s", why);
	reject(s, "bad_value", why, raw, 0);
	free(raw);
	json_decref(f);
}

/* A critical alarm ends the run: ABORT to the tool when it has one, then run_end aborted. */
static void critical_alarm(struct session *s, uint32_t alid)
{
	if (s->critical)
		return;
	s->critical = 1;
	log_msg(LOG_ERROR, json_pack("{sI}", "alid", (json_int_t)alid), "critical alarm %lu: aborting the lot",
		(unsigned long)alid);
	/* An ABORT the tool cannot take makes kerf end the run (changed()). */
	commands_submit(s->cmds, PROFILE_ABORT, CMD_BY_ALARM);
	/* Before run_start there is nothing to wait for: the lot ends now. */
	if (!s->run_open)
		end_run(s, "aborted", KERF_EX_ALARM);
}

/*
 * An alarm's members as kerf has them (from S5F1 or a collection event):
 * set, from ALCD bit 8 when the tool did not say; the category the
 * profile gives its ALID, else the tool's, else ALCD's.  0, or -1 when
 * there is no ALID.
 */
static int fill_alarm(struct session *s, json_t *f)
{
	static const char *const cats[] = { "safety", "irrecoverable", "warning", "attention", "data_integrity", NULL };
	json_t *alid = json_object_get(f, "alid");
	int alcd = (int)long_of(json_object_get(f, "alcd"), -1);
	const char *cat = known_value(json_object_get(f, "category"), cats);
	const struct profile_alarm *pa;

	if (!json_is_integer(alid) || json_integer_value(alid) < 0 || json_integer_value(alid) > UINT32_MAX)
		return -1;
	if (!json_is_boolean(json_object_get(f, "set")))
		json_object_set_new(f, "set", json_boolean(alcd >= 0 ? (alcd & 0x80) != 0 : 1));
	pa = profile_alarm(&s->prof, (uint32_t)json_integer_value(alid));
	if (pa && pa->category)
		cat = pa->category;
	else if (!cat)
		cat = alcd >= 0 ? event_alarm_category((unsigned)alcd) : "attention";
	json_object_set_new(f, "category", json_string(cat));
	return 0;
}

static int alarm_critical(const json_t *f)
{
	return json_is_true(json_object_get(f, "set")) &&
	       event_alarm_critical(json_string_value(json_object_get(f, "category")));
}

/* An alarm filled in by fill_alarm: acq_alarm's one shape, then a critical one ends the run. */
static void deliver_alarm(struct session *s, json_t *f)
{
	const char *ts = json_string_value(json_object_get(f, "t"));
	const char *text = json_string_value(json_object_get(f, "text"));
	uint32_t alid = (uint32_t)json_integer_value(json_object_get(f, "alid"));

	s->a->wall = !(ts && event_time_parse(ts, &s->a->t) == 0);
	if (acq_alarm(s->a, alid, text ? text : "", json_is_true(json_object_get(f, "set")),
		      json_string_value(json_object_get(f, "category")),
		      (int)long_of(json_object_get(f, "alcd"), -1)) < 0) {
		s->done = 1;
		s->rc = KERF_EX_IOERR;
	} else if (alarm_critical(f)) {
		critical_alarm(s, alid);
	}
	json_decref(f);
}

/* One event of a running run: filled in, then written. */
static void deliver(struct session *s, enum event_type t, const struct profile_event *pe, json_t *f)
{
	char why[160];

	switch (t) {
	case EV_STATE:
		if (fill_state(s, pe, f, why, sizeof why) != 0) {
			reject_fields(s, why, f);
			return;
		}
		break;
	case EV_WAFER_START:
		open_wafer(s, f);
		break;
	case EV_DIE:
		if (s->wafer)
			put_default(f, "wafer", json_string(s->wafer), NULL);
		fill_cell(s, f);
		put_default(f, "w", json_integer(s->geo.die_w), NULL);
		put_default(f, "h", json_integer(s->geo.die_h), NULL);
		s->wafer_dies++;
		s->dies++;
		(*s->a->c_dies)++;
		/* A tool without images reports die results: they count, they are no event. */
		if (!s->prof.images) {
			json_decref(f);
			return;
		}
		break;
	case EV_DEFECT:
		if (s->wafer)
			put_default(f, "wafer", json_string(s->wafer), NULL);
		fill_defect(s, f);
		break;
	case EV_WAFER_END:
		close_wafer(s, f);
		break;
	case EV_ALARM:
		deliver_alarm(s, f);
		return;
	case EV_RUN_END:
		/* A run_end inside a wafer (after STOP, most often) closes it first, as the simulator does. */
		if (s->wafer) {
			json_t *we = json_object();
			log_msg(LOG_INFO, json_pack("{ss}", "wafer", s->wafer), "run_end with wafer '%s' open: wafer_end first",
				s->wafer);
			close_wafer(s, we);
			if (emit(s, EV_WAFER_END, we) < 0) {
				json_decref(f);
				return;
			}
		}
		fill_run_end(s, f);
		if (emit(s, t, f) == 0) {
			s->run_ended = s->done = 1;
			s->rc = s->critical ? KERF_EX_ALARM : KERF_EX_OK;
			log_msg(LOG_INFO, NULL, "the tool ended the run");
		}
		return;
	default:
		break;
	}
	emit(s, t, f);
}

/* The S6F11 read at rx_us (0: not one) made lines: its latency is taken when they are written out. */
static void made_lines(struct session *s, uint64_t rx_us)
{
	if (!rx_us)
		return;
	if (s->nrx == s->caprx) {
		s->caprx = s->caprx ? 2 * s->caprx : 16;
		s->rx = xrealloc(s->rx, s->caprx * sizeof *s->rx);
	}
	s->rx[s->nrx++] = rx_us;
}

/* deliver, noting the lines it made for the S6F11 read at rx_us. */
static void deliver_timed(struct session *s, enum event_type t, const struct profile_event *pe, json_t *f,
			  uint64_t rx_us)
{
	uint64_t lines = s->a->lines;

	deliver(s, t, pe, f);
	if (s->a->lines > lines)
		made_lines(s, rx_us);
}

/* Write out what is buffered; the S6F11s whose lines went out get their latency. */
static int flush_out(struct session *s)
{
	uint64_t now;

	if (acq_flush(s->a) < 0) {
		s->nrx = 0;
		return -1;
	}
	if (s->nrx) {
		now = mono_us();
		for (size_t i = 0; i < s->nrx; i++)
			stats_latency(&s->a->stats, now - s->rx[i]);
		s->nrx = 0;
	}
	return 0;
}

static void flush_pending(struct session *s)
{
	size_t i;
	json_t *p;

	json_array_foreach(s->pending, i, p) {
		json_t *ceid = json_array_get(p, 1);
		const struct profile_event *pe = json_is_integer(ceid)
			? profile_event(&s->prof, (uint32_t)json_integer_value(ceid)) : NULL;
		if (s->done)
			break;
		deliver_timed(s, (enum event_type)json_integer_value(json_array_get(p, 0)), pe,
			      json_incref(json_array_get(p, 2)), (uint64_t)json_integer_value(json_array_get(p, 3)));
	}
	json_array_clear(s->pending);
	s->pending_bytes = 0;
}

/*
 * The way in for every event and alarm (f stolen): held until run_start,
 * then delivered.  rx_us: when the S6F11 that brought it was read, 0 for
 * an alarm.
 */
static void take(struct session *s, enum event_type t, const struct profile_event *pe, json_t *f, uint64_t rx_us)
{
	json_t *run = json_object_get(f, "run");
	struct timespec now;
	char ts[32];

	heard(s, t, pe, f);
	if (!json_object_get(f, "t")) {
		real_now(&now);
		event_time_fmt(&now, ts);
		json_object_set_new(f, "t", json_string(ts));
	}
	if (json_is_string(run) && !s->a->run)
		acq_set_run(s->a, json_string_value(run));
	json_object_del(f, "run");
	if (t == EV_ALARM && fill_alarm(s, f) != 0) {
		reject_fields(s, "an alarm event without an ALID", f);
		return;
	}
	/* A critical alarm aborts the lot at once, even while it waits for run_start. */
	if (t == EV_ALARM && !s->run_open && alarm_critical(f))
		critical_alarm(s, (uint32_t)json_integer_value(json_object_get(f, "alid")));
	if (t == EV_RUN_START) {
		if (!s->a->run) {
			char *name = safe_name(json_string_value(json_object_get(s->run, "lot")), 200);
			char *r = xasprintf("hsms-%s", name);
			acq_set_run(s->a, r);
			free(r);
			free(name);
		}
		fill_run_start(s, f);
		if (emit(s, t, f) == 0) {
			made_lines(s, rx_us);
			s->run_open = 1;
			flush_pending(s);
		}
		return;
	}
	if (s->run_open) {
		deliver_timed(s, t, pe, f, rx_us);
		return;
	}
	/* The tool's run is over and kerf never saw it begin: most often a
	 * profile whose run_start CEID is not the one the tool sends. */
	if (t == EV_RUN_END) {
		log_msg(LOG_ERROR, json_pack("{ss}", "reason", "no_run_start"),
			"the tool ended its run and sent no run_start (CEID %u in profile '%s'): nothing to write",
			profile_event_of(&s->prof, EV_RUN_START)->ceid, s->prof.name);
		json_decref(f);
		end_run(s, "aborted", KERF_EX_DATAERR);
		return;
	}
	/* A tool that never starts its run must not make us grow for ever. */
	if (json_array_size(s->pending) >= PENDING_MAX ||
	    s->pending_bytes + json_string_length(json_object_get(f, "data")) > PENDING_BYTES_MAX) {
		reject_fields(s, "more events before run_start than kerf-acquire holds", f);
		return;
	}
	s->pending_bytes += json_string_length(json_object_get(f, "data"));
	json_array_append_new(s->pending, json_pack("[I o o I]", (json_int_t)t, pe ? json_integer(pe->ceid) : json_null(), f,
						    (json_int_t)rx_us));
}

/* ---- readiness checks ---- */

/*
 * One check record: {"check", "outcome", "ms", "reason"}.  kerf(1) reads
 * them (every stage's log is its): pending at the start, running when
 * the check begins, then ok, failed or skipped with how long it took.
 */
static void check_record(struct session *s, const char *name, const char *outcome, const char *reason)
{
	size_t i;
	json_t *f;
	int fail = !strcmp(outcome, "failed");

	for (i = 0; i < 4 && strcmp(check_names[i], name); i++)
		;
	if (i == 4)
		return;
	if (!strcmp(outcome, "running")) {
		if (s->chk_state[i] != 0)
			return;
		s->chk_state[i] = 1;
		s->chk_start[i] = mono_ms();
	} else if (strcmp(outcome, "pending")) {
		if (s->chk_state[i] == 2)
			return;
		if (s->chk_state[i] == 0)
			s->chk_start[i] = mono_ms();
		s->chk_state[i] = 2;
	}
	f = json_pack("{ss ss}", "check", name, "outcome", outcome);
	if (s->chk_state[i] == 2)
		json_object_set_new(f, "ms", json_integer((json_int_t)(mono_ms() - s->chk_start[i])));
	if (reason)
		json_object_set_new(f, "reason", json_string(reason));
	log_msg(fail ? LOG_ERROR : LOG_INFO, f, "check %s: %s%s%s", name, outcome, reason ? ": " : "",
		reason ? reason : "");
}

static void on_check(struct gem_host *g, const char *check, const char *outcome, const char *reason, void *arg)
{
	(void)g;
	check_record(arg, check, outcome, reason);
}

/* ---- ending ---- */

/* kerf ends the run the tool did not end: the open wafer's wafer_end, then run_end. */
static void end_run(struct session *s, const char *status, int rc)
{
	struct acq *a = s->a;
	json_t *f;

	if (s->done)
		return;
	s->done = 1;
	s->rc = rc;
	commands_end(s->cmds, s->run_open ? "kerf ended the run" : "kerf ended the run before the tool started the lot");
	if (!s->run_open || s->run_ended)
		return;
	if (json_array_size(s->pending))
		log_msg(LOG_WARN, json_pack("{si}", "events", (int)json_array_size(s->pending)),
			"%zu events held for run_start dropped", json_array_size(s->pending));
	a->wall = 1;
	if (!strcmp(status, "stopped") && strcmp(a->state, "stopping") && acq_state(a, "stopping") < 0)
		goto broken;
	if (s->wafer) {
		f = json_object();
		close_wafer(s, f);
		if (emit(s, EV_WAFER_END, f) < 0)
			goto broken;
	}
	f = json_pack("{ss}", "status", status);
	fill_run_end(s, f);
	s->run_ended = 1;
	if (emit(s, EV_RUN_END, f) == 0)
		return;
broken:
	s->rc = KERF_EX_IOERR;
}

/* The link is gone for good: an alarm says so in the stream, as for --listen. */
static void end_lost(struct session *s, const char *why)
{
	log_msg(LOG_ERROR, json_pack("{ss ss}", "reason", "connection_lost", "cause", why),
		"connection to the tool lost: %s", why);
	if (s->run_open && !s->run_ended && !s->done) {
		char *text = xasprintf("machine connection lost: %s", why);
		if (acq_alarm(s->a, ACQ_ALID_DROPPED, text, 1, "irrecoverable", -1) < 0)
			s->rc = KERF_EX_IOERR;
		free(text);
	}
	end_run(s, "aborted", KERF_EX_UNAVAILABLE);
}

/* ---- what the GEM host reports ---- */

static void on_link(struct gem_host *g, enum gem_link link, const char *cause, void *arg)
{
	struct session *s = arg;

	(void)g;
	if (link != GEM_LINK_LOST) {
		link_record(gem_link_name(link), NULL, LOG_INFO, "link %s", gem_link_name(link));
		if (link == GEM_LINK_COMMUNICATING)
			check_record(s, "tool_link", "ok", NULL);
		if (link == GEM_LINK_CONNECTED)
			s->ever_connected = 1;
		return;
	}
	/* Our own Separate.req at the end is no loss. */
	if (s->done) {
		link_record("closed", cause, LOG_INFO, "link closed");
		return;
	}
	link_record("lost", cause, LOG_WARN, "link lost: %s", cause);
	commands_ready(s->cmds, 0);
	if (!s->o->reconnect_ms) {
		end_lost(s, cause);
		return;
	}
	if (!s->lost_at) {
		s->lost_at = mono_ms();
		free(s->lost_cause);
		s->lost_cause = xstrdup(cause);
		/* What the tool sent while we were away shows up as a gap. */
		if (s->run_open)
			s->a->seq++;
	}
	link_record("connecting", NULL, LOG_INFO, "reconnecting (within %llu ms)", (unsigned long long)s->o->reconnect_ms);
}

static void on_ready(struct gem_host *g, void *arg)
{
	struct session *s = arg;

	if (s->lost_at) {
		log_msg(LOG_INFO, json_pack("{sI}", "after_ms", (json_int_t)(mono_ms() - s->lost_at)),
			"the tool is set up again after %llu ms: the run goes on",
			(unsigned long long)(mono_ms() - s->lost_at));
		s->lost_at = 0;
	}
	(void)g;
	if (s->done)
		return;
	/* START (queued at the beginning) and whatever waited for the tool go now. */
	commands_ready(s->cmds, 1);
}

static void on_failed(struct gem_host *g, const char *step, const char *why, void *arg)
{
	struct session *s = arg;

	(void)g;
	/* Communications never established: the link's check fails. */
	if (!strncmp(step, "S1F13", 5))
		check_record(s, "tool_link", "failed", why);
	log_msg(LOG_ERROR, json_pack("{ss ss ss}", "reason", "setup_failed", "step", step, "why", why),
		"the tool could not be set up: %s: %s", step, why);
	end_run(s, "aborted", KERF_EX_UNAVAILABLE);
}

static void on_command(struct gem_host *g, enum profile_op op, int hcack, void *arg)
{
	struct session *s = arg;

	(void)g;
	commands_reply(s->cmds, op, hcack, hcack < 0 ? "no reply from the tool (T3, or the link closed)" : NULL);
}

static void on_event(struct gem_host *g, const struct gem_event *ev, void *arg)
{
	struct session *s = arg;

	(void)g;
	if (s->done)
		return;
	take(s, ev->pe->type, ev->pe, json_incref(ev->fields), ev->rx_us);
	/* Written before its S6F12 goes out: acknowledged means passed on. */
	if (flush_out(s) < 0 && !s->done) {
		s->done = 1;
		s->rc = KERF_EX_IOERR;
	}
}

static void on_alarm(struct gem_host *g, const struct gem_alarm *al, void *arg)
{
	struct session *s = arg;

	(void)g;
	if (s->done)
		return;
	take(s, EV_ALARM, NULL, json_pack("{sI ss sb sI}", "alid", (json_int_t)al->alid, "text", al->text, "set",
					   (al->alcd & 0x80) != 0, "alcd", (json_int_t)al->alcd), 0);
	flush_out(s);
}

static void on_reject(struct gem_host *g, const char *reason, const char *msg, const char *sml, uint64_t n,
		      void *arg)
{
	(void)g;
	reject(arg, reason, msg, sml, n);
}

/* ---- the commands ---- */

/* The coordinator sends through gem_host_command, the one way kerf's operations reach the tool. */
static int cmd_send(void *arg, const struct cmd *c, char *why, size_t n)
{
	struct session *s = arg;

	if (!s->prof.cmds[c->op].rcmd) {
		snprintf(why, n, "profile '%s' has no %s command", s->prof.name, profile_op_name(c->op));
		return -1;
	}
	if (gem_host_command(s->g, c->op) != 0) {
		snprintf(why, n, "cannot send it to the tool");
		return -1;
	}
	return 0;
}

/* What a command's fate means for the run. */
static void cmd_changed(void *arg, const struct cmd *c)
{
	struct session *s = arg;
	const char *meaning = c->hcack < 0 ? "no answer" : gem_hcack_name(c->hcack);

	if (c->fate == CMD_SENT) {
		s->stop_sent |= c->op == PROFILE_STOP;
		s->abort_sent |= c->op == PROFILE_ABORT;
		return;
	}
	if (c->op == PROFILE_START) {
		if (c->fate == CMD_ACCEPTED || c->fate == CMD_CONFIRMED) {
			if (!s->started)
				log_msg(LOG_INFO, json_pack("{si}", "hcack", c->hcack), "the tool started the lot");
			s->started = 1;
		} else if (c->fate == CMD_REFUSED || c->fate == CMD_TIMED_OUT) {
			log_msg(LOG_ERROR, json_pack("{ss si ss}", "reason", "start_refused", "hcack", c->hcack, "meaning",
						     meaning),
				c->fate == CMD_TIMED_OUT ? "the tool did not carry out START in time (its answer: %s)"
							  : "the tool refused START: %s",
				meaning);
			end_run(s, "aborted", KERF_EX_UNAVAILABLE);
		}
		return;
	}
	if (c->op == PROFILE_STOP && c->fate == CMD_ACCEPTED) {
		log_msg(LOG_INFO, NULL, "STOP accepted: waiting for the tool's run_end");
	} else if (c->op == PROFILE_STOP && (c->fate == CMD_TIMED_OUT || (c->fate == CMD_REFUSED && c->hcack < 0))) {
		/* The tool will not end the run (it cannot be told, or said nothing): kerf does. */
		log_msg(LOG_WARN, NULL, "the tool did not confirm the stop: kerf ends the run itself");
		end_run(s, s->critical ? "aborted" : "stopped", s->critical ? KERF_EX_ALARM : KERF_EX_OK);
	} else if (c->op == PROFILE_ABORT && (c->fate == CMD_CONFIRMED || c->fate == CMD_TIMED_OUT ||
					      c->fate == CMD_REFUSED)) {
		/* An abort is at once: done, or not taken, kerf ends the run now (HCACK 4: at the tool's run_end). */
		if (c->fate != CMD_CONFIRMED)
			log_msg(LOG_WARN, NULL, "the tool did not take the abort: kerf ends the run itself");
		end_run(s, s->critical ? "aborted" : "stopped", s->critical ? KERF_EX_ALARM : KERF_EX_OK);
	}
}

/* A state or run_end the tool reports, as the coordinator needs it (the confirmations). */
static void heard(struct session *s, enum event_type t, const struct profile_event *pe, const json_t *f)
{
	const char *what = NULL;

	if (t == EV_STATE) {
		what = known_value(json_object_get(f, "state"), states);
		if (!what && !json_object_get(f, "state") && pe)
			what = known_name(pe->state, states);
		if (!what)
			return;
	} else if (t == EV_RUN_END) {
		/* As fill_run_end: a status the tool did not give is what kerf asked for. */
		what = known_value(json_object_get(f, "status"), statuses);
		if (!what)
			what = s->critical ? "aborted" : s->stop_sent || s->abort_sent ? "stopped" : "completed";
	} else if (t != EV_RUN_START) {
		return;
	}
	commands_event(s->cmds, event_type_name(t), what);
}

/* ---- the operator ---- */

/* SIGTERM/SIGINT: STOP, a second one ABORT; kerf ends the run itself when the tool has not started it. */
static void stop_signal(struct session *s, int signo)
{
	log_msg(LOG_INFO, json_pack("{si si}", "signal", signo, "stops", s->stops), "stop signal %d (%s)", signo,
		s->stops == 1 ? "stop" : "abort");
	commands_submit(s->cmds, s->stops == 1 ? PROFILE_STOP : PROFILE_ABORT, CMD_BY_OPERATOR);
	if (!s->started && !s->done) {
		log_msg(LOG_WARN, NULL, "stopped before the tool started the lot");
		end_run(s, "stopped", s->run_open ? KERF_EX_OK : KERF_EX_TEMPFAIL);
	}
}

/* Signals in, commands out: each signal one command, in the order they came. */
static void operator(struct session *s)
{
	int signo;

	while ((signo = sig_next_command(&s->sig_cursor)) != 0 && !s->done) {
		if (signo == SIGTERM || signo == SIGINT) {
			s->stops++;
			stop_signal(s, signo);
		} else {
			commands_submit(s->cmds, signo == SIGUSR1 ? PROFILE_PAUSE : PROFILE_RESUME, CMD_BY_OPERATOR);
		}
	}
	commands_tick(s->cmds);
}

/* ---- the loop ---- */

static int start(struct session *s)
{
	struct gem_host_config cfg;
	struct gem_host_callbacks cb = {
		.arg = s, .on_link = on_link, .on_ready = on_ready, .on_failed = on_failed, .on_event = on_event,
		.on_alarm = on_alarm, .on_reject = on_reject, .on_command = on_command, .on_check = on_check,
		.on_trace = s->trace ? trace : NULL,
	};
	const struct acq_hsms_opts *o = s->o;

	cfg.hsms = o->link;
	cfg.hsms.mode = o->passive ? HSMS_PASSIVE : HSMS_ACTIVE;
	cfg.hsms.host = o->host;
	cfg.hsms.port = o->port;
	cfg.profile = &s->prof;
	cfg.run = s->run;
	s->g = gem_host_new(&cfg, &cb);
	for (size_t i = 0; i < 4; i++)
		check_record(s, check_names[i], "pending", NULL);
	check_record(s, "tool_link", "running", NULL);
	link_record("connecting", NULL, LOG_INFO, o->passive ? "waiting for the tool on '%s:%s'" : "connecting to '%s:%s'",
		    o->host, o->port);
	if (gem_host_start(s->g) != 0) {
		int e = errno;
		check_record(s, "tool_link", "failed", strerror(e));
		errno = e;
		log_msg(LOG_ERROR, json_pack("{ss ss}", "addr", o->host, "reason", "no_connection"),
			"cannot %s '%s:%s': %s", o->passive ? "listen on" : "connect to", o->host, o->port,
			strerror(errno));
		return KERF_EX_UNAVAILABLE;
	}
	s->ready_deadline = mono_ms() + (uint64_t)(s->a->ready_timeout_s * 1000);
	return 0;
}

/* Deadlines of our own: the first connection, and a lost one's return. */
static void deadlines(struct session *s)
{
	uint64_t now = mono_ms();

	if (!s->ever_connected && now >= s->ready_deadline && !s->done) {
		check_record(s, "tool_link", "failed", "no connection within the ready timeout");
		log_msg(LOG_ERROR, json_pack("{ss sf}", "reason", "no_connection", "ready_timeout_s", s->a->ready_timeout_s),
			"machine not ready: no connection with '%s:%s' within %gs", s->o->host, s->o->port,
			s->a->ready_timeout_s);
		end_run(s, "aborted", KERF_EX_UNAVAILABLE);
	}
	if (s->lost_at && now >= s->lost_at + s->o->reconnect_ms && !s->done) {
		char *why = xasprintf("%s, and not back within %llu ms", s->lost_cause ? s->lost_cause : "lost",
				      (unsigned long long)s->o->reconnect_ms);
		end_lost(s, why);
		free(why);
	}
}

static int poll_timeout(const struct session *s)
{
	int t = hsms_timeout_ms(gem_host_conn(s->g));
	uint64_t now = mono_ms(), d = UINT64_MAX;
	int c = commands_timeout_ms(s->cmds);

	if (c >= 0)
		d = now + (uint64_t)c;
	if (!s->ever_connected && s->ready_deadline < d)
		d = s->ready_deadline;
	if (s->lost_at && s->lost_at + s->o->reconnect_ms < d)
		d = s->lost_at + s->o->reconnect_ms;
	if (d != UINT64_MAX && (t < 0 || (uint64_t)t > (d > now ? d - now : 0)))
		t = d > now ? (int)(d - now) : 0;
	return t < 0 || t > TICK_MS ? TICK_MS : t;
}

static void loop(struct session *s)
{
	struct hsms_conn *c = gem_host_conn(s->g);

	while (!s->done) {
		struct pollfd p = { hsms_fd(c), POLLIN, 0 };
		(void)poll(&p, 1, poll_timeout(s));
		hsms_dispatch(c);
		operator(s);
		deadlines(s);
		if (flush_out(s) < 0 && !s->done) {
			s->done = 1;
			s->rc = KERF_EX_IOERR;
		}
	}
	/* Separate.req when selected; the last S6F12 went out with the dispatch before. */
	hsms_stop(c);
}

int acq_run_hsms(struct acq *a, const struct acq_hsms_opts *o)
{
	struct session s;
	int rc;

	memset(&s, 0, sizeof s);
	s.a = a;
	s.o = o;
	rc = acq_profile_open(o->profile, &s.prof, &s.prof_path);
	if (rc != 0)
		return rc;
	log_msg(LOG_INFO, json_pack("{ss ss}", "profile", s.prof.name, "path", s.prof_path), "profile '%s' from '%s'",
		s.prof.name, s.prof_path);
	for (size_t i = 0; i < s.prof.nvars; i++)
		if (!strcmp(s.prof.vars[i].field, "xindex") || !strcmp(s.prof.vars[i].field, "yindex"))
			s.uses_index = 1;
	/* Under kerf(1) the traffic goes to the run directory by default,
	 * beside rejects.ndjson, so a failed run can be read with jq. */
	const char *rundir = getenv("KERF_RUNDIR");
	char *trace_path = o->trace ? xstrdup(o->trace) : rundir && *rundir ? xasprintf("%s/hsms.ndjson", rundir) : NULL;
	if (trace_path) {
		s.trace = hsms_trace_open(trace_path);
		if (!s.trace) {
			log_msg(LOG_ERROR, json_pack("{ss}", "path", trace_path), "cannot open '%s': %s", trace_path,
				strerror(errno));
			free(trace_path);
			profile_release(&s.prof);
			free(s.prof_path);
			return KERF_EX_IOERR;
		}
		free(trace_path);
	}
	s.run = json_pack("{ss ss si}", "lot", o->lot, "recipe", o->recipe, "wafers", o->wafers);
	s.pending = json_array();
	/* T3 is lib/hsms's to enforce (commands_reply -1); the coordinator's own reply deadline is a backstop. */
	struct cmd_tool tool = { &s, cmd_send, cmd_changed };
	s.cmds = commands_new(o->link.t3_ms + 1000, (uint64_t)(a->confirm_timeout_s * 1000), &tool);
	commands_submit(s.cmds, PROFILE_START, CMD_BY_KERF);
	rc = start(&s);
	if (rc == 0) {
		loop(&s);
		rc = s.rc;
	}
	gem_host_free(s.g);
	commands_free(s.cmds);
	if (hsms_trace_close(s.trace) != 0 && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	if (s.rj && rejects_close(s.rj) != 0 && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	json_decref(s.run);
	json_decref(s.pending);
	free(s.wafer);
	free(s.lost_cause);
	free(s.rx);
	forget_indices(&s);
	profile_release(&s.prof);
	free(s.prof_path);
	return rc;
}

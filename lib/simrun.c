/*
 * simrun.c: see simrun.h.
 *
 * The lot is a small state machine, one event per simrun_next call, so
 * that a caller that must stay responsive (kerf-tool's poll loop) and one
 * that may block (kerf-acquire's pipe) walk the same sequence.  The
 * phases are the points where a tool can be between two events; requests
 * (pause, stop, abort) are levels the caller sets, looked at only at a
 * wafer or die boundary, exactly where kerf-acquire always took its
 * signals, so that the same seed and the same requests give the same
 * events.
 */
#include "util.h"
#include "log.h"
#include "event.h"
#include "cli.h"
#include "simrun.h"
#include "base64.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

#define LOAD_US 2000000   /* simulated wafer load / unload */
#define STATE_US 100000   /* simulated state change */
#define PAUSE_US 1000000  /* what a pause costs on the simulated clock, however long */
#define DIE_US 20000      /* one die without --rate */

/* Requests in force (levels), each taken once its die count is reached. */
#define WANT_PAUSE 1u
#define WANT_STOP 2u
#define WANT_ABORT 4u

enum phase {
	PH_RUN_START,
	PH_READY,
	PH_EXECUTING,
	PH_WAFER,     /* before the next wafer (or the end) */
	PH_DIE,       /* inside a wafer, after a die or its wafer_start */
	PH_WAFER_END, /* the current wafer's wafer_end is next */
	PH_END,       /* after the wafers: stopping, idle, run_end */
	PH_RUN_END,   /* run_end completed, after state idle */
	PH_OVER,
};

struct simrun {
	struct simrun_opts o;
	struct sim *sim;
	char *run;
	/* The machine clock and numbering. */
	struct timespec t;
	uint64_t seq, die_us;
	const char *state;
	enum phase phase;
	/* Where the lot is. */
	int wafer, die, wafer_dies, wafers_done;
	uint64_t dieno;
	char wid[16];
	unsigned char *px;
	char *b64;
	size_t npx, b64len, die_defects;
	/* Requests (levels), the die count at which each is taken, and what became of them. */
	unsigned wants;
	uint64_t pause_at, stop_at, abort_at;
	int paused, stopped, aborted, started;
	unsigned ncmd[PROFILE_OP__COUNT];
	struct simrun_fault *faults;
	size_t nfaults;
	uint64_t pace_base, paused_at, held_at;
	uint64_t wait_at;       /* wait@: no die after this one until a command is carried out (0: none) */
	/* Injected alarms, in the order given, each raised once. */
	struct simrun_alarm *alarms;
	unsigned char *raised;
	size_t nalarms;
	/* Ground truth. */
	FILE *truth;
	const char *truth_path;
	json_t *found;
	int truth_failed;
};

/* ---- options ---- */

void simrun_opts_init(struct simrun_opts *o)
{
	memset(o, 0, sizeof *o);
	sim_config_default(&o->cfg);
	o->lot = "SIMLOT";
	o->recipe = "sim-default";
	o->tool = "kerf-sim";
}

static const struct {
	const char *name, *arg, *help;
} sim_help[SIMRUN_NOPTS] = {
	{ "seed", "N", "random seed; same seed, same lot and bytes (default 1)" },
	{ "wafers", "N", "wafers in the lot, 1..25 (default 3)" },
	{ "diameter", "MM", "wafer diameter in mm (default 300)" },
	{ "edge", "MM", "edge exclusion in mm (default 3)" },
	{ "pitch", "UM[xUM]", "die pitch in um (default 10000)" },
	{ "die-px", "N", "die image width in pixels (default 64)" },
	{ "noise", "SIGMA", "pixel noise in grey levels (default 3)" },
	{ "defect-rate", "R", "mean random particles per die (default 0.05)" },
	{ "signature", "NAME", "random, cluster, scratch, edge-ring, center or\ncycle: one after the other per wafer (default)" },
	{ "lot", "ID", "lot id (default SIMLOT)" },
	{ "recipe", "NAME", "recipe name (default sim-default)" },
	{ "tool", "NAME", "tool name in run_start (default kerf-sim)" },
	{ "rate", "N", "at most N dies per second on the wall clock\n(default: as fast as they are taken)" },
	{ "truth", "FILE", "write the injected defects (of every lot) as NDJSON\nto FILE" },
	{ "pause-after", "N", "take a pause N dies after accepting it (default 0)" },
	{ "stop-after", "N", "take a stop N dies after accepting it (default 0)" },
};

static void sim_option(const struct cli_opt *opt, const char *arg, void *ctx)
{
	char err[256];

	(void)ctx;
	if (simrun_option(opt->value, opt->long_name, arg, err, sizeof err) < 0)
		cli_usage_error("%s", err);
}

void simrun_cli_options(struct cli_opt *opts, struct simrun_opts *o)
{
	for (int i = 0; i < SIMRUN_NOPTS; i++)
		opts[i] = (struct cli_opt){ .kind = CLI_CALLBACK, .long_name = sim_help[i].name,
					    .argname = sim_help[i].arg, .help = sim_help[i].help, .value = o,
					    .cb = sim_option };
	opts[SIMRUN_NOPTS] = (struct cli_opt)OPT_END();
}

static int num(const char *name, const char *s, double min, double max, double *out, char *err,
	       size_t errlen)
{
	if (parse_double(s, min, max, out) == 0)
		return 0;
	snprintf(err, errlen, "--%s: '%s' is not a number in [%g, %g]", name, s, min, max);
	return -1;
}

static int pitch(const char *s, double out[2], char *err, size_t errlen)
{
	const char *x = strchr(s, 'x');
	char *a;
	int rc;

	if (!x)
		return num("pitch", s, 100, 100000, &out[0], err, errlen) ||
		       num("pitch", s, 100, 100000, &out[1], err, errlen) ? -1 : 0;
	a = xstrndup(s, (size_t)(x - s));
	rc = num("pitch", a, 100, 100000, &out[0], err, errlen) ||
	     num("pitch", x + 1, 100, 100000, &out[1], err, errlen) ? -1 : 0;
	free(a);
	return rc;
}

/*
 * The options that are a number in a range, or a string kept as given,
 * and the member of struct simrun_opts each sets; simrun_option parses
 * the others itself.
 */
enum plain_type { PLAIN_DOUBLE, PLAIN_INT, PLAIN_STRING };
static const struct {
	const char *name;
	enum plain_type type;
	double min, max;
	size_t off;
} plain_opts[] = {
	{ "wafers", PLAIN_INT, 1, 25, offsetof(struct simrun_opts, cfg.wafers) },
	{ "diameter", PLAIN_DOUBLE, 50, 450, offsetof(struct simrun_opts, cfg.diameter_mm) },
	{ "edge", PLAIN_DOUBLE, 0, 50, offsetof(struct simrun_opts, cfg.edge_mm) },
	{ "die-px", PLAIN_INT, 8, 4096, offsetof(struct simrun_opts, cfg.die_px) },
	{ "noise", PLAIN_DOUBLE, 0, 50, offsetof(struct simrun_opts, cfg.noise) },
	{ "defect-rate", PLAIN_DOUBLE, 0, 100, offsetof(struct simrun_opts, cfg.defect_rate) },
	{ "lot", PLAIN_STRING, 0, 0, offsetof(struct simrun_opts, lot) },
	{ "recipe", PLAIN_STRING, 0, 0, offsetof(struct simrun_opts, recipe) },
	{ "tool", PLAIN_STRING, 0, 0, offsetof(struct simrun_opts, tool) },
	{ "rate", PLAIN_DOUBLE, 0.001, 1e6, offsetof(struct simrun_opts, rate) },
	{ "truth", PLAIN_STRING, 0, 0, offsetof(struct simrun_opts, truth) },
};

/* Option plain_opts[i] with argument arg: 0, or -1 with a message in err. */
static int plain_option(struct simrun_opts *o, size_t i, const char *arg, char *err, size_t errlen)
{
	char *at = (char *)o + plain_opts[i].off;
	double v;

	if (plain_opts[i].type == PLAIN_STRING) {
		*(const char **)at = arg;
		return 0;
	}
	if (num(plain_opts[i].name, arg, plain_opts[i].min, plain_opts[i].max, &v, err, errlen) != 0)
		return -1;
	if (plain_opts[i].type == PLAIN_INT)
		*(int *)at = (int)v;
	else
		*(double *)at = v;
	return 0;
}

int simrun_option(struct simrun_opts *o, const char *name, const char *arg, char *err, size_t errlen)
{
	struct sim_config *c = &o->cfg;
	double v = 0;
	int rc = 0;

	for (size_t i = 0; i < sizeof plain_opts / sizeof plain_opts[0]; i++)
		if (!strcmp(name, plain_opts[i].name))
			return plain_option(o, i, arg, err, errlen);
	if (!strcmp(name, "seed")) {
		if (parse_u64(arg, &c->seed) < 0) {
			snprintf(err, errlen, "--seed: '%s' is not a number", arg);
			return -1;
		}
	} else if (!strcmp(name, "pitch")) {
		rc = pitch(arg, c->pitch_um, err, errlen);
	} else if (!strcmp(name, "signature")) {
		c->signature = sim_signature_of(arg);
		if (c->signature < SIM_SIG_CYCLE) {
			snprintf(err, errlen, "--signature: unknown signature '%s'", arg);
			return -1;
		}
	} else if (!strcmp(name, "pause-after") || !strcmp(name, "stop-after")) {
		if ((rc = num(name, arg, 0, 1e6, &v, err, errlen)) == 0 && v != (double)(uint64_t)v) {
			snprintf(err, errlen, "--%s: '%s' is not a whole number of dies", name, arg);
			rc = -1;
		}
		if (rc == 0)
			*(name[0] == 'p' ? &o->pause_after : &o->stop_after) = (uint64_t)v;
	} else {
		snprintf(err, errlen, "--%s: not an option of the simulated tool", name);
		return -1;
	}
	return rc;
}

int simrun_alarm_parse(const char *spec, struct simrun_alarm *out, char *err, size_t errlen)
{
	const char *p = strncmp(spec, "alarm@", 6) ? NULL : spec + 6;
	const char *c1 = p ? strchr(p, ':') : NULL, *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	char *at, *alid;
	long n = 0;
	int bad;

	if (!c2) {
		snprintf(err, errlen, "bad --inject '%s': expected alarm@DIE:ALID:CATEGORY", spec);
		return -1;
	}
	memset(out, 0, sizeof *out);
	at = xstrndup(p, (size_t)(c1 - p));
	alid = xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
	bad = parse_long(at, 1, 1L << 40, &n) < 0;
	if (bad)
		snprintf(err, errlen, "bad --inject '%s': '%s' is not a count of at least 1", spec, at);
	out->at = (uint64_t)n;
	if (!bad && (parse_long(alid, 0, 0x7fffffff, &out->alid) < 0 || !event_alarm_code(c2 + 1) ||
		     strlen(c2 + 1) >= sizeof out->category)) {
		snprintf(err, errlen, "bad --inject '%s': ALID must be a number and CATEGORY one of "
			 "safety, irrecoverable, warning, attention, data_integrity", spec);
		bad = 1;
	}
	if (!bad)
		memcpy(out->category, c2 + 1, strlen(c2 + 1) + 1);
	free(at);
	free(alid);
	return bad ? -1 : 0;
}

static int op_of(const char *name, size_t len, enum profile_op *op)
{
	for (int i = 0; i < PROFILE_OP__COUNT; i++)
		if (strlen(profile_op_name((enum profile_op)i)) == len && !strncmp(profile_op_name((enum profile_op)i), name, len)) {
			*op = (enum profile_op)i;
			return 0;
		}
	return -1;
}

int simrun_fault_parse(const char *spec, struct simrun_fault *out, char *err, size_t errlen)
{
	static const char *const forms[] = { "ignore@CMD[:N]", "delay@CMD:DIES", "refuse@CMD:HCACK[:N]", "wait@DIES" };
	const char *p, *c1, *c2;
	long a = 0, n = 0;
	int bad = 0;

	memset(out, 0, sizeof *out);
	if (!strncmp(spec, "wait@", 5)) {
		out->kind = SIMRUN_WAIT;
		out->op = PROFILE_OP__COUNT;
		if (parse_long(spec + 5, 1, 1L << 30, &a) < 0) {
			snprintf(err, errlen, "bad --inject '%s': expected %s (DIES at least 1)", spec, forms[out->kind]);
			return -1;
		}
		out->arg = (unsigned)a;
		return 0;
	}
	if (!strncmp(spec, "ignore@", 7))
		out->kind = SIMRUN_IGNORE;
	else if (!strncmp(spec, "delay@", 6))
		out->kind = SIMRUN_DELAY;
	else if (!strncmp(spec, "refuse@", 7))
		out->kind = SIMRUN_REFUSE;
	else
		return 1;
	p = strchr(spec, '@') + 1;
	c1 = strchr(p, ':');
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (op_of(p, c1 ? (size_t)(c1 - p) : strlen(p), &out->op) != 0) {
		snprintf(err, errlen, "bad --inject '%s': expected %s with CMD one of start, pause, resume, stop, abort",
			 spec, forms[out->kind]);
		return -1;
	}
	switch (out->kind) {
	case SIMRUN_IGNORE:
		bad = c2 || (c1 && parse_long(c1 + 1, 1, 1000000, &n) < 0);
		break;
	case SIMRUN_DELAY:
		bad = !c1 || c2 || parse_long(c1 + 1, 0, 1000000, &a) < 0 ||
		      (out->op != PROFILE_PAUSE && out->op != PROFILE_STOP && out->op != PROFILE_ABORT);
		break;
	case SIMRUN_REFUSE: {
		char *code = c1 ? xstrndup(c1 + 1, c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1)) : NULL;
		bad = !code || parse_long(code, 1, 6, &a) < 0 || a == 4 || (c2 && parse_long(c2 + 1, 1, 1000000, &n) < 0);
		free(code);
		break;
	}
	case SIMRUN_WAIT:   /* parsed above */
		break;
	}
	if (bad) {
		snprintf(err, errlen, "bad --inject '%s': expected %s%s", spec, forms[out->kind],
			 out->kind == SIMRUN_DELAY ? " (pause, stop or abort)" :
			 out->kind == SIMRUN_REFUSE ? " (HCACK 1, 2, 3, 5 or 6)" : "");
		return -1;
	}
	out->arg = (unsigned)a;
	out->nth = (unsigned)n;
	return 0;
}

const struct simrun_fault *simrun_fault_find(const struct simrun_fault *f, size_t n, enum profile_op op,
					     unsigned nth)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].op == op && (!f[i].nth || f[i].nth == nth))
			return &f[i];
	return NULL;
}

/* ---- life cycle ---- */

struct simrun *simrun_new(const struct simrun_opts *o, const char *run, char *err, size_t errlen)
{
	struct simrun *r;
	struct sim *s = sim_new(&o->cfg, err, errlen);

	if (!s)
		return NULL;
	r = xcalloc(1, sizeof *r);
	r->o = *o;
	r->sim = s;
	r->run = xstrdup(run);
	r->t.tv_sec = SIM_EPOCH;
	r->die_us = o->rate > 0 ? (uint64_t)(1e6 / o->rate) : DIE_US;
	r->state = "idle";
	r->npx = (size_t)s->die_w * (size_t)s->die_h;
	r->px = xmalloc(r->npx);
	if (o->inline_images) {
		r->b64len = base64_encoded_len(r->npx);
		r->b64 = xmalloc(r->b64len + 1);
	}
	r->nalarms = o->nalarms;
	r->alarms = xcalloc(o->nalarms + 1, sizeof *r->alarms);
	r->raised = xcalloc(o->nalarms + 1, 1);
	if (o->nalarms)
		memcpy(r->alarms, o->alarms, o->nalarms * sizeof *r->alarms);
	r->o.alarms = NULL;
	r->nfaults = o->nfaults;
	r->faults = xcalloc(o->nfaults + 1, sizeof *r->faults);
	if (o->nfaults)
		memcpy(r->faults, o->faults, o->nfaults * sizeof *r->faults);
	for (size_t i = 0; i < o->nfaults; i++)
		if (o->faults[i].kind == SIMRUN_WAIT)
			r->wait_at = o->faults[i].arg;
	r->o.faults = NULL;
	r->started = !o->wait_start;
	return r;
}

void simrun_free(struct simrun *r)
{
	if (!r)
		return;
	sim_free(r->sim);
	json_decref(r->found);
	free_all(r->run, r->px, r->b64, r->alarms, r->raised, r->faults, r);
}

const struct sim *simrun_sim(const struct simrun *r)
{
	return r->sim;
}

void simrun_set_truth(struct simrun *r, FILE *f, const char *path)
{
	r->truth = f;
	r->truth_path = path;
	if (f && !r->found)
		r->found = json_array();
}

int simrun_truth_failed(const struct simrun *r)
{
	return r->truth_failed;
}

/* ---- requests ---- */

/* A request is taken at the first boundary once its die count is reached; while paused, at once. */
static int pause_due(const struct simrun *r)
{
	return r->wants & WANT_PAUSE && r->dieno >= r->pause_at;
}

static int stop_due(const struct simrun *r)
{
	return r->wants & WANT_STOP && (r->paused || r->dieno >= r->stop_at);
}

static int abort_due(const struct simrun *r)
{
	return r->wants & WANT_ABORT && (r->paused || r->dieno >= r->abort_at);
}

/* The answer of a tool in this state, before any fault. */
static int answer(const struct simrun *r, enum profile_op op)
{
	int over = r->phase >= PH_END;
	int ending = r->wants & (WANT_STOP | WANT_ABORT) || r->stopped || r->aborted;

	switch (op) {
	case PROFILE_START:
		return r->started ? 5 : 0;
	case PROFILE_PAUSE:
		return over || ending ? 2 : r->wants & WANT_PAUSE ? 5 : 4;
	case PROFILE_RESUME:
		return over || ending ? 2 : r->wants & WANT_PAUSE ? 0 : 5;
	case PROFILE_STOP:
		return over || r->wants & WANT_ABORT || r->aborted ? 2 : r->wants & WANT_STOP ? 5 : 4;
	case PROFILE_ABORT:
		return over ? 2 : r->wants & WANT_ABORT ? 5 : 0;
	default:
		return 1;
	}
}

/* wait@: the lot made its wait_at-th die and waits for a command. */
static int waiting(const struct simrun *r)
{
	return r->wait_at && r->dieno >= r->wait_at;
}

int simrun_command(struct simrun *r, enum profile_op op)
{
	unsigned nth = (unsigned)op < PROFILE_OP__COUNT ? ++r->ncmd[op] : 0;
	const struct simrun_fault *f = simrun_fault_find(r->faults, r->nfaults, op, nth);
	int code = answer(r, op);
	uint64_t after = 0;
	const char *what = NULL;

	if (f && f->kind == SIMRUN_REFUSE) {
		code = (int)f->arg;
		what = "refused (injected)";
	} else if ((code == 0 || code == 4) && f && f->kind == SIMRUN_IGNORE) {
		code = 4;
		what = "accepted, and ignored (injected)";
	} else if (code == 0 || code == 4) {
		uint64_t delay = f && f->kind == SIMRUN_DELAY ? f->arg : 0;
		switch (op) {
		case PROFILE_START:
			r->started = 1;
			break;
		case PROFILE_PAUSE:
			r->wants |= WANT_PAUSE;
			r->pause_at = r->dieno + (after = r->o.pause_after + delay);
			break;
		case PROFILE_RESUME:
			r->wants &= ~WANT_PAUSE;
			break;
		case PROFILE_STOP:
			r->wants |= WANT_STOP;
			r->stop_at = r->dieno + (after = r->paused ? 0 : r->o.stop_after + delay);
			break;
		case PROFILE_ABORT:
			r->wants |= WANT_ABORT;
			r->abort_at = r->dieno + (after = r->paused ? 0 : delay);
			if (after)
				code = 4;
			break;
		default:
			break;
		}
		what = code == 4 ? "accepted" : "done";
		if (waiting(r))
			r->wait_at = 0;   /* wait@: a command carried out during the wait ends it */
	}
	log_msg(code == 0 || code == 4 ? LOG_INFO : LOG_WARN,
		json_pack("{ss ss si sI sI}", "sim", "command", "op", profile_op_name(op), "hcack", code, "at_die",
			  (json_int_t)r->dieno, "after_dies", (json_int_t)after),
		"simulated tool: %s after die %llu: HCACK %d, %s%s", profile_op_name(op), (unsigned long long)r->dieno,
		code, what ? what : "not now", after ? " (taken later)" : "");
	return code;
}

void simrun_stop(struct simrun *r)
{
	r->wants |= WANT_STOP;
	r->stop_at = r->dieno;
}

void simrun_abort(struct simrun *r)
{
	r->wants |= WANT_ABORT;
	r->abort_at = r->dieno;
}

void simrun_hold(struct simrun *r, int on)
{
	uint64_t now = mono_us();

	if (on && !r->held_at) {
		r->held_at = now ? now : 1;
	} else if (!on && r->held_at) {
		r->pace_base += now - r->held_at;
		r->held_at = 0;
	}
}

int simrun_paused(const struct simrun *r)
{
	return (r->paused && r->wants & WANT_PAUSE && !stop_due(r) && !abort_due(r)) || waiting(r);
}

const char *simrun_state(const struct simrun *r)
{
	return r->state;
}

int simrun_over(const struct simrun *r)
{
	return r->phase == PH_OVER;
}

const unsigned char *simrun_pixels(const struct simrun *r, size_t *len)
{
	if (len)
		*len = r->npx;
	return r->px;
}

size_t simrun_die_defects(const struct simrun *r)
{
	return r->die_defects;
}

/* An injected alarm is due after the die just made. */
static int alarm_due(const struct simrun *r)
{
	for (size_t k = 0; k < r->nalarms; k++)
		if (!r->raised[k] && r->alarms[k].at == r->dieno)
			return 1;
	return 0;
}

uint64_t simrun_due_us(const struct simrun *r)
{
	/* A request is answered at the next boundary, not after the wait. */
	if (r->o.rate <= 0 || stop_due(r) || abort_due(r) || (pause_due(r) && !r->paused))
		return 0;
	/* An alarm comes with its die; everything after die n waits for die n's time. */
	if (r->phase < PH_WAFER || r->phase > PH_END || r->paused || (r->phase == PH_DIE && alarm_due(r)))
		return 0;
	return r->pace_base + (uint64_t)((double)r->dieno * 1e6 / r->o.rate);
}

/* ---- the events ---- */

static void tick(struct simrun *r, uint64_t us)
{
	uint64_t ns = (uint64_t)r->t.tv_nsec + (us % 1000000) * 1000;
	r->t.tv_sec += (time_t)(us / 1000000 + ns / 1000000000);
	r->t.tv_nsec = (long)(ns % 1000000000);
}

static json_t *event(struct simrun *r, const char *type)
{
	struct timespec now;

	if (r->o.wall_clock)
		real_now(&now);
	else
		now = r->t;
	return event_new(type, r->run, ++r->seq, &now);
}

static json_t *state_event(struct simrun *r, const char *state)
{
	json_t *ev = event(r, "state");
	json_object_set_new(ev, "state", json_string(state));
	json_object_set_new(ev, "prev", json_string(r->state));
	r->state = state;
	return ev;
}

static json_t *run_start(struct simrun *r)
{
	const struct simrun_opts *o = &r->o;
	const struct sim *s = r->sim;
	json_t *ev = event(r, "run_start");

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

static json_t *wafer_start(struct simrun *r)
{
	json_t *ev;

	r->wafer++;
	r->die = r->wafer_dies = 0;
	sim_wafer_begin(r->sim, r->wafer);
	sim_wafer_id(r->wafer, r->wid);
	tick(r, LOAD_US);
	ev = event(r, "wafer_start");
	json_object_set_new(ev, "wafer", json_string(r->wid));
	json_object_set_new(ev, "slot", json_integer(r->wafer));
	json_object_set_new(ev, "lot", json_string(r->o.lot));
	json_object_set_new(ev, "dies", json_integer(r->sim->ndies));
	json_object_set_new(ev, "signature", json_string(sim_signature_name(r->sim->sig)));
	r->phase = PH_DIE;
	return ev;
}

static json_t *wafer_end(struct simrun *r)
{
	json_t *ev;

	tick(r, LOAD_US);
	ev = event(r, "wafer_end");
	json_object_set_new(ev, "wafer", json_string(r->wid));
	json_object_set_new(ev, "slot", json_integer(r->wafer));
	json_object_set_new(ev, "dies", json_integer(r->wafer_dies));
	r->wafers_done++;
	r->phase = PH_WAFER;
	return ev;
}

static json_t *run_end(struct simrun *r, const char *status)
{
	json_t *ev = event(r, "run_end");
	json_object_set_new(ev, "status", json_string(status));
	json_object_set_new(ev, "wafers", json_integer(r->wafers_done));
	json_object_set_new(ev, "dies", json_integer((json_int_t)r->dieno));
	r->phase = PH_OVER;
	return ev;
}

/* The die's injected defects, as records of the ground truth. */
static void write_truth(struct simrun *r, uint64_t die_seq)
{
	size_t i;
	json_t *o;

	json_array_foreach(r->found, i, o) {
		if (r->truth_failed)
			break;
		json_object_set_new(o, "run", json_string(r->run));
		json_object_set_new(o, "die_seq", json_integer((json_int_t)die_seq));
		if (json_dumpf(o, r->truth, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) < 0 ||
		    putc('\n', r->truth) == EOF) {
			/* The lot goes on without its truth; the caller's exit status says so. */
			log_msg(LOG_ERROR, NULL, "cannot write '%s': %s", r->truth_path, strerror(errno));
			r->truth_failed = 1;
		}
	}
}

static json_t *die(struct simrun *r)
{
	const struct sim *s = r->sim;
	int writing = r->truth && !r->truth_failed;
	json_t *ev;

	sim_render(r->sim, r->die, r->px, writing ? r->found : NULL);
	r->die_defects = writing ? json_array_size(r->found) : s->first[r->die + 1] - s->first[r->die];
	tick(r, r->die_us);
	ev = event(r, "die");
	json_object_set_new(ev, "wafer", json_string(r->wid));
	json_object_set_new(ev, "col", json_integer(s->dies[r->die][0]));
	json_object_set_new(ev, "row", json_integer(s->dies[r->die][1]));
	json_object_set_new(ev, "w", json_integer(s->die_w));
	json_object_set_new(ev, "h", json_integer(s->die_h));
	if (r->o.inline_images) {
		char hx[17];
		base64_encode(r->px, r->npx, r->b64);
		hex64(kerf_xxh3(r->px, r->npx), hx);
		json_object_set_new(ev, "data", json_stringn(r->b64, r->b64len));
		json_object_set_new(ev, "xxh3", json_string(hx));
	}
	if (writing) {
		write_truth(r, r->seq);
		json_array_clear(r->found);
	}
	r->die++;
	r->wafer_dies++;
	r->dieno++;
	return ev;
}

/* The next alarm injected after the die just made, or NULL. */
static json_t *raise_alarm(struct simrun *r)
{
	for (size_t k = 0; k < r->nalarms; k++) {
		const struct simrun_alarm *in = &r->alarms[k];
		const char *cat = in->category;
		int crit = event_alarm_critical(cat);
		char *text;
		json_t *ev;

		if (r->raised[k] || in->at != r->dieno)
			continue;
		r->raised[k] = 1;
		ev = event(r, "alarm");
		text = xasprintf("simulated %s alarm %ld", cat, in->alid);
		event_alarm_fill(ev, (uint32_t)in->alid, text, 1, cat, -1);
		free(text);
		log_msg(crit ? LOG_ERROR : LOG_WARN,
			json_pack("{sisssb}", "alid", (int)in->alid, "category", cat, "critical", crit),
			"machine alarm %ld (%s)", in->alid, cat);
		if (crit)
			r->aborted = 1;
		return ev;
	}
	return NULL;
}

/*
 * A wafer or die boundary: a pause is taken here (state paused) and left
 * here (state executing, unless a stop or abort came meanwhile).  NULL
 * means go on, or, while r->paused, wait.
 */
static json_t *boundary(struct simrun *r)
{
	int ending = stop_due(r) || abort_due(r);

	if (r->paused) {
		if (r->wants & WANT_PAUSE && !ending)
			return NULL;
		r->paused = 0;
		tick(r, PAUSE_US);
		if (ending)
			return NULL;
		log_msg(LOG_INFO, NULL, "resumed");
		/* Pacing restarts from here, so no burst makes up for the pause. */
		r->pace_base += mono_us() - r->paused_at;
		return state_event(r, "executing");
	}
	if (!pause_due(r) || ending)
		return NULL;
	log_msg(LOG_INFO, NULL, "paused");
	r->paused = 1;
	r->paused_at = mono_us();
	return state_event(r, "paused");
}

static json_t *at_end(struct simrun *r)
{
	if (abort_due(r) && !r->stopped)
		r->aborted = 1;
	if (stop_due(r) && !r->stopped && !r->aborted) {
		r->stopped = 1;
		return state_event(r, "stopping");
	}
	tick(r, STATE_US);
	if (r->aborted)
		return run_end(r, "aborted");
	if (r->stopped)
		return run_end(r, "stopped");
	r->phase = PH_RUN_END;
	return state_event(r, "idle");
}

static json_t *at_wafer(struct simrun *r)
{
	json_t *ev;

	if (r->stopped || r->aborted || r->wafer >= r->o.cfg.wafers) {
		r->phase = PH_END;
		return at_end(r);
	}
	if ((ev = boundary(r)) != NULL || r->paused || waiting(r))
		return ev;
	if (abort_due(r))
		r->aborted = 1;
	if (r->aborted || stop_due(r)) {
		/* A stop between wafers says stopping too (at_end), as one inside a wafer does. */
		r->phase = PH_END;
		return at_end(r);
	}
	return wafer_start(r);
}

static json_t *at_die(struct simrun *r)
{
	json_t *ev;

	if ((ev = raise_alarm(r)) != NULL)
		return ev;
	if (!r->aborted && r->die < r->sim->ndies) {
		if ((ev = boundary(r)) != NULL || r->paused || waiting(r))
			return ev;
		if (abort_due(r)) {
			r->aborted = 1;
		} else if (stop_due(r)) {
			r->stopped = 1;
			r->phase = PH_WAFER_END;
			return state_event(r, "stopping");
		} else {
			return die(r);
		}
	}
	return wafer_end(r);
}

json_t *simrun_next(struct simrun *r)
{
	switch (r->phase) {
	case PH_RUN_START:
		if (!r->started && r->wants & (WANT_STOP | WANT_ABORT)) {
			/* Told to stop before it started the lot (START accepted, not carried out): no lot at all. */
			r->phase = PH_OVER;
			return NULL;
		}
		if (!r->started)
			return NULL;
		r->phase = PH_READY;
		return run_start(r);
	case PH_READY:
		tick(r, STATE_US);
		r->phase = PH_EXECUTING;
		return state_event(r, "ready");
	case PH_EXECUTING:
		tick(r, STATE_US);
		r->phase = PH_WAFER;
		r->pace_base = mono_us();
		return state_event(r, "executing");
	case PH_WAFER:
		return at_wafer(r);
	case PH_DIE:
		return at_die(r);
	case PH_WAFER_END:
		return wafer_end(r);
	case PH_END:
		return at_end(r);
	case PH_RUN_END:
		return run_end(r, "completed");
	case PH_OVER:
		break;
	}
	return NULL;
}

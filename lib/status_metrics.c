/* status_metrics.c: see status_metrics.h. */
#include "util.h"
#include "event.h"
#include "openmetrics.h"
#include "runstate.h"
#include "status_doc.h"
#include "status_metrics.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

/* The stats counters (kerf-events(5)) that are counts of something a
 * monitor watches, as counter families of their own. */
static const struct {
	const char *key, *name, *help;
} stage_counts[] = {
	{ "out", "kerf_stage_output_lines", "Lines the stage wrote to the next one (kerf-acquire: the run's events)." },
	{ "in", "kerf_stage_input_lines", "Lines the stage read." },
	{ "rejected", "kerf_stage_rejected_lines", "Lines the stage refused, each a record of rejects.ndjson." },
	{ "consumed", "kerf_stage_consumed_lines", "Lines the stage consumed by design (kerf-detect: die images)." },
	{ "dies", "kerf_stage_dies", "Dies the stage has handled." },
	{ "wafers", "kerf_stage_wafers", "Wafers the stage has handled." },
	{ "defects", "kerf_stage_defects",
	  "Defects the stage has reported (kerf-detect: found; kerf-acquire: injected or imported)." },
	{ "alarms", "kerf_stage_alarms", "Alarms the machine raised." },
};

/* A stage as status.json has it, with its labels. */
struct stage {
	struct status_stage s;
	const char *labels[5];
};

/* An RFC 3339 time as seconds since the epoch; 0 when it is not one. */
static int epoch_seconds(const char *t, double *out)
{
	struct timespec ts;
	if (!t || event_time_parse(t, &ts) != 0)
		return 0;
	*out = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	return 1;
}

static void run_metrics(struct om *m, const json_t *st, const char *run)
{
	const char *rl[] = { "run", run, NULL };
	const char *state = status_doc_state(st);
	struct status_cause cause;
	json_int_t code;
	double t;

	om_family(m, "kerf_run_state", OM_GAUGE, NULL,
		  "1 for the state the run is in (kerf(7)), 0 for the others.");
	for (int s = 0; s < RS__COUNT; s++) {
		const char *name = runstate_state_name((enum runstate_state)s);
		const char *sl[] = { "run", run, "state", name, NULL };
		om_sample_int(m, sl, state && !strcmp(state, name));
	}
	om_family(m, "kerf_run_final", OM_GAUGE, NULL,
		  "1 once the supervisor has written its last status: the run has ended.");
	om_sample_int(m, rl, status_doc_final(st));
	if (status_doc_exit_code(st, &code)) {
		om_family(m, "kerf_run_exit_code", OM_GAUGE, NULL, "The exit status of kerf run, once the run has ended.");
		om_sample_int(m, rl, code);
	}
	om_family(m, "kerf_run_degraded", OM_GAUGE, NULL, "1 when an optional stage failed or was left out.");
	om_sample_int(m, rl, status_doc_degraded(st));
	if (status_doc_cause(st, &cause) && cause.kind && cause.what) {
		const char *cl[] = { "run", run, "kind", cause.kind, "what", cause.what,
				     cause.stage ? "stage" : NULL, cause.stage, NULL };
		om_family(m, "kerf_run_cause_info", OM_GAUGE, NULL,
			  "1, labelled with what ended the run (status.json's outcome.cause).");
		om_sample_int(m, cl, 1);
	}
	om_family(m, "kerf_run_elapsed_seconds", OM_GAUGE, "seconds", "Time since the run started.");
	om_sample(m, rl, (double)status_doc_elapsed_ms(st) / 1000.0);
	if (epoch_seconds(status_doc_started(st), &t)) {
		om_family(m, "kerf_run_start_time_seconds", OM_GAUGE, "seconds",
			  "When the run started, in seconds since the epoch.");
		om_sample(m, rl, t);
	}
	if (epoch_seconds(status_doc_updated(st), &t)) {
		om_family(m, "kerf_run_updated_time_seconds", OM_GAUGE, "seconds",
			  "When the supervisor wrote this status, in seconds since the epoch.");
		om_sample(m, rl, t);
	}
}

/* Each stage's counter 'key', a measure of its work, labelled with its unit. */
static void work_samples(struct om *m, const char *run, const struct stage *g, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(g[i].s.counters, key);
		const char *unit = json_string_value(json_object_get(g[i].s.counters, "unit"));
		const char *wl[] = { "run", run, "stage", g[i].s.name, "unit", unit, NULL };
		if (json_is_integer(v) && unit)
			om_sample_int(m, wl, json_integer_value(v));
		else if (json_is_number(v) && unit)
			om_sample(m, wl, json_number_value(v));
	}
}

/* The stages' families: each family's samples together, stage by stage. */
static void stage_metrics(struct om *m, const char *run, const struct stage *g, size_t n)
{
	size_t i;

	om_family(m, "kerf_stage_up", OM_GAUGE, NULL, "1 while the stage's process runs (running or paused).");
	for (i = 0; i < n; i++) {
		const char *state = g[i].s.state ? g[i].s.state : "";
		om_sample_int(m, g[i].labels, !strcmp(state, "running") || !strcmp(state, "paused"));
	}
	om_family(m, "kerf_stage_exit_code", OM_GAUGE, NULL, "The stage's exit status, once it exited (not by a signal).");
	for (i = 0; i < n; i++)
		if (g[i].s.state && !strcmp(g[i].s.state, "exited") && !g[i].s.signal)
			om_sample_int(m, g[i].labels, g[i].s.exit);
	om_family(m, "kerf_stage_exit_signal_info", OM_GAUGE, NULL, "1, labelled with the signal that ended the stage.");
	for (i = 0; i < n; i++)
		if (g[i].s.signal) {
			const char *sl[] = { "run", run, "stage", g[i].s.name, "signal", g[i].s.signal, NULL };
			om_sample_int(m, sl, 1);
		}
	om_family(m, "kerf_stage_verdict_info", OM_GAUGE, NULL,
		  "1, labelled with the stage's verdict once it exited (kerf(7)).");
	for (i = 0; i < n; i++)
		if (g[i].s.verdict) {
			const char *vl[] = { "run", run, "stage", g[i].s.name, "verdict", g[i].s.verdict, NULL };
			om_sample_int(m, vl, 1);
		}
	om_family(m, "kerf_stage_queue_bytes", OM_GAUGE, "bytes", "Bytes waiting in the pipe into the stage.");
	for (i = 0; i < n; i++)
		if (g[i].s.has_queue)
			om_sample_int(m, g[i].labels, g[i].s.queue_bytes);
	om_family(m, "kerf_stage_queue_capacity_bytes", OM_GAUGE, "bytes", "The size of the pipe into the stage.");
	for (i = 0; i < n; i++)
		if (g[i].s.has_queue)
			om_sample_int(m, g[i].labels, g[i].s.queue_cap);
	om_family(m, "kerf_stage_queue_fill_ratio", OM_GAUGE, "ratio", "How full the pipe into the stage is, 0 to 1.");
	for (i = 0; i < n; i++)
		if (g[i].s.has_queue)
			om_sample(m, g[i].labels, g[i].s.queue_fill);
	om_family(m, "kerf_stage_progress_age_seconds", OM_GAUGE, "seconds",
		  "Time since the running stage last made progress.");
	for (i = 0; i < n; i++)
		if (g[i].s.has_progress_age)
			om_sample(m, g[i].labels, (double)g[i].s.progress_age_ms / 1000.0);
	om_family(m, "kerf_stage_read_bytes", OM_COUNTER, NULL, "Bytes the stage's process has read (/proc io rchar).");
	for (i = 0; i < n; i++)
		if (g[i].s.has_io)
			om_sample_int(m, g[i].labels, g[i].s.io_rchar);
	om_family(m, "kerf_stage_written_bytes", OM_COUNTER, NULL,
		  "Bytes the stage's process has written (/proc io wchar).");
	for (i = 0; i < n; i++)
		if (g[i].s.has_io)
			om_sample_int(m, g[i].labels, g[i].s.io_wchar);
	for (size_t c = 0; c < sizeof stage_counts / sizeof *stage_counts; c++) {
		om_family(m, stage_counts[c].name, OM_COUNTER, NULL, stage_counts[c].help);
		for (i = 0; i < n; i++) {
			json_t *v = json_object_get(g[i].s.counters, stage_counts[c].key);
			if (json_is_integer(v))
				om_sample_int(m, g[i].labels, json_integer_value(v));
		}
	}
	/* The one measure of work (kerf-events(5)): the unit is a label. */
	om_family(m, "kerf_stage_work", OM_COUNTER, NULL, "Units of work the stage has done (unit: events, lines, dies).");
	work_samples(m, run, g, n, "work");
	om_family(m, "kerf_stage_work_per_second", OM_GAUGE, NULL,
		  "The stage's work rate as of its last stats record (its per_s).");
	work_samples(m, run, g, n, "per_s");
	/* Everything else a stage counts, as kerf status shows it. */
	om_family(m, "kerf_stage_stats", OM_GAUGE, NULL,
		  "Every whole number of the stage's last stats record (status.json's counters), by name.");
	for (i = 0; i < n; i++) {
		const char *key;
		json_t *v;
		json_object_foreach(g[i].s.counters, key, v) {
			const char *kl[] = { "run", run, "stage", g[i].s.name, "counter", key, NULL };
			if (json_is_integer(v))
				om_sample_int(m, kl, json_integer_value(v));
		}
	}
}

void status_metrics(struct om *m, const json_t *st)
{
	const char *run = status_doc_run(st) ? status_doc_run(st) : "";
	struct stage *g = NULL;
	size_t n = 0, cap = 0;
	struct status_stage s;

	run_metrics(m, st, run);
	for (size_t i = 0; status_doc_stage(st, i, &s); i++) {
		if (!s.name)
			continue;
		g = xgrow(g, &cap, (n + 1) * sizeof *g, 8 * sizeof *g);
		g[n] = (struct stage){ .s = s, .labels = { "run", run, "stage", s.name, NULL } };
		n++;
	}
	stage_metrics(m, run, g, n);
	free(g);
}
int status_metrics_write(const char *dir, const json_t *st)
{
	struct om m;
	char *path = xasprintf("%s/" STATUS_METRICS_FILE, dir);
	int rc;

	om_init(&m);
	status_metrics(&m, st);
	rc = om_write_file(&m, path);
	om_release(&m);
	free(path);
	return rc;
}

/* stats.c: see stats.h. */
#include "stats.h"

#include "exitcode.h"
#include "util.h"
#include "log.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

void stats_init(struct stats *s, uint64_t interval_ms)
{
	memset(s, 0, sizeof *s);
	if (interval_ms == 0) {
		const char *e = getenv("KERF_STATS_MS");
		uint64_t v;
		interval_ms = (e && parse_duration_ms(e, 1, &v) == 0 && v > 0) ? v : 1000;
	}
	s->interval_ms = interval_ms;
	s->start_ms = s->last_ms = s->work_prev_ms = mono_ms();
	s->work = -1;
}

uint64_t *stats_counter(struct stats *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->name[i], name))
			return &s->val[i];
	if (s->n == STATS_MAX) {
		log_msg(LOG_ERROR, NULL, "internal error: more than %d counters", STATS_MAX);
		exit(KERF_EX_SOFTWARE);
	}
	s->name[s->n] = name;
	s->val[s->n] = 0;
	return &s->val[s->n++];
}

void stats_counters(struct stats *s, const struct stats_slot *slots, size_t n)
{
	for (size_t i = 0; i < n; i++)
		*slots[i].at = stats_counter(s, slots[i].name);
}

uint64_t *stats_work(struct stats *s, const char *name, const char *unit)
{
	uint64_t *c = stats_counter(s, name);
	s->work = (int)(c - s->val);
	s->unit = unit;
	return c;
}

/* Work per second: since the previous record, or over the whole run. */
static double per_s(const struct stats *s, uint64_t work, uint64_t now, int final)
{
	if (final)
		return now > s->start_ms ? (double)work * 1000.0 / (double)(now - s->start_ms) : s->per_s;
	if (now <= s->work_prev_ms)
		return s->per_s;
	return (double)(work - s->work_prev) * 1000.0 / (double)(now - s->work_prev_ms);
}

void lat_hist_add(struct lat_hist *h, uint64_t us)
{
	int b = 0;
	while (us > 1 && b < STATS_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	h->b[b]++;
	h->n++;
}

uint64_t lat_hist_percentile(const struct lat_hist *h, double p)
{
	uint64_t want, seen = 0;
	if (h->n == 0)
		return 0;
	want = (uint64_t)((p / 100.0) * (double)h->n + 0.999999);
	if (want < 1)
		want = 1;
	for (int b = 0; b < STATS_BUCKETS; b++) {
		seen += h->b[b];
		if (seen >= want)
			return (uint64_t)1 << b; /* the lower edge of the bucket */
	}
	return (uint64_t)1 << (STATS_BUCKETS - 1);
}

void stats_latency(struct stats *s, uint64_t us)
{
	lat_hist_add(&s->lat, us);
}

uint64_t stats_percentile(const struct stats *s, double p)
{
	return lat_hist_percentile(&s->lat, p);
}

json_t *stats_json(const struct stats *s, int final)
{
	json_t *o = json_object();
	uint64_t now = mono_ms();
	for (int i = 0; i < s->n; i++)
		json_object_set_new(o, s->name[i], json_integer((json_int_t)s->val[i]));
	json_object_set_new(o, "elapsed_ms", json_integer((json_int_t)(now - s->start_ms)));
	if (s->work >= 0) {
		uint64_t work = s->val[s->work];
		json_object_set_new(o, "work", json_integer((json_int_t)work));
		json_object_set_new(o, "unit", json_string(s->unit));
		json_object_set_new(o, "per_s", json_real(round(per_s(s, work, now, final) * 10) / 10));
	}
	if (s->lat.n) {
		json_object_set_new(o, "lat_p50_us", json_integer((json_int_t)stats_percentile(s, 50)));
		json_object_set_new(o, "lat_p99_us", json_integer((json_int_t)stats_percentile(s, 99)));
	}
	if (s->extra) {
		json_t *x = s->extra(s->extra_arg);
		if (x) {
			json_object_update(o, x);
			json_decref(x);
		}
	}
	if (final)
		json_object_set_new(o, "final", json_true());
	return o;
}

void stats_emit(struct stats *s, int final)
{
	json_t *rec = stats_json(s, final);
	s->last_ms = mono_ms();
	/* The next per_s starts from this record's own figures, so a reader
	 * gets it back from two records' work and elapsed_ms. */
	if (s->work >= 0) {
		s->per_s = json_real_value(json_object_get(rec, "per_s"));
		s->work_prev = (uint64_t)json_integer_value(json_object_get(rec, "work"));
		s->work_prev_ms = s->start_ms + (uint64_t)json_integer_value(json_object_get(rec, "elapsed_ms"));
	}
	log_msg(LOG_INFO, rec, "stats");
}

void stats_tick(struct stats *s)
{
	uint64_t now = mono_ms();
	if (now - s->last_ms >= s->interval_ms)
		stats_emit(s, 0);
}

void stats_release(struct stats *s)
{
	memset(s, 0, sizeof *s);
}

/*
 * gem_reports.c: see gem_reports.h.  Every message is checked whole
 * before anything changes, so that a refused S2F33 or S2F35 leaves the
 * configuration as it was (E30 asks for all or nothing).
 */
#include "util.h"
#include "gem_reports.h"

#include <stdlib.h>
#include <string.h>

#include "banned.h"

struct report {
	uint32_t rptid;
	uint32_t *vids;
	size_t n;
};

/* One per profile event, at the same index. */
struct ce {
	uint32_t *rptids;
	size_t n;
	int enabled;
};

struct gem_reports {
	const struct profile *p;
	struct report *reports;
	size_t nreports;
	struct ce *ce;
};

struct gem_reports *gem_reports_new(const struct profile *p)
{
	struct gem_reports *g = xcalloc(1, sizeof *g);

	g->p = p;
	g->ce = xcalloc(p->nevents + 1, sizeof *g->ce);
	return g;
}

static void clear_links(struct ce *ce)
{
	free(ce->rptids);
	ce->rptids = NULL;
	ce->n = 0;
}

void gem_reports_free(struct gem_reports *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nreports; i++)
		free(g->reports[i].vids);
	for (size_t i = 0; i < g->p->nevents; i++)
		clear_links(&g->ce[i]);
	free(g->reports);
	free(g->ce);
	free(g);
}

static int id_of(const struct secs_item *it, uint32_t *out)
{
	uint64_t v;

	if (secs_get_uint(it, UINT32_MAX, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* The IDs of a list item into a new array (caller frees); -1 when one has no integer form. */
static int ids_of(const struct secs_item *l, uint32_t **out, size_t *n)
{
	*n = secs_count(l);
	*out = xcalloc(*n + 1, sizeof **out);
	for (size_t i = 0; i < *n; i++)
		if (id_of(secs_child(l, i), &(*out)[i]) != 0) {
			free(*out);
			*out = NULL;
			return -1;
		}
	return 0;
}

static struct report *find_report(const struct gem_reports *g, uint32_t rptid)
{
	for (size_t i = 0; i < g->nreports; i++)
		if (g->reports[i].rptid == rptid)
			return &g->reports[i];
	return NULL;
}

static struct ce *find_ce(const struct gem_reports *g, uint32_t ceid)
{
	const struct profile_event *pe = profile_event(g->p, ceid);

	return pe ? &g->ce[pe - g->p->events] : NULL;
}

/*
 * The list of <L [2] <ID> <L <ID>...>> pairs of an S2F33 or S2F35 body
 * <L [2] <DATAID> <L pairs...>>; NULL when the body has another shape.
 */
static const struct secs_item *pairs_of(const struct secs_item *body)
{
	const struct secs_item *l = secs_child(body, 1);

	if (secs_count(body) != 2 || !secs_is(body, SECS_L) || !secs_is(l, SECS_L))
		return NULL;
	for (size_t i = 0; i < secs_count(l); i++) {
		const struct secs_item *pair = secs_child(l, i);
		if (!secs_is(pair, SECS_L) || secs_count(pair) != 2 || !secs_is(secs_child(pair, 1), SECS_L) ||
		    secs_is(secs_child(pair, 0), SECS_L))
			return NULL;
	}
	return l;
}

static void delete_report(struct gem_reports *g, uint32_t rptid)
{
	struct report *r = find_report(g, rptid);

	if (!r)
		return;
	/* E30: a deleted report leaves every link it was in. */
	for (size_t i = 0; i < g->p->nevents; i++) {
		struct ce *ce = &g->ce[i];
		size_t k = 0;
		for (size_t j = 0; j < ce->n; j++)
			if (ce->rptids[j] != rptid)
				ce->rptids[k++] = ce->rptids[j];
		ce->n = k;
	}
	free(r->vids);
	*r = g->reports[--g->nreports];
}

/* Pair i of l has an ID (into *id) and a list of nothing but IDs: 0, else -1. */
static int pair_ids(const struct secs_item *l, size_t i, uint32_t *id)
{
	const struct secs_item *pair = secs_child(l, i), *list = secs_child(pair, 1);
	uint32_t x;

	if (id_of(secs_child(pair, 0), id) != 0)
		return -1;
	for (size_t k = 0; k < secs_count(list); k++)
		if (id_of(secs_child(list, k), &x) != 0)
			return -1;
	return 0;
}

/* 1 when a pair before pair i of l has the ID id. */
static int id_before(const struct secs_item *l, size_t i, uint32_t id)
{
	uint32_t other;

	for (size_t j = 0; j < i; j++)
		if (id_of(secs_child(secs_child(l, j), 0), &other) == 0 && other == id)
			return 1;
	return 0;
}

/* The DRACK of one definition, before anything changes. */
static int define_check(const struct gem_reports *g, const struct secs_item *l, size_t i)
{
	const struct secs_item *vl = secs_child(secs_child(l, i), 1);
	uint32_t rptid, vid;

	if (pair_ids(l, i, &rptid) != 0)
		return 2;
	if (secs_count(vl) == 0)
		return 0;
	if (find_report(g, rptid) || id_before(l, i, rptid))
		return 3;
	for (size_t k = 0; k < secs_count(vl); k++)
		if (id_of(secs_child(vl, k), &vid) != 0 || !profile_var(g->p, vid))
			return 4;
	return 0;
}

/*
 * The pairs of an S2F33 or S2F35 body when 'check' (the ACK of pair i)
 * passes each of them, so that a message is taken whole or not at all;
 * else NULL, with that ACK in *ack (-1 when the body has another shape).
 */
static const struct secs_item *checked_pairs(const struct gem_reports *g, const struct secs_item *body,
					     int (*check)(const struct gem_reports *, const struct secs_item *, size_t),
					     int *ack)
{
	const struct secs_item *l = pairs_of(body);

	*ack = l ? 0 : -1;
	for (size_t i = 0; l && i < secs_count(l) && *ack == 0; i++)
		*ack = check(g, l, i);
	return *ack ? NULL : l;
}

int gem_reports_define(struct gem_reports *g, const struct secs_item *body)
{
	int ack;
	const struct secs_item *l = checked_pairs(g, body, define_check, &ack);
	size_t n = secs_count(l);

	if (!l)
		return ack;
	if (n == 0) {
		while (g->nreports)
			delete_report(g, g->reports[0].rptid);
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const struct secs_item *pair = secs_child(l, i);
		struct report r = { 0, NULL, 0 };
		(void)id_of(secs_child(pair, 0), &r.rptid);
		if (secs_count(secs_child(pair, 1)) == 0) {
			delete_report(g, r.rptid);
			continue;
		}
		(void)ids_of(secs_child(pair, 1), &r.vids, &r.n);
		g->reports = xrealloc(g->reports, (g->nreports + 1) * sizeof *g->reports);
		g->reports[g->nreports++] = r;
	}
	return 0;
}

/* The LRACK of one link, before anything changes. */
static int link_check(const struct gem_reports *g, const struct secs_item *l, size_t i)
{
	const struct secs_item *rl = secs_child(secs_child(l, i), 1);
	uint32_t ceid, rptid;
	const struct ce *ce;

	if (pair_ids(l, i, &ceid) != 0)
		return 2;
	if (!(ce = find_ce(g, ceid)))
		return 4;
	if (secs_count(rl) == 0)
		return 0;
	if (ce->n > 0 || id_before(l, i, ceid))
		return 3;
	for (size_t k = 0; k < secs_count(rl); k++)
		if (id_of(secs_child(rl, k), &rptid) != 0 || !find_report(g, rptid))
			return 5;
	return 0;
}

int gem_reports_link(struct gem_reports *g, const struct secs_item *body)
{
	int ack;
	const struct secs_item *l = checked_pairs(g, body, link_check, &ack);

	if (!l)
		return ack;
	for (size_t i = 0; i < secs_count(l); i++) {
		const struct secs_item *pair = secs_child(l, i);
		uint32_t ceid = 0;
		struct ce *ce;
		(void)id_of(secs_child(pair, 0), &ceid);
		ce = find_ce(g, ceid);
		clear_links(ce);
		if (secs_count(secs_child(pair, 1)))
			(void)ids_of(secs_child(pair, 1), &ce->rptids, &ce->n);
	}
	return 0;
}

/* CEED: a BOOLEAN, or a B or U1 used as one, as some hosts send it. */
static int ceed_of(const struct secs_item *it, int *on)
{
	uint8_t b = 0;
	uint64_t u = 0;

	if (secs_get_bool(it, on) == 0)
		return 0;
	if (secs_get_byte(it, &b) == 0 || (!secs_is(it, SECS_A) && secs_get_uint(it, 255, &u) == 0)) {
		*on = secs_is(it, SECS_B) ? b != 0 : u != 0;
		return 0;
	}
	return -1;
}

int gem_reports_enable(struct gem_reports *g, const struct secs_item *body, int *enabled)
{
	const struct secs_item *l = secs_child(body, 1);
	size_t n = secs_count(l);
	uint32_t ceid = 0;
	int on;

	if (!secs_is(body, SECS_L) || secs_count(body) != 2 || !secs_is(l, SECS_L) ||
	    ceed_of(secs_child(body, 0), &on) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (id_of(secs_child(l, i), &ceid) != 0 || !find_ce(g, ceid))
			return 1;
	for (size_t i = 0; i < (n ? n : g->p->nevents); i++) {
		if (n)
			(void)id_of(secs_child(l, i), &ceid);
		find_ce(g, n ? ceid : g->p->events[i].ceid)->enabled = on;
	}
	*enabled = on;
	return 0;
}

int gem_reports_enabled(const struct gem_reports *g, uint32_t ceid)
{
	const struct ce *ce = find_ce(g, ceid);

	return ce && ce->enabled;
}

const uint32_t *gem_reports_linked(const struct gem_reports *g, uint32_t ceid, size_t *n)
{
	const struct ce *ce = find_ce(g, ceid);

	*n = ce ? ce->n : 0;
	return ce ? ce->rptids : NULL;
}

const uint32_t *gem_reports_vids(const struct gem_reports *g, uint32_t rptid, size_t *n)
{
	const struct report *r = find_report(g, rptid);

	*n = r ? r->n : 0;
	return r ? r->vids : NULL;
}

/* wafer.c: see wafer.h. */
#include "util.h"
#include "event.h"
#include "wafer.h"

#include <stdlib.h>
#include <string.h>

#include "banned.h"

void wafer_acct_init(struct wafer_acct *a, size_t max_dies)
{
	memset(a, 0, sizeof *a);
	a->planned_dies = a->end_dies = -1;
	a->col_max = a->row_max = -1;
	a->max_dies = max_dies;
}

void wafer_acct_forget_dies(struct wafer_acct *a)
{
	free(a->dies);
	a->dies = NULL;
	a->dcap = a->ndies = 0;
}

void wafer_acct_release(struct wafer_acct *a)
{
	wafer_acct_forget_dies(a);
}

enum wafer_fate wafer_acct_fate(const struct wafer_acct *a, enum event_type t)
{
	if (!a->ended)
		return WAFER_OWN;
	if (t == EV_WAFER_START)
		return WAFER_AGAIN;
	if (t == EV_WAFER_SUMMARY && !a->summarised)
		return WAFER_OWN;
	return WAFER_LATE;
}

void wafer_acct_start(struct wafer_acct *a, long dies)
{
	a->started = 1;
	if (dies >= 0)
		a->planned_dies = dies;
}

void wafer_acct_end(struct wafer_acct *a, long dies)
{
	a->ended = 1;
	if (dies >= 0)
		a->end_dies = dies;
}

void wafer_acct_summary(struct wafer_acct *a)
{
	/* Only the one after the wafer_end takes the wafer's one place. */
	if (a->ended)
		a->summarised = 1;
}

void wafer_acct_late(struct wafer_acct *a)
{
	a->late++;
}

static size_t die_hash(long col, long row)
{
	uint64_t h = (uint64_t)(uint32_t)col * 0x9e3779b97f4a7c15ULL ^
		     (uint64_t)(uint32_t)row * 0xc2b2ae3d27d4eb4fULL;
	return (size_t)(h ^ (h >> 29));
}

static struct wafer_die *die_slot(struct wafer_die *t, size_t cap, long col, long row)
{
	size_t i = die_hash(col, row) & (cap - 1);
	while (t[i].used && (t[i].col != col || t[i].row != row))
		i = (i + 1) & (cap - 1);
	return &t[i];
}

static int valid_index(long v)
{
	return v >= 0 && v < WAFER_INDEX_MAX;
}

/* The die's slot, added on first sight; NULL (counted) past max_dies or out of range. */
static struct wafer_die *die_get(struct wafer_acct *a, long col, long row)
{
	struct wafer_die *d;
	if (!valid_index(col) || !valid_index(row))
		return NULL;
	if (a->max_dies && a->ndies >= a->max_dies) {
		d = die_slot(a->dies, a->dcap, col, row);
		if (!d->used)
			a->untracked++;
		return d->used ? d : NULL;
	}
	if ((a->ndies + 1) * 10 > a->dcap * 7) {
		size_t ncap = a->dcap ? a->dcap * 2 : 256;
		struct wafer_die *nt = xcalloc(ncap, sizeof *nt);
		for (size_t i = 0; i < a->dcap; i++)
			if (a->dies[i].used)
				*die_slot(nt, ncap, a->dies[i].col, a->dies[i].row) = a->dies[i];
		free(a->dies);
		a->dies = nt;
		a->dcap = ncap;
	}
	d = die_slot(a->dies, a->dcap, col, row);
	if (!d->used) {
		d->used = 1;
		d->col = (int32_t)col;
		d->row = (int32_t)row;
		a->ndies++;
		if (col > a->col_max)
			a->col_max = col;
		if (row > a->row_max)
			a->row_max = row;
	}
	return d;
}

int wafer_acct_die(struct wafer_acct *a, long col, long row)
{
	struct wafer_die *d = die_get(a, col, row);
	if (!d || d->inspected)
		return 0;
	d->inspected = 1;
	a->inspected++;
	return 1;
}

const struct wafer_die *wafer_acct_defect(struct wafer_acct *a, long col, long row, uint32_t n)
{
	struct wafer_die *d;
	a->defects += n;
	if (!n)
		return NULL;
	d = die_get(a, col, row);
	if (d && (d->defects += n) == n)
		a->defective++;
	return d;
}

const struct wafer_die *wafer_acct_die_get(const struct wafer_acct *a, long col, long row)
{
	const struct wafer_die *d;
	if (!a->dcap)
		return NULL;
	d = die_slot(a->dies, a->dcap, col, row);
	return d->used ? d : NULL;
}

long wafer_acct_dies(const struct wafer_acct *a)
{
	if (a->inspected > 0)
		return (long)a->inspected;
	return a->end_dies > 0 ? a->end_dies : 0;
}

double wafer_density_cm2(uint64_t defects, long dies, double die_area_um2)
{
	if (dies <= 0 || !(die_area_um2 > 0))
		return 0;
	return (double)defects / ((double)dies * die_area_um2 / 1e8);
}

double wafer_acct_density(const struct wafer_acct *a, double die_area_um2)
{
	return wafer_density_cm2(a->defects, wafer_acct_dies(a), die_area_um2);
}

/*
 * gem_reports.h: an equipment's event reports as its host defines them
 * (SEMI E30, dynamic event report configuration): reports (RPTID to
 * VIDs, S2F33), their links to collection events (CEID to RPTIDs,
 * S2F35) and which collection events are enabled (S2F37).  What exists,
 * the VIDs and CEIDs, is the tool profile's; how reports are numbered
 * and filled is the host's alone.  The configuration outlives a
 * connection, as on real tools.  Every ID is read in any integer format
 * or as decimal ASCII, as hosts send them.
 *
 * Steps: gem_reports_new; gem_reports_define, _link and _enable with
 * each S2F33, S2F35 and S2F37 body (each returns the ack code to send,
 * or -1 for a body without the message's structure, which gets S9F7);
 * gem_reports_enabled and gem_reports_linked for each collection event,
 * gem_reports_vids for each of its reports; gem_reports_free.
 */
#ifndef KERF_GEM_REPORTS_H
#define KERF_GEM_REPORTS_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"
#include "secs.h"

struct gem_reports;

/* Borrows p, which must outlive it. */
struct gem_reports *gem_reports_new(const struct profile *p);
void gem_reports_free(struct gem_reports *g);

/* DRACK: 0 done, 2 an ID of no integer form, 3 an RPTID already defined, 4 a VID unknown. */
int gem_reports_define(struct gem_reports *g, const struct secs_item *body);
/* LRACK: 0 done, 2 an ID of no integer form, 3 a CEID already linked, 4 a CEID unknown, 5 an RPTID undefined. */
int gem_reports_link(struct gem_reports *g, const struct secs_item *body);
/* ERACK: 0 done (*enabled says which way), 1 a CEID unknown. */
int gem_reports_enable(struct gem_reports *g, const struct secs_item *body, int *enabled);

int gem_reports_enabled(const struct gem_reports *g, uint32_t ceid);
/* The reports linked to ceid, in the host's order (valid until the next change). */
const uint32_t *gem_reports_linked(const struct gem_reports *g, uint32_t ceid, size_t *n);
/* The VIDs of a report, in the host's order; NULL when it is not defined. */
const uint32_t *gem_reports_vids(const struct gem_reports *g, uint32_t rptid, size_t *n);

#endif

/*
 * status_metrics.h: a run's metrics, for monitoring: what status.json
 * says (the run's state, its stages' liveness, exits, queues, rates and
 * counters) as metric families (lib/openmetrics.h), every sample
 * labelled with the run's id.  Derived from the status.json document
 * alone, so that kerf run's RUNDIR/metrics.prom (written with every
 * status.json) and kerf status --format openmetrics (which reads
 * status.json) give the same bytes for the same document.  kerf(1),
 * RUN DIRECTORY FILES, lists the families.
 */
#ifndef KERF_STATUS_METRICS_H
#define KERF_STATUS_METRICS_H

#include <jansson.h>

#include "openmetrics.h"

/* The file in the run directory, for node_exporter's textfile collector. */
#define STATUS_METRICS_FILE "metrics.prom"

/* Add st's metric families to m (om_init'ed, nothing ended); st borrowed. */
void status_metrics(struct om *m, const json_t *st);
/*
 * Replace DIR/metrics.prom by st's metrics (om_write_file).  0 or -1
 * with errno.
 */
int status_metrics_write(const char *dir, const json_t *st);

#endif

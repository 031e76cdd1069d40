/*
 * bench-rerun: copy a recorded kerf event stream under other run ids, for
 * scripts/bench's long inputs.  Each event gets the new run id and the id
 * it would have had in that run (event_id for acquired events,
 * event_id_defect for defects, event_id_derived for die_done and
 * wafer_summary), so every copy passes kerf-validate and is distinct to
 * kerf-persist.
 *
 * Usage: bench-rerun PREFIX COPIES < stream > longer-stream
 * Copy k (1..COPIES) has run id PREFIX-k.  The input is held in memory.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "event.h"
#include "cli.h"
#include "out.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static uint64_t new_id(const char *run, json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	uint64_t seq = (uint64_t)json_integer_value(json_object_get(ev, "seq"));
	const char *wafer = json_string_value(json_object_get(ev, "wafer"));
	char key[32];

	if (type && !strcmp(type, "defect") && wafer)
		return event_id_defect(run, wafer, (long)json_integer_value(json_object_get(ev, "col")),
				       (long)json_integer_value(json_object_get(ev, "row")),
				       (long)json_integer_value(json_object_get(ev, "index")));
	if (type && !strcmp(type, "die_done")) {
		snprintf(key, sizeof key, "%" PRIu64, seq);
		return event_id_derived(run, "die_done", key);
	}
	if (type && !strcmp(type, "wafer_summary") && wafer)
		return event_id_derived(run, "wafer_summary", wafer);
	return event_id(run, seq);
}

int main(int argc, char **argv)
{
	char *line = NULL;
	size_t cap = 0, n = 0, evcap = 0;
	ssize_t len;
	json_t **evs = NULL;
	long copies, k;

	log_init(argv[0]);
	if (argc != 3 || parse_long(argv[2], 1, 100000, &copies) != 0)
		cli_usage_error("usage: bench-rerun PREFIX COPIES");
	stdout_init();
	while ((len = getline(&line, &cap, stdin)) > 0) {
		json_error_t err;
		json_t *ev = json_loadb(line, (size_t)len, 0, &err);

		if (!json_is_object(ev)) {
			log_msg(LOG_ERROR, NULL, "line %zu: not an event: %s", n + 1, err.text);
			return KERF_EX_DATAERR;
		}
		if (n == evcap)
			evs = xrealloc(evs, (evcap = evcap ? 2 * evcap : 1024) * sizeof *evs);
		evs[n++] = ev;
	}
	free(line);
	for (k = 1; k <= copies; k++) {
		char *run = xasprintf("%s-%ld", argv[1], k);
		size_t i;

		for (i = 0; i < n; i++) {
			json_object_set_new(evs[i], "run", json_string(run));
			event_set_id(evs[i], new_id(run, evs[i]));
			if (event_write(stdout, evs[i]) != 0)
				break;
		}
		free(run);
	}
	for (size_t i = 0; i < n; i++)
		json_decref(evs[i]);
	free(evs);
	return fshut(stdout, "standard output");
}

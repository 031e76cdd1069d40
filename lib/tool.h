/*
 * tool.h: kerf-tool, the simulated inspection tool (lib/simrun) as a GEM
 * equipment over HSMS-SS (SEMI E37, E5, E30), so that kerf can be tried
 * against a live tool without a fab and its tests have one to talk to.
 * It owns the link (lib/hsms), the GEM state (communication, control,
 * the host's reports, links, enabled events and alarms) and the lots,
 * each started by the host's S2F41 START: every event of a lot goes out
 * as the S6F11 the host asked for (an alarm as S5F1), numbered by the
 * tool profile's CEIDs and VIDs and by the host's RPTIDs.
 *
 * Steps: tool_opts_init; set the options; tool_run, which returns the
 * exit status (lib/exitcode.h).
 */
#ifndef KERF_TOOL_H
#define KERF_TOOL_H

#include <stdint.h>

#include "hsms.h"
#include "simrun.h"

struct tool_opts {
	struct simrun_opts sim;   /* every lot's; START's LOTID, RECIPE and WAFERS override */
	const char *run;          /* run id of the first lot; later lots add -2, -3, ... */
	const char *profile;      /* a profile name or path, as profile_find takes it */
	struct hsms_config hsms;  /* mode, address, device id, timers (copied) */
	const char *trace;        /* --hsms-trace FILE, or NULL */
	uint64_t max_ms;          /* stop after this long; 0: only on a signal */
	int local;                /* S1F17 makes it ONLINE LOCAL instead of REMOTE */
	/* For kerf's readiness checks (kerf-tool(1)). */
	const char *model, *softrev; /* S1F2's MDLN and SOFTREV instead of the profile's */
	int refuse_online;        /* S1F17 answered ONLACK 1 (not allowed) */
	const char *recipes;      /* S7F20's list, comma-separated; NULL: the lot's recipe only */
	unsigned mute[8][2];      /* stream, function of primaries never answered */
	int nmute;
};

void tool_opts_init(struct tool_opts *o);
int tool_run(const struct tool_opts *o);

#endif

/*
 * runstate-table: print every allowed transition of lib/runstate.c's
 * state x event table, one "STATE EVENT -> STATE" per line ("settled"
 * for back to the settled state), with " (settles STATE)" for an event
 * that tells which state the tool is in, for tests/kerf.bats to compare
 * with tests/data/kerf/table.out.
 */
#include "out.h"
#include "runstate.h"

#include "banned.h"

int main(void)
{
	for (int s = 0; s < RS__COUNT; s++)
		for (int e = 0; e < RSE__COUNT; e++) {
			int n = runstate_next((enum runstate_state)s, (enum runstate_event)e);
			int st = runstate_settles((enum runstate_event)e);
			if (n < 0)
				continue;
			printf("%s %s -> %s", runstate_state_name((enum runstate_state)s),
			       runstate_event_name((enum runstate_event)e),
			       n == RS_SETTLED ? "settled" : runstate_state_name((enum runstate_state)n));
			if (st >= 0)
				printf(" (settles %s)", runstate_state_name((enum runstate_state)st));
			putchar('\n');
		}
	return fshut(stdout, "standard output");
}

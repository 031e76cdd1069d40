/*
 * blame-table: print lib/blame.c's rules whole, for tests/kerf.bats to
 * compare with tests/data/kerf/blame.out.  One line per exit kind, set
 * of facts and time of judgement: "KIND FACTS WHEN -> VERDICT", FACTS
 * the facts joined by "," ("-" for none); WHEN is at_exit for every
 * kind, and waiting and expired too for a broken pipe, the only kind
 * that can be a suspect.  Then the root cause's rank of each verdict
 * that can make one: "rank KIND VERDICT N".
 */
#include "blame.h"
#include "util.h"

#include <stdio.h>
#include "out.h"

static void print_facts(unsigned f)
{
	int any = 0;
	for (unsigned bit = 1; bit < BLAME_FACTS; bit <<= 1)
		if (f & bit) {
			printf("%s%s", any ? "," : "", blame_fact_name(bit));
			any = 1;
		}
	if (!any)
		putchar('-');
}

int main(void)
{
	for (int x = 0; x < BLAME_EXIT__COUNT; x++)
		for (int w = 0; w < BLAME_WHEN__COUNT; w++) {
			if (w != BLAME_AT_EXIT && x != BLAME_EXIT_PIPE)
				continue;
			for (unsigned f = 0; f < BLAME_FACTS; f++) {
				printf("%s ", blame_exit_name((enum blame_exit)x));
				print_facts(f);
				printf(" %s -> %s\n", blame_when_name((enum blame_when)w),
				       blame_verdict_name(blame_judge((enum blame_exit)x, f, (enum blame_when)w)));
			}
		}
	for (int x = 0; x < BLAME_EXIT__COUNT; x++)
		for (int v = 0; v < BLAME__COUNT; v++) {
			int r = blame_rank((enum blame_verdict)v, (enum blame_exit)x);
			if (r)
				printf("rank %s %s %d\n", blame_exit_name((enum blame_exit)x),
				       blame_verdict_name((enum blame_verdict)v), r);
		}
	return fshut(stdout, "standard output");
}

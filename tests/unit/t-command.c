/*
 * t-command: print lib/command.c's rules whole, for tests/command.bats to
 * compare with tests/data/command/table.out:
 *   "rule STATE PENDING NEW -> ACTION" for every pending command in every
 *   pending state (queued, sent, accepted) and every new command;
 *   "answer COMMAND HCACK -> FATE" for every command and every answer
 *   (-1: none came);
 *   "confirm COMMAND -> EVENT" for the event that confirms each command.
 */
#include "out.h"
#include "command.h"

#include "banned.h"

int main(void)
{
	static const enum cmd_fate states[] = { CMD_QUEUED, CMD_SENT, CMD_ACCEPTED };

	for (size_t s = 0; s < sizeof states / sizeof states[0]; s++)
		for (int p = 0; p < PROFILE_OP__COUNT; p++)
			for (int in = 0; in < PROFILE_OP__COUNT; in++)
				printf("rule %s %s %s -> %s\n", cmd_fate_name(states[s]), profile_op_name((enum profile_op)p),
				       profile_op_name((enum profile_op)in),
				       cmd_action_name(cmd_rule(states[s], (enum profile_op)p, (enum profile_op)in)));
	for (int op = 0; op < PROFILE_OP__COUNT; op++)
		for (int h = -1; h <= 6; h++)
			printf("answer %s %d -> %s\n", profile_op_name((enum profile_op)op), h,
			       cmd_fate_name(cmd_answer((enum profile_op)op, h)));
	for (int op = 0; op < PROFILE_OP__COUNT; op++) {
		const char *t, *w;
		cmd_confirm_by((enum profile_op)op, &t, &w);
		printf("confirm %s -> %s%s%s\n", profile_op_name((enum profile_op)op), t, w ? " " : "", w ? w : "");
	}
	return fshut(stdout, "standard output");
}

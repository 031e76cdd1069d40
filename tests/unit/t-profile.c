/*
 * t-profile: load a tool profile and print what kerf made of it, one
 * record per line, sorted by number ("var VID FIELD AS", "report RPTID
 * VID...", "event CEID TYPE [STATE] RPTID...", "alarm ALID CATEGORY",
 * "command OP RCMD CPNAME=FIELD..."), or the error on stderr with exit 65.
 * Usage: t-profile FILE
 */
#include "exitcode.h"
#include "log.h"
#include "event.h"
#include "cli.h"
#include "out.h"
#include "profile.h"

#include <stdio.h>

#include "banned.h"

int main(int argc, char **argv)
{
	struct profile p;
	char err[512];
	size_t i, j;

	log_init(argv[0]);
	if (argc != 2)
		cli_usage_error("usage: t-profile FILE");
	if (profile_load(&p, argv[1], err, sizeof err) != 0) {
		fprintf(stderr, "t-profile: %s\n", err);
		return KERF_EX_DATAERR;
	}
	printf("profile %s model %s softrev %s images %d\n", p.name, p.model ? p.model : "-",
	       p.softrev ? p.softrev : "-", p.images);
	for (i = 0; i < p.nvars; i++)
		printf("var %u %s %d\n", p.vars[i].vid, p.vars[i].field, (int)p.vars[i].as);
	for (i = 0; i < p.nreports; i++) {
		printf("report %u", p.reports[i].rptid);
		for (j = 0; j < p.reports[i].nvids; j++)
			printf(" %u", p.reports[i].vids[j]);
		printf("\n");
	}
	for (i = 0; i < p.nevents; i++) {
		printf("event %u %s", p.events[i].ceid, event_type_name(p.events[i].type));
		if (p.events[i].state)
			printf(" state=%s", p.events[i].state);
		for (j = 0; j < p.events[i].nrptids; j++)
			printf(" %u", p.events[i].rptids[j]);
		printf("\n");
	}
	for (i = 0; i < p.nalarms; i++)
		printf("alarm %u %s\n", p.alarms[i].alid, p.alarms[i].category ? p.alarms[i].category : "-");
	for (i = 0; i < PROFILE_OP__COUNT; i++) {
		if (!p.cmds[i].rcmd)
			continue;
		printf("command %s %s", profile_op_name((enum profile_op)i), p.cmds[i].rcmd);
		for (j = 0; j < p.cmds[i].nparams; j++)
			printf(" %s=%s", p.cmds[i].params[j].cpname, p.cmds[i].params[j].field);
		printf("\n");
	}
	profile_release(&p);
	return fshut(stdout, "standard output");
}

/*
 * validate_run.h: kerf-validate's loop.  Every line of standard input is
 * checked (validate.h); good lines go to standard output as their
 * original bytes (out.h), bad ones get a reject record (reject.h) with a
 * stable reason code; in = out + rejected, counted in the stats records.
 *
 * Steps: validate_run_opts_init, set the fields (from the command line);
 * validate_run, whose result is the exit status.
 */
#ifndef KERF_VALIDATE_RUN_H
#define KERF_VALIDATE_RUN_H

#include "validate.h"

struct validate_run_opts {
	struct validate_opts check;  /* the checks, the policies and --max-line */
	const char *rejects;         /* --rejects FILE; NULL: the default (reject.h) */
	int strict;                  /* stop at the first bad line, exit 65 */
};

void validate_run_opts_init(struct validate_run_opts *o);
int validate_run(const struct validate_run_opts *o);

#endif

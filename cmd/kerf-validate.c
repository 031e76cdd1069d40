/*
 * kerf-validate: the gate between the machine and everything that trusts
 * its data.  Every line of standard input is checked (lib/validate.h);
 * good lines go to standard output as their original bytes, bad ones get
 * a reject record with a stable reason code.  in = out + rejected.
 */
#include "cli.h"
#include "log.h"
#include "validate_run.h"

#include <getopt.h>
#include <stdint.h>

#include "banned.h"

static const char usage[] =
	"Usage: kerf-validate [-s] [-m SIZE] [-r FILE] [--on-gap POLICY]\n"
	"                     [--on-duplicate POLICY] [--on-order POLICY]\n"
	"Check every NDJSON event on standard input: strict JSON, the envelope,\n"
	"each event type's fields and ranges, die image checksums and each run's\n"
	"sequence.  Good lines go to standard output unchanged; each bad line gets\n"
	"a reject record with a stable reason code.\n"
	"\n";

int main(int argc, char **argv)
{
	struct validate_run_opts o;
	uint64_t max_line;
	const struct cli_opt options[] = {
		CLI_REJECTS('r', &o.rejects),
		CLI_MAX_LINE('m', &max_line),
		OPT_ENUM(0, "on-gap", "POLICY", &o.check.on_gap, validate_policies,
			 "seqs missing in a run: warn (default), reject\nthe line after the gap, or fail"),
		OPT_ENUM(0, "on-duplicate", "POLICY", &o.check.on_duplicate, validate_policies,
			 "a seq seen before: warn, reject (default) or fail"),
		OPT_ENUM(0, "on-order", "POLICY", &o.check.on_order, validate_policies,
			 "a missing seq arriving late: warn, reject\n(default) or fail"),
		OPT_BOOL('s', "strict", &o.strict, "stop at the first bad line, exit 65"),
		OPT_HELP("print this help and exit"),
		OPT_VERSION('V', "print the version and exit"),
		OPT_END(),
	};
	const struct cli_spec spec = { .usage = usage, .opts = options, .width = 29 };

	log_init(argv[0]);
	validate_run_opts_init(&o);
	max_line = o.check.max_line;
	if (cli_parse(&spec, argc, argv, NULL) < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	o.check.max_line = (size_t)max_line;
	return validate_run(&o);
}

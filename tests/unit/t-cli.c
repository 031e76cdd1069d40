/*
 * t-cli: lib/cli.c's option table on a table of every kind.
 * t-cli ARGS...: parses ARGS, then prints each target as NAME=VALUE and
 * the arguments left; --help prints the table; a usage error exits 64.
 */
#include "log.h"
#include "cli.h"
#include "strvec.h"

#include <stdint.h>
#include <stdlib.h>

#include "banned.h"

static int flag, level, color;
static const char *name;
static long count = 5;
static double ratio = 1.5;
static uint64_t size = 100, ms = 2000, u64;
static const char *ms_raw;
static struct strvec list;

static void callback(const struct cli_opt *opt, const char *arg, void *ctx)
{
	printf("callback %s %s %s\n", opt->long_name, arg ? arg : "(none)", (const char *)ctx);
}

static const struct cli_choice colors[] = { { "red", 1 }, { "green", 2 }, { "blue", 3 }, { NULL, 0 } };

/* A fragment two tables include: printed once. */
static const struct cli_opt shared[] = {
	OPT_STRVEC(0, "item", "X", &list, "one more item (repeatable)"),
	OPT_END(),
};

static const struct cli_opt first[] = {
	OPT_BOOL('f', "flag", &flag, "a flag"),
	OPT_SET_INT(0, "high", &level, 7, ""),
	OPT_SET_INT(0, "low", &level, 1, "set the level high (7) or low (1)"),
	OPT_INCLUDE(shared),
	OPT_END(),
};

static const struct cli_opt options[] = {
	OPT_GROUP("First:"),
	OPT_INCLUDE(first),
	OPT_GROUP("Second:"),
	OPT_STRING('n', "name", "NAME", &name, "a name"),
	OPT_LONG('c', "count", "N", &count, 1, 10, "a count, 1..10"),
	OPT_DOUBLE(0, "ratio", "R", &ratio, 0.5, 2, "a ratio"),
	OPT_SIZE(0, "size", "SIZE", &size, 64, 1 << 20, "a size"),
	{ .kind = CLI_DURATION, .long_name = "wait", .argname = "DUR", .value = &ms, .raw = &ms_raw, .min = 1,
	  .max = CLI_NOMAX, .set = 1000, .help = "a duration,\nat least 1ms" },
	OPT_U64(0, "seq", "N", &u64, "a sequence number"),
	OPT_ENUM(0, "color", "C", &color, colors, "red, green or blue"),
	OPT_CALLBACK(0, "call", "ARG", callback, "a callback"),
	OPT_INCLUDE(shared),
	OPT_STRING(0, "hidden", "X", &name, NULL),
	OPT_HELP("this help"),
	OPT_VERSION('V', "the version"),
	OPT_END(),
};

int main(int argc, char **argv)
{
	const struct cli_spec spec = { .usage = "usage: t-cli [OPTION]... [ARG]...\n\n", .opts = options,
				       .tail = "The end.\n", .width = 20 };
	int i;

	log_init("t-cli");
	i = cli_parse(&spec, argc, argv, "ctx");
	printf("flag=%d level=%d name=%s count=%ld ratio=%g size=%llu wait=%llu(%s) seq=%llu color=%d\n", flag,
	       level, name ? name : "-", count, ratio, (unsigned long long)size, (unsigned long long)ms,
	       ms_raw ? ms_raw : "-", (unsigned long long)u64, color);
	for (int k = 0; k < list.n; k++)
		printf("item %s\n", list.v[k]);
	for (; i < argc; i++)
		printf("arg %s\n", argv[i]);
	strvec_clear(&list);
	return 0;
}

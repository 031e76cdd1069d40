/*
 * cli.h: the command-line conventions of every kerf program, and its
 * options as one table.
 * --help prints the usage text to stdout and exits 0; --version prints
 * "PROGRAM VERSION"; a usage error prints "PROGRAM: message" and a hint to
 * stderr and exits 64.  Stdout is checked at close.
 *
 * A program describes each option once, in an array of struct cli_opt
 * ended by OPT_END() (git's parse-options): its names, its argument, what
 * kind of value it is, where the value goes, its range and its help text.
 * cli_parse() parses argv with getopt_long from that array, checks each
 * value against its range (a usage error otherwise) and answers --help
 * with the same array printed.  The steps:
 *   1. set the targets to their defaults;
 *   2. optind = cli_parse(&spec, argc, argv, ctx);
 *   3. check what the options cannot mean together, with cli_usage_error.
 * An OPT_INCLUDE entry splices in another array, so options that several
 * commands share are written once (CLI_MAX_LINE, CLI_REJECTS below, kerf
 * run's and kerf reprocess's stage settings); help prints an entry once.
 */
#ifndef KERF_CLI_H
#define KERF_CLI_H

#include <math.h>
#include <stdio.h>

/* --max-line, for every program that reads lines: one range, one default. */
#define KERF_MAX_LINE_MIN 64
#define KERF_MAX_LINE_MAX (1ull << 30)
#define KERF_MAX_LINE_DEFAULT (64u << 20)

enum cli_kind {
	CLI_END,
	CLI_GROUP,    /* a heading line in the help, no option */
	CLI_INCLUDE,  /* value: another array, spliced in here */
	CLI_BOOL,     /* int *: set to 'set' (1 unless given) */
	CLI_STRING,   /* const char **: the argument itself */
	CLI_INT,      /* int *: a whole number in [min, max] */
	CLI_LONG,     /* long *: a whole number in [min, max] */
	CLI_U64,      /* uint64_t *: a whole number, 0 to 2^64-1 */
	CLI_DOUBLE,   /* double *: a number in [min, max] */
	CLI_SIZE,     /* uint64_t *: bytes, with K, M, G, T suffixes, in [min, max] */
	CLI_DURATION, /* uint64_t *: milliseconds, in [min, max]; a bare number is in 'unit' ms */
	CLI_ENUM,     /* int *: the value of the choice named */
	CLI_STRVEC,   /* struct strvec *: each argument appended (a repeatable option) */
	CLI_CALLBACK, /* cb(opt, arg, ctx): calls cli_usage_error itself on a bad value */
	CLI_HELP,
	CLI_VERSION,
};

struct cli_choice {
	const char *name;
	int value;
};

struct cli_opt {
	enum cli_kind kind;
	int short_name;             /* 0: none */
	const char *long_name;      /* without "--"; NULL: none */
	const char *argname;        /* in the help; NULL: takes no argument */
	void *value;                /* where the value goes (see enum cli_kind) */
	const char *help;           /* lines split by '\n'; NULL: not listed;
				     * "": listed with the next entry's text */
	double min, max;            /* the range of a number, size or duration */
	int set;                    /* CLI_BOOL: the value set; CLI_DURATION: ms of a bare number */
	const char **raw;           /* when not NULL: gets the argument as given too */
	const struct cli_choice *choices; /* CLI_ENUM: ended by a NULL name */
	void (*cb)(const struct cli_opt *opt, const char *arg, void *ctx);
};

#define OPT_END() { .kind = CLI_END }
#define OPT_GROUP(title) { .kind = CLI_GROUP, .help = (title) }
#define OPT_INCLUDE(array) { .kind = CLI_INCLUDE, .value = (void *)(array) }
#define OPT_BOOL(s, l, v, h) { .kind = CLI_BOOL, .short_name = (s), .long_name = (l), .value = (v), .help = (h), .set = 1 }
#define OPT_SET_INT(s, l, v, val, h) \
	{ .kind = CLI_BOOL, .short_name = (s), .long_name = (l), .value = (v), .help = (h), .set = (val) }
#define OPT_STRING(s, l, a, v, h) { .kind = CLI_STRING, .short_name = (s), .long_name = (l), .argname = (a), .value = (v), .help = (h) }
#define OPT_INT(s, l, a, v, lo, hi, h) \
	{ .kind = CLI_INT, .short_name = (s), .long_name = (l), .argname = (a), .value = (v), .help = (h), .min = (lo), .max = (hi) }
#define OPT_LONG(s, l, a, v, lo, hi, h) \
	{ .kind = CLI_LONG, .short_name = (s), .long_name = (l), .argname = (a), .value = (v), .help = (h), .min = (lo), .max = (hi) }
#define OPT_U64(s, l, a, v, h) { .kind = CLI_U64, .short_name = (s), .long_name = (l), .argname = (a), .value = (v), .help = (h) }
#define OPT_DOUBLE(s, l, a, v, lo, hi, h) \
	{ .kind = CLI_DOUBLE, .short_name = (s), .long_name = (l), .argname = (a), .value = (v), .help = (h), .min = (lo), .max = (hi) }
#define OPT_SIZE(s, l, a, v, lo, hi, h) \
	{ .kind = CLI_SIZE, .short_name = (s), .long_name = (l), .argname = (a), .value = (v), .help = (h), .min = (lo), .max = (hi) }
/* A duration; a bare number is seconds (OPT_MS: milliseconds). */
#define OPT_DURATION(s, l, a, v, lo, hi, h) \
	{ .kind = CLI_DURATION, .short_name = (s), .long_name = (l), .argname = (a), .value = (v), .help = (h), .min = (lo), .max = (hi), .set = 1000 }
#define OPT_MS(s, l, a, v, lo, hi, h) \
	{ .kind = CLI_DURATION, .short_name = (s), .long_name = (l), .argname = (a), .value = (v), .help = (h), .min = (lo), .max = (hi), .set = 1 }
#define OPT_ENUM(s, l, a, v, ch, h) \
	{ .kind = CLI_ENUM, .short_name = (s), .long_name = (l), .argname = (a), .value = (v), .help = (h), .choices = (ch) }
#define OPT_STRVEC(s, l, a, v, h) { .kind = CLI_STRVEC, .short_name = (s), .long_name = (l), .argname = (a), .value = (v), .help = (h) }
/* A callback with no argument when a is NULL. */
#define OPT_CALLBACK(s, l, a, fn, h) { .kind = CLI_CALLBACK, .short_name = (s), .long_name = (l), .argname = (a), .cb = (fn), .help = (h) }
#define OPT_HELP(h) { .kind = CLI_HELP, .short_name = 'h', .long_name = "help", .help = (h) }
#define OPT_VERSION(s, h) { .kind = CLI_VERSION, .short_name = (s), .long_name = "version", .help = (h) }
/* No upper bound. */
#define CLI_NOMAX INFINITY

/* The options every line-reading program shares, documented once. */
#define CLI_MAX_LINE(s, v) \
	OPT_SIZE(s, "max-line", "SIZE", v, KERF_MAX_LINE_MIN, KERF_MAX_LINE_MAX, \
		 "reject a longer line without reading it whole;\nSIZE in bytes, or K, M, G (64 to 1G; default 64M)")
#define CLI_REJECTS(s, v) \
	OPT_STRING(s, "rejects", "FILE", v, \
		   "append reject records to FILE ('-': standard\nerror; default $KERF_RUNDIR/rejects.ndjson\nwhen set, else standard error)")

struct cli_spec {
	const char *usage;         /* the synopsis and description, before the options */
	const struct cli_opt *opts;
	const char *tail;          /* after the options; may be NULL */
	int width;                 /* the column of the help texts */
	/* When not NULL: called after each option is applied, to note what was given. */
	void (*seen)(const struct cli_opt *opt, void *ctx);
};

/* Parse argv's options (getopt_long) into the table's targets; returns
 * optind.  --help and --version answer and exit; a bad option or value is
 * a usage error.  ctx goes to the callbacks. */
int cli_parse(const struct cli_spec *spec, int argc, char **argv, void *ctx);
/* The help text: usage, the table, the tail. */
void cli_print_help(const struct cli_spec *spec, FILE *f);
/* Print spec's help to stdout, check the write, exit 0 (or 74). */
void cli_help_spec(const struct cli_spec *spec) __attribute__((noreturn));

/* Print 'usage' to stdout, check the write, exit 0 (or 74). */
void cli_help(const char *usage) __attribute__((noreturn));
/* Print "PROGRAM VERSION" to stdout and exit. */
void cli_version(void) __attribute__((noreturn));
/* "PROGRAM: message" and "Try 'PROGRAM --help'." on stderr, exit 64. */
void cli_usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* "PROGRAM: message" on stderr, exit 'code' (any error before logging matters). */
void cli_die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

#endif

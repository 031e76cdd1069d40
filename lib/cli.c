/* cli.c: see cli.h. */
#include "cli.h"

#include "exitcode.h"
#include "version.h"
#include "util.h"
#include "log.h"
#include "out.h"
#include "strvec.h"

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* The table with its includes spliced in, each entry once. */
struct flat {
	const struct cli_opt **v;
	int n, cap;
};

static void flatten(struct flat *f, const struct cli_opt *o)
{
	for (; o->kind != CLI_END; o++) {
		int seen = 0;
		if (o->kind == CLI_INCLUDE) {
			flatten(f, o->value);
			continue;
		}
		for (int i = 0; i < f->n && !seen; i++)
			seen = f->v[i] == o;
		if (seen)
			continue;
		if (f->n == f->cap) {
			f->cap = f->cap ? 2 * f->cap : 32;
			f->v = xrealloc(f->v, (size_t)f->cap * sizeof *f->v);
		}
		f->v[f->n++] = o;
	}
}

/* "--name" or "-c", for messages. */
static const char *opt_name(const struct cli_opt *o, char *buf, size_t len)
{
	if (o->long_name)
		snprintf(buf, len, "--%s", o->long_name);
	else
		snprintf(buf, len, "-%c", o->short_name);
	return buf;
}

/* A size or a duration as the user would write it: 64, 1G, 500ms, 1h. */
static void fmt_amount(char *buf, size_t len, double v, int duration)
{
	static const struct { const char *unit; double n; } sizes[] = {
		{ "T", 1099511627776.0 }, { "G", 1073741824.0 }, { "M", 1048576.0 }, { "K", 1024.0 }, { "", 1 },
	}, times[] = {
		{ "h", 3600000.0 }, { "m", 60000.0 }, { "s", 1000.0 }, { "ms", 1 },
	};
	size_t n = duration ? sizeof times / sizeof times[0] : sizeof sizes / sizeof sizes[0];
	for (size_t i = 0; i < n; i++) {
		double u = duration ? times[i].n : sizes[i].n;
		if (v >= u && fmod(v, u) == 0) {
			snprintf(buf, len, "%.0f%s", v / u, duration ? times[i].unit : sizes[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%.0f%s", v, duration ? "ms" : "");
}

static void __attribute__((noreturn)) range_error(const struct cli_opt *o, const char *arg, const char *what)
{
	char name[64], lo[32], hi[32];
	int amount = o->kind == CLI_SIZE || o->kind == CLI_DURATION;
	if (amount) {
		fmt_amount(lo, sizeof lo, o->min, o->kind == CLI_DURATION);
		fmt_amount(hi, sizeof hi, o->max, o->kind == CLI_DURATION);
	} else {
		snprintf(lo, sizeof lo, "%g", o->min);
		snprintf(hi, sizeof hi, "%g", o->max);
	}
	if (isinf(o->max))
		cli_usage_error("%s: '%s' is not %s of at least %s", opt_name(o, name, sizeof name), arg, what, lo);
	cli_usage_error("%s: '%s' is not %s from %s to %s", opt_name(o, name, sizeof name), arg, what, lo, hi);
}

static void apply(const struct cli_spec *spec, const struct cli_opt *o, const char *arg, void *ctx)
{
	char name[64];
	double d;
	long l;
	uint64_t u;

	if (o->raw)
		*o->raw = arg;
	switch (o->kind) {
	case CLI_BOOL: *(int *)o->value = o->set; break;
	case CLI_STRING: *(const char **)o->value = arg; break;
	case CLI_INT:
	case CLI_LONG:
		if (parse_long(arg, (long)o->min, isinf(o->max) ? LONG_MAX : (long)o->max, &l) != 0)
			range_error(o, arg, "a number");
		if (o->kind == CLI_INT)
			*(int *)o->value = (int)l;
		else
			*(long *)o->value = l;
		break;
	case CLI_U64:
		if (parse_u64(arg, o->value) != 0)
			cli_usage_error("%s: '%s' is not a number", opt_name(o, name, sizeof name), arg);
		break;
	case CLI_DOUBLE:
		if (parse_double(arg, o->min, o->max, &d) != 0)
			range_error(o, arg, "a number");
		*(double *)o->value = d;
		break;
	case CLI_SIZE:
		if (parse_size(arg, &u) != 0 || (double)u < o->min || (double)u > o->max)
			range_error(o, arg, "a size");
		*(uint64_t *)o->value = u;
		break;
	case CLI_DURATION:
		if (parse_duration_ms(arg, (uint64_t)o->set, &u) != 0 || (double)u < o->min || (double)u > o->max)
			range_error(o, arg, "a duration");
		*(uint64_t *)o->value = u;
		break;
	case CLI_ENUM: {
		const struct cli_choice *c;
		char list[256] = "";
		for (c = o->choices; c->name; c++) {
			if (!strcmp(c->name, arg)) {
				*(int *)o->value = c->value;
				return;
			}
			snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
				 c == o->choices ? "" : c[1].name ? ", " : " or ", c->name);
		}
		cli_usage_error("%s takes %s, not '%s'", opt_name(o, name, sizeof name), list, arg);
	}
	case CLI_STRVEC: strvec_push(o->value, arg); break;
	case CLI_CALLBACK: o->cb(o, arg, ctx); break;
	case CLI_HELP: cli_help_spec(spec);
	case CLI_VERSION: cli_version();
	default: break;
	}
}

int cli_parse(const struct cli_spec *spec, int argc, char **argv, void *ctx)
{
	struct flat f = { 0 };
	struct option *lo;
	char shorts[128] = ":";
	int c, idx, nl = 0;

	flatten(&f, spec->opts);
	lo = xcalloc((size_t)f.n + 1, sizeof *lo);
	for (int i = 0; i < f.n; i++) {
		const struct cli_opt *o = f.v[i];
		if (o->kind == CLI_GROUP)
			continue;
		if (o->short_name) {
			size_t k = strlen(shorts);
			shorts[k] = (char)o->short_name;
			if (o->argname)
				shorts[++k] = ':';
			shorts[k + 1] = '\0';
		}
		if (o->long_name)
			lo[nl++] = (struct option){ o->long_name, o->argname ? required_argument : no_argument, NULL,
						    256 + i };
	}
	opterr = 0;
	optind = 0; /* glibc: start afresh, at argv[1] */
	while ((c = getopt_long(argc, argv, shorts, lo, &idx)) != -1) {
		const struct cli_opt *o = NULL;
		if (c == ':')
			cli_usage_error("option '%s' needs an argument", argv[optind - 1]);
		if (c >= 256)
			o = f.v[c - 256];
		for (int i = 0; !o && c != '?' && i < f.n; i++)
			if (f.v[i]->short_name == c && f.v[i]->kind != CLI_GROUP)
				o = f.v[i];
		if (!o)
			cli_usage_error("unrecognized option '%s'", argv[optind - 1]);
		apply(spec, o, optarg, ctx);
		if (spec->seen)
			spec->seen(o, ctx);
	}
	free(lo);
	free(f.v);
	return optind;
}

/* An option's left column: "-c, --long ARG". */
static void left_column(const struct cli_opt *o, char *buf, size_t len)
{
	int n = 0;

	buf[0] = '\0';
	if (o->short_name)
		n += snprintf(buf, len, "-%c%s", o->short_name, o->long_name ? ", " : "");
	if (o->long_name)
		n += snprintf(buf + n, len - (size_t)n, "--%s", o->long_name);
	if (o->argname)
		snprintf(buf + n, len - (size_t)n, " %s", o->argname);
}

void cli_print_help(const struct cli_spec *spec, FILE *out)
{
	struct flat f = { 0 };
	char left[512] = "", one[128];
	int width = spec->width ? spec->width : 24;

	fputs(spec->usage, out);
	flatten(&f, spec->opts);
	for (int i = 0; i < f.n; i++) {
		const struct cli_opt *o = f.v[i];
		const char *h = o->help;
		size_t lastline;
		if (!h)
			continue;
		if (o->kind == CLI_GROUP) {
			fprintf(out, "%s\n", h);
			continue;
		}
		left_column(o, one, sizeof one);
		if (!*left) {
			snprintf(left, sizeof left, "  %s%s", o->short_name ? "" : "    ", one);
		} else {
			lastline = strlen(left) - (strrchr(left, '\n') ? (size_t)(strrchr(left, '\n') - left) + 1 : 0);
			snprintf(left + strlen(left), sizeof left - strlen(left),
				 lastline + strlen(one) + 2 > 78 - 1 ? ",\n      %s" : ", %s", one);
		}
		if (!*h)
			continue; /* listed with the next entry */
		lastline = strlen(left) - (strrchr(left, '\n') ? (size_t)(strrchr(left, '\n') - left) + 1 : 0);
		fputs(left, out);
		if ((int)lastline + 1 > width - 1)
			fprintf(out, "\n%*s", width, "");
		else
			fprintf(out, "%*s", width - (int)lastline, "");
		for (const char *nl; (nl = strchr(h, '\n')); h = nl + 1)
			fprintf(out, "%.*s\n%*s", (int)(nl - h), h, width, "");
		fprintf(out, "%s\n", h);
		left[0] = '\0';
	}
	if (spec->tail)
		fputs(spec->tail, out);
	free(f.v);
}

void cli_help_spec(const struct cli_spec *spec)
{
	cli_print_help(spec, stdout);
	exit(fshut(stdout, "standard output"));
}

void cli_help(const char *usage)
{
	fputs(usage, stdout);
	exit(fshut(stdout, "standard output"));
}

void cli_version(void)
{
	printf("%s %s\n", log_program(), KERF_VERSION);
	exit(fshut(stdout, "standard output"));
}

void cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", log_program());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", log_program());
	exit(KERF_EX_USAGE);
}

void cli_die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(code);
}

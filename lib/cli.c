/* cli.c: see cli.h. */
#include "kerf.h"

#include <stdarg.h>
#include <stdlib.h>

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
	char *msg;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	log_msg(LOG_ERROR, NULL, "%s", msg ? msg : fmt);
	free(msg);
	exit(code);
}

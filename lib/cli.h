/*
 * cli.h: the command-line conventions of every kerf program.
 * --help prints the usage text to stdout and exits 0; --version prints
 * "PROGRAM VERSION"; a usage error prints "PROGRAM: message" and a hint to
 * stderr and exits 64.  Stdout is checked at close.
 */
#ifndef KERF_CLI_H
#define KERF_CLI_H

/* Print 'usage' to stdout, check the write, exit 0 (or 74). */
void cli_help(const char *usage) __attribute__((noreturn));
/* Print "PROGRAM VERSION" to stdout and exit. */
void cli_version(void) __attribute__((noreturn));
/* "PROGRAM: message" and "Try 'PROGRAM --help'." on stderr, exit 64. */
void cli_usage_error(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* "PROGRAM: message" on stderr, exit 'code' (any error before logging matters). */
void cli_die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

#endif

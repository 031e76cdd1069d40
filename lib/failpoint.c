/* failpoint.c: see failpoint.h. */

#include "failpoint.h"

#include "exitcode.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

int failpoint_armed;

/* The program, for the messages (log_init passes its own). */
static const char *fp_program = "kerf";

struct fp_info {
	const char *name, *prog, *where;
};

static const struct fp_info fp_table[FP_COUNT] = {
#define FP_INFO(id, name, prog, where) [FP_##id] = { name, prog, where },
	KERF_FAILPOINTS(FP_INFO)
#undef FP_INFO
};

/* Per point: the reach that kills (0: not armed) and the reaches so far. */
static unsigned long fp_at[FP_COUNT], fp_seen[FP_COUNT];

const char *failpoint_name(enum failpoint fp)
{
	return fp >= 0 && fp < FP_COUNT ? fp_table[fp].name : NULL;
}

void failpoint_list(void)
{
	for (int i = 0; i < FP_COUNT; i++)
		printf("%s\t%s\t%s\n", fp_table[i].name, fp_table[i].prog, fp_table[i].where);
}

static void bad(const char *spec, const char *why)
{
	fprintf(stderr, "%s: KERF_FAILPOINT: %s in '%s' (kerf(7) lists the failpoints)\n",
		fp_program, why, spec);
	exit(KERF_EX_USAGE);
}

/* One "NAME[:N]" of length len. */
static void arm_one(const char *spec, const char *s, size_t len)
{
	const char *colon = memchr(s, ':', len);
	size_t nlen = colon ? (size_t)(colon - s) : len;
	unsigned long n = 1;
	int i;

	if (colon) {
		char num[24], *end;
		size_t dl = len - nlen - 1;
		if (dl == 0 || dl >= sizeof num)
			bad(spec, "a count is not a whole number from 1");
		memcpy(num, colon + 1, dl);
		num[dl] = '\0';
		errno = 0;
		n = strtoul(num, &end, 10);
		if (*end || errno || n == 0 || num[0] == '-' || num[0] == '+')
			bad(spec, "a count is not a whole number from 1");
	}
	for (i = 0; i < FP_COUNT; i++)
		if (strlen(fp_table[i].name) == nlen && !memcmp(fp_table[i].name, s, nlen))
			break;
	if (i == FP_COUNT)
		bad(spec, "unknown failpoint");
	fp_at[i] = n;
	failpoint_armed = 1;
}

void failpoint_init(const char *program)
{
	const char *spec = getenv("KERF_FAILPOINT"), *s;

	fp_program = program;
	if (!spec || !*spec)
		return;
	if (!strcmp(spec, "list")) {
		failpoint_list();
		exit(fflush(stdout) == 0 && !ferror(stdout) ? KERF_EX_OK : KERF_EX_IOERR);
	}
	for (s = spec;;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		if (len == 0)
			bad(spec, "an empty entry");
		arm_one(spec, s, len);
		if (!comma)
			break;
		s = comma + 1;
	}
}

int failpoint_due(enum failpoint fp)
{
	if (fp < 0 || fp >= FP_COUNT || !fp_at[fp])
		return 0;
	return ++fp_seen[fp] == fp_at[fp];
}

void failpoint_die(enum failpoint fp)
{
	char msg[160];
	int n = snprintf(msg, sizeof msg, "%s: failpoint '%s' reached (time %lu): killed\n", fp_program,
			 failpoint_name(fp), fp_seen[fp]);
	/* One write(2), like a log record; stdio may hold buffered output
	 * that a real crash would lose too, so nothing is flushed. */
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
	for (;;)
		kill(getpid(), SIGKILL);
}

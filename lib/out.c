/* out.c: see out.h. */

#include "out.h"

#include "exitcode.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "banned.h"

#define OUT_BUF (64 * 1024)

/* The cookie is the descriptor itself, not memory: nothing to free. */
static ssize_t out_cookie_write(void *cookie, const char *buf, size_t len)
{
	if (write_all((int)(intptr_t)cookie, buf, len) != 0)
		return -1;
	return (ssize_t)len;
}

static int out_cookie_close(void *cookie)
{
	return close((int)(intptr_t)cookie);
}

FILE *out_open(int fd)
{
	static const cookie_io_functions_t fns = {
		.write = out_cookie_write,
		.close = out_cookie_close,
	};
	FILE *f = fopencookie((void *)(intptr_t)fd, "w", fns);

	if (!f)
		return NULL;
	setvbuf(f, NULL, _IOFBF, OUT_BUF);
	return f;
}

void stdout_init(void)
{
	FILE *f = out_open(STDOUT_FILENO);
	if (f)
		stdout = f; /* else the ordinary stdout: still correct without signals */
}

int out_line(FILE *f, const char *line, size_t len)
{
	if (fwrite(line, 1, len, f) != len || putc('\n', f) == EOF)
		return -1;
	return 0;
}

int fshut(FILE *f, const char *what)
{
	int bad = 0, err = 0;
	if (fflush(f) != 0) {
		bad = 1;
		err = errno;
	}
	if (ferror(f) && !bad) {
		bad = 1;
		err = errno ? errno : EIO;
	}
	if (fclose(f) != 0 && !bad) {
		bad = 1;
		err = errno;
	}
	if (bad) {
		log_write_failed(err == EPIPE ? LOG_WARN : LOG_ERROR, what, err, NULL);
		return KERF_EX_IOERR;
	}
	return KERF_EX_OK;
}

int stdout_shut(int failed)
{
	if (!failed)
		return fshut(stdout, "standard output");
	fclose(stdout);
	return KERF_EX_IOERR;
}

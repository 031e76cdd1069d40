/* out.c: see out.h. */

#include "out.h"

#include "exitcode.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <unistd.h>

#include "banned.h"

static ssize_t stdout_cookie_write(void *cookie, const char *buf, size_t len)
{
	(void)cookie;
	if (write_all(1, buf, len) != 0)
		return -1;
	return (ssize_t)len;
}

static int stdout_cookie_close(void *cookie)
{
	(void)cookie;
	return close(1);
}

void stdout_init(void)
{
	static cookie_io_functions_t fns = {
		.write = stdout_cookie_write,
		.close = stdout_cookie_close,
	};
	FILE *f = fopencookie(NULL, "w", fns);
	if (!f)
		return; /* keep the ordinary stdout: still correct without signals */
	setvbuf(f, NULL, _IOFBF, 64 * 1024);
	stdout = f;
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

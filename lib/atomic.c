/* atomic.c: see atomic.h. */

#include "atomic.h"

#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

int atomic_write(const char *path, const void *data, size_t len, int durable,
		 enum failpoint before_rename, enum failpoint after_rename)
{
	return atomic_write_reserved(path, data, len, durable, 0, before_rename, after_rename);
}

int atomic_write_reserved(const char *path, const void *data, size_t len, int durable, off_t reserve,
			  enum failpoint before_rename, enum failpoint after_rename)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd, e;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	if (reserve > 0 && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, reserve) != 0 && errno != EOPNOTSUPP) {
		e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		goto fail;
	}
	if (write_all(fd, data, len) != 0 || (durable && fsync(fd) != 0)) {
		e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		goto fail;
	}
	if (close(fd) != 0) {
		e = errno;
		unlink(tmp);
		errno = e;
		goto fail;
	}
	FAILPOINT(before_rename);
	if (rename(tmp, path) != 0) {
		e = errno;
		unlink(tmp);
		errno = e;
		goto fail;
	}
	FAILPOINT(after_rename);
	free(tmp);
	return 0;
fail:
	e = errno;
	free(tmp);
	errno = e;
	return -1;
}

int atomic_write_file(const char *path, const void *data, size_t len)
{
	return atomic_write(path, data, len, 1, FP_NONE, FP_NONE);
}

/* NAME is "<something ending in 'ending'>.tmp.<digits>". */
static int is_crash_tmp(const char *name, const char *ending)
{
	const char *t = strstr(name, ".tmp."), *d;
	size_t el = strlen(ending);
	if (!t || (size_t)(t - name) < el || memcmp(t - el, ending, el) != 0 || !t[5])
		return 0;
	for (d = t + 5; *d; d++)
		if (*d < '0' || *d > '9')
			return 0;
	return 1;
}

int atomic_write_cleanup(const char *dir, const char *ending)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (is_crash_tmp(e->d_name, ending)) {
			char *path = xasprintf("%s/%s", dir, e->d_name);
			if (unlink(path) == 0) {
				log_msg(LOG_INFO, NULL, "removed '%s', left by a crash", path);
				n++;
			}
			free(path);
		}
	closedir(d);
	return n;
}

/* filelock.c: see filelock.h. */
#include "filelock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "banned.h"

/* A write lock on the whole file. */
static void whole(struct flock *fl)
{
	memset(fl, 0, sizeof *fl);
	fl->l_type = F_WRLCK;
	fl->l_whence = SEEK_SET;
}

int filelock_take(int fd, int wait)
{
	struct flock fl;
	int rc;

	whole(&fl);
	do
		rc = fcntl(fd, wait ? F_SETLKW : F_SETLK, &fl);
	while (rc != 0 && wait && errno == EINTR);
	return rc == 0 ? 0 : -1;
}

pid_t filelock_holder(int fd)
{
	struct flock fl;

	whole(&fl);
	if (fcntl(fd, F_GETLK, &fl) != 0)
		return -1;
	return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

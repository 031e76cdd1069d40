/* queue.c: see queue.h. */
#include "queue.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

int queue_fill(pid_t pid, int fd, long *bytes, long *cap)
{
	char path[64];
	struct stat st;
	int pfd, n = 0, sz;

	snprintf(path, sizeof path, "/proc/%ld/fd/%d", (long)pid, fd);
	/* stat first: opening a terminal or a file would be pointless. */
	if (stat(path, &st) != 0 || !S_ISFIFO(st.st_mode))
		return -1;
	pfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (pfd < 0)
		return -1;
	if (ioctl(pfd, FIONREAD, &n) != 0 || (sz = fcntl(pfd, F_GETPIPE_SZ)) < 0) {
		close(pfd);
		return -1;
	}
	close(pfd);
	*bytes = n;
	*cap = sz;
	return 0;
}

int queue_io(pid_t pid, uint64_t *rchar, uint64_t *wchar)
{
	char path[64], buf[512];
	int fd, got = 0;
	ssize_t n;
	char *p;

	snprintf(path, sizeof path, "/proc/%ld/io", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	if ((p = strstr(buf, "rchar: "))) {
		*rchar = strtoull(p + 7, NULL, 10);
		got++;
	}
	if ((p = strstr(buf, "wchar: "))) {
		*wchar = strtoull(p + 7, NULL, 10);
		got++;
	}
	return got == 2 ? 0 : -1;
}

/*
 * filelock.h: whole-file fcntl(2) write locks, the kind that another
 * process sees (on NFS too) and that goes with its holder's death: the
 * run directory's lock (lib/runstate.c) and the appends to a batch's
 * results.ndjson (lib/reprocess.c).
 */
#ifndef KERF_FILELOCK_H
#define KERF_FILELOCK_H

#include <sys/types.h>

/*
 * Write-lock the whole of fd, open for writing: with wait 0 at once
 * (-1 with errno EAGAIN or EACCES while another process holds a lock
 * on it), with wait 1 waiting for it (EINTR retried).  0, or -1 with
 * errno.
 */
int filelock_take(int fd, int wait);
/* The pid of the process whose lock keeps fd from being write-locked,
 * 0 when none, -1 when it cannot be asked (errno). */
pid_t filelock_holder(int fd);

#endif

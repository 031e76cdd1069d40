/*
 * queue.h: looking at a running stage from outside: how full the pipe
 * on one of its file descriptors is (the inter-stage queues), and how
 * many bytes it has read and written (/proc/PID/io), which tells the
 * supervisor whether a stage that emits no stats is making progress.
 *
 * queue_fill opens /proc/PID/fd/N non-blocking and closes it at once:
 * holding a read end of a pipe open would hide EPIPE from its writer
 * after the real reader died.
 */
#ifndef KERF_QUEUE_H
#define KERF_QUEUE_H

#include <stdint.h>
#include <sys/types.h>

/* Bytes queued in the pipe on fd 'fd' of 'pid' and its capacity; 0, or
 * -1 when it cannot be read or is not a pipe. */
int queue_fill(pid_t pid, int fd, long *bytes, long *cap);
/* rchar and wchar of /proc/PID/io; 0 or -1. */
int queue_io(pid_t pid, uint64_t *rchar, uint64_t *wchar);

#endif

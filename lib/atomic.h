/*
 * atomic.h: replacing a file so that a reader, or a crash, sees the old
 * file or the new one and never half of one; and removing the temporaries
 * a crash left behind.
 */
#ifndef KERF_ATOMIC_H
#define KERF_ATOMIC_H

#include <stddef.h>
#include <sys/types.h>

#include "failpoint.h"

/*
 * Write 'len' bytes to 'path' atomically: a temporary file beside it
 * ("PATH.tmp.PID", created with O_EXCL|O_NOFOLLOW), fsync when 'durable',
 * rename over 'path'.  A reader sees the old file or the new one, never
 * half of one.  The two failpoints (FP_NONE for none) are reached just
 * before and just after the rename.  0 or -1 with errno.
 */
int atomic_write(const char *path, const void *data, size_t len, int durable,
		 enum failpoint before_rename, enum failpoint after_rename);
/*
 * atomic_write, and the new file keeps 'reserve' bytes of blocks
 * allocated beyond its size (fallocate KEEP_SIZE) before it replaces the
 * old one: with no room for them it fails with ENOSPC and the old file,
 * with its own reserve, stays (a file system without fallocate gets no
 * reserve).  So the file always has room to be rewritten in place.
 */
int atomic_write_reserved(const char *path, const void *data, size_t len, int durable, off_t reserve,
			  enum failpoint before_rename, enum failpoint after_rename);
/* atomic_write, durable, with no failpoints. */
int atomic_write_file(const char *path, const void *data, size_t len);
/*
 * Remove from 'dir' the temporaries atomic_write left when a crash came
 * before its rename ("NAME.tmp.PID" where NAME ends in 'ending'): never
 * complete, never read.  Each removal is logged; returns how many.
 */
int atomic_write_cleanup(const char *dir, const char *ending);

#endif

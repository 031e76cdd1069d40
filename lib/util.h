/*
 * util.h: small helpers every kerf program needs: allocation that cannot
 * return NULL, growing and freeing buffers, a comparator's step, whole
 * writes, number, duration and size parsing, clocks, free space, mkdir
 * -p, safe file names, hashing and the running program's own path.
 */
#ifndef KERF_UTIL_H
#define KERF_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <sys/socket.h>

#include "failpoint.h"

/* Allocation: on failure these log "out of memory" and exit 70. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/*
 * p (of *cap bytes) with room for at least 'need': when *cap is less,
 * reallocated to the largest of need, twice *cap and 'least', and *cap
 * set to that.  For a buffer that grows by appending.
 */
void *xgrow(void *p, size_t *cap, size_t need, size_t least);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Replace *dst (freed) by a copy of s, or by NULL when s is NULL. */
void xstrset(char **dst, const char *s);
/* n bytes of p, NUL bytes among them kept, and a NUL after; caller frees. */
char *xmemdup(const void *p, size_t n);
/* printf into a new string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * free() every pointer given, in order; any may be NULL.  The values are
 * all read before the first is freed, so a release can end with the
 * structure itself: free_all(s->name, s->buf, s).
 */
#define free_all(...) \
	free_each((void *[]){ __VA_ARGS__ }, sizeof((void *[]){ __VA_ARGS__ }) / sizeof(void *))
void free_each(void *const *p, size_t n);

/*
 * The index of 'name' in names[0..n-1] (an enum's name table), or -1 when
 * it is not there or name is NULL.  A NULL entry matches nothing.
 */
int name_index(const char *name, const char *const *names, int n);

/* -1, 0 or 1 as a is below, equal to or above b: a qsort comparator's step. */
#define CMP(a, b) (((a) > (b)) - ((a) < (b)))

/* write(2) until done or error; retries EINTR. 0 or -1 with errno. */
int write_all(int fd, const void *buf, size_t len);

/*
 * Number parsing for options: the whole string must be a number within
 * [min, max].  Return 0, or -1 (errno EINVAL or ERANGE) leaving *out.
 */
int parse_long(const char *s, long min, long max, long *out);
int parse_u64(const char *s, uint64_t *out);
int parse_double(const char *s, double min, double max, double *out);
/*
 * A duration: a number with an optional unit ms, s, m or h (no unit means
 * 'def_unit_ms' milliseconds per unit).  Result in milliseconds.
 */
int parse_duration_ms(const char *s, uint64_t def_unit_ms, uint64_t *out_ms);
/* A size: a number with an optional K, M or G (powers of 1024). */
int parse_size(const char *s, uint64_t *out);

/* Clocks. */
uint64_t mono_ms(void);            /* CLOCK_MONOTONIC in ms */
uint64_t mono_us(void);            /* CLOCK_MONOTONIC in µs */
void real_now(struct timespec *ts); /* CLOCK_REALTIME */

/*
 * The bytes free for an unprivileged user in the file system that holds
 * path (statvfs: f_bavail blocks of f_frsize), as --min-free means it.
 * 0, or -1 with errno.
 */
int free_bytes(const char *path, uint64_t *out);

/* mkdir -p; 0 or -1 with errno. */
int mkdir_p(const char *path, unsigned mode);

/*
 * A string made safe as one file-name component: '/', '\\', control
 * characters, spaces and quotes become '_', a leading '.' becomes '_',
 * and it is cut to 'max' bytes (at least 1).  "" becomes "_".
 * Caller frees.
 */
char *safe_name(const char *s, size_t max);

/*
 * A socket address as text, numeric: "HOST:PORT", "[HOST]:PORT" for
 * IPv6, "?" when it cannot be made.  SOCKADDR_STR bytes are enough.
 */
#define SOCKADDR_STR 60
void sockaddr_str(const struct sockaddr *sa, socklen_t len, char *out, size_t size);

/* 16 lowercase hex digits of v into out (17 bytes with the NUL). */
void hex64(uint64_t v, char out[17]);
/* XXH3-64 of a buffer. */
uint64_t kerf_xxh3(const void *data, size_t len);

/*
 * The running program's path (/proc/self/exe), and the directory that
 * holds it, so that kerf finds its stages beside itself.  Caller frees;
 * NULL if it cannot be read.
 */
char *self_path(void);
char *self_dir(void);

#endif

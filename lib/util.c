/* util.c: see util.h. */

#include "util.h"

#include "exitcode.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>

#include "banned.h"

static void oom(void)
{
	static const char msg[] = "kerf: out of memory\n";
	(void)!write(2, msg, sizeof msg - 1);
	_exit(KERF_EX_SOFTWARE);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		oom();
	return p;
}

void xstrset(char **dst, const char *s)
{
	if (*dst && s && !strcmp(*dst, s))
		return;
	free(*dst);
	*dst = s ? xstrdup(s) : NULL;
}

int name_index(const char *name, const char *const *names, int n)
{
	for (int i = 0; name && i < n; i++)
		if (names[i] && !strcmp(name, names[i]))
			return i;
	return -1;
}

void *xgrow(void *p, size_t *cap, size_t need, size_t least)
{
	if (need <= *cap)
		return p;
	if (need < 2 * *cap)
		need = 2 * *cap;
	if (need < least)
		need = least;
	p = xrealloc(p, need);
	*cap = need;
	return p;
}

char *xmemdup(const void *p, size_t n)
{
	char *s = xmalloc(n + 1);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	return s;
}

void free_each(void *const *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i]);
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A parser's way out: errno e, and -1. */
static int fail(int e)
{
	errno = e;
	return -1;
}

/*
 * After errno = 0 and a strto* call over a non-empty string that stopped
 * at end: 0 when the number was the whole string, else -1 with errno
 * (the call's ERANGE, or EINVAL).
 */
static int whole_number(const char *end)
{
	if (errno || *end)
		return fail(errno ? errno : EINVAL);
	return 0;
}

/* A unit that may follow a number, and its multiplier; a table of them ends with a NULL name. */
struct unit {
	const char *name;
	uint64_t mul;
};

/* The multiplier of the unit 'name' in 'units'; 0 when it is none of them. */
static uint64_t unit_of(const char *name, const struct unit *units)
{
	for (; units->name; units++)
		if (!strcmp(name, units->name))
			return units->mul;
	return 0;
}

int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;
	if (!s || !*s)
		return fail(EINVAL);
	errno = 0;
	v = strtol(s, &end, 10);
	if (whole_number(end) != 0)
		return -1;
	if (v < min || v > max)
		return fail(ERANGE);
	*out = v;
	return 0;
}

int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	if (!s || !*s || *s == '-')
		return fail(EINVAL);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (whole_number(end) != 0)
		return -1;
	*out = v;
	return 0;
}

int parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;
	if (!s || !*s)
		return fail(EINVAL);
	errno = 0;
	v = strtod(s, &end);
	if (whole_number(end) != 0)
		return -1;
	if (!isfinite(v))
		return fail(EINVAL);
	if (v < min || v > max)
		return fail(ERANGE);
	*out = v;
	return 0;
}

int parse_duration_ms(const char *s, uint64_t def_unit_ms, uint64_t *out_ms)
{
	static const struct unit units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { NULL, 0 },
	};
	char *end;
	double v, unit = (double)def_unit_ms;
	if (!s || !*s)
		return fail(EINVAL);
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return fail(EINVAL);
	if (*end && !(unit = (double)unit_of(end, units)))
		return fail(EINVAL);
	if (v * unit > 1e15)
		return fail(ERANGE);
	*out_ms = (uint64_t)(v * unit + 0.5);
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	static const struct unit units[] = {
		{ "K", 1024 }, { "k", 1024 }, { "M", 1024 * 1024 }, { "G", 1024ull * 1024 * 1024 }, { NULL, 0 },
	};
	char *end;
	unsigned long long v;
	uint64_t mul = 1;
	if (!s || !*s || *s == '-')
		return fail(EINVAL);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return fail(EINVAL);
	if (*end && !(mul = unit_of(end, units)))
		return fail(EINVAL);
	if (v > UINT64_MAX / mul)
		return fail(ERANGE);
	*out = v * mul;
	return 0;
}

uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void real_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

int free_bytes(const char *path, uint64_t *out)
{
	struct statvfs vfs;
	if (statvfs(path, &vfs) != 0)
		return -1;
	*out = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

int mkdir_p(const char *path, unsigned mode)
{
	char *p = xstrdup(path), *s;
	int rc = 0;
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST) {
			rc = -1;
			break;
		}
		*s = '/';
	}
	if (rc == 0 && mkdir(p, mode) != 0 && errno != EEXIST)
		rc = -1;
	if (rc == 0) {
		struct stat st;
		if (stat(p, &st) != 0)
			rc = -1;
		else if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			rc = -1;
		}
	}
	int e = errno;
	free(p);
	errno = e;
	return rc;
}

char *safe_name(const char *s, size_t max)
{
	size_t n = strlen(s), i;
	char *out;
	if (max < 1)
		max = 1;
	if (n > max)
		n = max;
	if (n == 0)
		return xstrdup("_");
	out = xstrndup(s, n);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == ' ' ||
		    c == '"' || c == '\'' || c == '`' || c == '$' || c == '*' ||
		    c == '?' || c >= 0x80)
			out[i] = '_';
	}
	if (out[0] == '.')
		out[0] = '_';
	return out;
}

void sockaddr_str(const struct sockaddr *sa, socklen_t len, char *out, size_t size)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(out, size, "?");
	else if (sa->sa_family == AF_INET6)
		snprintf(out, size, "[%s]:%s", host, serv);
	else
		snprintf(out, size, "%s:%s", host, serv);
}

void hex64(uint64_t v, char out[17])
{
	static const char hx[] = "0123456789abcdef";
	for (int i = 15; i >= 0; i--) {
		out[i] = hx[v & 15];
		v >>= 4;
	}
	out[16] = '\0';
}

uint64_t kerf_xxh3(const void *data, size_t len)
{
	return XXH3_64bits(data, len);
}

char *self_path(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return xstrdup(buf);
}

char *self_dir(void)
{
	char *p = self_path(), *slash = p ? strrchr(p, '/') : NULL;
	if (!slash) {
		free(p);
		return NULL;
	}
	if (slash == p)
		slash[1] = '\0';
	else
		*slash = '\0';
	return p;
}

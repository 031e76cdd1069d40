/*
 * hsms-raw: a scripted HSMS peer that sends exact bytes, for
 * tests/hsms.bats.  It knows framing only as far as printing what it
 * receives; everything it sends comes from the script on stdin.
 *
 * Usage: hsms-raw HOST:PORT < SCRIPT          connect, then run SCRIPT
 *        hsms-raw --listen HOST:PORT < SCRIPT listen (port 0: any), print
 *                                             "listening PORT", accept one
 *        hsms-raw --free-port                 print a loopback port that
 *                                             nothing listens on just now
 * Script lines ('#' starts a comment; HEX may hold spaces):
 *   send HEX          one write
 *   split N MS HEX    writes of N bytes, MS milliseconds apart
 *   repeat N HEX      HEX N times in one buffer
 *   sleep MS          read (and print) for MS milliseconds
 *   wait N [S]        until N frames in all have arrived (default 10 s)
 *   eof [S]           until the peer closes (default 10 s)
 *   await PATH [S]    read until the file PATH exists (default 10 s)
 *   noread MS         from now on read nothing, and give up a write that
 *                     makes no progress for MS milliseconds ("write stalled")
 *   shut              shutdown(2) our sending side
 * In HEX, $SYS is the system bytes of the last frame received and $I the
 * 1-based repetition number of 'repeat' (both 4 bytes).
 *
 * Output: "connected", then "in SID B2 B3 PTYPE STYPE SYSTEM [BODY]" per
 * frame (hex), "eof" or "reset" when the peer closes, "write failed: ..."
 * or "write stalled" when it stops taking bytes, "done" at the end of the script.  Exit 0;
 * 1 when a wait timed out; 64 on a bad script.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "cli.h"
#include "out.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "banned.h"

struct peer {
	int fd;
	int eof, wfailed;
	int noread;
	int stall_ms;
	uint8_t *in;
	size_t inlen, incap;
	unsigned long frames;
	char last_sys[9];
};

static void print_frames(struct peer *p)
{
	size_t off = 0;
	while (p->inlen - off >= 4) {
		const uint8_t *f = p->in + off;
		uint32_t len = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
		if (len < 10) {
			printf("in bad-length %u\n", len);
			off = p->inlen;
			break;
		}
		if (p->inlen - off < 4 + (size_t)len)
			break;
		printf("in %02x%02x %02x %02x %02x %02x %02x%02x%02x%02x", f[4], f[5], f[6], f[7], f[8], f[9],
		       f[10], f[11], f[12], f[13]);
		snprintf(p->last_sys, sizeof p->last_sys, "%02x%02x%02x%02x", f[10], f[11], f[12], f[13]);
		if (len > 10)
			putchar(' ');
		for (size_t i = 14; i < 4 + (size_t)len; i++)
			printf("%02x", f[i]);
		putchar('\n');
		p->frames++;
		off += 4 + (size_t)len;
	}
	memmove(p->in, p->in + off, p->inlen - off);
	p->inlen -= off;
	fflush(stdout);
}

static void on_input(struct peer *p)
{
	ssize_t n;
	if (p->incap - p->inlen < 65536) {
		p->incap = p->incap ? p->incap * 2 : 1 << 17;
		p->in = xrealloc(p->in, p->incap);
	}
	n = read(p->fd, p->in + p->inlen, p->incap - p->inlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		puts(n == 0 ? "eof" : errno == ECONNRESET ? "reset" : "read failed");
		fflush(stdout);
		p->eof = 1;
		return;
	}
	p->inlen += (size_t)n;
	print_frames(p);
}

/* Write everything, reading meanwhile so that neither side can block the other. */
static void write_out(struct peer *p, const uint8_t *buf, size_t len)
{
	while (len > 0 && !p->wfailed) {
		struct pollfd pf = { p->fd, (short)(POLLOUT | (p->eof || p->noread ? 0 : POLLIN)), 0 };
		if (poll(&pf, 1, p->noread ? p->stall_ms : 10000) <= 0) {
			puts("write stalled");
			p->wfailed = 1;
			break;
		}
		if (pf.revents & POLLIN)
			on_input(p);
		if (!(pf.revents & (POLLOUT | POLLERR | POLLHUP)))
			continue;
		ssize_t n = send(p->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			printf("write failed: %s\n", strerror(errno));
			p->wfailed = 1;
			break;
		}
		buf += n;
		len -= (size_t)n;
	}
	fflush(stdout);
}

/* Read until 'until' (mono ms), or until the frame count reaches 'frames', or EOF. */
static void read_until(struct peer *p, uint64_t until, unsigned long frames)
{
	while (!p->eof && (frames == 0 || p->frames < frames)) {
		uint64_t now = mono_ms();
		if (now >= until)
			return;
		struct pollfd pf = { p->fd, (short)(p->noread ? 0 : POLLIN), 0 };
		if (poll(&pf, 1, (int)(until - now)) > 0 && !p->noread)
			on_input(p);
	}
}

/* Hex digits of 'text' (spaces skipped, placeholders expanded) into bytes. */
static uint8_t *parse_hex(const char *text, const struct peer *p, unsigned long rep, size_t *len)
{
	size_t cap = strlen(text) + 16, n = 0;
	uint8_t *out = xmalloc(cap);
	int half = -1;

	for (const char *s = text; *s;) {
		char ph[9] = "";
		if (!strncmp(s, "$SYS", 4)) {
			if (!p->last_sys[0])
				cli_die(KERF_EX_USAGE, "$SYS before any frame arrived");
			memcpy(ph, p->last_sys, 9);
			s += 4;
		} else if (!strncmp(s, "$I", 2)) {
			snprintf(ph, sizeof ph, "%08lx", rep);
			s += 2;
		}
		const char *digits = ph[0] ? ph : (char[2]){ *s, 0 };
		if (!ph[0])
			s++;
		for (const char *d = digits; *d; d++) {
			int v;
			if (*d == ' ' || *d == '\t')
				continue;
			if (*d >= '0' && *d <= '9')
				v = *d - '0';
			else if ((*d | 32) >= 'a' && (*d | 32) <= 'f')
				v = (*d | 32) - 'a' + 10;
			else
				cli_die(KERF_EX_USAGE, "bad hex '%s'", text);
			if (half < 0)
				half = v;
			else {
				if (n == cap)
					out = xrealloc(out, cap *= 2);
				out[n++] = (uint8_t)(half << 4 | v);
				half = -1;
			}
		}
	}
	if (half >= 0)
		cli_die(KERF_EX_USAGE, "odd number of hex digits in '%s'", text);
	*len = n;
	return out;
}

static void step_repeat(struct peer *p, unsigned long count, const char *hex)
{
	uint8_t *all = NULL;
	size_t total = 0, n;
	for (unsigned long i = 1; i <= count; i++) {
		uint8_t *one = parse_hex(hex, p, i, &n);
		if (!all)
			all = xmalloc(n * count);
		memcpy(all + total, one, n);
		total += n;
		free(one);
	}
	write_out(p, all, total);
	free(all);
}

static void step_split(struct peer *p, size_t piece, unsigned long ms, const char *hex)
{
	size_t n;
	uint8_t *b = parse_hex(hex, p, 0, &n);
	for (size_t off = 0; off < n && !p->wfailed; off += piece) {
		if (off)
			read_until(p, mono_ms() + ms, 0);
		write_out(p, b + off, n - off < piece ? n - off : piece);
	}
	free(b);
}

/* One script line; returns 1 when a wait timed out. */
static int step(struct peer *p, char *line)
{
	char cmd[16], *rest;
	unsigned long a = 0, b = 0;
	int used = 0;
	double secs = 10;

	line[strcspn(line, "\r\n")] = '\0';
	if (sscanf(line, "%15s%n", cmd, &used) != 1 || cmd[0] == '#')
		return 0;
	rest = line + used;
	if (!strcmp(cmd, "send")) {
		size_t n;
		uint8_t *buf = parse_hex(rest, p, 0, &n);
		write_out(p, buf, n);
		free(buf);
	} else if (!strcmp(cmd, "split") && sscanf(rest, "%lu %lu %n", &a, &b, &used) == 2 && a > 0)
		step_split(p, a, b, rest + used);
	else if (!strcmp(cmd, "repeat") && sscanf(rest, "%lu %n", &a, &used) == 1)
		step_repeat(p, a, rest + used);
	else if (!strcmp(cmd, "sleep") && sscanf(rest, "%lu", &a) == 1)
		read_until(p, mono_ms() + a, 0);
	else if (!strcmp(cmd, "wait") && sscanf(rest, "%lu %lf", &a, &secs) >= 1) {
		read_until(p, mono_ms() + (uint64_t)(secs * 1000), a);
		if (p->frames < a) {
			printf("timeout waiting for %lu frames (got %lu)\n", a, p->frames);
			return 1;
		}
	} else if (!strcmp(cmd, "eof")) {
		sscanf(rest, "%lf", &secs);
		read_until(p, mono_ms() + (uint64_t)(secs * 1000), 0);
		if (!p->eof) {
			puts("timeout waiting for eof");
			return 1;
		}
	} else if (!strcmp(cmd, "await")) {
		char path[4096];
		if (sscanf(rest, "%4095s %lf", path, &secs) < 1)
			cli_die(KERF_EX_USAGE, "bad script line '%s'", line);
		uint64_t until = mono_ms() + (uint64_t)(secs * 1000);
		while (access(path, F_OK) != 0) {
			if (mono_ms() >= until) {
				printf("timeout waiting for '%s'\n", path);
				return 1;
			}
			read_until(p, mono_ms() + 20, 0);
		}
	} else if (!strcmp(cmd, "noread") && sscanf(rest, "%lu", &a) == 1) {
		p->noread = 1;
		p->stall_ms = (int)a;
	} else if (!strcmp(cmd, "shut"))
		shutdown(p->fd, SHUT_WR);
	else
		cli_die(KERF_EX_USAGE, "bad script line '%s'", line);
	return 0;
}

static void loopback(struct sockaddr_in *sa, const char *hostport)
{
	const char *colon = strrchr(hostport, ':');
	long port;
	char host[64];

	if (!colon || (size_t)(colon - hostport) >= sizeof host || parse_long(colon + 1, 0, 65535, &port) != 0)
		cli_usage_error("bad address '%s'", hostport);
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		cli_usage_error("bad IPv4 address '%s'", host);
}

static int open_socket(int listen_mode, const char *hostport)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), lfd;

	loopback(&sa, hostport);
	if (fd < 0)
		cli_die(KERF_EX_SOFTWARE, "socket: %s", strerror(errno));
	if (!listen_mode) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
			cli_die(KERF_EX_UNAVAILABLE, "cannot connect to '%s': %s", hostport, strerror(errno));
		return fd;
	}
	lfd = fd;
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 1) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) != 0)
		cli_die(KERF_EX_UNAVAILABLE, "cannot listen on '%s': %s", hostport, strerror(errno));
	printf("listening %u\n", ntohs(sa.sin_port));
	fflush(stdout);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		cli_die(KERF_EX_SOFTWARE, "accept: %s", strerror(errno));
	close(lfd);
	return fd;
}

/* Bind without listening, read the port back, let it go: a connect
 * there is refused until someone else happens to take it. */
static int free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	loopback(&sa, "127.0.0.1:0");
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		cli_die(KERF_EX_SOFTWARE, "cannot bind a loopback port: %s", strerror(errno));
	printf("%u\n", ntohs(sa.sin_port));
	close(fd);
	return fshut(stdout, "standard output");
}

int main(int argc, char **argv)
{
	struct peer p = { .fd = -1 };
	char *line = NULL;
	size_t cap = 0;
	int listen_mode = argc == 3 && !strcmp(argv[1], "--listen"), failed = 0;

	log_init(argv[0]);
	if (argc == 2 && !strcmp(argv[1], "--free-port"))
		return free_port();
	if (argc != 2 + listen_mode)
		cli_usage_error("usage: hsms-raw [--listen] HOST:PORT < SCRIPT | hsms-raw --free-port");
	p.fd = open_socket(listen_mode, argv[1 + listen_mode]);
	fcntl(p.fd, F_SETFL, fcntl(p.fd, F_GETFL) | O_NONBLOCK);
	puts("connected");
	fflush(stdout);
	while (!failed && getline(&line, &cap, stdin) > 0)
		failed = step(&p, line);
	if (!failed)
		puts("done");
	free(line);
	free(p.in);
	close(p.fd);
	int rc = fshut(stdout, "standard output");
	return failed ? 1 : rc;
}

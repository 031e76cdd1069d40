/*
 * hsms.c: see hsms.h.
 *
 * The connection is a small event loop inside the caller's: an epoll set
 * holds the listener and the socket, so the caller polls one descriptor,
 * and every deadline (T3 per transaction, T5, T6, T7, T8, the linktest
 * period) is a field compared with mono_ms() in run_timers.  Received
 * bytes go through a frame reader that takes any split of a frame and
 * refuses a bad length before it allocates; every complete frame is
 * handled by the function its SType names in one table (stypes[]).
 * Output goes to a buffer flushed when the socket is writable; while
 * that buffer holds max_out bytes or more the socket is not read, so a
 * peer that sends without reading is slowed down by TCP instead of
 * growing our memory.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "cli.h"
#include "hsms.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "banned.h"

#define PREFIX_LEN (4 + HSMS_HEADER_LEN)
#define READ_CHUNK (64 * 1024)
/* A body buffer above this is freed after its message, so that one
 * large message does not hold its memory for the rest of the link. */
#define BODY_KEEP (64 * 1024)
/* Room for "[address]:port" of any address family. */

enum { TAG_LISTEN = 1, TAG_SOCK = 2 };

/* One frame being received: the length prefix and header, then the body. */
struct frame {
	uint8_t head[PREFIX_LEN];
	size_t got;        /* bytes of this frame so far, prefix included */
	uint32_t length;   /* the length prefix: header + body */
	uint8_t *body;
	size_t body_cap;
};

enum feed { FEED_MORE, FEED_FRAME, FEED_SHORT, FEED_TOO_LONG };

/* An open data transaction: a W-bit message of ours waiting for its reply. */
struct txn {
	struct txn *next;
	uint32_t system;
	uint8_t stream, function;
	uint8_t header[HSMS_HEADER_LEN]; /* for S9F9 */
	uint64_t deadline;                /* T3 */
	void *ctx;
};

/* An open control transaction of ours (Select.req or Linktest.req). */
struct ctl {
	int open;
	uint32_t system;
	uint64_t sent_ms;
	uint64_t deadline; /* T6 */
};

struct hsms_conn {
	struct hsms_config cfg;
	int dispatching;         /* inside hsms_dispatch: it flushes and re-arms at its end */
	struct hsms_callbacks cb;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char *target;            /* the configured or bound address, for logs */
	char peer[SOCKADDR_STR]; /* the connected peer, "" when none */
	int epfd, lfd, fd;
	int fd_registered;
	unsigned fd_mask;
	int connecting;          /* active: non-blocking connect in progress */
	int stopped, gave_up;
	int local_port;
	enum hsms_state state;
	unsigned attempts;       /* connect attempts since the last success */
	unsigned generation;     /* bumped by every loss, so a handler sees one */
	uint64_t retry_at;       /* T5: next connect attempt, 0 none */
	uint64_t t7_at;          /* NOT SELECTED deadline, 0 none */
	uint64_t linktest_at;    /* next Linktest.req of ours, 0 none */
	uint64_t last_byte_ms;   /* for T8 */
	uint64_t last_read_us;   /* mono_us() when the last read(2) returned bytes: a frame's rx_us */
	struct ctl select, linktest;
	struct txn *txns;
	size_t ntxns;
	uint32_t next_system;
	struct frame in;
	uint8_t *rbuf;           /* one read's bytes, handled from rpos to rlen */
	size_t rpos, rlen;
	uint8_t *out;            /* bytes to write, from out_head to out_len */
	size_t out_head, out_len, out_cap;
};

#define CAUSE_NAME(name, str) str,
static const char *const cause_names[HSMS_CAUSE__COUNT] = { HSMS_CAUSE_TABLE(CAUSE_NAME) };
#undef CAUSE_NAME

static const char *const state_names[] = { "not_connected", "not_selected", "selected" };
static const char *const reply_names[] = { "ok", "t3", "rejected", "closed" };
static const char *const reject_names[] = {
	"?", "stype_not_supported", "ptype_not_supported", "transaction_not_open", "not_selected",
};

static void lose(struct hsms_conn *c, enum hsms_cause cause, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- small helpers ---- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void header_pack(uint8_t *h, uint16_t session, uint8_t b2, uint8_t b3, uint8_t stype,
			uint32_t system)
{
	h[0] = (uint8_t)(session >> 8);
	h[1] = (uint8_t)session;
	h[2] = b2;
	h[3] = b3;
	h[4] = 0; /* PType: SECS-II */
	h[5] = stype;
	put32(h + 6, system);
}

static void header_parse(const uint8_t *h, const uint8_t *body, size_t len, struct hsms_msg *m)
{
	m->session_id = (uint16_t)(h[0] << 8 | h[1]);
	m->ptype = h[4];
	m->stype = h[5];
	m->wbit = m->stype == HSMS_DATA && (h[2] & 0x80);
	m->stream = m->stype == HSMS_DATA ? h[2] & 0x7f : h[2];
	m->function = h[3];
	m->system = be32(h + 6);
	m->header = h;
	m->body = body;
	m->len = len;
	m->rx_us = 0;
}

static uint32_t new_system(struct hsms_conn *c)
{
	uint32_t s = c->next_system++;
	if (c->next_system == 0)
		c->next_system = 1;
	return s;
}

/*
 * One log record: {"hsms": event, "peer": ..., extra...}.  'extra' (may
 * be NULL) is stolen.
 */
static void hlog(struct hsms_conn *c, enum log_level lvl, const char *event, json_t *extra,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void hlog(struct hsms_conn *c, enum log_level lvl, const char *event, json_t *extra,
		 const char *fmt, ...)
{
	json_t *f = json_object();
	va_list ap;

	json_object_set_new(f, "hsms", json_string(event));
	if (c->peer[0])
		json_object_set_new(f, "peer", json_string(c->peer));
	if (extra)
		json_object_update_new(f, extra);
	va_start(ap, fmt);
	log_vmsg(lvl, f, fmt, ap);
	va_end(ap);
}

/* The fields every record about one message carries. */
static json_t *msg_fields(const struct hsms_msg *m)
{
	return json_pack("{si si si sb ss sI}", "session_id", m->session_id, "stream", m->stream,
			 "function", m->function, "wbit", m->wbit, "stype", hsms_stype_name(m->stype),
			 "system", (json_int_t)m->system);
}

/* ---- the frame reader ---- */

/*
 * Take bytes of the current frame from p[0..n); *used says how many.
 * A length below the header's 10 bytes is refused at once; one above
 * 'max' after its header has arrived (so that S9F11 can quote it), and
 * always before the body is allocated.
 */
static enum feed frame_feed(struct frame *f, size_t max, const uint8_t *p, size_t n, size_t *used)
{
	size_t u = 0;

	while (u < n) {
		if (f->got < PREFIX_LEN) {
			f->head[f->got++] = p[u++];
			if (f->got == 4) {
				f->length = be32(f->head);
				if (f->length < HSMS_HEADER_LEN)
					break;
			}
			if (f->got < PREFIX_LEN)
				continue;
			if (f->length > max)
				break;
			size_t blen = f->length - HSMS_HEADER_LEN;
			if (blen > f->body_cap) {
				free(f->body);
				f->body = xmalloc(blen);
				f->body_cap = blen;
			}
		} else {
			size_t want = (size_t)f->length + 4 - f->got;
			size_t k = n - u < want ? n - u : want;
			memcpy(f->body + (f->got - PREFIX_LEN), p + u, k);
			f->got += k;
			u += k;
		}
		if (f->got == (size_t)f->length + 4)
			break;
	}
	*used = u;
	if (f->got >= 4 && f->length < HSMS_HEADER_LEN)
		return FEED_SHORT;
	if (f->got >= PREFIX_LEN && f->length > max)
		return FEED_TOO_LONG;
	if (f->got >= PREFIX_LEN && f->got == (size_t)f->length + 4)
		return FEED_FRAME;
	return FEED_MORE;
}

static void frame_next(struct frame *f)
{
	f->got = 0;
	if (f->body_cap > BODY_KEEP) {
		free(f->body);
		f->body = NULL;
		f->body_cap = 0;
	}
}

/* ---- output ---- */

static size_t out_pending(const struct hsms_conn *c)
{
	return c->out_len - c->out_head;
}

static void out_reserve(struct hsms_conn *c, size_t n)
{
	if (c->out_cap - c->out_len >= n)
		return;
	if (c->out_head > 0) {
		memmove(c->out, c->out + c->out_head, out_pending(c));
		c->out_len -= c->out_head;
		c->out_head = 0;
	}
	if (c->out_cap - c->out_len < n) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap - c->out_len < n)
			cap *= 2;
		c->out = xrealloc(c->out, cap);
		c->out_cap = cap;
	}
}

static void out_reset(struct hsms_conn *c)
{
	c->out_head = c->out_len = 0;
	/* Give back what one burst or one large message made it grow to. */
	if (c->out_cap > 2 * (c->cfg.max_out + READ_CHUNK)) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
}

static void queue_frame(struct hsms_conn *c, const uint8_t *hdr, const void *body, size_t len)
{
	struct hsms_msg m;
	uint8_t *p;

	out_reserve(c, PREFIX_LEN + len);
	p = c->out + c->out_len;
	put32(p, (uint32_t)(HSMS_HEADER_LEN + len));
	memcpy(p + 4, hdr, HSMS_HEADER_LEN);
	if (len)
		memcpy(p + PREFIX_LEN, body, len);
	c->out_len += PREFIX_LEN + len;
	if (c->cb.on_trace) {
		header_parse(p + 4, len ? p + PREFIX_LEN : NULL, len, &m);
		c->cb.on_trace(c, HSMS_OUT, &m, c->cb.arg);
	}
}

static void send_control(struct hsms_conn *c, uint16_t session, uint8_t b2, uint8_t b3,
			 uint8_t stype, uint32_t system)
{
	uint8_t h[HSMS_HEADER_LEN];
	header_pack(h, session, b2, b3, stype, system);
	queue_frame(c, h, NULL, 0);
}

/*
 * The S9Fx body: one <B[10]> item holding the offending header.  To be
 * replaced by lib/secs.h's item encoder when the two modules meet.
 */
static void s9_body_from_header(uint8_t out[2 + HSMS_HEADER_LEN], const uint8_t *hdr)
{
	out[0] = 0x21; /* format code 010 (binary) << 2 | one length byte */
	out[1] = HSMS_HEADER_LEN;
	memcpy(out + 2, hdr, HSMS_HEADER_LEN);
}

/* S9 as the transport sends it: past the max_out check, as its answers are. */
static void send_s9(struct hsms_conn *c, uint8_t function, const uint8_t *hdr)
{
	uint8_t h[HSMS_HEADER_LEN], body[2 + HSMS_HEADER_LEN];
	struct hsms_msg about;

	header_parse(hdr, NULL, 0, &about);
	hlog(c, LOG_WARN, "s9_sent", json_pack("{si so}", "function", function, "about", msg_fields(&about)),
	     "sent S9F%u about S%uF%u (system bytes %08x)", function, about.stream, about.function,
	     about.system);
	header_pack(h, c->cfg.session_id, 9, function, HSMS_DATA, new_system(c));
	s9_body_from_header(body, hdr);
	queue_frame(c, h, body, sizeof body);
}

static void send_reject(struct hsms_conn *c, const struct hsms_msg *m, enum hsms_reject_reason why)
{
	/* Byte 2 names what is refused: the PType for reason 2, else the SType. */
	uint8_t b2 = why == HSMS_REJECT_PTYPE ? m->ptype : m->stype;
	json_t *f = msg_fields(m);

	json_object_set_new(f, "reason", json_integer(why));
	json_object_set_new(f, "reason_name", json_string(reject_names[why]));
	json_object_set_new(f, "ptype", json_integer(m->ptype));
	hlog(c, LOG_WARN, "reject_sent", f, "sent Reject.req reason %d (%s) for %s, system bytes %08x",
	     why, reject_names[why], hsms_stype_name(m->stype), m->system);
	send_control(c, m->session_id, b2, (uint8_t)why, HSMS_REJECT_REQ, m->system);
}

/* Write what the kernel takes now; a failure loses the link. */
static void flush_out(struct hsms_conn *c)
{
	while (c->fd >= 0 && !c->connecting && out_pending(c) > 0) {
		ssize_t n = send(c->fd, c->out + c->out_head, out_pending(c), MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			int e = errno;
			lose(c, e == EPIPE || e == ECONNRESET ? HSMS_CAUSE_PEER_CLOSED : HSMS_CAUSE_IO,
			     "write: %s", strerror(e));
			return;
		}
		c->out_head += (size_t)n;
	}
	if (out_pending(c) == 0)
		out_reset(c);
}

/* ---- registration with the epoll set ---- */

static int input_open(const struct hsms_conn *c)
{
	return c->rpos == c->rlen && out_pending(c) < c->cfg.max_out;
}

static void update_interest(struct hsms_conn *c)
{
	struct epoll_event ev = { .events = 0, .data.u32 = TAG_SOCK };

	if (c->fd < 0)
		return;
	if (c->connecting)
		ev.events = EPOLLOUT;
	else {
		if (input_open(c))
			ev.events |= EPOLLIN;
		if (out_pending(c))
			ev.events |= EPOLLOUT;
	}
	if (c->fd_registered && ev.events == c->fd_mask)
		return;
	if (epoll_ctl(c->epfd, c->fd_registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		lose(c, HSMS_CAUSE_IO, "epoll_ctl: %s", strerror(errno));
		return;
	}
	c->fd_registered = 1;
	c->fd_mask = ev.events;
}

/* After a frame was queued: arm EPOLLOUT for it, unless hsms_dispatch is
 * running, which writes what it can at its end and arms only for what is
 * left (two epoll_ctl calls fewer per answered message). */
static void queued(struct hsms_conn *c)
{
	if (!c->dispatching)
		update_interest(c);
}

static void close_sock(struct hsms_conn *c)
{
	if (c->fd_registered)
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->fd_registered = 0;
	c->fd_mask = 0;
	c->connecting = 0;
}

/* ---- transactions ---- */

static void end_txn(struct hsms_conn *c, struct txn *t, enum hsms_reply_status st,
		    const struct hsms_msg *reply)
{
	if (c->cb.on_reply)
		c->cb.on_reply(c, st, reply, t->ctx, c->cb.arg);
	free(t);
}

/* End every open transaction; the list is detached first because the
 * callbacks may open new ones. */
static void fail_txns(struct hsms_conn *c, enum hsms_reply_status st)
{
	struct txn *t = c->txns, *next;

	c->txns = NULL;
	c->ntxns = 0;
	for (; t; t = next) {
		next = t->next;
		end_txn(c, t, st, NULL);
	}
}

static struct txn *take_txn(struct hsms_conn *c, uint32_t system)
{
	for (struct txn **pp = &c->txns; *pp; pp = &(*pp)->next) {
		struct txn *t = *pp;
		if (t->system == system) {
			*pp = t->next;
			c->ntxns--;
			return t;
		}
	}
	return NULL;
}

static void expire_txns(struct hsms_conn *c, uint64_t now)
{
	struct txn *expired = NULL, **pp = &c->txns;

	while (*pp) {
		struct txn *t = *pp;
		if (now >= t->deadline) {
			*pp = t->next;
			c->ntxns--;
			t->next = expired;
			expired = t;
		} else
			pp = &t->next;
	}
	while (expired) {
		struct txn *t = expired;
		expired = t->next;
		hlog(c, LOG_WARN, "t3", json_pack("{si si sI}", "stream", t->stream, "function", t->function,
						  "system", (json_int_t)t->system),
		     "no reply to S%uF%u (system bytes %08x) within T3", t->stream, t->function, t->system);
		/* E5 gives S9F9 to the equipment only; a host just times out. */
		if (c->cfg.is_equipment && c->state == HSMS_SELECTED)
			send_s9(c, 9, t->header);
		end_txn(c, t, HSMS_REPLY_T3, NULL);
	}
}

/* ---- link state ---- */

static void set_state(struct hsms_conn *c, enum hsms_state s, enum hsms_cause cause)
{
	c->state = s;
	if (c->cb.on_state)
		c->cb.on_state(c, s, cause, c->cb.arg);
}

static void become_selected(struct hsms_conn *c)
{
	uint64_t now = mono_ms();

	c->t7_at = 0;
	c->linktest_at = c->cfg.linktest_ms ? now + c->cfg.linktest_ms : 0;
	hlog(c, LOG_INFO, "selected", NULL, "selected");
	set_state(c, HSMS_SELECTED, HSMS_CAUSE_NONE);
}

/* Out of the SELECTED state by the peer's Deselect.req: back to T7. */
static void become_deselected(struct hsms_conn *c)
{
	c->t7_at = c->cfg.t7_ms ? mono_ms() + c->cfg.t7_ms : 0;
	c->linktest_at = 0;
	c->linktest.open = 0;
	hlog(c, LOG_INFO, "deselected", NULL, "deselected by the peer");
	fail_txns(c, HSMS_REPLY_CLOSED);
	set_state(c, HSMS_NOT_SELECTED, HSMS_CAUSE_NONE);
}

static void connect_failed(struct hsms_conn *c, int err)
{
	json_t *f = json_pack("{ss si ss}", "addr", c->target, "attempt", (int)c->attempts, "error", strerror(err));

	if (c->cfg.connect_attempts && c->attempts >= c->cfg.connect_attempts) {
		hlog(c, LOG_WARN, "connect_failed", f, "cannot connect to '%s': %s", c->target, strerror(err));
		hlog(c, LOG_ERROR, "gave_up", json_pack("{ss si}", "addr", c->target, "attempts", (int)c->attempts),
		     "giving up on '%s' after %u attempts", c->target, c->attempts);
		c->gave_up = 1;
		return;
	}
	c->retry_at = mono_ms() + c->cfg.t5_ms;
	json_object_set_new(f, "retry_in_ms", json_integer((json_int_t)c->cfg.t5_ms));
	hlog(c, LOG_WARN, "connect_failed", f, "cannot connect to '%s': %s; retrying after T5", c->target,
	     strerror(err));
}

/*
 * The link is gone: log why, hand the queued bytes to the kernel if it
 * takes them at once (a Reject.req or S9F11 sent just before), close,
 * end every transaction, and plan the next connect (active) or wait for
 * the next one (passive).
 */
static void lose(struct hsms_conn *c, enum hsms_cause cause, const char *fmt, ...)
{
	enum hsms_state was = c->state;
	va_list ap;
	char *detail;

	if (c->fd < 0)
		return;
	va_start(ap, fmt);
	if (vasprintf(&detail, fmt, ap) < 0)
		detail = NULL;
	va_end(ap);
	hlog(c, cause == HSMS_CAUSE_LOCAL || cause == HSMS_CAUSE_SEPARATE ? LOG_INFO : LOG_WARN, "closed",
	     json_pack("{ss ss? ss}", "cause", hsms_cause_name(cause), "detail", detail, "state",
		       hsms_state_name(was)),
	     "connection closed: %s (%s)", detail ? detail : "?", hsms_cause_name(cause));
	free(detail);
	if (out_pending(c))
		(void)!send(c->fd, c->out + c->out_head, out_pending(c), MSG_NOSIGNAL | MSG_DONTWAIT);
	close_sock(c);
	c->generation++;
	c->peer[0] = '\0';
	c->in.got = 0;
	c->rpos = c->rlen = 0;
	out_reset(c);
	c->select.open = c->linktest.open = 0;
	c->t7_at = c->linktest_at = 0;
	c->state = HSMS_NOT_CONNECTED;
	fail_txns(c, HSMS_REPLY_CLOSED);
	if (c->cfg.mode == HSMS_ACTIVE && !c->stopped)
		c->retry_at = mono_ms() + c->cfg.t5_ms;
	set_state(c, HSMS_NOT_CONNECTED, cause);
}

static void link_up(struct hsms_conn *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int one = 1;
	uint64_t now = mono_ms();

	c->fd = fd;
	c->attempts = 0;
	/* HSMS messages are small and answered one by one: no Nagle delay. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		sockaddr_str((struct sockaddr *)&ss, len, c->peer, sizeof c->peer);
	c->t7_at = c->cfg.t7_ms ? now + c->cfg.t7_ms : 0;
	c->last_byte_ms = now;
	hlog(c, LOG_INFO, "connected",
	     json_pack("{ss}", "mode", c->cfg.mode == HSMS_ACTIVE ? "active" : "passive"), "connected");
	update_interest(c);
	set_state(c, HSMS_NOT_SELECTED, HSMS_CAUSE_NONE);
	/* HSMS-SS: the active side selects. */
	if (c->cfg.mode == HSMS_ACTIVE && c->fd >= 0 && c->state == HSMS_NOT_SELECTED) {
		c->select.open = 1;
		c->select.system = new_system(c);
		c->select.sent_ms = now;
		c->select.deadline = now + c->cfg.t6_ms;
		send_control(c, HSMS_CONTROL_SESSION, 0, 0, HSMS_SELECT_REQ, c->select.system);
	}
}

static void connect_attempt(struct hsms_conn *c)
{
	int fd;

	c->retry_at = 0;
	c->attempts++;
	hlog(c, LOG_INFO, "connecting", json_pack("{ss si}", "addr", c->target, "attempt", (int)c->attempts),
	     "connecting to '%s' (attempt %u)", c->target, c->attempts);
	fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		connect_failed(c, errno);
		return;
	}
	if (connect(fd, (struct sockaddr *)&c->addr, c->addrlen) == 0) {
		link_up(c, fd);
		return;
	}
	if (errno != EINPROGRESS) {
		int e = errno;
		close(fd);
		connect_failed(c, e);
		return;
	}
	c->fd = fd;
	c->connecting = 1;
	update_interest(c);
}

static void connect_finish(struct hsms_conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err) {
		close_sock(c);
		connect_failed(c, err);
		return;
	}
	c->connecting = 0;
	link_up(c, c->fd);
}

static void on_accept(struct hsms_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char who[SOCKADDR_STR];
	int fd = accept4(c->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
			hlog(c, LOG_WARN, "accept_failed", json_pack("{ss}", "error", strerror(errno)),
			     "cannot accept: %s", strerror(errno));
		return;
	}
	if (c->fd >= 0 || c->stopped) {
		/* HSMS-SS is one session: the link we have stays, the new one goes. */
		sockaddr_str((struct sockaddr *)&ss, len, who, sizeof who);
		hlog(c, LOG_WARN, "refused", json_pack("{ss ss}", "from", who, "reason", "already_connected"),
		     "refused a second connection from %s", who);
		close(fd);
		return;
	}
	link_up(c, fd);
}

/* ---- received control messages, one handler per SType ---- */

static void on_select_req(struct hsms_conn *c, const struct hsms_msg *m)
{
	/* SelectStatus 1: communication already active. */
	uint8_t status = c->state == HSMS_SELECTED ? 1 : 0;

	send_control(c, m->session_id, 0, status, HSMS_SELECT_RSP, m->system);
	if (status == 0)
		become_selected(c);
	else
		hlog(c, LOG_WARN, "select_again", NULL, "Select.req while selected: answered 1 (already active)");
}

static void on_select_rsp(struct hsms_conn *c, const struct hsms_msg *m)
{
	if (!c->select.open || m->system != c->select.system) {
		send_reject(c, m, HSMS_REJECT_NOT_OPEN);
		return;
	}
	c->select.open = 0;
	/* 1 (already active) means the peer holds the session as selected. */
	if (m->function > 1) {
		lose(c, HSMS_CAUSE_SELECT_REFUSED, "Select.rsp status %u", m->function);
		return;
	}
	become_selected(c);
}

static void on_deselect_req(struct hsms_conn *c, const struct hsms_msg *m)
{
	/* DeselectStatus 1: communication not established. */
	uint8_t status = c->state == HSMS_SELECTED ? 0 : 1;

	send_control(c, m->session_id, 0, status, HSMS_DESELECT_RSP, m->system);
	if (status == 0)
		become_deselected(c);
}

/* We never send Deselect.req, so no Deselect.rsp can be expected. */
static void on_deselect_rsp(struct hsms_conn *c, const struct hsms_msg *m)
{
	send_reject(c, m, HSMS_REJECT_NOT_OPEN);
}

static void on_linktest_req(struct hsms_conn *c, const struct hsms_msg *m)
{
	hlog(c, LOG_DEBUG, "linktest_answered", json_pack("{sI}", "system", (json_int_t)m->system),
	     "answered Linktest.req");
	send_control(c, HSMS_CONTROL_SESSION, 0, 0, HSMS_LINKTEST_RSP, m->system);
}

static void on_linktest_rsp(struct hsms_conn *c, const struct hsms_msg *m)
{
	if (!c->linktest.open || m->system != c->linktest.system) {
		send_reject(c, m, HSMS_REJECT_NOT_OPEN);
		return;
	}
	c->linktest.open = 0;
	hlog(c, LOG_DEBUG, "linktest_ok",
	     json_pack("{sI}", "rtt_ms", (json_int_t)(mono_ms() - c->linktest.sent_ms)),
	     "Linktest.rsp received");
}

static void on_reject_req(struct hsms_conn *c, const struct hsms_msg *m)
{
	struct txn *t;

	hlog(c, LOG_WARN, "reject_received",
	     json_pack("{si si sI}", "reason", m->function, "about", m->stream, "system", (json_int_t)m->system),
	     "peer sent Reject.req reason %u about type %u, system bytes %08x", m->function, m->stream,
	     m->system);
	if (c->select.open && m->system == c->select.system) {
		c->select.open = 0;
		lose(c, HSMS_CAUSE_SELECT_REFUSED, "Select.req rejected, reason %u", m->function);
	} else if (c->linktest.open && m->system == c->linktest.system)
		c->linktest.open = 0;
	else if ((t = take_txn(c, m->system)) != NULL)
		end_txn(c, t, HSMS_REPLY_REJECTED, NULL);
}

static void on_separate_req(struct hsms_conn *c, const struct hsms_msg *m)
{
	(void)m;
	lose(c, HSMS_CAUSE_SEPARATE, "peer sent Separate.req");
}

/* ---- received data messages ---- */

static void on_data_reply(struct hsms_conn *c, const struct hsms_msg *m)
{
	struct txn *t = take_txn(c, m->system);

	/* Function 0 is the peer aborting the transaction: still its end. */
	if (t && t->stream == m->stream && (m->function == t->function + 1 || m->function == 0)) {
		end_txn(c, t, HSMS_REPLY_OK, m);
		return;
	}
	if (t) { /* same system bytes, other message: the real reply may still come */
		t->next = c->txns;
		c->txns = t;
		c->ntxns++;
	}
	hlog(c, LOG_WARN, "unexpected_reply", msg_fields(m),
	     "S%uF%u with system bytes %08x answers no open transaction: dropped", m->stream, m->function,
	     m->system);
}

static void on_data(struct hsms_conn *c, const struct hsms_msg *m)
{
	if (c->state != HSMS_SELECTED) {
		send_reject(c, m, HSMS_REJECT_NOT_SELECTED);
		return;
	}
	if (m->session_id != c->cfg.session_id) {
		json_t *f = msg_fields(m);
		json_object_set_new(f, "expected", json_integer(c->cfg.session_id));
		hlog(c, LOG_WARN, "wrong_session", f, "S%uF%u for device id %u, not %u: dropped", m->stream,
		     m->function, m->session_id, c->cfg.session_id);
		if (c->cfg.is_equipment)
			send_s9(c, 1, m->header);
		return;
	}
	/* SECS-II: primaries have odd function numbers, replies even ones. */
	if (m->function % 2 == 0)
		on_data_reply(c, m);
	else if (c->cb.on_message)
		c->cb.on_message(c, m, c->cb.arg);
}

typedef void (*stype_fn)(struct hsms_conn *c, const struct hsms_msg *m);

static const struct {
	const char *name;
	stype_fn fn;
} stypes[] = {
	[HSMS_DATA] = { "data", on_data },
	[HSMS_SELECT_REQ] = { "select.req", on_select_req },
	[HSMS_SELECT_RSP] = { "select.rsp", on_select_rsp },
	[HSMS_DESELECT_REQ] = { "deselect.req", on_deselect_req },
	[HSMS_DESELECT_RSP] = { "deselect.rsp", on_deselect_rsp },
	[HSMS_LINKTEST_REQ] = { "linktest.req", on_linktest_req },
	[HSMS_LINKTEST_RSP] = { "linktest.rsp", on_linktest_rsp },
	[HSMS_REJECT_REQ] = { "reject.req", on_reject_req },
	[HSMS_SEPARATE_REQ] = { "separate.req", on_separate_req },
};
#define NSTYPES (sizeof stypes / sizeof stypes[0])

static void handle_frame(struct hsms_conn *c)
{
	struct hsms_msg m;
	size_t len = c->in.length - HSMS_HEADER_LEN;

	header_parse(c->in.head + 4, len ? c->in.body : NULL, len, &m);
	m.rx_us = c->last_read_us;
	if (c->cb.on_trace)
		c->cb.on_trace(c, HSMS_IN, &m, c->cb.arg);
	if (m.ptype != 0) {
		send_reject(c, &m, HSMS_REJECT_PTYPE);
		return;
	}
	if (m.stype >= NSTYPES || !stypes[m.stype].fn) {
		send_reject(c, &m, HSMS_REJECT_STYPE);
		return;
	}
	/* E37: a control message is a header alone. */
	if (m.stype != HSMS_DATA && len > 0) {
		lose(c, HSMS_CAUSE_PROTOCOL, "%s with a %zu-byte body", stypes[m.stype].name, len);
		return;
	}
	stypes[m.stype].fn(c, &m);
}

static void refuse_too_long(struct hsms_conn *c)
{
	struct hsms_msg m;
	json_t *f;

	header_parse(c->in.head + 4, NULL, 0, &m);
	f = msg_fields(&m);
	json_object_set_new(f, "length", json_integer(c->in.length));
	json_object_set_new(f, "max", json_integer((json_int_t)c->cfg.max_msg));
	hlog(c, LOG_ERROR, "frame_too_long", f, "refused a %u-byte message (maximum %zu)", c->in.length,
	     c->cfg.max_msg);
	/* E5 S9F11 (data too long) is the equipment's answer to a data message. */
	if (c->cfg.is_equipment && m.stype == HSMS_DATA && m.ptype == 0 && c->state == HSMS_SELECTED)
		send_s9(c, 11, m.header);
	lose(c, HSMS_CAUSE_TOO_LONG, "length prefix %u over the maximum %zu", c->in.length, c->cfg.max_msg);
}

/* Handle the bytes read so far, frame by frame, while output has room. */
static void process_input(struct hsms_conn *c)
{
	unsigned gen = c->generation;

	while (c->fd >= 0 && gen == c->generation && c->rpos < c->rlen && out_pending(c) < c->cfg.max_out) {
		size_t used;
		enum feed r = frame_feed(&c->in, c->cfg.max_msg, c->rbuf + c->rpos, c->rlen - c->rpos, &used);

		c->rpos += used;
		if (r == FEED_SHORT) {
			lose(c, HSMS_CAUSE_PROTOCOL, "length prefix %u is shorter than a header", c->in.length);
			return;
		}
		if (r == FEED_TOO_LONG) {
			refuse_too_long(c);
			return;
		}
		if (r == FEED_FRAME) {
			handle_frame(c);
			frame_next(&c->in);
		}
	}
	if (c->rpos == c->rlen)
		c->rpos = c->rlen = 0;
}

static void on_readable(struct hsms_conn *c)
{
	ssize_t n;

	if (!input_open(c))
		return;
	n = read(c->fd, c->rbuf, READ_CHUNK);
	if (n < 0) {
		int e = errno;
		if (e != EINTR && e != EAGAIN && e != EWOULDBLOCK)
			lose(c, e == ECONNRESET ? HSMS_CAUSE_PEER_CLOSED : HSMS_CAUSE_IO, "read: %s", strerror(e));
		return;
	}
	if (n == 0) {
		if (c->in.got)
			lose(c, HSMS_CAUSE_PEER_CLOSED, "peer closed in the middle of a frame (%zu bytes received)",
			     c->in.got);
		else
			lose(c, HSMS_CAUSE_PEER_CLOSED, "peer closed the connection");
		return;
	}
	c->rpos = 0;
	c->rlen = (size_t)n;
	c->last_read_us = mono_us();
	c->last_byte_ms = c->last_read_us / 1000;
	process_input(c);
}

/* ---- timers ---- */

static void send_linktest(struct hsms_conn *c, uint64_t now)
{
	c->linktest_at = now + c->cfg.linktest_ms;
	if (c->linktest.open) /* T6 longer than the period: this round is skipped */
		return;
	c->linktest.open = 1;
	c->linktest.system = new_system(c);
	c->linktest.sent_ms = now;
	c->linktest.deadline = now + c->cfg.t6_ms;
	hlog(c, LOG_DEBUG, "linktest_sent", json_pack("{sI}", "system", (json_int_t)c->linktest.system),
	     "sent Linktest.req");
	send_control(c, HSMS_CONTROL_SESSION, 0, 0, HSMS_LINKTEST_REQ, c->linktest.system);
}

static void run_timers(struct hsms_conn *c, uint64_t now)
{
	if (c->fd < 0) {
		if (c->retry_at && now >= c->retry_at && !c->stopped)
			connect_attempt(c);
		return;
	}
	if (c->connecting)
		return;
	/* T8 counts the peer's silence, not ours: while we do not read, it waits. */
	if (!input_open(c))
		c->last_byte_ms = now;
	if (c->in.got && c->cfg.t8_ms && now >= c->last_byte_ms + c->cfg.t8_ms) {
		lose(c, HSMS_CAUSE_T8, "no byte for T8 in the middle of a frame (%zu bytes received)", c->in.got);
		return;
	}
	if (c->select.open && now >= c->select.deadline) {
		lose(c, HSMS_CAUSE_T6, "no Select.rsp within T6");
		return;
	}
	if (c->linktest.open && now >= c->linktest.deadline) {
		lose(c, HSMS_CAUSE_T6, "no Linktest.rsp within T6");
		return;
	}
	if (c->state == HSMS_NOT_SELECTED && c->t7_at && now >= c->t7_at) {
		lose(c, HSMS_CAUSE_T7, "not selected within T7");
		return;
	}
	expire_txns(c, now);
	if (c->fd >= 0 && c->state == HSMS_SELECTED && c->linktest_at && now >= c->linktest_at)
		send_linktest(c, now);
}

static uint64_t next_deadline(const struct hsms_conn *c)
{
	uint64_t d = UINT64_MAX;

#define EARLIER(x) do { if ((x) < d) d = (x); } while (0)
	if (c->fd < 0) {
		if (c->retry_at && !c->stopped)
			EARLIER(c->retry_at);
		return d;
	}
	if (c->connecting)
		return d;
	if (c->rpos < c->rlen && out_pending(c) < c->cfg.max_out)
		return 0; /* bytes read and not yet handled */
	if (c->in.got && c->cfg.t8_ms && input_open(c))
		EARLIER(c->last_byte_ms + c->cfg.t8_ms);
	if (c->select.open)
		EARLIER(c->select.deadline);
	if (c->linktest.open)
		EARLIER(c->linktest.deadline);
	if (c->state == HSMS_NOT_SELECTED && c->t7_at)
		EARLIER(c->t7_at);
	if (c->state == HSMS_SELECTED && c->linktest_at)
		EARLIER(c->linktest_at);
	for (const struct txn *t = c->txns; t; t = t->next)
		EARLIER(t->deadline);
#undef EARLIER
	return d;
}

/* ---- the public entry points ---- */

void hsms_config_init(struct hsms_config *cfg)
{
	*cfg = (struct hsms_config){
		.mode = HSMS_ACTIVE,
		.host = "127.0.0.1",
		.port = "5000",
		.t3_ms = 45000,
		.t5_ms = 10000,
		.t6_ms = 5000,
		.t7_ms = 10000,
		.t8_ms = 5000,
		.linktest_ms = 60000,
		.max_msg = HSMS_DEFAULT_MAX_MSG,
		.max_out = HSMS_DEFAULT_MAX_OUT,
		.max_open = HSMS_DEFAULT_MAX_OPEN,
	};
}

static void device_id_option(const struct cli_opt *opt, const char *arg, void *ctx)
{
	long v;

	(void)ctx;
	if (parse_long(arg, 0, 32767, &v) != 0)
		cli_usage_error("--device-id: '%s' is not a number from 0 to 32767", arg);
	((struct hsms_config *)opt->value)->session_id = (uint16_t)v;
}

void hsms_cli_options(struct cli_opt *opts, struct hsms_config *cfg)
{
	const struct cli_opt o[HSMS_CLI_NOPTS + 1] = {
		{ .kind = CLI_CALLBACK, .long_name = "device-id", .argname = "N", .value = cfg, .cb = device_id_option,
		  .help = "HSMS session id, 0..32767 (default 0)" },
		OPT_DURATION(0, "t3", "T", &cfg->t3_ms, 1, CLI_NOMAX, "reply timeout (default 45s)"),
		OPT_DURATION(0, "t5", "T", &cfg->t5_ms, 1, CLI_NOMAX, "between connect attempts (default 10s)"),
		OPT_DURATION(0, "t6", "T", &cfg->t6_ms, 1, CLI_NOMAX, "control transaction timeout (default 5s)"),
		OPT_DURATION(0, "t7", "T", &cfg->t7_ms, 0, CLI_NOMAX, "connected but not selected (default 10s; 0 off)"),
		OPT_DURATION(0, "t8", "T", &cfg->t8_ms, 0, CLI_NOMAX,
			     "between the bytes of one message (default 5s; 0 off)"),
		OPT_DURATION(0, "linktest", "T", &cfg->linktest_ms, 0, CLI_NOMAX,
			     "Linktest.req period while selected (default 60s;\n0 off)"),
		OPT_END(),
	};

	memcpy(opts, o, sizeof o);
}

struct hsms_conn *hsms_new(const struct hsms_config *cfg, const struct hsms_callbacks *cb)
{
	struct hsms_conn *c = xcalloc(1, sizeof *c);

	c->cfg = *cfg;
	c->cfg.host = xstrdup(cfg->host ? cfg->host : "127.0.0.1");
	c->cfg.port = xstrdup(cfg->port ? cfg->port : "0");
	if (!c->cfg.max_msg)
		c->cfg.max_msg = HSMS_DEFAULT_MAX_MSG;
	if (!c->cfg.max_out)
		c->cfg.max_out = HSMS_DEFAULT_MAX_OUT;
	if (!c->cfg.max_open)
		c->cfg.max_open = HSMS_DEFAULT_MAX_OPEN;
	if (c->cfg.max_msg < HSMS_HEADER_LEN)
		c->cfg.max_msg = HSMS_HEADER_LEN;
	if (c->cfg.max_msg > UINT32_MAX)
		c->cfg.max_msg = UINT32_MAX;
	if (cb)
		c->cb = *cb;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0)
		cli_die(KERF_EX_SOFTWARE, "cannot create an epoll set: %s", strerror(errno));
	c->lfd = c->fd = -1;
	c->next_system = 1;
	c->rbuf = xmalloc(READ_CHUNK);
	c->target = xasprintf("%s:%s", c->cfg.host, c->cfg.port);
	return c;
}

static int start_listening(struct hsms_conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_LISTEN };
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int one = 1;

	c->lfd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->lfd < 0)
		return -1;
	(void)setsockopt(c->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(c->lfd, (struct sockaddr *)&c->addr, c->addrlen) != 0 || listen(c->lfd, 8) != 0 ||
	    getsockname(c->lfd, (struct sockaddr *)&ss, &len) != 0 ||
	    epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->lfd, &ev) != 0) {
		int e = errno;
		close(c->lfd);
		c->lfd = -1;
		errno = e;
		return -1;
	}
	c->local_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						       : ((struct sockaddr_in *)&ss)->sin_port);
	char bound[SOCKADDR_STR];
	sockaddr_str((struct sockaddr *)&ss, len, bound, sizeof bound);
	free(c->target);
	c->target = xstrdup(bound);
	hlog(c, LOG_INFO, "listening", json_pack("{ss si}", "addr", c->target, "port", c->local_port),
	     "listening on '%s'", c->target);
	return 0;
}

int hsms_start(struct hsms_conn *c)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int rc;

	if (c->cfg.mode == HSMS_PASSIVE)
		hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(c->cfg.host, c->cfg.port, &hints, &res);
	if (rc != 0) {
		hlog(c, LOG_ERROR, "bad_address", json_pack("{ss ss}", "addr", c->target, "error", gai_strerror(rc)),
		     "cannot resolve '%s': %s", c->target, gai_strerror(rc));
		errno = EADDRNOTAVAIL;
		return -1;
	}
	/* The first address only: HSMS configurations name one address. */
	memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
	c->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	if (c->cfg.mode == HSMS_PASSIVE)
		return start_listening(c);
	connect_attempt(c);
	update_interest(c);
	return 0;
}

void hsms_stop(struct hsms_conn *c)
{
	if (!c)
		return;
	c->stopped = 1;
	c->retry_at = 0;
	if (c->fd >= 0 && c->connecting)
		close_sock(c);
	if (c->fd >= 0) {
		if (c->state == HSMS_SELECTED)
			send_control(c, HSMS_CONTROL_SESSION, 0, 0, HSMS_SEPARATE_REQ, new_system(c));
		lose(c, HSMS_CAUSE_LOCAL, "stopped by the application");
	}
	if (c->lfd >= 0) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->lfd, NULL);
		close(c->lfd);
		c->lfd = -1;
	}
}

void hsms_free(struct hsms_conn *c)
{
	if (!c)
		return;
	hsms_stop(c);
	fail_txns(c, HSMS_REPLY_CLOSED);
	close(c->epfd);
	free(c->in.body);
	free(c->rbuf);
	free(c->out);
	free((char *)c->cfg.host);
	free((char *)c->cfg.port);
	free(c->target);
	free(c);
}

int hsms_fd(const struct hsms_conn *c)
{
	return c->epfd;
}

int hsms_timeout_ms(const struct hsms_conn *c)
{
	uint64_t d = next_deadline(c), now;

	if (d == UINT64_MAX)
		return -1;
	now = mono_ms();
	if (d <= now)
		return 0;
	return d - now > INT_MAX ? INT_MAX : (int)(d - now);
}

void hsms_dispatch(struct hsms_conn *c)
{
	/* At most two descriptors are in the set, so one call sees them all. */
	struct epoll_event ev[2];
	int n = epoll_wait(c->epfd, ev, 2, 0);

	c->dispatching = 1;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == TAG_LISTEN) {
			if (c->lfd >= 0) /* not closed by a callback meanwhile */
				on_accept(c);
			continue;
		}
		if (c->fd < 0)
			continue;
		if (c->connecting) {
			connect_finish(c);
			continue;
		}
		if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			on_readable(c);
		if (c->fd >= 0 && (ev[i].events & EPOLLOUT))
			flush_out(c);
	}
	/* Bytes left unhandled while the output was full go on once it drains. */
	if (c->fd >= 0 && !c->connecting)
		process_input(c);
	run_timers(c, mono_ms());
	c->dispatching = 0;
	/* Most of the time the socket takes our answers at once: no extra round. */
	flush_out(c);
	update_interest(c);
}

enum hsms_state hsms_state(const struct hsms_conn *c)
{
	return c->state;
}

int hsms_done(const struct hsms_conn *c)
{
	return c->stopped || c->gave_up;
}

int hsms_local_port(const struct hsms_conn *c)
{
	return c->local_port;
}

size_t hsms_pending_out(const struct hsms_conn *c)
{
	return out_pending(c);
}

static int send_allowed(const struct hsms_conn *c, size_t len)
{
	if (c->state != HSMS_SELECTED || c->fd < 0) {
		errno = ENOTCONN;
		return -1;
	}
	if (len > UINT32_MAX - HSMS_HEADER_LEN) {
		errno = EINVAL;
		return -1;
	}
	if (out_pending(c) >= c->cfg.max_out) {
		errno = ENOBUFS;
		return -1;
	}
	return 0;
}

int hsms_send(struct hsms_conn *c, uint8_t stream, uint8_t function, int wbit, const void *body,
	      size_t len, void *ctx, uint32_t *system)
{
	uint8_t h[HSMS_HEADER_LEN];
	uint32_t sys;

	if (stream > 127 || (wbit && function % 2 == 0)) {
		errno = EINVAL;
		return -1;
	}
	if (send_allowed(c, len) != 0)
		return -1;
	if (wbit && c->ntxns >= c->cfg.max_open) {
		errno = EBUSY;
		return -1;
	}
	sys = new_system(c);
	header_pack(h, c->cfg.session_id, (uint8_t)(stream | (wbit ? 0x80 : 0)), function, HSMS_DATA, sys);
	if (wbit) {
		struct txn *t = xcalloc(1, sizeof *t);
		t->system = sys;
		t->stream = stream;
		t->function = function;
		memcpy(t->header, h, sizeof h);
		t->deadline = mono_ms() + c->cfg.t3_ms;
		t->ctx = ctx;
		t->next = c->txns;
		c->txns = t;
		c->ntxns++;
	}
	queue_frame(c, h, body, len);
	if (system)
		*system = sys;
	queued(c);
	return 0;
}

int hsms_reply(struct hsms_conn *c, const struct hsms_msg *primary, const void *body, size_t len)
{
	uint8_t h[HSMS_HEADER_LEN];

	if (primary->stream > 127 || primary->function == 255) {
		errno = EINVAL;
		return -1;
	}
	if (send_allowed(c, len) != 0)
		return -1;
	header_pack(h, c->cfg.session_id, primary->stream, (uint8_t)(primary->function + 1), HSMS_DATA,
		    primary->system);
	queue_frame(c, h, body, len);
	queued(c);
	return 0;
}

int hsms_reply_abort(struct hsms_conn *c, const struct hsms_msg *primary)
{
	uint8_t h[HSMS_HEADER_LEN];

	if (primary->stream > 127) {
		errno = EINVAL;
		return -1;
	}
	if (send_allowed(c, 0) != 0)
		return -1;
	header_pack(h, c->cfg.session_id, primary->stream, 0, HSMS_DATA, primary->system);
	queue_frame(c, h, NULL, 0);
	queued(c);
	return 0;
}

int hsms_send_s9(struct hsms_conn *c, uint8_t function, const uint8_t *hdr)
{
	if (function % 2 == 0 || function > 11) {
		errno = EINVAL;
		return -1;
	}
	if (send_allowed(c, 2 + HSMS_HEADER_LEN) != 0)
		return -1;
	send_s9(c, function, hdr);
	queued(c);
	return 0;
}

int hsms_addr_parse(const char *spec, char **host, char **port)
{
	const char *h, *colon;
	size_t hlen;
	long v;

	if (strncmp(spec, "hsms:", 5) != 0)
		return -1;
	h = spec + 5;
	colon = strrchr(h, ':');
	if (!colon || parse_long(colon + 1, 0, 65535, &v) < 0)
		return -1;
	hlen = (size_t)(colon - h);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	} else if (memchr(h, ':', hlen) || memchr(h, '[', hlen)) {
		return -1; /* an IPv6 address needs its brackets */
	}
	if (hlen == 0)
		return -1;
	*host = xstrndup(h, hlen);
	*port = xstrdup(colon + 1);
	return 0;
}

const char *hsms_state_name(enum hsms_state s)
{
	return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "?";
}

const char *hsms_cause_name(enum hsms_cause cause)
{
	return (unsigned)cause < HSMS_CAUSE__COUNT ? cause_names[cause] : "?";
}

const char *hsms_stype_name(unsigned stype)
{
	return stype < NSTYPES && stypes[stype].name ? stypes[stype].name : "unknown";
}

const char *hsms_reply_status_name(enum hsms_reply_status st)
{
	return (unsigned)st < sizeof reply_names / sizeof reply_names[0] ? reply_names[st] : "?";
}

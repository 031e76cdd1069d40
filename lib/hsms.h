/*
 * hsms.h: the HSMS-SS transport (SEMI E37, E37.1) for one link to one
 * SECS/GEM peer.  It owns the socket (and, in passive mode, the
 * listener), the framing, the NOT_CONNECTED / NOT_SELECTED / SELECTED
 * state machine, the control messages, the timers T3 T5 T6 T7 T8 and
 * the linktest, the open transactions and a bounded output buffer.
 * Message bodies are opaque bytes: SECS-II items are lib/secs.h's.
 *
 * Steps: hsms_config_init, then set the fields you need; hsms_new;
 * hsms_start (passive: binds and listens, hsms_local_port tells the
 * port; active: first connect attempt); then loop: poll hsms_fd for
 * POLLIN with hsms_timeout_ms as the timeout, and call hsms_dispatch
 * after every poll, whatever it returned (dispatch reads, writes and
 * runs the expired timers); send with hsms_send / hsms_reply /
 * hsms_send_s9 from anywhere, callbacks included; hsms_stop to end the
 * link politely; hsms_free.
 *
 * Single-threaded and non-blocking: one caller's loop, one reader and
 * one writer of the socket.  Callbacks run inside hsms_dispatch (and
 * inside hsms_stop / hsms_free for transactions they end); they may send
 * and may call hsms_stop, never hsms_free.
 *
 * Ownership: the connection copies the config (host and port strings
 * included).  A struct hsms_msg handed to a callback, its header and its
 * body belong to the connection and are valid only during the call.
 * The ctx given to hsms_send with the W-bit comes back in on_reply
 * exactly once (reply, T3, reject or link lost, hsms_free included);
 * the caller frees it there.  Every event is logged with log_msg as a
 * record carrying an "hsms" field that names it.
 */
#ifndef KERF_HSMS_H
#define KERF_HSMS_H

#include <stddef.h>
#include <stdint.h>

#define HSMS_HEADER_LEN 10
#define HSMS_CONTROL_SESSION 0xFFFF

/* A received length prefix above this is refused (settable: max_msg). */
#define HSMS_DEFAULT_MAX_MSG (16u * 1024 * 1024)
/*
 * hsms_send refuses (ENOBUFS) while this many bytes or more wait to be
 * written (settable: max_out).  Reading stops at the same mark, so
 * the transport's own answers cannot grow it either: the buffer holds at
 * most max_out + the largest message the caller sends + what one read
 * of 64 KiB can provoke (at most 2 bytes out per byte in).
 */
#define HSMS_DEFAULT_MAX_OUT (1024u * 1024)
/* hsms_send refuses (EBUSY) a W-bit message while this many are open. */
#define HSMS_DEFAULT_MAX_OPEN 1024

enum hsms_mode { HSMS_ACTIVE, HSMS_PASSIVE };

enum hsms_state {
	HSMS_NOT_CONNECTED,
	HSMS_NOT_SELECTED, /* CONNECTED, NOT SELECTED */
	HSMS_SELECTED,
};

/* SType, header byte 5. */
enum hsms_stype {
	HSMS_DATA = 0,
	HSMS_SELECT_REQ = 1,
	HSMS_SELECT_RSP = 2,
	HSMS_DESELECT_REQ = 3,
	HSMS_DESELECT_RSP = 4,
	HSMS_LINKTEST_REQ = 5,
	HSMS_LINKTEST_RSP = 6,
	HSMS_REJECT_REQ = 7,
	HSMS_SEPARATE_REQ = 9,
};

/* Reject.req reason codes (header byte 3). */
enum hsms_reject_reason {
	HSMS_REJECT_STYPE = 1,      /* SType not supported */
	HSMS_REJECT_PTYPE = 2,      /* PType not supported */
	HSMS_REJECT_NOT_OPEN = 3,   /* transaction not open */
	HSMS_REJECT_NOT_SELECTED = 4, /* entity not selected */
};

/*
 * Why a connection ended: the one table, enum and log name together.
 * "none" is for state changes that are not a loss.
 */
#define HSMS_CAUSE_TABLE(X)                                              \
	X(HSMS_CAUSE_NONE, "none")                                       \
	X(HSMS_CAUSE_PEER_CLOSED, "peer_closed")   /* EOF or reset */     \
	X(HSMS_CAUSE_T6, "t6")                     /* no control reply */ \
	X(HSMS_CAUSE_T7, "t7")                     /* never selected */   \
	X(HSMS_CAUSE_T8, "t8")                     /* stalled mid-frame */\
	X(HSMS_CAUSE_SEPARATE, "separate")         /* peer's Separate.req */ \
	X(HSMS_CAUSE_PROTOCOL, "protocol_error")   /* unparseable frame */ \
	X(HSMS_CAUSE_TOO_LONG, "frame_too_long")   /* length over max_msg */ \
	X(HSMS_CAUSE_IO, "io_error")               /* read/write failed */ \
	X(HSMS_CAUSE_SELECT_REFUSED, "select_refused") /* Select.rsp >= 2, or Reject.req */ \
	X(HSMS_CAUSE_LOCAL, "local")               /* hsms_stop */

#define HSMS_CAUSE_ENUM(name, str) name,
enum hsms_cause { HSMS_CAUSE_TABLE(HSMS_CAUSE_ENUM) HSMS_CAUSE__COUNT };
#undef HSMS_CAUSE_ENUM

enum hsms_reply_status {
	HSMS_REPLY_OK,       /* reply is the answer */
	HSMS_REPLY_T3,       /* no answer within T3 */
	HSMS_REPLY_REJECTED, /* the peer sent Reject.req for it */
	HSMS_REPLY_CLOSED,   /* the link was lost, deselected or freed first */
};

enum hsms_dir { HSMS_IN, HSMS_OUT };

/*
 * One message.  For data messages stream has no W-bit (wbit says it);
 * for control messages stream and function are header bytes 2 and 3 as
 * they are (SelectStatus, reason code, ...) and wbit is 0.
 */
struct hsms_msg {
	uint16_t session_id;
	uint8_t stream, function;
	int wbit;
	uint8_t ptype, stype;
	uint32_t system;
	const uint8_t *header;  /* the HSMS_HEADER_LEN header bytes */
	const uint8_t *body;
	size_t len;
	/* A received frame: mono_us() when the read(2) that brought its last
	 * byte returned (the frames of one read share it); 0 for frames sent. */
	uint64_t rx_us;
};

struct hsms_conn;

struct hsms_callbacks {
	void *arg; /* passed to every callback */
	/* A primary data message from the peer; answer with hsms_reply. */
	void (*on_message)(struct hsms_conn *c, const struct hsms_msg *m, void *arg);
	/* The end of a W-bit transaction; reply is NULL unless st is OK. */
	void (*on_reply)(struct hsms_conn *c, enum hsms_reply_status st, const struct hsms_msg *reply,
			 void *ctx, void *arg);
	/* Every state change; cause says why when state is NOT_CONNECTED. */
	void (*on_state)(struct hsms_conn *c, enum hsms_state state, enum hsms_cause cause, void *arg);
	/* Every frame sent (when queued) or received, control ones too;
	 * it must not send (the frame may sit in the output buffer). */
	void (*on_trace)(struct hsms_conn *c, enum hsms_dir dir, const struct hsms_msg *m, void *arg);
};

/* Times in milliseconds; hsms_config_init sets the E37 defaults. */
struct hsms_config {
	enum hsms_mode mode;
	const char *host;        /* numeric address or name, resolved once by hsms_start */
	const char *port;        /* passive: "0" picks a free port */
	uint16_t session_id;     /* the device id carried by data messages */
	int is_equipment;        /* sends S9F1, S9F9, S9F11 where E5 wants them */
	uint64_t t3_ms;          /* reply: 45 s */
	uint64_t t5_ms;          /* between connect attempts: 10 s */
	uint64_t t6_ms;          /* control transaction: 5 s */
	uint64_t t7_ms;          /* connected but not selected: 10 s; 0 off */
	uint64_t t8_ms;          /* between the bytes of one frame: 5 s; 0 off */
	uint64_t linktest_ms;    /* our Linktest.req period while selected: 60 s; 0 off */
	unsigned connect_attempts; /* active: 0 retries for ever */
	size_t max_msg;          /* largest length prefix accepted; 0 default */
	size_t max_out;          /* see HSMS_DEFAULT_MAX_OUT; 0 default */
	size_t max_open;         /* see HSMS_DEFAULT_MAX_OPEN; 0 default */
};

void hsms_config_init(struct hsms_config *cfg);

/*
 * The link's options, one range and one help text for every program that
 * has them: --device-id, --t3, --t5, --t6, --t7, --t8 and --linktest.
 * hsms_cli_options fills 'opts' (an array of HSMS_CLI_NOPTS + 1: the last
 * is OPT_END) with entries that write into 'cfg', for a program's table
 * to OPT_INCLUDE.
 */
#define HSMS_CLI_NOPTS 7
struct cli_opt;
void hsms_cli_options(struct cli_opt *opts, struct hsms_config *cfg);

/* A new, idle connection; no I/O yet.  'cb' is copied; its members may be NULL. */
struct hsms_conn *hsms_new(const struct hsms_config *cfg, const struct hsms_callbacks *cb);
/* Resolve the address and listen (passive) or connect (active): 0, or -1 with errno. */
int hsms_start(struct hsms_conn *c);
/* Sends Separate.req if selected, closes the link and the listener, stops retrying. Safe on NULL. */
void hsms_stop(struct hsms_conn *c);
/* Closes everything; open transactions end with HSMS_REPLY_CLOSED.  Safe on NULL. */
void hsms_free(struct hsms_conn *c);

/* The one descriptor to poll for POLLIN (an epoll set over the sockets); stable. */
int hsms_fd(const struct hsms_conn *c);
/* Milliseconds until the next deadline, for poll(2); -1 when there is none. */
int hsms_timeout_ms(const struct hsms_conn *c);
/* Handle what is readable or writable and every expired timer; never blocks. */
void hsms_dispatch(struct hsms_conn *c);

enum hsms_state hsms_state(const struct hsms_conn *c);
/* True when nothing more will happen: stopped, or active and out of attempts. */
int hsms_done(const struct hsms_conn *c);
/* The bound port in passive mode after hsms_start; 0 otherwise. */
int hsms_local_port(const struct hsms_conn *c);
/* Bytes waiting in the output buffer. */
size_t hsms_pending_out(const struct hsms_conn *c);

/*
 * Send a primary data message (function odd when wbit is set) while
 * SELECTED.  With wbit a transaction opens with a T3 deadline and 'ctx'
 * comes back through on_reply; *system (may be NULL) gets its system
 * bytes.  0, or -1 with errno: ENOTCONN not selected, ENOBUFS max_out
 * bytes or more waiting, EBUSY max_open transactions open, EINVAL bad
 * stream/function/length; then ctx stays the caller's.
 */
int hsms_send(struct hsms_conn *c, uint8_t stream, uint8_t function, int wbit, const void *body,
	      size_t len, void *ctx, uint32_t *system);
/*
 * Answer a primary: same stream, function + 1, its system bytes.  Only
 * those three fields of 'primary' are read, so a copy of them can answer
 * later.  The W-bit is not required: some equipment sends S5F1 or S6F11
 * without it and still waits for the reply.  Errors as hsms_send.
 */
int hsms_reply(struct hsms_conn *c, const struct hsms_msg *primary, const void *body, size_t len);
/*
 * Answer a primary with SxF0: same stream, function 0, its system bytes,
 * no body.  E5's "abort transaction" is how a host refuses a primary it
 * does not handle (S9 is the equipment's), and how equipment answers one
 * it will not take in its current state (E30: not communicating,
 * OFFLINE).  Errors as hsms_send.
 */
int hsms_reply_abort(struct hsms_conn *c, const struct hsms_msg *primary);
/*
 * Send S9Ffunction (1, 3, 5, 7, 9 or 11) about the message whose 10
 * header bytes are 'hdr' (struct hsms_msg's header).  E5 gives S9 to the
 * equipment; the transport sends S9F1, S9F9 and S9F11 itself in that
 * role, the application sends S9F3, S9F5 and S9F7.  Errors as hsms_send.
 */
int hsms_send_s9(struct hsms_conn *c, uint8_t function, const uint8_t *hdr);

/*
 * Split an address as kerf's command lines give it, "hsms:HOST:PORT"
 * (HOST a name, an IPv4 address or an IPv6 one in brackets; PORT 0 to
 * 65535), into new strings for struct hsms_config (caller frees both).
 * 0, or -1 when spec is not of that form.
 */
int hsms_addr_parse(const char *spec, char **host, char **port);

/* Names for logs and traces; never NULL. */
const char *hsms_state_name(enum hsms_state s);
const char *hsms_cause_name(enum hsms_cause cause);
const char *hsms_stype_name(unsigned stype);
const char *hsms_reply_status_name(enum hsms_reply_status st);

#endif

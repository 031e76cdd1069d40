/*
 * hsms-node: one HSMS endpoint for tests/hsms.bats, run from the command
 * line.  It answers S1F1 W with S1F2, answers stream 99 with S9F3 in the
 * equipment role and with S99F0 (abort) in the host role, echoes every
 * other W-bit primary with the same body, sends the --send messages once
 * selected, and prints each event as an NDJSON line on stdout (the
 * library's own records go to stderr).
 *
 * Usage: hsms-node (--active|--passive) HOST:PORT [--equipment]
 *   [--device-id N] [--t3 D] [--t5 D] [--t6 D] [--t7 D] [--t8 D]
 *   [--linktest D] [--max-msg SIZE] [--max-out SIZE] [--max-open N]
 *   [--attempts N] [--send SxFy[W][:HEX]]... [--repeat N] [--trace] [--once]
 * Durations take ms, s or m (no unit: seconds).  --once ends the program
 * when its first connection ends; --repeat sends the --send list N times.  Exit 0, or 69 when active mode gave up.
 *
 * Events: {"event":"listening","port"}, {"event":"state","state","cause"},
 * {"event":"message",...}, {"event":"reply","status","request",...},
 * {"event":"trace","dir",...}, {"event":"send_failed","request","error"}.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "sig.h"
#include "cli.h"
#include "out.h"
#include "hsms.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

struct to_send {
	uint8_t stream, function;
	int wbit;
	uint8_t *body;
	size_t len;
	char *name;
};

struct node {
	struct to_send *sends;
	size_t nsends;
	long repeat;
	int equipment, trace, once, was_connected, finished;
};

static const char usage[] =
	"usage: hsms-node (--active|--passive) HOST:PORT [--equipment] [--device-id N]\n"
	"         [--t3 D] [--t5 D] [--t6 D] [--t7 D] [--t8 D] [--linktest D]\n"
	"         [--max-msg SIZE] [--max-out SIZE] [--max-open N] [--attempts N]\n"
	"         [--send SxFy[W][:HEX]]... [--repeat N] [--trace] [--once]\n";

static void emit(json_t *ev)
{
	char *s = json_dumps(ev, JSON_COMPACT);
	if (s) {
		puts(s);
		free(s);
	}
	json_decref(ev);
	/* The tests poll this output while we run. */
	fflush(stdout);
}

static json_t *hex(const uint8_t *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";
	char *s = xmalloc(2 * n + 1);
	json_t *j;
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = hx[p[i] >> 4];
		s[2 * i + 1] = hx[p[i] & 15];
	}
	s[2 * n] = '\0';
	j = json_string(s);
	free(s);
	return j;
}

static json_t *msg_json(const char *event, const struct hsms_msg *m)
{
	return json_pack("{ss ss si si si sb sI si so}", "event", event, "stype", hsms_stype_name(m->stype),
			 "session_id", m->session_id, "stream", m->stream, "function", m->function, "wbit",
			 m->wbit, "system", (json_int_t)m->system, "len", (int)m->len, "body",
			 hex(m->body, m->len));
}

static void send_one(struct hsms_conn *c, const struct to_send *s)
{
	char *ctx = s->wbit ? xstrdup(s->name) : NULL;
	if (hsms_send(c, s->stream, s->function, s->wbit, s->body, s->len, ctx, NULL) != 0) {
		emit(json_pack("{ss ss ss}", "event", "send_failed", "request", s->name, "error",
			       strerror(errno)));
		free(ctx);
	}
}

static void on_state(struct hsms_conn *c, enum hsms_state st, enum hsms_cause cause, void *arg)
{
	struct node *n = arg;
	emit(json_pack("{ss ss ss}", "event", "state", "state", hsms_state_name(st), "cause",
		       hsms_cause_name(cause)));
	if (st == HSMS_SELECTED)
		for (long r = 0; r < n->repeat; r++)
			for (size_t i = 0; i < n->nsends; i++)
				send_one(c, &n->sends[i]);
	if (st != HSMS_NOT_CONNECTED)
		n->was_connected = 1;
	else if (n->once && n->was_connected)
		n->finished = 1;
}

static void on_message(struct hsms_conn *c, const struct hsms_msg *m, void *arg)
{
	struct node *n = arg;
	/* S1F2 as the equipment <L <A "kerf"> <A "0.1">> and as the host <L>;
	 * raw SECS-II bytes until lib/secs.h can build them. */
	static const uint8_t s1f2_eq[] = { 0x01, 0x02, 0x41, 0x04, 'k', 'e', 'r', 'f', 0x41, 0x03, '0', '.', '1' };
	static const uint8_t s1f2_host[] = { 0x01, 0x00 };
	int rc = 0, eq = n->equipment;

	emit(msg_json("message", m));
	if (m->stream == 1 && m->function == 1 && m->wbit)
		rc = eq ? hsms_reply(c, m, s1f2_eq, sizeof s1f2_eq) : hsms_reply(c, m, s1f2_host, sizeof s1f2_host);
	else if (m->stream == 99 && eq)
		rc = hsms_send_s9(c, 3, m->header);
	else if (m->stream == 99 && m->wbit)
		rc = hsms_reply_abort(c, m);
	else if (m->wbit)
		rc = hsms_reply(c, m, m->body, m->len);
	if (rc != 0)
		emit(json_pack("{ss si si ss}", "event", "send_failed", "stream", m->stream, "function",
			       m->function + 1, "error", strerror(errno)));
}

static void on_reply(struct hsms_conn *c, enum hsms_reply_status st, const struct hsms_msg *m, void *ctx,
		     void *arg)
{
	json_t *ev = m ? msg_json("reply", m) : json_pack("{ss}", "event", "reply");
	(void)c;
	(void)arg;
	json_object_set_new(ev, "status", json_string(hsms_reply_status_name(st)));
	json_object_set_new(ev, "request", json_string(ctx));
	emit(ev);
	free(ctx);
}

static void on_trace(struct hsms_conn *c, enum hsms_dir dir, const struct hsms_msg *m, void *arg)
{
	struct node *n = arg;
	json_t *ev;
	(void)c;
	if (!n->trace)
		return;
	ev = msg_json("trace", m);
	json_object_set_new(ev, "dir", json_string(dir == HSMS_IN ? "in" : "out"));
	emit(ev);
}

static int unhex(const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s);
	if (n % 2)
		return -1;
	*out = xmalloc(n / 2 + 1);
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		(*out)[i] = (uint8_t)v;
	}
	*len = n / 2;
	return 0;
}

/* "S1F1W:0100" -> stream 1, function 1, W-bit, body 01 00. */
static void parse_send(struct node *n, const char *arg)
{
	struct to_send s = { 0 };
	unsigned st, fn;
	int used = 0;
	const char *colon = strchr(arg, ':');

	if (sscanf(arg, "S%uF%u%n", &st, &fn, &used) != 2 || st > 127 || fn > 255)
		cli_usage_error("bad --send '%s'", arg);
	s.stream = (uint8_t)st;
	s.function = (uint8_t)fn;
	s.wbit = arg[used] == 'W';
	s.name = xasprintf("S%uF%u", st, fn);
	if (colon && unhex(colon + 1, &s.body, &s.len) != 0)
		cli_usage_error("bad hex in --send '%s'", arg);
	n->sends = xrealloc(n->sends, (n->nsends + 1) * sizeof *n->sends);
	n->sends[n->nsends++] = s;
}

static uint64_t duration(const char *s)
{
	uint64_t ms;
	if (parse_duration_ms(s, 1000, &ms) != 0)
		cli_usage_error("bad duration '%s'", s);
	return ms;
}

static uint64_t size_arg(const char *s)
{
	uint64_t v;
	if (parse_size(s, &v) != 0)
		cli_usage_error("bad size '%s'", s);
	return v;
}

static void parse_args(int argc, char **argv, struct hsms_config *cfg, struct node *n)
{
	enum { O_T3 = 256, O_T5, O_T6, O_T7, O_T8, O_LINKTEST, O_MAXMSG, O_MAXOUT, O_ATTEMPTS, O_SEND, O_DEV,
	       O_MAXOPEN, O_REPEAT };
	static const struct option opts[] = {
		{ "active", required_argument, NULL, 'a' }, { "passive", required_argument, NULL, 'p' },
		{ "equipment", no_argument, NULL, 'e' }, { "trace", no_argument, NULL, 'x' },
		{ "once", no_argument, NULL, '1' }, { "help", no_argument, NULL, 'h' },
		{ "device-id", required_argument, NULL, O_DEV }, { "t3", required_argument, NULL, O_T3 },
		{ "t5", required_argument, NULL, O_T5 }, { "t6", required_argument, NULL, O_T6 },
		{ "t7", required_argument, NULL, O_T7 }, { "t8", required_argument, NULL, O_T8 },
		{ "linktest", required_argument, NULL, O_LINKTEST },
		{ "max-msg", required_argument, NULL, O_MAXMSG }, { "max-out", required_argument, NULL, O_MAXOUT },
		{ "max-open", required_argument, NULL, O_MAXOPEN }, { "repeat", required_argument, NULL, O_REPEAT },
		{ "attempts", required_argument, NULL, O_ATTEMPTS }, { "send", required_argument, NULL, O_SEND },
		{ NULL, 0, NULL, 0 },
	};
	const char *addr = NULL;
	long v;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'a': case 'p':
			cfg->mode = o == 'a' ? HSMS_ACTIVE : HSMS_PASSIVE;
			addr = optarg;
			break;
		case 'e': cfg->is_equipment = 1; break;
		case 'x': n->trace = 1; break;
		case '1': n->once = 1; break;
		case 'h': cli_help(usage);
		case O_DEV:
			if (parse_long(optarg, 0, 32767, &v) != 0)
				cli_usage_error("bad --device-id '%s'", optarg);
			cfg->session_id = (uint16_t)v;
			break;
		case O_T3: cfg->t3_ms = duration(optarg); break;
		case O_T5: cfg->t5_ms = duration(optarg); break;
		case O_T6: cfg->t6_ms = duration(optarg); break;
		case O_T7: cfg->t7_ms = duration(optarg); break;
		case O_T8: cfg->t8_ms = duration(optarg); break;
		case O_LINKTEST: cfg->linktest_ms = duration(optarg); break;
		case O_MAXMSG: cfg->max_msg = size_arg(optarg); break;
		case O_MAXOUT: cfg->max_out = size_arg(optarg); break;
		case O_ATTEMPTS:
			if (parse_long(optarg, 0, 1000000, &v) != 0)
				cli_usage_error("bad --attempts '%s'", optarg);
			cfg->connect_attempts = (unsigned)v;
			break;
		case O_SEND: parse_send(n, optarg); break;
		case O_MAXOPEN:
			if (parse_long(optarg, 1, 1000000, &v) != 0)
				cli_usage_error("bad --max-open '%s'", optarg);
			cfg->max_open = (size_t)v;
			break;
		case O_REPEAT:
			if (parse_long(optarg, 1, 1000000, &n->repeat) != 0)
				cli_usage_error("bad --repeat '%s'", optarg);
			break;
		default: cli_usage_error("%s", "unknown option");
		}
	}
	if (!addr || optind != argc)
		cli_usage_error("%s", "one of --active or --passive HOST:PORT is required");
	char *colon = strrchr(addr, ':');
	if (!colon)
		cli_usage_error("bad address '%s': HOST:PORT", addr);
	cfg->host = xstrndup(addr, (size_t)(colon - addr));
	cfg->port = colon + 1;
}

int main(int argc, char **argv)
{
	struct hsms_config cfg;
	struct node n = { .repeat = 1 };
	struct hsms_callbacks cb = { &n, on_message, on_reply, on_state, on_trace };
	struct hsms_conn *c;
	int code = KERF_EX_OK;

	log_init(argv[0]);
	sig_init();
	hsms_config_init(&cfg);
	parse_args(argc, argv, &cfg, &n);
	n.equipment = cfg.is_equipment;
	c = hsms_new(&cfg, &cb);
	free((char *)cfg.host);
	if (hsms_start(c) != 0)
		cli_die(KERF_EX_UNAVAILABLE, "cannot start: %s", strerror(errno));
	if (cfg.mode == HSMS_PASSIVE)
		emit(json_pack("{ss si}", "event", "listening", "port", hsms_local_port(c)));
	while (!sig_stop && !n.finished && !hsms_done(c)) {
		struct pollfd p = { .fd = hsms_fd(c), .events = POLLIN };
		int t = hsms_timeout_ms(c);
		/* A signal between the check and poll must not wait for a far deadline. */
		if (t < 0 || t > 200)
			t = 200;
		if (poll(&p, 1, t) < 0 && errno != EINTR)
			cli_die(KERF_EX_SOFTWARE, "poll: %s", strerror(errno));
		hsms_dispatch(c);
	}
	if (hsms_done(c) && !sig_stop && !n.finished)
		code = KERF_EX_UNAVAILABLE;
	hsms_free(c);
	for (size_t i = 0; i < n.nsends; i++) {
		free(n.sends[i].body);
		free(n.sends[i].name);
	}
	free(n.sends);
	int rc = fshut(stdout, "standard output");
	return code != KERF_EX_OK ? code : rc;
}

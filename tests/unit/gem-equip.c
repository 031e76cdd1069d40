/*
 * gem-equip: a scripted GEM equipment for tests/gem-host.bats, on
 * lib/hsms and lib/secs.  It answers a host's session (S1F13, S1F1,
 * S1F17, S2F33, S2F35, S2F37, S5F3, S2F41) with the acks the options
 * say, sends its own S1F13 once selected, and once START is accepted
 * runs a script of messages, one at a time.
 *
 * Usage: gem-equip [--active HOST:PORT] [--device-id N] [--mdln S]
 *          [--softrev S] [--ack SxFy=N]... [--hcack RCMD=N]...
 *          [--silent SxFy]... [--no-s1f13] [--t3 D] [--script FILE]
 *          [--max-seconds S]
 * Passive on 127.0.0.1, any port, unless --active.  --ack sets the one
 * ack byte of a reply (S1F14 COMMACK, S1F18 ONLACK, S2F34, S2F36, S2F38,
 * S5F4; default 0); --hcack the HCACK of an S2F42 (default 0); --silent
 * leaves every SxFy unanswered.
 *
 * Script lines (a '#' line is a comment):
 *   S6F11 W <L ...>    an SML message: sent; with W the next line waits
 *                      for its reply (or T3); {B64:TEXT} in it stands for
 *                      a B item of the bytes TEXT encodes (die images)
 *   sleep MS           pause
 *   wait RCMD          until the host sends S2F41 RCMD (answered first)
 *   drop               close the TCP connection
 *   end                the script is over: wait for the host to leave
 * Output, NDJSON on stdout: {"event":"listening","port"},
 * {"event":"in"|"out","sf","w","sml"} per data message,
 * {"event":"state","state"}, {"event":"line","n"} as a script line
 * starts.  Exit 0 when the host left after "end"; 1 when --max-seconds
 * (default 30) ran out first; 64 on a bad option or script.
 */
#include "util.h"
#include "log.h"
#include "cli.h"
#include "base64.h"
#include "hsms.h"
#include "secs.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "banned.h"

struct kv {
	char key[64];
	int val;
};

struct equip {
	struct hsms_conn *c;
	const char *mdln, *softrev;
	struct kv *acks, *hcacks;
	size_t nacks, nhcacks;
	char **silent;
	size_t nsilent;
	int no_s1f13;
	char **lines;            /* the script */
	size_t nlines, next;
	int running;             /* START accepted: the script runs */
	int waiting_reply;       /* a W-bit line awaits its reply */
	uint64_t sleep_until;
	char wait_rcmd[64];      /* a wait line: the RCMD it waits for */
	int ended, gone, left;
};

static void out(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(j);
	fflush(stdout);
}

static int lookup(const struct kv *t, size_t n, const char *key, int def)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].key, key))
			return t[i].val;
	return def;
}

static void add_kv(struct kv **t, size_t *n, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || (size_t)(eq - arg) >= sizeof (*t)->key)
		cli_usage_error("bad KEY=N '%s'", arg);
	*t = xrealloc(*t, (*n + 1) * sizeof **t);
	memcpy((*t)[*n].key, arg, (size_t)(eq - arg));
	(*t)[*n].key[eq - arg] = '\0';
	(*t)[*n].val = atoi(eq + 1);
	(*n)++;
}

static void trace_msg(const char *dir, const struct hsms_msg *m)
{
	struct secs_item *body = NULL;
	char sf[16], *sml;

	snprintf(sf, sizeof sf, "S%uF%u", m->stream, m->function);
	if (secs_decode(m->body, m->len, NULL, &body, NULL) != 0)
		body = NULL;
	sml = secs_sml_message(m->stream, m->function, m->wbit, body, SECS_SML_BRIEF);
	out(json_pack("{ss ss sb ss}", "event", dir, "sf", sf, "w", m->wbit, "sml", sml));
	free(sml);
	secs_free(body);
}

static int send_item(struct equip *e, unsigned s, unsigned f, int w, struct secs_item *body, void *ctx)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = secs_encode(body, &buf, &len, NULL);
	if (rc == 0)
		rc = hsms_send(e->c, (uint8_t)s, (uint8_t)f, w, buf, len, ctx, NULL);
	free(buf);
	secs_free(body);
	return rc;
}

static void reply_item(struct equip *e, const struct hsms_msg *m, struct secs_item *body)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	if (secs_encode(body, &buf, &len, NULL) == 0)
		hsms_reply(e->c, m, buf, len);
	free(buf);
	secs_free(body);
}

/* S2F41 <L <A RCMD> <L ...>>: HCACK from --hcack; START accepted starts the script. */
static void on_s2f41(struct equip *e, const struct hsms_msg *m, struct secs_item *body)
{
	const char *rcmd = secs_get_str(secs_child(body, 0), NULL);
	int hcack = lookup(e->hcacks, e->nhcacks, rcmd ? rcmd : "", 0);

	reply_item(e, m, secs_list(2, secs_binary((uint8_t)hcack), secs_list(0)));
	if (rcmd && !strcmp(rcmd, "START") && (hcack == 0 || hcack == 4))
		e->running = 1;
	if (rcmd && e->wait_rcmd[0] && !strcmp(rcmd, e->wait_rcmd))
		e->wait_rcmd[0] = '\0';
}

static void on_message(struct hsms_conn *c, const struct hsms_msg *m, void *arg)
{
	struct equip *e = arg;
	struct secs_item *body = NULL;
	char sf[16];

	(void)c;
	snprintf(sf, sizeof sf, "S%uF%u", m->stream, m->function);
	for (size_t i = 0; i < e->nsilent; i++)
		if (!strcmp(e->silent[i], sf))
			return;
	(void)secs_decode(m->body, m->len, NULL, &body, NULL);
	snprintf(sf, sizeof sf, "S%uF%u", m->stream, m->function + 1);
	if (m->stream == 1 && m->function == 13)
		reply_item(e, m, secs_list(2, secs_binary((uint8_t)lookup(e->acks, e->nacks, sf, 0)),
					   secs_list(2, secs_ascii(e->mdln), secs_ascii(e->softrev))));
	else if (m->stream == 1 && m->function == 1)
		reply_item(e, m, secs_list(2, secs_ascii(e->mdln), secs_ascii(e->softrev)));
	else if (m->stream == 2 && m->function == 41)
		on_s2f41(e, m, body);
	else if ((m->stream == 1 && m->function == 17) || (m->stream == 2 && (m->function == 33 || m->function == 35 ||
									      m->function == 37)) ||
		 (m->stream == 5 && m->function == 3))
		reply_item(e, m, secs_binary((uint8_t)lookup(e->acks, e->nacks, sf, 0)));
	else if (m->wbit)
		hsms_reply_abort(e->c, m);
	secs_free(body);
}

static void on_reply(struct hsms_conn *c, enum hsms_reply_status st, const struct hsms_msg *m, void *ctx,
		     void *arg)
{
	struct equip *e = arg;

	(void)c;
	if (!m)
		out(json_pack("{ss ss}", "event", "no_reply", "status", hsms_reply_status_name(st)));
	if (ctx)
		e->waiting_reply = 0;
}

static void on_state(struct hsms_conn *c, enum hsms_state st, enum hsms_cause cause, void *arg)
{
	struct equip *e = arg;

	(void)c;
	out(json_pack("{ss ss ss}", "event", "state", "state", hsms_state_name(st), "cause", hsms_cause_name(cause)));
	if (st == HSMS_SELECTED && !e->no_s1f13)
		send_item(e, 1, 13, 1, secs_list(2, secs_ascii(e->mdln), secs_ascii(e->softrev)), NULL);
	if (st == HSMS_NOT_CONNECTED)
		e->gone = 1;
	else if (st == HSMS_SELECTED)
		e->gone = 0;
}

static void on_trace(struct hsms_conn *c, enum hsms_dir dir, const struct hsms_msg *m, void *arg)
{
	(void)c;
	(void)arg;
	/* Every data message both ways, replies nobody waits for included. */
	if (m->stype == HSMS_DATA)
		trace_msg(dir == HSMS_OUT ? "out" : "in", m);
}

/* The line with each {B64:TEXT} written out as <B 0x.. ...>.  Caller frees. */
static char *expand(const char *l)
{
	size_t cap = strlen(l) + 1, len = 0;
	char *o = xmalloc(cap);
	const char *p;

	while ((p = strstr(l, "{B64:")) != NULL) {
		const char *end = strchr(p, '}');
		size_t n = end ? (size_t)(end - p - 5) : 0;
		unsigned char *bytes = xmalloc(n + 3);
		long k = end ? base64_decode(p + 5, n, bytes) : -1;
		if (k < 0)
			cli_die(64, "bad {B64:...} in a script line");
		cap += (size_t)k * 5 + 8;
		o = xrealloc(o, cap);
		memcpy(o + len, l, (size_t)(p - l));
		len += (size_t)(p - l);
		len += (size_t)snprintf(o + len, cap - len, "<B");
		for (long i = 0; i < k; i++)
			len += (size_t)snprintf(o + len, cap - len, " 0x%02X", bytes[i]);
		len += (size_t)snprintf(o + len, cap - len, ">");
		free(bytes);
		l = end + 1;
	}
	memcpy(o + len, l, strlen(l) + 1);
	return o;
}

/* Run script lines until one has to wait. */
static void step(struct equip *e)
{
	while (e->running && !e->ended && !e->waiting_reply && !e->wait_rcmd[0] && mono_ms() >= e->sleep_until &&
	       e->next < e->nlines && hsms_state(e->c) == HSMS_SELECTED) {
		const char *l = e->lines[e->next++];
		out(json_pack("{ss si}", "event", "line", "n", (int)e->next));
		if (!strncmp(l, "sleep ", 6)) {
			e->sleep_until = mono_ms() + strtoull(l + 6, NULL, 10);
		} else if (!strncmp(l, "wait ", 5)) {
			snprintf(e->wait_rcmd, sizeof e->wait_rcmd, "%s", l + 5);
		} else if (!strcmp(l, "drop")) {
			/* Not hsms_stop: a tool that drops sends no Separate.req;
			 * the kernel closes the socket as the process ends. */
			fflush(stdout);
			_exit(0);
		} else if (!strcmp(l, "end")) {
			e->ended = 1;
		} else {
			unsigned s, f;
			int w;
			struct secs_item *body;
			struct secs_error err;
			char *text = expand(l);
			if (secs_sml_parse_message(text, strlen(text), NULL, &s, &f, &w, &body, &err) != 0)
				cli_die(64, "script line %zu: %s", e->next, err.msg);
			free(text);
			/* The ctx marks a transaction the script waits on. */
			if (send_item(e, s, f, w, body, w ? e : NULL) == 0 && w)
				e->waiting_reply = 1;
		}
	}
}

static void read_script(struct equip *e, const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		cli_die(64, "cannot open '%s': %s", path, strerror(errno));
	while ((n = getline(&line, &cap, f)) > 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		e->lines = xrealloc(e->lines, (e->nlines + 1) * sizeof *e->lines);
		e->lines[e->nlines++] = xstrdup(line);
	}
	free(line);
	fclose(f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "active", required_argument, NULL, 'a' }, { "device-id", required_argument, NULL, 'd' },
		{ "mdln", required_argument, NULL, 'm' }, { "softrev", required_argument, NULL, 'r' },
		{ "ack", required_argument, NULL, 'k' }, { "hcack", required_argument, NULL, 'h' },
		{ "silent", required_argument, NULL, 's' }, { "no-s1f13", no_argument, NULL, 'n' },
		{ "t3", required_argument, NULL, '3' }, { "script", required_argument, NULL, 'f' },
		{ "max-seconds", required_argument, NULL, 'x' }, { NULL, 0, NULL, 0 },
	};
	struct equip e = { .mdln = "KERF-SIM", .softrev = "1" };
	struct hsms_config cfg;
	struct hsms_callbacks cb = { &e, on_message, on_reply, on_state, on_trace };
	uint64_t ms, deadline;
	int c;

	log_init("gem-equip");
	hsms_config_init(&cfg);
	cfg.mode = HSMS_PASSIVE;
	cfg.port = "0";
	cfg.is_equipment = 1;
	cfg.linktest_ms = 0;
	deadline = 30000;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': {
			char *colon = strrchr(optarg, ':');
			if (!colon)
				cli_usage_error("--active HOST:PORT");
			*colon = '\0';
			cfg.mode = HSMS_ACTIVE;
			cfg.host = optarg;
			cfg.port = colon + 1;
			break;
		}
		case 'd': cfg.session_id = (uint16_t)atoi(optarg); break;
		case 'm': e.mdln = optarg; break;
		case 'r': e.softrev = optarg; break;
		case 'k': add_kv(&e.acks, &e.nacks, optarg); break;
		case 'h': add_kv(&e.hcacks, &e.nhcacks, optarg); break;
		case 's':
			e.silent = xrealloc(e.silent, (e.nsilent + 1) * sizeof *e.silent);
			e.silent[e.nsilent++] = optarg;
			break;
		case 'n': e.no_s1f13 = 1; break;
		case '3':
			if (parse_duration_ms(optarg, 1000, &ms) < 0)
				cli_usage_error("bad --t3");
			cfg.t3_ms = ms;
			break;
		case 'f': read_script(&e, optarg); break;
		case 'x': deadline = strtoull(optarg, NULL, 10) * 1000; break;
		default: cli_usage_error("unknown option");
		}
	}
	e.c = hsms_new(&cfg, &cb);
	if (hsms_start(e.c) != 0)
		cli_die(69, "cannot start: %s", strerror(errno));
	if (cfg.mode == HSMS_PASSIVE)
		out(json_pack("{ss si}", "event", "listening", "port", hsms_local_port(e.c)));
	deadline += mono_ms();
	while (!e.left && mono_ms() < deadline) {
		struct pollfd p = { hsms_fd(e.c), POLLIN, 0 };
		int t = hsms_timeout_ms(e.c);
		(void)poll(&p, 1, t < 0 || t > 20 ? 20 : t);
		hsms_dispatch(e.c);
		step(&e);
		/* The host may leave before "end" ran, right after the last reply. */
		if (e.gone && (e.ended || (e.next < e.nlines && !strcmp(e.lines[e.next], "end"))))
			e.left = 1;
	}
	out(json_pack("{ss sb}", "event", "exit", "host_left", e.left));
	hsms_free(e.c);
	for (size_t i = 0; i < e.nlines; i++)
		free(e.lines[i]);
	free(e.lines);
	free(e.acks);
	free(e.hcacks);
	free(e.silent);
	return e.left ? 0 : 1;
}

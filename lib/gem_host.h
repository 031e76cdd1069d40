/*
 * gem_host.h: the GEM host side (SEMI E30) of one SECS/GEM session with
 * one tool, over lib/hsms (the HSMS-SS link) and lib/secs (SECS-II
 * items), with a tool profile (lib/profile) that says what the tool's
 * numbers mean.  After every select it establishes communications
 * (S1F13/S1F14 in either direction, both at once included), asks the
 * tool who it is (S1F1), puts it online (S1F17) and sets up the
 * profile's reports and alarms (S2F37 disable all, S2F33 delete all and
 * define, S2F35 link, S2F37 enable, S5F3), checking every answer.  It
 * answers the tool's primaries (S1F1, S1F13, S2F17, S5F1, S6F11, S10F1;
 * SxF0 for any other), logs the tool's S9 errors, turns each S6F11 into
 * the fields of one kerf event and each S5F1 into an alarm, and sends
 * kerf's operations as S2F41 remote commands.
 *
 * Steps: gem_host_new (it makes the HSMS connection from cfg.hsms);
 * gem_host_start; then the caller's loop polls hsms_fd(gem_host_conn(h))
 * for POLLIN with hsms_timeout_ms and calls hsms_dispatch after every
 * poll, as lib/hsms says; on_ready tells that the tool is set up (again
 * after every reconnect), from then on gem_host_command sends START,
 * PAUSE, ...; hsms_stop(gem_host_conn(h)) leaves politely;
 * gem_host_free.
 *
 * Single-threaded like lib/hsms: every callback runs inside
 * hsms_dispatch (or hsms_stop / gem_host_free for transactions they
 * end) and may send, never free the host.  The profile and cfg.run are
 * borrowed and must outlive the host.  Every log record of this module
 * carries a "gem" field naming what happened.
 */
#ifndef KERF_GEM_HOST_H
#define KERF_GEM_HOST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "hsms.h"
#include "profile.h"

struct gem_host;

/* The most elements one variable's value may have (an image counts as one). */
#define GEM_VALUE_MAX_ELEMENTS 65536

/* How far the session got, for the caller's link records. */
enum gem_link {
	GEM_LINK_CONNECTED,      /* TCP up, not selected yet */
	GEM_LINK_SELECTED,       /* HSMS selected */
	GEM_LINK_COMMUNICATING,  /* S1F13/S1F14 done */
	GEM_LINK_ONLINE,         /* S1F18 said online */
	GEM_LINK_LOST,           /* the connection ended; cause says why */
};
const char *gem_link_name(enum gem_link link);

/* One S6F11 read through the profile. */
struct gem_event {
	uint32_t ceid;
	uint64_t dataid;
	const struct profile_event *pe;  /* the profile's entry for ceid */
	json_t *fields;  /* the kerf fields its values fill (borrowed: json_incref to keep) */
	uint64_t n;      /* the S6F11's number since gem_host_new, from 1 */
	uint64_t rx_us;  /* when its last byte was read (struct hsms_msg's rx_us) */
};

/* One S5F1. */
struct gem_alarm {
	uint32_t alid;
	uint8_t alcd;      /* as sent: bit 7 set, the low bits the category */
	const char *text;  /* ALTX as valid UTF-8, trailing blanks removed */
};

struct gem_host_callbacks {
	void *arg; /* passed to every callback */
	void (*on_link)(struct gem_host *h, enum gem_link link, const char *cause, void *arg);
	/* The tool is online with the profile's reports and alarms enabled. */
	void (*on_ready)(struct gem_host *h, void *arg);
	/* The set-up failed at 'step' ("S2F33 define reports") for 'why'. */
	void (*on_failed)(struct gem_host *h, const char *step, const char *why, void *arg);
	/* A collection event; its S6F12 goes out when this returns. */
	void (*on_event)(struct gem_host *h, const struct gem_event *ev, void *arg);
	void (*on_alarm)(struct gem_host *h, const struct gem_alarm *al, void *arg);
	/*
	 * An S6F11 that makes no event: reason bad_report (its shape, an
	 * unknown report, a value count that differs from the definition)
	 * or bad_value (a value the profile's conversion refuses); sml is
	 * the message in brief SML, n as in struct gem_event.
	 */
	void (*on_reject)(struct gem_host *h, const char *reason, const char *msg, const char *sml, uint64_t n,
			  void *arg);
	/* The answer to gem_host_command: HCACK, or -1 when none came. */
	void (*on_command)(struct gem_host *h, enum profile_op op, int hcack, void *arg);
	/*
	 * A readiness check of the set-up (kerf-acquire(1), "Readiness
	 * checks"): check is tool_model (S1F1), tool_online (S1F17, and
	 * S1F3 of the profile's control-state variable) or tool_recipe
	 * (S7F19, sent beside the other steps); outcome is running, ok,
	 * failed or skipped; reason says why (may be NULL).  A failed check
	 * is followed by on_failed.
	 */
	void (*on_check)(struct gem_host *h, const char *check, const char *outcome, const char *reason, void *arg);
	/* Every HSMS frame, as lib/hsms's on_trace (must not send). */
	void (*on_trace)(struct gem_host *h, enum hsms_dir dir, const struct hsms_msg *m, void *arg);
};

struct gem_host_config {
	struct hsms_config hsms;        /* the link; copied (is_equipment is forced off) */
	const struct profile *profile;  /* borrowed */
	/* The values remote command parameters take, by field (lot, recipe,
	 * wafers): strings go as A, integers as U4 (I8 when negative),
	 * reals as F8.  Borrowed; may be NULL. */
	const json_t *run;
};

/* A new host and its idle HSMS connection; cb is copied. */
struct gem_host *gem_host_new(const struct gem_host_config *cfg, const struct gem_host_callbacks *cb);
/* hsms_start: 0, or -1 with errno (logged by lib/hsms). */
int gem_host_start(struct gem_host *h);
/* Ends the connection (hsms_free) and the host.  Safe on NULL. */
void gem_host_free(struct gem_host *h);

struct hsms_conn *gem_host_conn(const struct gem_host *h);
/* 1 between on_ready and the loss of the link. */
int gem_host_ready(const struct gem_host *h);
/* The tool's MDLN and SOFTREV from S1F2, or NULL before it came. */
const char *gem_host_model(const struct gem_host *h);
const char *gem_host_softrev(const struct gem_host *h);

/*
 * Send operation op as S2F41 W with the profile's RCMD and parameters.
 * This one function is where kerf's operations reach the tool, so that
 * a command coordinator can take its place.  0, or -1 when the profile
 * has no such command or the tool is not set up (both logged).
 */
int gem_host_command(struct gem_host *h, enum profile_op op);

/* The meaning of an HCACK ("accepted, completion comes as an event"). */
const char *gem_hcack_name(int hcack);

#endif

/*
 * simrun.h: one lot of the simulated inspection tool as a sequence of
 * kerf events, the one definition behind both kerf-acquire --sim (which
 * writes the events as NDJSON) and kerf-tool (which sends them as
 * SECS/GEM messages): run_start, state ready, state executing, then per
 * wafer wafer_start, one die per die and wafer_end; at the end state
 * idle and run_end.  An injected alarm follows its die; pause, stop and
 * abort are taken at die and wafer boundaries, as a tool finishes the die
 * it is on.  It owns lib/sim, the machine clock, the seq numbers, the
 * die pixels and the pacing of --rate; it never sleeps and never writes
 * the stream: the caller asks for the next event once simrun_due_us says
 * it is due, and sends it where it goes.
 *
 * Steps: simrun_opts_init; simrun_option for each option of the
 * simulated tool (simrun_alarm_parse for each injected alarm);
 * simrun_new; simrun_set_truth when the ground truth is wanted; then
 * simrun_next until simrun_over (NULL while paused), with the tool's
 * commands (simrun_command) between calls; simrun_free.
 *
 * The simulated tool answers commands as a tool does (HCACK), in the
 * state it is in, and takes time to carry them out: a pause is taken
 * --pause-after dies after it was accepted, a stop --stop-after dies
 * after (both 0 by default: at the next boundary), so that tests know
 * exactly where.  Injected faults (struct simrun_fault) make it refuse a
 * command, accept one and never carry it out, or carry it out later.
 */
#ifndef KERF_SIMRUN_H
#define KERF_SIMRUN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "profile.h"
#include "sim.h"

/* An alarm raised right after the at-th die of the lot (from 1). */
struct simrun_alarm {
	uint64_t at;
	long alid;
	char category[32]; /* see event_alarm_code */
};

/*
 * A fault of the tool's command handling, injected by --inject:
 *   ignore@CMD[:N]       the Nth CMD (default: every one) is accepted
 *                        (HCACK 4) and never carried out
 *   delay@CMD:DIES       every CMD (pause, stop, abort) is carried out
 *                        DIES dies later than it would be
 *   refuse@CMD:HCACK[:N] the Nth CMD (default: every one) is answered
 *                        HCACK (1, 2, 3, 5 or 6) and not carried out
 *   wait@DIES            after the lot's DIES-th die the tool makes
 *                        nothing more until it carries out (HCACK 0 or
 *                        4) a command that came after that die, so a
 *                        test can act on a lot that cannot end first,
 *                        however slow the machine (no CMD: op unused)
 * CMD is start, pause, resume, stop or abort; N counts the commands of
 * that name the lot got, from 1.
 */
enum simrun_fault_kind { SIMRUN_IGNORE, SIMRUN_DELAY, SIMRUN_REFUSE, SIMRUN_WAIT };
struct simrun_fault {
	enum simrun_fault_kind kind;
	enum profile_op op;
	unsigned nth;   /* 0: every one */
	unsigned arg;   /* delay: dies; refuse: the HCACK; wait: dies */
};

/* The strings are borrowed: they must outlive every simrun made from the options. */
struct simrun_opts {
	struct sim_config cfg;
	const char *lot, *recipe, *tool;
	double rate;             /* dies per second on the wall clock; 0: as fast as asked */
	const char *truth;       /* ground truth file: the caller opens it (simrun_set_truth) */
	int wall_clock;          /* t from the real-time clock instead of the simulated one */
	int inline_images;       /* die events carry data (base64) and xxh3 */
	const struct simrun_alarm *alarms; /* borrowed; copied by simrun_new */
	size_t nalarms;
	uint64_t pause_after;    /* --pause-after: dies between accepting a pause and taking it */
	uint64_t stop_after;     /* --stop-after: the same for a stop */
	const struct simrun_fault *faults; /* borrowed; copied by simrun_new */
	size_t nfaults;
	int wait_start;          /* nothing until START (simrun_command): kerf-acquire --sim */
};

/*
 * The options of the simulated lot, one parser and one help text for
 * every program that has them: simrun_cli_options fills 'opts' (an
 * array of SIMRUN_NOPTS + 1: the last is OPT_END) with entries that
 * write into 'o', for a program's table to OPT_INCLUDE; their callback
 * is simrun_option, which checks every value.
 */
#define SIMRUN_NOPTS 16
struct cli_opt;
void simrun_cli_options(struct cli_opt *opts, struct simrun_opts *o);

void simrun_opts_init(struct simrun_opts *o);
/* Apply option --name arg (arg is kept, not copied): 0, or -1 with a message in err. */
int simrun_option(struct simrun_opts *o, const char *name, const char *arg, char *err, size_t errlen);
/* Parse "alarm@DIE:ALID:CATEGORY": 0, or -1 with a message in err. */
int simrun_alarm_parse(const char *spec, struct simrun_alarm *out, char *err, size_t errlen);
/* Parse a command fault (ignore@, delay@, refuse@, wait@): 0; 1 when spec is none; -1 with a message in err. */
int simrun_fault_parse(const char *spec, struct simrun_fault *out, char *err, size_t errlen);
/* The fault for the nth command op, or NULL. */
const struct simrun_fault *simrun_fault_find(const struct simrun_fault *f, size_t n, enum profile_op op,
					     unsigned nth);

struct simrun;

/* A new lot of events with run id 'run'; NULL with a message in err when the geometry holds no die. */
struct simrun *simrun_new(const struct simrun_opts *o, const char *run, char *err, size_t errlen);
void simrun_free(struct simrun *r);
/* The simulator, for its geometry (read only). */
const struct sim *simrun_sim(const struct simrun *r);

/*
 * Write the ground truth, one NDJSON record per injected defect, to f
 * (borrowed: the caller closes it) as each die is made.  A write error
 * is logged naming 'path' and ends the writing: simrun_truth_failed
 * then says so, for the exit status.
 */
void simrun_set_truth(struct simrun *r, FILE *f, const char *path);
int simrun_truth_failed(const struct simrun *r);

/*
 * The next event of the lot (the caller's), or NULL: paused, or over.
 * A die event's pixels stay readable with simrun_pixels until the next
 * call.
 */
json_t *simrun_next(struct simrun *r);
int simrun_over(const struct simrun *r);
/* CLOCK_MONOTONIC microseconds (mono_us) at which the next event is due; 0: now. */
uint64_t simrun_due_us(const struct simrun *r);
/* The last die's pixels (die_w * die_h bytes, row-major) and its injected defects. */
const unsigned char *simrun_pixels(const struct simrun *r, size_t *len);
size_t simrun_die_defects(const struct simrun *r);

/*
 * A command to the tool: its answer (HCACK: 0 done, 2 cannot do now,
 * 4 accepted, finished later, 5 already so; or what a fault says), and
 * what it does, taken at a die or wafer boundary.  Start (with
 * wait_start): the lot begins.  Pause: state paused, then nothing until
 * resume (state executing) or stop.  Stop: state stopping, the current
 * wafer's wafer_end and run_end stopped.  Abort: the current wafer's
 * wafer_end and run_end aborted, as after a critical alarm.  Resume also
 * withdraws a pause not yet taken.  While paused, a stop or abort is
 * taken at once: no die comes to count.  Each answer is logged with the
 * die after which it came ("sim": "command", "op", "hcack", "at_die",
 * "after_dies").
 */
int simrun_command(struct simrun *r, enum profile_op op);
/* kerf ends the lot itself: a stop or abort at the next boundary, whatever the faults say. */
void simrun_stop(struct simrun *r);
void simrun_abort(struct simrun *r);

/*
 * The caller cannot take events for a while (kerf-tool: no host to send
 * them to): when it can again, --rate's pacing goes on from there, as
 * after a pause, instead of making up for the time in a burst.
 */
void simrun_hold(struct simrun *r, int on);

/* The process state of the last state event ("idle" before the first). */
const char *simrun_state(const struct simrun *r);
/* Paused, and staying so: simrun_next has nothing until a command. */
int simrun_paused(const struct simrun *r);

#endif

/*
 * kerf-tool: the simulated inspection tool as a SECS/GEM equipment over
 * HSMS-SS, for trying kerf against a live tool and for kerf's tests.
 * The work is lib/tool.c's; the lot is lib/simrun.c's, the same one
 * kerf-acquire --sim writes.
 */
#include "exitcode.h"
#include "util.h"
#include "log.h"
#include "sig.h"
#include "cli.h"
#include "out.h"
#include "tool.h"
#include "validate.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

static const char usage[] =
	"Usage: kerf-tool [--listen hsms:HOST:PORT] [OPTION]...\n"
	"       kerf-tool --connect hsms:HOST:PORT [OPTION]...\n"
	"Run the simulated inspection tool as a SECS/GEM equipment over HSMS-SS:\n"
	"a host selects it, sets up its reports, and starts lots with S2F41 START.\n"
	"\n";

static const char usage_tail[] = "Times T are a number of seconds or a number with a unit: ms, s, m, h.\n";

/* The command line, and what it owns. */
struct cmdline {
	struct tool_opts o;
	struct simrun_alarm *alarms;
	struct simrun_fault *faults;
	char *host, *port;
	int addr_given;
};

/* --listen or --connect: the mode and the address (new strings). */
static void address(struct cmdline *c, enum hsms_mode mode, const char *spec)
{
	if (c->addr_given++ && c->o.hsms.mode != mode)
		cli_usage_error("--listen and --connect: choose one");
	free(c->host);
	free(c->port);
	if (hsms_addr_parse(spec, &c->host, &c->port) != 0)
		cli_usage_error("'%s' is not an address hsms:HOST:PORT", spec);
	c->o.hsms.mode = mode;
	c->o.hsms.host = c->host;
	c->o.hsms.port = c->port;
}

static void opt_listen(const struct cli_opt *opt, const char *arg, void *ctx)
{
	(void)opt;
	address(ctx, HSMS_PASSIVE, arg);
}

static void opt_connect(const struct cli_opt *opt, const char *arg, void *ctx)
{
	(void)opt;
	address(ctx, HSMS_ACTIVE, arg);
}

static void opt_mute(const struct cli_opt *opt, const char *arg, void *ctx)
{
	struct tool_opts *o = &((struct cmdline *)ctx)->o;
	unsigned st, fn;
	char end;

	(void)opt;
	if (sscanf(arg, "S%uF%u%c", &st, &fn, &end) != 2 || st > 127 || fn > 255 || o->nmute == 8)
		cli_usage_error("--mute: '%s' is not SxFy (at most 8)", arg);
	o->mute[o->nmute][0] = st;
	o->mute[o->nmute][1] = fn;
	o->nmute++;
}

static void opt_inject(const struct cli_opt *opt, const char *arg, void *ctx)
{
	struct cmdline *c = ctx;
	struct simrun_opts *sim = &c->o.sim;
	struct simrun_alarm al;
	struct simrun_fault fault;
	char err[256];
	int rc;

	(void)opt;
	if ((rc = simrun_fault_parse(arg, &fault, err, sizeof err)) < 0)
		cli_usage_error("%s", err);
	if (rc == 0) {
		c->faults = xrealloc(c->faults, (sim->nfaults + 1) * sizeof *c->faults);
		c->faults[sim->nfaults++] = fault;
		sim->faults = c->faults;
		return;
	}
	if (simrun_alarm_parse(arg, &al, err, sizeof err) < 0)
		cli_usage_error("%s", err);
	c->alarms = xrealloc(c->alarms, (sim->nalarms + 1) * sizeof *c->alarms);
	c->alarms[sim->nalarms++] = al;
	sim->alarms = c->alarms;
}

int main(int argc, char **argv)
{
	struct cmdline c = { 0 };
	struct tool_opts *o = &c.o;
	struct cli_opt sim_opts[SIMRUN_NOPTS + 1], link_opts[HSMS_CLI_NOPTS + 1];
	char *run = NULL;
	const char *env_run = getenv("KERF_RUN");
	int rc;
	const struct cli_opt options[] = {
		OPT_GROUP("Link:"),
		OPT_CALLBACK(0, "listen", "hsms:HOST:PORT", opt_listen,
			     "passive (the default, hsms:127.0.0.1:5000):\nwait for the host; port 0 picks a free one; the\n"
			     "first line on standard output is {\"listen\":\"HOST:PORT\"}"),
		OPT_CALLBACK(0, "connect", "hsms:HOST:PORT", opt_connect, "active: connect to a passive host"),
		OPT_INCLUDE(link_opts),
		OPT_STRING(0, "hsms-trace", "FILE", &o->trace, "write one NDJSON record per HSMS message to FILE"),
		OPT_GROUP("GEM:"),
		OPT_STRING(0, "profile", "NAME|FILE", &o->profile,
			   "the tool profile: CEIDs, VIDs, alarms, remote\ncommands (default kerf-sim)"),
		OPT_BOOL(0, "local", &o->local,
			 "S1F17 makes the tool ONLINE LOCAL: it reports but\nrefuses remote commands (default ONLINE REMOTE)"),
		OPT_BOOL(0, "refuse-online", &o->refuse_online, "answer S1F17 with ONLACK 1 (not allowed)"),
		OPT_STRING(0, "model", "MDLN", &o->model, ""),
		OPT_STRING(0, "softrev", "REV", &o->softrev,
			   "answer S1F1 as this model and software revision\n(default the profile's)"),
		OPT_STRING(0, "recipes", "LIST", &o->recipes,
			   "the recipes S7F19 lists, comma-separated (default:\nthe --recipe)"),
		OPT_CALLBACK(0, "mute", "SxFy", opt_mute, "never answer the host's SxFy (repeatable)"),
		OPT_GROUP("Simulated tool (START's LOTID, RECIPE and WAFERS override these):"),
		OPT_INCLUDE(sim_opts),
		OPT_CALLBACK(0, "inject", "SPEC", opt_inject,
			     "fault injection, repeatable:\nalarm@DIE:ALID:CATEGORY raises alarm ALID after the\n"
			     "DIE-th die of a lot (CATEGORY is safety, irrecoverable,\nwarning, attention or data_integrity); "
			     "ignore@CMD[:N]\naccepts the Nth CMD (default: every) and never does it;\n"
			     "delay@CMD:DIES does every CMD DIES dies later;\nrefuse@CMD:HCACK[:N] answers the Nth CMD with HCACK;\n"
			     "wait@DIES makes nothing after a lot's DIES-th die until\nit carries out a command that comes after it"),
		OPT_STRING(0, "run", "ID", &o->run,
			   "run id of the first lot (default $KERF_RUN, else\nsim-SEED); later lots add -2, -3, ..."),
		OPT_GROUP("Common:"),
		OPT_DURATION(0, "max-seconds", "T", &o->max_ms, 1, CLI_NOMAX,
			     "stop after T (default: at SIGTERM or SIGINT only)"),
		OPT_HELP("show this help and exit"),
		OPT_VERSION(0, "show the version and exit"),
		OPT_END(),
	};
	const struct cli_spec spec = { .usage = usage, .opts = options, .tail = usage_tail, .width = 26 };

	log_init(argv[0]);
	tool_opts_init(o);
	simrun_cli_options(sim_opts, &o->sim);
	hsms_cli_options(link_opts, &o->hsms);
	if (cli_parse(&spec, argc, argv, &c) < argc)
		cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!*o->sim.lot || strlen(o->sim.lot) > VALIDATE_RUN_MAX)
		cli_usage_error("--lot: the lot id must be 1 to %d bytes", VALIDATE_RUN_MAX);
	if (!o->run)
		o->run = env_run && *env_run ? env_run : (run = xasprintf("sim-%llu", (unsigned long long)o->sim.cfg.seed));
	log_set_run(o->run);
	sig_init();
	rc = tool_run(o);
	if (fshut(stdout, "standard output") != KERF_EX_OK && rc == KERF_EX_OK)
		rc = KERF_EX_IOERR;
	free_all(c.alarms, c.faults, c.host, c.port, run);
	return rc;
}

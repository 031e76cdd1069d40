#!/usr/bin/env node
/*
equipment.mjs - a scripted GEM inspection tool (SECS/GEM over HSMS-SS),
built on secs4js, for testing kerf's host side against code nobody in
kerf wrote. Loopback only.

Usage:
  node equipment.mjs --scenario FILE [--port N] [options]

Connection:
  --port N            passive (default): listen on 127.0.0.1:N, 0 = any free
                      port (default 0); active: the host's port (required)
  --active            connect to the host instead of listening (secs4js
                      retries every T5 until it gets through)
  --bind ADDR         loopback address to use (default 127.0.0.1)
  --device-id N       HSMS session id (default 0)
  --t3/--t5/--t6/--t7/--t8 SECONDS   timers (secs4js defaults: 45 10 5 10 5)
  --sys-base N        first system bytes value is N+1 (default 0; both
                      peers starting at 1 makes their values collide, which
                      a host must cope with)
  --linktest-every S  active only: secs4js heartbeat every S s (0 = never, default)
  --linktest-after N  send one Linktest.req after the Nth S6F11 (0 = never)
  --reconnects N      host disconnects tolerated before the lot is over
                      (default 0; a --drop-after drop is always tolerated)
  --max-seconds S     give up and exit 3 after S seconds (default 60)
  --linger MS         after the lot, wait at most MS for the host to leave,
                      then exit 0 anyway (default: wait until --max-seconds)

Behaviour:
  --mdln S --softrev S     S1F2/S1F13/S1F14 values (default: scenario, else
                           KERF-SIM / 0.1.0)
  --online                 start ONLINE (S1F17 then gets ONLACK 2)
  --no-s1f13               do not send our own S1F13 W after select
  --s1f13-delay MS         delay our S1F13 (default 0: crosses the host's)
  --hcack RCMD=N           S2F41 answer per command (repeatable). Defaults:
                           START=0 PAUSE=4 RESUME=0 STOP=4 ABORT=0, others 1.
                           0 and 4 carry the command out (its done_event goes
                           out as an S6F11 after the S2F42); 2 cannot do now,
                           1 no such command, 3/5/6 as given. A command that
                           makes no sense in the current state gets 2 (5 if
                           already in that state) whatever --hcack says.
  --delay KEY=MS           delay the reply to KEY by MS (KEY = an RCMD such
                           as START, or SxFy such as S1F13) (repeatable)
  --drop-after N           close the TCP connection (FIN) right after the Nth
                           S6F11 is written: the host usually gets it, its
                           S6F12 is not waited for, it is not sent again;
                           keep listening (or reconnect, --active) and go on
                           with the lot when the host is back (see
                           --after-reconnect)
  --after-reconnect wait-enable|resume
                           when the lot goes on after a lost connection:
                           at the host's first S2F37 that enables events
                           (default: nothing is lost while the host sets up
                           again), or as soon as S1F13/S1F14 are through,
                           with the report definitions that survived (as
                           real tools do: events the host disables while
                           it sets up again are lost)
  --s5f1-no-wbit           send S5F1 without the W-bit (still waits up to T3
                           for an S5F2, as some tools do; a missing one is
                           only logged)
  --unknown s9|abort|none  answer to an unknown stream/function: S9F3/S9F5
                           (default), SxF0, or nothing
  --id-type auto|U1|U2|U4|A   DATAID/CEID/RPTID items in S6F11 (default auto:
                           smallest unsigned type that fits)
  --event-interval MS      pause between lot events (default: scenario's
                           event_interval_ms, else 0)

Scenario (JSON): variables {VID:{name,source,type}}, events {name:{ceid}},
alarms [{alid,category,text}], alarm_schedule [{after_event,alid,set}],
commands {RCMD:{done_event}}, lot {id,recipe,wafers,die_cols,die_rows,
max_defects_per_die,seed}. Reports and links come from the host (S2F33,
S2F35); the scenario's "reports" are the host's business. See README.md.

Lot: after START (HCACK 0 or 4): processing_started, lot_start, then per
wafer wafer_start, per die die_result (+ one defect event per defect),
wafer_end, and at last lot_end. An event goes out as S6F11 W only while its
CEID is enabled (S2F37); alarms as S5F1 only when enabled (S5F3). One
transaction at a time: each S6F11/S5F1 waits for its reply.

stdout: NDJSON, one line per frame, first line the listening address:
  {"t":0,"kind":"listen","host":"127.0.0.1","port":40321}
  {"t":5,"kind":"ctl","dir":"in","type":"select.req","sys":1}
  {"t":9,"kind":"msg","dir":"out","sf":"S6F11","w":true,"sys":7,"session":0,
   "sml":"S6F11 W\n<L [3] ...>.","body":["L",[["U1",[1]],...]]}
  {"kind":"note",...} for state changes; last {"kind":"exit","code":0,"why":"..."}
stderr: a human log.

Exit: 0 the host left after the lot (or --linger ran out); 1 a protocol
failure was seen (the run goes on; listed in the exit line); 2 usage;
3 --max-seconds; 4 the host left before the lot was over.
*/
import {
	A,
	COMMON_SPEC,
	L,
	ActivePeer,
	PassivePeer,
	ProtocolError,
	T0,
	bin,
	boolOf,
	byteOf,
	commConfig,
	idItem,
	idKey,
	items,
	log,
	loadScenario,
	out,
	parseArgs,
	setLogTag,
	sfName,
	sleep,
	textOf,
	valueItem,
} from "./lib/peer.mjs";

setLogTag("equipment");

const opt = parseArgs(
	process.argv.slice(2),
	{
		...COMMON_SPEC,
		port: { type: "int", def: 0 },
		active: { type: "bool", def: false },
		linktestAfter: { type: "int", def: 0 },
		reconnects: { type: "int", def: 0 },
		linger: { type: "int", def: undefined },
		mdln: { type: "str" },
		softrev: { type: "str" },
		online: { type: "bool", def: false },
		noS1f13: { type: "bool", def: false },
		s1f13Delay: { type: "int", def: 0 },
		hcack: { type: "kv", def: { START: 0, PAUSE: 4, RESUME: 0, STOP: 4, ABORT: 0 } },
		delay: { type: "kv", def: {} },
		dropAfter: { type: "int", def: 0 },
		s5f1NoWbit: { type: "bool", def: false },
		unknown: { type: "str", def: "s9" },
		eventInterval: { type: "int", def: undefined },
		afterReconnect: { type: "str", def: "wait-enable" },
	},
	import.meta.url,
);
if (!opt.scenario) {
	process.stderr.write("equipment: --scenario FILE is required (--help for usage)\n");
	process.exit(2);
}
if (opt.active && !opt.port) {
	process.stderr.write("equipment: --active needs --port of the host\n");
	process.exit(2);
}
if (!["s9", "abort", "none"].includes(opt.unknown)) {
	process.stderr.write(`equipment: --unknown must be s9, abort or none\n`);
	process.exit(2);
}
if (!["wait-enable", "resume"].includes(opt.afterReconnect)) {
	process.stderr.write(`equipment: --after-reconnect must be wait-enable or resume\n`);
	process.exit(2);
}
opt.idType ??= "auto";
if (!["auto", "U1", "U2", "U4", "U8", "A"].includes(opt.idType)) {
	process.stderr.write(`equipment: bad --id-type ${opt.idType}\n`);
	process.exit(2);
}

let sc;
try {
	sc = loadScenario(opt.scenario);
} catch (e) {
	process.stderr.write(`equipment: ${e.message}\n`);
	process.exit(2);
}
const MDLN = opt.mdln ?? sc.mdln ?? "KERF-SIM";
const SOFTREV = opt.softrev ?? sc.softrev ?? "0.1.0";
const INTERVAL = opt.eventInterval ?? sc.event_interval_ms ?? 0;

// ---------------------------------------------------------------- state

const VARS = new Map(Object.entries(sc.variables)); // vid -> {name, source, type}
const CEIDS = new Map(Object.entries(sc.events).map(([n, e]) => [String(e.ceid), n])); // ceid -> event name
const ALARMS = new Map(sc.alarms.map((a) => [String(a.alid), a]));

const st = {
	communicating: false,
	online: opt.online,
	reports: new Map(), // rptid -> [vid]
	links: new Map(), // ceid -> [rptid]
	enabled: new Set(), // ceid
	alarmsOn: new Set(), // alid
	proc: "IDLE", // IDLE | EXECUTING | PAUSED
	lotStarted: false,
	lotDone: false,
	seqIdx: 0,
	sent6f11: 0,
	dataid: 0,
	holding: false, // PAUSE/STOP/ABORT seen: no more lot events until told otherwise
	waitEnable: false, // link came back: no lot events before the host enables some (--after-reconnect wait-enable)
	dropped: false, // we closed the link on purpose and expect the host back
	linktestDone: false,
	reconnectsLeft: opt.reconnects,
	failures: [],
	queue: [], // urgent S6F11/S5F1 (state changes, alarms) before the next lot event
};

function fail(what) {
	st.failures.push(what);
	out({ kind: "failure", what });
	log(`PROTOCOL FAILURE: ${what}`);
}

// ------------------------------------------------------------- lot plan

function mulberry32(seed) {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

/** The lot's events in order: [{name, ctx}]. */
function planLot(lot) {
	const rnd = mulberry32(lot.seed ?? 1);
	const seq = [];
	const base = { lot_id: lot.id ?? "LOT-SIM", recipe: lot.recipe ?? "RECIPE" };
	let lotDefects = 0;
	seq.push({ name: "lot_start", ctx: { ...base } });
	const cols = lot.die_cols ?? 3;
	const rows = lot.die_rows ?? 2;
	const maxD = lot.max_defects_per_die ?? 2;
	const pitch = lot.die_pitch_um ?? 10000;
	for (let w = 1; w <= (lot.wafers ?? 1); w++) {
		const wafer = { ...base, wafer_id: `${base.lot_id}.${String(w).padStart(2, "0")}`, slot: w };
		let waferDefects = 0;
		seq.push({ name: "wafer_start", ctx: { ...wafer } });
		for (let r = 0; r < rows; r++) {
			for (let c = 0; c < cols; c++) {
				const die = { ...wafer, die_x: c - Math.floor(cols / 2), die_y: r - Math.floor(rows / 2) };
				const n = Math.floor(rnd() * (maxD + 1));
				waferDefects += n;
				seq.push({ name: "die_result", ctx: { ...die, die_defects: n } });
				for (let d = 0; d < n; d++) {
					seq.push({
						name: "defect",
						ctx: {
							...die,
							die_defects: n,
							defect_x: Math.round(rnd() * pitch * 10) / 10,
							defect_y: Math.round(rnd() * pitch * 10) / 10,
							defect_size: Math.round((0.05 + rnd() * 2) * 1000) / 1000,
							defect_class: 1 + Math.floor(rnd() * 4),
						},
					});
				}
			}
		}
		lotDefects += waferDefects;
		seq.push({ name: "wafer_end", ctx: { ...wafer, wafer_defects: waferDefects } });
	}
	seq.push({ name: "lot_end", ctx: { ...base, lot_defects: lotDefects } });
	return seq;
}

const SEQ = planLot(sc.lot);
const SEQ_CTX_BASE = SEQ[0].ctx;

function clockA16() {
	const d = new Date();
	const p = (n, w = 2) => String(n).padStart(w, "0");
	return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}${p(Math.floor(d.getMilliseconds() / 10))}`;
}

const PROC_CODE = { IDLE: 1, EXECUTING: 2, PAUSED: 3 };

function varItem(vid, ctx) {
	const v = VARS.get(vid);
	let val;
	if (v.source === "clock") val = clockA16();
	else if (v.source === "process_state") val = v.type === "A" ? st.proc : PROC_CODE[st.proc];
	else val = ctx[v.source];
	return valueItem(v.type, val);
}

// --------------------------------------------------------- communicator

const Comm = opt.active ? ActivePeer : PassivePeer;
const comm = new Comm(commConfig(opt, { isEquip: true, name: "kerf-interop-equipment" }));
comm._systemBytesCounter = opt.sysBase;
comm.on("error", (e) => log(`secs4js error: ${e.message}`));
comm.on("connected", () => out({ kind: "note", what: "connected" }));
comm.on("bad-frame", (header, err) => {
	fail(`unparseable message (${err.message})`);
	if (header[5] === 0 && comm.selected) comm.request(9, 7, bin(...header), { wbit: false }).catch(() => {});
});
comm.on("bad-session", (msg) => {
	fail(`data message for session ${msg.deviceId}, ours is ${comm.deviceId}`);
	comm.request(9, 1, bin(...headerOf(msg)), { wbit: false }).catch(() => {});
});
comm.on("orphan-reply", (msg) => fail(`reply ${sfName(msg.stream, msg.func)} sys=${msg.systemBytes} to nothing we sent`));
comm.on("reject", (msg) => fail(`Reject.req reason ${msg.func} for sys=${msg.systemBytes}`));

function headerOf(msg) {
	const h = Buffer.alloc(10);
	h.writeUInt16BE(msg.deviceId, 0);
	h[2] = (msg.wBit ? 0x80 : 0) | msg.stream;
	h[3] = msg.func;
	h.writeUInt32BE(msg.systemBytes, 6);
	return h;
}

// -------------------------------------------------------------- exiting

let finished = false;
async function finish(code, why) {
	if (finished) return;
	finished = true;
	if (code === 0 && st.failures.length) code = 1;
	out({ kind: "exit", code, why, failures: st.failures, s6f11: st.sent6f11, lot_events: st.seqIdx, lot_done: st.lotDone });
	log(`exit ${code}: ${why}`);
	try {
		await Promise.race([comm.close(), sleep(500)]);
	} catch {
		/* closing anyway */
	}
	process.exit(code);
}

setTimeout(() => finish(3, `--max-seconds ${opt.maxSeconds} ran out`), opt.maxSeconds * 1000);
process.on("SIGTERM", () => finish(3, "SIGTERM"));
process.on("SIGINT", () => finish(3, "SIGINT"));

comm.on("selected", () => {
	out({ kind: "note", what: "selected" });
	st.communicating = false;
	if (!opt.noS1f13) establish();
});

comm.on("disconnected", () => {
	out({ kind: "note", what: "disconnected" });
	st.communicating = false;
	if (finished) return;
	if (st.lotDone) return finish(0, "host left after the lot");
	if (st.lotStarted && opt.afterReconnect === "wait-enable") st.waitEnable = true;
	if (st.dropped) {
		st.dropped = false;
		log("we dropped the link (--drop-after); waiting for the host to come back");
		return;
	}
	if (st.reconnectsLeft > 0) {
		st.reconnectsLeft--;
		log(`host left mid-lot; waiting for it (${st.reconnectsLeft} more tolerated)`);
		return;
	}
	finish(4, st.lotStarted ? "host left before the lot was over" : "host left before starting a lot");
});

async function establish() {
	if (opt.s1f13Delay) await sleep(opt.s1f13Delay);
	for (;;) {
		if (!comm.selected || finished) return;
		let r;
		try {
			r = await comm.request(1, 13, L(A(MDLN), A(SOFTREV)));
		} catch (e) {
			await transactionFailed(e, "S1F13");
			return;
		}
		const ack = byteOf(items(r.body)?.[0]);
		if (r.func === 14 && ack === 0) {
			communicating("our S1F13 answered");
			return;
		}
		if (r.func !== 14 || ack === null) {
			fail(`bad S1F14: ${r.toSml()}`);
			return;
		}
		log(`S1F14 COMMACK ${ack}; retrying S1F13 in 1 s`);
		await sleep(1000);
	}
}

function communicating(why) {
	if (st.communicating) return;
	st.communicating = true;
	out({ kind: "note", what: "communicating", why });
	pump();
}

async function transactionFailed(e, what) {
	if (e instanceof ProtocolError) {
		fail(`${what}: ${e.message}`);
		if (e.t3 && comm.selected) await comm.request(9, 9, bin(...e.mhead), { wbit: false }).catch(() => {});
	} else {
		log(`${what}: ${e.message}`);
	}
}

// ----------------------------------------------------- incoming messages

const KNOWN = {
	1: new Set([1, 3, 13, 15, 17]),
	2: new Set([13, 17, 33, 35, 37, 41]),
	5: new Set([3, 5]),
	6: new Set([15]),
};

comm.on("message", (msg) => {
	handle(msg).catch((e) => fail(`handling ${sfName(msg.stream, msg.func)}: ${e.message}`));
});

async function handle(msg) {
	const sf = sfName(msg.stream, msg.func);
	if (msg.stream === 9) {
		fail(`host sent ${sf} (stream 9 is the equipment's)`);
		return;
	}
	if (!KNOWN[msg.stream]) return unknown(msg, 3);
	if (!KNOWN[msg.stream].has(msg.func)) return unknown(msg, 5);
	if (opt.delay[sf]) await sleep(opt.delay[sf]);
	if (sf === "S1F13") {
		// Communicating from the moment the S1F14 is written (secs4js
		// writes it before its first await), not once the write is
		// confirmed: a host primary right behind it (S1F1) is handled
		// meanwhile and would otherwise be refused with S1F0.
		const sent = comm.answer(msg, 14, L(bin(0), L(A(MDLN), A(SOFTREV))));
		communicating("host S1F13 answered");
		await sent;
		return;
	}
	if (!st.communicating) {
		// E30: not communicating yet, only S1F13 counts
		log(`${sf} before communication was established: ${sfName(msg.stream, 0)}`);
		if (msg.wBit) await comm.answer(msg, 0);
		return;
	}
	if (sf === "S1F1") return comm.answer(msg, 2, L(A(MDLN), A(SOFTREV)));
	if (sf === "S1F17") {
		const ack = st.online ? 2 : 0;
		st.online = true;
		out({ kind: "note", what: "online", onlack: ack });
		return comm.answer(msg, 18, bin(ack));
	}
	if (!st.online) {
		log(`${sf} while OFFLINE: ${sfName(msg.stream, 0)}`);
		if (msg.wBit) await comm.answer(msg, 0);
		return;
	}
	switch (sf) {
		case "S1F3":
			return comm.answer(msg, 4, L(...(items(msg.body) ?? []).map((it) => {
				const vid = idKey(it);
				return VARS.has(vid) ? varItem(vid, SEQ[Math.min(st.seqIdx, SEQ.length - 1)].ctx) : L();
			})));
		case "S1F15":
			st.online = false;
			out({ kind: "note", what: "offline" });
			return comm.answer(msg, 16, bin(0));
		case "S2F13":
			return comm.answer(msg, 14, L());
		case "S2F17":
			return comm.answer(msg, 18, A(clockA16()));
		case "S2F33":
			return comm.answer(msg, 34, bin(defineReports(msg.body)));
		case "S2F35":
			return comm.answer(msg, 36, bin(linkReports(msg.body)));
		case "S2F37":
			return comm.answer(msg, 38, bin(enableEvents(msg.body)));
		case "S2F41":
			return hostCommand(msg);
		case "S5F3":
			return comm.answer(msg, 4, bin(enableAlarm(msg.body)));
		case "S5F5":
			return comm.answer(msg, 6, L());
		case "S6F15":
			return comm.answer(msg, 16, eventReport(idKey(msg.body), SEQ[Math.min(st.seqIdx, SEQ.length - 1)].ctx));
	}
}

async function unknown(msg, f) {
	const sf = sfName(msg.stream, msg.func);
	if (msg.func % 2 === 0) return; // a reply nobody waits for is an orphan, seen elsewhere
	log(`unknown ${sf}: ${opt.unknown === "s9" ? `S9F${f}` : opt.unknown === "abort" ? "SxF0" : "no answer"}`);
	if (opt.unknown === "s9") await comm.request(9, f, bin(...headerOf(msg)), { wbit: false }).catch(() => {});
	else if (opt.unknown === "abort" && msg.wBit) await comm.answer(msg, 0);
}

// S2F33 <L <DATAID> <L <L <RPTID> <L <VID>...>>...>> -> DRACK
function defineReports(body) {
	const top = items(body);
	if (!top || top.length !== 2 || !items(top[1])) return 2;
	const defs = items(top[1]);
	if (defs.length === 0) {
		st.reports.clear();
		st.links.clear();
		out({ kind: "note", what: "reports", deleted: "all" });
		return 0;
	}
	const parsed = [];
	for (const d of defs) {
		const pair = items(d);
		if (!pair || pair.length !== 2 || idKey(pair[0]) === null || !items(pair[1])) return 2;
		const vids = items(pair[1]).map(idKey);
		if (vids.includes(null)) return 2;
		parsed.push([idKey(pair[0]), vids]);
	}
	for (const [rptid, vids] of parsed) {
		if (vids.length && st.reports.has(rptid)) return 3;
		if (vids.some((v) => !VARS.has(v))) return 4;
	}
	for (const [rptid, vids] of parsed) {
		if (vids.length === 0) {
			st.reports.delete(rptid);
			for (const [ceid, r] of st.links) st.links.set(ceid, r.filter((x) => x !== rptid));
		} else st.reports.set(rptid, vids);
	}
	out({ kind: "note", what: "reports", defined: Object.fromEntries(st.reports) });
	return 0;
}

// S2F35 <L <DATAID> <L <L <CEID> <L <RPTID>...>>...>> -> LRACK
function linkReports(body) {
	const top = items(body);
	if (!top || top.length !== 2 || !items(top[1])) return 2;
	const parsed = [];
	for (const d of items(top[1])) {
		const pair = items(d);
		if (!pair || pair.length !== 2 || idKey(pair[0]) === null || !items(pair[1])) return 2;
		const rpts = items(pair[1]).map(idKey);
		if (rpts.includes(null)) return 2;
		parsed.push([idKey(pair[0]), rpts]);
	}
	for (const [ceid, rpts] of parsed) {
		if (!CEIDS.has(ceid)) return 4;
		if (rpts.some((r) => !st.reports.has(r))) return 5;
		if (rpts.length && st.links.get(ceid)?.length) return 3;
	}
	for (const [ceid, rpts] of parsed) {
		if (rpts.length) st.links.set(ceid, rpts);
		else st.links.delete(ceid);
	}
	out({ kind: "note", what: "links", links: Object.fromEntries(st.links) });
	return 0;
}

// S2F37 <L <BOOLEAN CEED> <L <CEID>...>> -> ERACK
function enableEvents(body) {
	const top = items(body);
	if (!top || top.length !== 2 || boolOf(top[0]) === null || !items(top[1])) return 2;
	const on = boolOf(top[0]);
	const ceids = items(top[1]).map(idKey);
	if (ceids.some((c) => c === null || !CEIDS.has(c))) return 1;
	const all = ceids.length ? ceids : [...CEIDS.keys()];
	for (const c of all) on ? st.enabled.add(c) : st.enabled.delete(c);
	out({ kind: "note", what: "enabled", ceids: [...st.enabled] });
	if (on && st.waitEnable) {
		st.waitEnable = false;
		setImmediate(pump);
	}
	return 0;
}

// S5F3 <L <B ALED> <ALID>> -> ACKC5 (an empty ALID item: every alarm)
function enableAlarm(body) {
	const top = items(body);
	if (!top || top.length !== 2) return 1;
	const aled = byteOf(top[0]);
	if (aled === null) return 1;
	const alid = idKey(top[1]);
	const ids = alid === null ? [...ALARMS.keys()] : [alid];
	if (ids.some((a) => !ALARMS.has(a))) return 1;
	for (const a of ids) (aled & 0x80 ? st.alarmsOn.add(a) : st.alarmsOn.delete(a));
	out({ kind: "note", what: "alarms", enabled: [...st.alarmsOn] });
	return 0;
}

// S2F41 <L <A RCMD> <L <L <A CPNAME> <CPVAL>>...>> -> S2F42 <L <B HCACK> <L>>
async function hostCommand(msg) {
	const top = items(msg.body);
	const rcmd = top && top.length === 2 ? textOf(top[0]) : null;
	if (rcmd === null || !items(top[1])) {
		await comm.answer(msg, 42, L(bin(3), L()));
		return;
	}
	const R = rcmd.toUpperCase();
	let hcack = opt.hcack[R] ?? 1;
	const from = st.proc;
	const ok = {
		START: from === "IDLE" && !st.lotStarted,
		PAUSE: from === "EXECUTING",
		RESUME: from === "PAUSED",
		STOP: from !== "IDLE",
		ABORT: from !== "IDLE",
	};
	const already = { START: from !== "IDLE", PAUSE: from === "PAUSED", RESUME: from === "EXECUTING" };
	if ((hcack === 0 || hcack === 4) && R in ok && !ok[R]) hcack = already[R] ? 5 : 2;
	const doIt = (hcack === 0 || hcack === 4) && R in ok;
	// stop the lot's event stream before answering, as a tool would
	if (doIt && (R === "PAUSE" || R === "STOP" || R === "ABORT")) st.holding = true;
	const d = opt.delay[R] ?? 0;
	if (d) await sleep(d);
	await comm.answer(msg, 42, L(bin(hcack), L()));
	out({ kind: "note", what: "command", rcmd, hcack });
	if (!doIt) return;
	if (R === "START") {
		st.lotStarted = true;
		st.proc = "EXECUTING";
	} else if (R === "PAUSE") st.proc = "PAUSED";
	else if (R === "RESUME") {
		st.proc = "EXECUTING";
		st.holding = false;
	} else {
		st.proc = "IDLE";
		st.lotDone = true;
	}
	const done = sc.commands[R]?.done_event;
	if (done) st.queue.push({ kind: "event", name: done, ctx: SEQ_CTX_BASE });
	pump();
}

// ------------------------------------------------------ outgoing reports

function eventReport(ceid, ctx) {
	const rpts = st.links.get(ceid) ?? [];
	return L(
		idItem(++st.dataid, opt.idType),
		idItem(ceid, opt.idType),
		L(...rpts.map((r) => L(idItem(r, opt.idType), L(...st.reports.get(r).map((vid) => varItem(vid, ctx)))))),
	);
}

async function sendEvent(name, ctx) {
	const ev = sc.events[name];
	if (!ev) return;
	const ceid = String(ev.ceid);
	if (!st.enabled.has(ceid)) {
		out({ kind: "note", what: "event-disabled", event: name, ceid: ev.ceid });
		return;
	}
	const n = ++st.sent6f11;
	const drop = opt.dropAfter && n === opt.dropAfter;
	out({ kind: "note", what: "event", event: name, ceid: ev.ceid, n });
	try {
		const r = await comm.request(6, 11, eventReport(ceid, ctx), {
			onSent: drop
				? () => {
						// This connection's socket: the host may be back on
						// a new one before the timer fires, and that one stays.
						const sock = comm.socket;
						log(`--drop-after ${opt.dropAfter}: closing the connection`);
						st.dropped = true;
						sock?.end();
						setTimeout(() => sock?.destroy(), 1000);
					}
				: undefined,
		});
		const ack = byteOf(r.body);
		if (r.func !== 12 || ack === null) fail(`bad S6F12: ${r.toSml()}`);
		else if (ack !== 0) log(`S6F12 ACKC6 ${ack} for ${name}`);
	} catch (e) {
		await transactionFailed(e, `S6F11 ${name}`);
	}
	if (opt.linktestAfter && n === opt.linktestAfter && !st.linktestDone && comm.selected) {
		st.linktestDone = true;
		try {
			await comm.sendLinkTestReq();
		} catch (e) {
			fail(`linktest: ${e.message}`);
		}
	}
}

async function sendAlarm(alid, set) {
	const al = ALARMS.get(String(alid));
	if (!st.alarmsOn.has(String(alid))) {
		out({ kind: "note", what: "alarm-disabled", alid, set });
		return;
	}
	const cat = (al.category ?? 4) & 0x7f;
	const alcd = set ? 0x80 | cat : cat;
	const wbit = !opt.s5f1NoWbit;
	try {
		const r = await comm.request(5, 1, L(bin(alcd), idItem(alid, "U4"), A(al.text ?? "")), { wbit, expectReply: true });
		const ack = byteOf(r.body);
		if (r.func !== 2 || ack === null) fail(`bad S5F2: ${r.toSml()}`);
	} catch (e) {
		if (!wbit && e.t3) log(`no S5F2 to our S5F1 without W-bit (${e.message}); going on`);
		else await transactionFailed(e, "S5F1");
	}
}

let pumping = false;
async function pump() {
	if (pumping) return;
	pumping = true;
	try {
		for (;;) {
			if (finished || !comm.selected || !st.communicating) return;
			if (st.queue.length) {
				const q = st.queue.shift();
				if (q.kind === "event") await sendEvent(q.name, q.ctx);
				else await sendAlarm(q.alid, q.set);
				continue;
			}
			if (st.proc !== "EXECUTING" || st.holding || st.waitEnable || st.seqIdx >= SEQ.length) return;
			const ev = SEQ[st.seqIdx++];
			await sendEvent(ev.name, ev.ctx);
			for (const a of sc.alarm_schedule) if (a.after_event === st.seqIdx) st.queue.push({ kind: "alarm", alid: a.alid, set: a.set !== false });
			if (st.seqIdx >= SEQ.length) {
				st.proc = "IDLE";
				st.lotDone = true;
				out({ kind: "note", what: "lot-done", lot_events: SEQ.length });
				if (opt.linger !== undefined) setTimeout(() => finish(0, `lot over; --linger ${opt.linger} ms ran out`), opt.linger);
			}
			if (INTERVAL) await sleep(INTERVAL);
		}
	} finally {
		pumping = false;
	}
}

// ---------------------------------------------------------------- start

if (opt.active) {
	out({ kind: "connect", host: opt.bind ?? "127.0.0.1", port: opt.port });
	comm.open().catch((e) => finish(4, `connect: ${e.message}`));
} else {
	// secs4js retries a failed listen every 5 s and never resolves open(): fail fast instead
	const early = (e) => finish(4, `listen on ${opt.bind ?? "127.0.0.1"}:${opt.port}: ${e.message}`);
	comm.once("error", early);
	try {
		await comm.open();
	} catch (e) {
		finish(4, `listen: ${e.message}`);
	}
	comm.off("error", early);
	const port = comm.pinPort();
	if (!port) finish(4, "could not listen");
	out({ kind: "listen", host: opt.bind ?? "127.0.0.1", port });
}
log(`${opt.active ? "connecting to" : "listening on"} ${opt.bind ?? "127.0.0.1"}:${comm.port}; ${SEQ.length} lot events planned; pid ${process.pid}; started ${new Date(T0).toISOString()}`);

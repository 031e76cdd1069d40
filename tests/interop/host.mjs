#!/usr/bin/env node
/*
host.mjs - a scripted GEM host (SECS/GEM over HSMS-SS), built on secs4js,
for testing kerf's equipment side against code nobody in kerf wrote.
Loopback only.

Usage:
  node host.mjs --scenario FILE --port N [options]

Connection:
  --port N            active (default): the equipment's port on 127.0.0.1
                      (required); passive: listen on N, 0 = any free port
  --passive           listen and wait for an active equipment; the first
                      stdout line is then {"kind":"listen",...,"port":N}
  --bind ADDR         loopback address to use (default 127.0.0.1)
  --device-id N       HSMS session id (default 0)
  --t3/--t5/--t6/--t7/--t8 SECONDS   timers (secs4js defaults: 45 10 5 10 5;
                      T5 is also secs4js's reconnect delay)
  --sys-base N        first system bytes value is N+1 (default 0)
  --linktest-every S  secs4js heartbeat every S s (active only; 0 = never, default)
  --linktest-at N     send one Linktest.req after the Nth S6F11 (default 1; 0 = never)
  --reconnects N      connection losses tolerated (default 0); after one the
                      host reconnects (active) or waits (passive), runs the
                      set-up again and does not send START twice
  --max-seconds S     give up and exit 3 after S seconds (default 60)

Session (in this order, each request checked):
  Select; S1F13 W <L> (answering the equipment's own S1F13 with
  S1F14 <L <B 0> <L>> whenever it comes); S1F1; S1F17 (ONLACK 0 or 2);
  S2F37 <L <BOOLEAN F> <L>> (disable all); S2F33 <L <DATAID> <L>> (delete
  all); S2F33 define the scenario's reports; S2F35 link them to the
  scenario's events; S2F37 enable those events; S5F3 <L <B 0x80> <U4 ALID>>
  per scenario alarm; S2F41 START. Then every S6F11 gets S6F12 <B 0> and
  every S5F1 gets S5F2 <B 0>, W-bit or not.
  --pause-at N        send PAUSE after the Nth S6F11 (0 = never, default)
  --resume-after MS   send RESUME MS ms after the PAUSE is confirmed (default
                      300; a confirmed PAUSE stops the events, so RESUME
                      cannot wait for an event count)
  --stop-at N         send STOP after the Nth S6F11 (0 = never, default)
  --abort-at N        send ABORT after the Nth S6F11 (0 = never, default)
  --id-type U1|U2|U4|U8|A|auto   DATAID/RPTID/VID/CEID/ALID items (default U4)
  --no-start          do the set-up but do not send START (then wait)
  --end separate|close  how to leave at the end (default separate)
  --lenient           an S6F11 whose reports do not match our definitions is
                      only logged (default: a failure)

A command is confirmed by HCACK 0, or by HCACK 4 and then the S6F11 of the
scenario's commands[RCMD].done_event. Any other HCACK is logged; for START
it is a failure.

stdout: NDJSON, one line per frame ("kind":"msg" / "ctl", as in
equipment.mjs), and decoded lines:
  {"kind":"event","n":3,"ceid":202,"name":"die_result","dataid":3,
   "reports":{"101":[...]},"values":{"WaferID":"LOT.01","DieX":-1,...}}
  {"kind":"alarm","alid":5001,"set":true,"category":4,"text":"...","w":true}
  {"kind":"command","rcmd":"PAUSE","hcack":4}
  last {"kind":"exit","code":0,"why":"...","events":N,"alarms":N,...}
stderr: a human log.

Exit: 0 after the lot_end event (or a confirmed STOP/ABORT); 1 a protocol
failure (bad or missing reply, S9Fx, Reject.req, malformed S6F11); 2 usage;
3 --max-seconds; 4 the connection was lost (or never made).
*/
import {
	A,
	COMMON_SPEC,
	L,
	ActivePeer,
	BOOLEAN,
	PassivePeer,
	ProtocolError,
	bin,
	byteOf,
	commConfig,
	idItem,
	idKey,
	items,
	loadScenario,
	log,
	out,
	parseArgs,
	plainValue,
	setLogTag,
	sfName,
	sleep,
	textOf,
} from "./lib/peer.mjs";

setLogTag("host");

const opt = parseArgs(
	process.argv.slice(2),
	{
		...COMMON_SPEC,
		passive: { type: "bool", def: false },
		linktestAt: { type: "int", def: 1 },
		reconnects: { type: "int", def: 0 },
		pauseAt: { type: "int", def: 0 },
		resumeAfter: { type: "int", def: 300 },
		stopAt: { type: "int", def: 0 },
		abortAt: { type: "int", def: 0 },
		noStart: { type: "bool", def: false },
		end: { type: "str", def: "separate" },
		lenient: { type: "bool", def: false },
	},
	import.meta.url,
);
const usage = (m) => {
	process.stderr.write(`host: ${m} (--help for usage)\n`);
	process.exit(2);
};
if (!opt.scenario) usage("--scenario FILE is required");
if (opt.port === undefined) usage("--port N is required");
if (!opt.passive && opt.port === 0) usage("an active host needs the equipment's --port");
if (!["separate", "close"].includes(opt.end)) usage("--end must be separate or close");
opt.idType ??= "U4";
if (!["auto", "U1", "U2", "U4", "U8", "A"].includes(opt.idType)) usage(`bad --id-type ${opt.idType}`);

let sc;
try {
	sc = loadScenario(opt.scenario);
} catch (e) {
	usage(e.message);
}

const REPORTS = new Map(Object.entries(sc.reports).map(([r, v]) => [r, v.map(String)]));
const EVENTS = new Map(Object.entries(sc.events).map(([n, e]) => [String(e.ceid), { name: n, reports: (e.reports ?? []).map(String) }]));
const CEID_OF = Object.fromEntries(Object.entries(sc.events).map(([n, e]) => [n, String(e.ceid)]));
const ID = (k) => idItem(k, opt.idType);

const st = {
	events: 0,
	alarms: 0,
	lotStarted: false,
	lotEnd: false,
	awaiting: null, // { rcmd, ceid } a command answered HCACK 4, waiting for its done_event
	paused: false,
	linktestDone: false,
	reconnectsLeft: opt.reconnects,
	dataid: 0,
	failures: [],
	setupDone: false,
	sessions: 0,
};

function fail(what) {
	st.failures.push(what);
	out({ kind: "failure", what });
	log(`PROTOCOL FAILURE: ${what}`);
}

const Comm = opt.passive ? PassivePeer : ActivePeer;
const comm = new Comm(commConfig(opt, { isEquip: false, name: "kerf-interop-host" }));
comm._systemBytesCounter = opt.sysBase;
comm.on("error", (e) => log(`secs4js error: ${e.message}`));
comm.on("connected", () => out({ kind: "note", what: "connected" }));
comm.on("bad-frame", (_h, err) => fail(`unparseable message (${err.message})`));
comm.on("bad-session", (msg) => fail(`data message for session ${msg.deviceId}, ours is ${comm.deviceId}`));
comm.on("orphan-reply", (msg) => fail(`reply ${sfName(msg.stream, msg.func)} sys=${msg.systemBytes} to nothing we sent`));
comm.on("reject", (msg) => fail(`Reject.req reason ${msg.func} for sys=${msg.systemBytes}`));

// -------------------------------------------------------------- exiting

let finished = false;
async function finish(code, why) {
	if (finished) return;
	finished = true;
	if (code === 0 && st.failures.length) code = 1;
	if (comm.selected) {
		try {
			if (opt.end === "separate") await comm.sendSeparateReq();
		} catch (e) {
			log(`separate: ${e.message}`);
		}
	}
	out({ kind: "exit", code, why, failures: st.failures, events: st.events, alarms: st.alarms, lot_end: st.lotEnd });
	log(`exit ${code}: ${why}`);
	try {
		await Promise.race([comm.close(), sleep(500)]);
	} catch {
		/* closing anyway */
	}
	process.exit(code);
}

setTimeout(
	() => (st.sessions ? finish(3, `--max-seconds ${opt.maxSeconds} ran out`) : finish(4, `never selected in --max-seconds ${opt.maxSeconds}`)),
	opt.maxSeconds * 1000,
);
process.on("SIGTERM", () => finish(3, "SIGTERM"));
process.on("SIGINT", () => finish(3, "SIGINT"));

comm.on("disconnected", () => {
	out({ kind: "note", what: "disconnected" });
	if (finished) return;
	if (st.reconnectsLeft > 0) {
		st.reconnectsLeft--;
		log(`connection lost; ${opt.passive ? "waiting for the equipment" : `reconnecting after T5 (${comm.timeoutT5} s)`}; ${st.reconnectsLeft} more tolerated`);
		return;
	}
	finish(4, "connection lost");
});

comm.on("selected", () => {
	out({ kind: "note", what: "selected" });
	const n = ++st.sessions;
	setup(n).catch((e) => {
		if (n !== st.sessions || finished) return;
		if (e instanceof ProtocolError) {
			fail(e.message);
			finish(1, `set-up failed: ${e.message}`);
		} else log(`set-up interrupted: ${e.message}`);
	});
});

// ------------------------------------------------------------- set-up

async function ask(s, f, body, check) {
	const r = await comm.request(s, f, body);
	if (r.func === 0) throw new ProtocolError(`${sfName(s, f)} aborted with ${sfName(s, 0)}`);
	const v = check(r);
	if (v !== true) throw new ProtocolError(`${sfName(s, f)}: ${v}; got ${r.toSml().replace(/\s+/g, " ")}`);
	return r;
}

const ackIs = (want) => (r) => {
	const a = byteOf(r.body);
	return want.includes(a) ? true : `ack ${a}`;
};

async function setup(session) {
	st.setupDone = false;
	await ask(1, 13, L(), (r) => {
		const top = items(r.body);
		const a = byteOf(top?.[0]);
		return top?.length === 2 && a === 0 ? true : `COMMACK ${a}`;
	});
	const s1f2 = await ask(1, 1, null, (r) => (items(r.body) ? true : "S1F2 is not a list"));
	out({ kind: "note", what: "equipment", mdln: textOf(items(s1f2.body)[0]), softrev: textOf(items(s1f2.body)[1]) });
	const onl = await ask(1, 17, null, ackIs([0, 2]));
	out({ kind: "note", what: "online", onlack: byteOf(onl.body) });
	await ask(2, 37, L(BOOLEAN(false), L()), ackIs([0]));
	await ask(2, 33, L(ID(++st.dataid), L()), ackIs([0]));
	await ask(
		2,
		33,
		L(ID(++st.dataid), L(...[...REPORTS].map(([r, vids]) => L(ID(r), L(...vids.map(ID)))))),
		ackIs([0]),
	);
	const linked = [...EVENTS].filter(([, e]) => e.reports.length);
	await ask(2, 35, L(ID(++st.dataid), L(...linked.map(([c, e]) => L(ID(c), L(...e.reports.map(ID)))))), ackIs([0]));
	await ask(2, 37, L(BOOLEAN(true), L(...[...EVENTS.keys()].map(ID))), ackIs([0]));
	for (const al of sc.alarms) await ask(5, 3, L(bin(0x80), idItem(al.alid, opt.idType === "auto" ? "U4" : opt.idType)), ackIs([0]));
	st.setupDone = true;
	out({ kind: "note", what: "setup-done", session });
	if (st.lotStarted || opt.noStart) return;
	const hcack = await command("START");
	if (hcack !== 0 && hcack !== 4) throw new ProtocolError(`START refused with HCACK ${hcack}`);
	st.lotStarted = true;
}

/** S2F41 RCMD; returns HCACK; remembers a HCACK 4 to confirm with its done_event. */
async function command(rcmd) {
	const r = await ask(2, 41, L(A(rcmd), L()), (m) => {
		const top = items(m.body);
		return top?.length === 2 && byteOf(top[0]) !== null && items(top[1]) ? true : "bad S2F42";
	});
	const hcack = byteOf(items(r.body)[0]);
	out({ kind: "command", rcmd, hcack });
	if (hcack === 0) confirmed(rcmd);
	else if (hcack === 4) {
		const done = sc.commands[rcmd]?.done_event;
		if (done) st.awaiting = { rcmd, ceid: CEID_OF[done] };
		else confirmed(rcmd);
	} else log(`${rcmd}: HCACK ${hcack}`);
	return hcack;
}

function confirmed(rcmd) {
	out({ kind: "note", what: "confirmed", rcmd });
	if (rcmd === "PAUSE") {
		st.paused = true;
		setTimeout(() => {
			if (!finished && comm.selected) command("RESUME").catch((e) => fail(`RESUME: ${e.message}`));
		}, opt.resumeAfter);
	} else if (rcmd === "RESUME") st.paused = false;
	else if (rcmd === "STOP" || rcmd === "ABORT") setImmediate(() => finish(0, `${rcmd} confirmed`));
}

// ------------------------------------------------------ incoming messages

comm.on("message", (msg) => {
	handle(msg).catch((e) => fail(`handling ${sfName(msg.stream, msg.func)}: ${e.message}`));
});

async function handle(msg) {
	const sf = sfName(msg.stream, msg.func);
	switch (sf) {
		case "S1F13":
			return comm.answer(msg, 14, L(bin(0), L()));
		case "S1F1":
			return comm.answer(msg, 2, L());
		case "S6F11":
			await comm.answer(msg, 12, bin(0)); // W-bit or not: see facts.md
			return collectionEvent(msg);
		case "S5F1":
			await comm.answer(msg, 2, bin(0));
			return alarm(msg);
	}
	if (msg.stream === 9) {
		fail(`equipment sent ${sf}${msg.body ? ` ${msg.body.toSml().replace(/\s+/g, " ")}` : ""}`);
		return;
	}
	log(`unexpected ${sf}; ${msg.wBit ? `answering ${sfName(msg.stream, 0)}` : "ignored"}`);
	if (msg.wBit) await comm.answer(msg, 0);
}

function collectionEvent(msg) {
	const n = ++st.events;
	const top = items(msg.body);
	const rpts = top?.length === 3 ? items(top[2]) : null;
	const ceid = top ? idKey(top[1]) : null;
	if (!rpts || ceid === null || idKey(top[0]) === null) {
		fail(`S6F11 #${n} is not <L <DATAID> <CEID> <L ...>>`);
		return;
	}
	const ev = EVENTS.get(ceid);
	const line = { kind: "event", n, ceid: Number(ceid), name: ev?.name ?? null, dataid: idKey(top[0]), reports: {}, values: {} };
	const problems = [];
	if (!ev) problems.push(`unknown CEID ${ceid}`);
	for (const r of rpts) {
		const pair = items(r);
		const rptid = pair?.length === 2 ? idKey(pair[0]) : null;
		const vals = pair?.length === 2 ? items(pair[1]) : null;
		if (rptid === null || !vals) {
			problems.push("a report is not <L <RPTID> <L V...>>");
			continue;
		}
		line.reports[rptid] = vals.map(plainValue);
		const vids = REPORTS.get(rptid);
		if (!vids) problems.push(`report ${rptid} was never defined`);
		else if (vids.length !== vals.length) problems.push(`report ${rptid} has ${vals.length} values, defined with ${vids.length}`);
		else vids.forEach((vid, i) => (line.values[sc.variables[vid]?.name ?? vid] = plainValue(vals[i])));
	}
	if (ev && st.setupDone) {
		const want = ev.reports.slice().sort().join(",");
		const got = Object.keys(line.reports).sort().join(",");
		if (want !== got) problems.push(`CEID ${ceid} carried reports [${got}], linked [${want}]`);
	}
	out(line);
	for (const p of problems) (opt.lenient ? log(`S6F11 #${n}: ${p}`) : fail(`S6F11 #${n}: ${p}`));

	if (st.awaiting && st.awaiting.ceid === ceid) {
		const { rcmd } = st.awaiting;
		st.awaiting = null;
		confirmed(rcmd);
	}
	if (ev?.name === "lot_end") {
		st.lotEnd = true;
		setImmediate(() => finish(0, "lot_end received"));
		return;
	}
	if (opt.linktestAt && n >= opt.linktestAt && !st.linktestDone) {
		st.linktestDone = true;
		comm.sendLinkTestReq().then(
			() => out({ kind: "note", what: "linktest-ok" }),
			(e) => fail(`linktest: ${e.message}`),
		);
	}
	const later = (rcmd) => setImmediate(() => command(rcmd).catch((e) => fail(`${rcmd}: ${e.message}`)));
	if (n === opt.pauseAt) later("PAUSE");
	if (n === opt.stopAt) later("STOP");
	if (n === opt.abortAt) later("ABORT");
}

function alarm(msg) {
	const top = items(msg.body);
	const alcd = top?.length === 3 ? byteOf(top[0]) : null;
	const alid = top?.length === 3 ? idKey(top[1]) : null;
	if (alcd === null || alid === null || textOf(top[2]) === null) {
		fail("S5F1 is not <L <B ALCD> <ALID> <A ALTX>>");
		return;
	}
	st.alarms++;
	out({ kind: "alarm", alid: Number(alid), set: (alcd & 0x80) !== 0, category: alcd & 0x7f, text: textOf(top[2]), w: msg.wBit });
	if (!sc.alarms.some((a) => String(a.alid) === alid)) log(`S5F1 for alarm ${alid}, not in the scenario`);
}

// ---------------------------------------------------------------- start

if (opt.passive) {
	const early = (e) => finish(4, `listen on ${opt.bind ?? "127.0.0.1"}:${opt.port}: ${e.message}`);
	comm.once("error", early);
	try {
		await comm.open();
	} catch (e) {
		finish(4, `listen: ${e.message}`);
	}
	comm.off("error", early);
	out({ kind: "listen", host: opt.bind ?? "127.0.0.1", port: comm.pinPort() });
} else {
	out({ kind: "connect", host: opt.bind ?? "127.0.0.1", port: opt.port });
	comm.open().catch((e) => finish(4, `connect: ${e.message}`));
}
log(`${opt.passive ? "listening on" : "connecting to"} ${opt.bind ?? "127.0.0.1"}:${comm.port}; pid ${process.pid}`);

// Shared plumbing for kerf's secs4js test peers (equipment.mjs, host.mjs).
//
// secs4js 0.4.7 does the HSMS-SS framing, the Select/Linktest/Separate
// control messages, T5 reconnects (active side), T6, T7 and T8, and the
// SECS-II item codec. This module adds, on top of it:
//   - one NDJSON line on stdout per frame sent or received (taken from the
//     bytes, so it shows what was really on the wire);
//   - a request/reply matcher that only takes a reply (even function, same
//     stream) as the answer to a pending request: secs4js 0.4.7 resolves a
//     pending request with ANY data message carrying the same system bytes,
//     so a peer primary that happens to reuse the value (legal: system bytes
//     are unique per sender) is swallowed as the "reply";
//   - a replyless request for messages sent without the W-bit that still
//     wait for their reply (S5F1 from some equipment);
//   - events for what secs4js passes up silently: a body it cannot parse
//     ("bad-frame", with the 10-byte header for S9F7), a data message for
//     another session id ("bad-session", for S9F1), a reply nobody waits
//     for ("orphan-reply"), Reject.req ("reject").
import { readFileSync } from "node:fs";
import {
	A,
	B,
	BOOLEAN,
	HsmsActiveCommunicator,
	HsmsMessage,
	HsmsPassiveCommunicator,
	HsmsState,
	L,
	Secs2ItemAscii,
	Secs2ItemBinary,
	Secs2ItemBoolean,
	Secs2ItemFactory,
	Secs2ItemList,
	Secs2ItemNumeric,
	SecsItemType,
} from "secs4js";

export { A, B, BOOLEAN, L, HsmsState };

export const T0 = Date.now();

// ---------------------------------------------------------------- output

function jsonSafe(_k, v) {
	if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : String(v);
	return v;
}

let stdoutOk = true;
process.stdout.on("error", () => {
	stdoutOk = false;
});

/** One NDJSON line on stdout. */
export function out(obj) {
	if (!stdoutOk) return;
	process.stdout.write(JSON.stringify({ t: Date.now() - T0, ...obj }, jsonSafe) + "\n");
}

let logTag = "peer";
export function setLogTag(tag) {
	logTag = tag;
}
/** A human line on stderr. */
export function log(...args) {
	const s = ((Date.now() - T0) / 1000).toFixed(3);
	process.stderr.write(`${logTag} ${s} ${args.join(" ")}\n`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------- command line

/**
 * Parse argv against spec: { name: { type: "int"|"num"|"str"|"bool"|"kv", def } }.
 * "kv" options repeat as --name KEY=VALUE and collect into an object.
 * --help prints the script's leading comment block and exits 0.
 */
export function parseArgs(argv, spec, scriptUrl) {
	const opt = {};
	for (const [k, s] of Object.entries(spec)) opt[k] = s.type === "kv" ? { ...(s.def ?? {}) } : s.def;
	const usage = (msg) => {
		if (msg) process.stderr.write(`${logTag}: ${msg}\n(--help for usage)\n`);
		process.exit(2);
	};
	for (let i = 0; i < argv.length; i++) {
		let a = argv[i];
		if (a === "--help" || a === "-h") {
			printHelp(scriptUrl);
			process.exit(0);
		}
		if (!a.startsWith("--")) usage(`unexpected argument '${a}'`);
		a = a.slice(2);
		let val;
		const eq = a.indexOf("=");
		if (eq >= 0) {
			val = a.slice(eq + 1);
			a = a.slice(0, eq);
		}
		const key = a.replace(/-([a-z0-9])/g, (_m, c) => c.toUpperCase());
		const s = spec[key];
		if (!s) usage(`unknown option --${a}`);
		if (s.type === "bool") {
			if (val !== undefined) usage(`--${a} takes no value`);
			opt[key] = true;
			continue;
		}
		if (val === undefined) {
			if (i + 1 >= argv.length) usage(`--${a} needs a value`);
			val = argv[++i];
		}
		if (s.type === "int" || s.type === "num") {
			const n = Number(val);
			if (val === "" || !Number.isFinite(n) || (s.type === "int" && !Number.isInteger(n)) || n < 0)
				usage(`--${a}: '${val}' is not a non-negative ${s.type === "int" ? "integer" : "number"}`);
			opt[key] = n;
		} else if (s.type === "kv") {
			const m = /^([^=]+)=(-?\d+)$/.exec(val);
			if (!m) usage(`--${a}: expected KEY=N, got '${val}'`);
			opt[key][m[1].toUpperCase()] = Number(m[2]);
		} else {
			opt[key] = val;
		}
	}
	if (opt.bind !== undefined && !isLoopback(opt.bind)) usage(`--bind: '${opt.bind}' is not a loopback address`);
	return opt;
}

export function isLoopback(addr) {
	return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(addr) || addr === "::1" || addr === "localhost";
}

function printHelp(scriptUrl) {
	const src = readFileSync(new URL(scriptUrl), "utf8");
	const m = /\/\*([\s\S]*?)\*\//.exec(src);
	process.stdout.write((m ? m[1].replace(/^\n/, "") : "no help\n").replace(/^ ?\* ?/gm, ""));
}

// ------------------------------------------------------------- scenario

export const SOURCES = [
	"clock",
	"lot_id",
	"recipe",
	"wafer_id",
	"slot",
	"die_x",
	"die_y",
	"die_defects",
	"defect_x",
	"defect_y",
	"defect_size",
	"defect_class",
	"wafer_defects",
	"lot_defects",
	"process_state",
];
const VTYPES = ["A", "B", "BOOLEAN", "U1", "U2", "U4", "U8", "I1", "I2", "I4", "I8", "F4", "F8"];

/** Load and check a scenario file; throws with a readable message. */
export function loadScenario(path) {
	let sc;
	try {
		sc = JSON.parse(readFileSync(path, "utf8"));
	} catch (e) {
		throw new Error(`scenario ${path}: ${e.message}`);
	}
	const bad = (m) => {
		throw new Error(`scenario ${path}: ${m}`);
	};
	for (const k of ["variables", "reports", "events", "lot"]) if (!sc[k] || typeof sc[k] !== "object") bad(`missing object '${k}'`);
	for (const [vid, v] of Object.entries(sc.variables)) {
		if (!SOURCES.includes(v.source)) bad(`variable ${vid}: source '${v.source}' is not one of ${SOURCES.join(",")}`);
		if (!VTYPES.includes(v.type)) bad(`variable ${vid}: type '${v.type}' is not one of ${VTYPES.join(",")}`);
		v.name ??= v.source;
	}
	for (const [rptid, vids] of Object.entries(sc.reports)) {
		if (!Array.isArray(vids)) bad(`report ${rptid}: not a list of VIDs`);
		for (const vid of vids) if (!sc.variables[String(vid)]) bad(`report ${rptid}: unknown VID ${vid}`);
	}
	for (const [name, ev] of Object.entries(sc.events)) {
		if (!Number.isInteger(ev.ceid)) bad(`event ${name}: ceid must be an integer`);
		for (const r of ev.reports ?? []) if (!sc.reports[String(r)]) bad(`event ${name}: unknown report ${r}`);
	}
	sc.alarms ??= [];
	for (const al of sc.alarms) if (!Number.isInteger(al.alid)) bad("alarm without an integer alid");
	sc.alarm_schedule ??= [];
	for (const s of sc.alarm_schedule) if (!sc.alarms.some((a) => a.alid === s.alid)) bad(`alarm_schedule: unknown alid ${s.alid}`);
	sc.commands ??= {};
	for (const [rcmd, c] of Object.entries(sc.commands))
		if (c.done_event && !sc.events[c.done_event]) bad(`command ${rcmd}: unknown done_event '${c.done_event}'`);
	return sc;
}

// ---------------------------------------------------------------- items

/** An item as compact JSON: ["L",[...]], ["A","text"], ["U4",[1,2]], ["B",[0]]. */
export function itemJson(it) {
	if (it === null || it === undefined) return null;
	if (it instanceof Secs2ItemList) return ["L", it.value.map(itemJson)];
	if (it instanceof Secs2ItemAscii) return ["A", it.value];
	if (it instanceof Secs2ItemBinary) return ["B", [...it.value]];
	if (it instanceof Secs2ItemBoolean) return ["BOOLEAN", it.valueAsArray];
	if (it instanceof Secs2ItemNumeric) return [SecsItemType[it.type], it.valueAsArray];
	return ["?", String(it)];
}

export const isList = (it, n) => it instanceof Secs2ItemList && (n === undefined || it.value.length === n);
export const items = (it) => (it instanceof Secs2ItemList ? it.value : null);

/** An ID (CEID, RPTID, VID, ALID, DATAID) as a string key: any integer item of one value, or ASCII. */
export function idKey(it) {
	if (it instanceof Secs2ItemNumeric && it.valueAsArray.length === 1) {
		const t = SecsItemType[it.type];
		if (t === "F4" || t === "F8") return null;
		return String(it.valueAsArray[0]);
	}
	if (it instanceof Secs2ItemAscii) return it.value.trim();
	return null;
}

/** First byte of a B item (ACK codes), or null. */
export function byteOf(it) {
	if (it instanceof Secs2ItemBinary && it.value.length >= 1) return it.value[0];
	return null;
}

/** A single BOOLEAN (or B/U1 used as one), or null. */
export function boolOf(it) {
	if (it instanceof Secs2ItemBoolean && it.valueAsArray.length === 1) return it.valueAsArray[0];
	if (it instanceof Secs2ItemBinary && it.value.length === 1) return it.value[0] !== 0;
	return null;
}

export function textOf(it) {
	return it instanceof Secs2ItemAscii ? it.value : null;
}

export const bin = (...bytes) => B(Buffer.from(bytes));

const NUM = {
	U1: Secs2ItemFactory.createU1Item,
	U2: Secs2ItemFactory.createU2Item,
	U4: Secs2ItemFactory.createU4Item,
	U8: Secs2ItemFactory.createU8Item,
	I1: Secs2ItemFactory.createI1Item,
	I2: Secs2ItemFactory.createI2Item,
	I4: Secs2ItemFactory.createI4Item,
	I8: Secs2ItemFactory.createI8Item,
	F4: Secs2ItemFactory.createF4Item,
	F8: Secs2ItemFactory.createF8Item,
};

/**
 * An ID item. idType "auto": smallest unsigned type that fits (U1 up to
 * 255, U2, U4, U8); "A": ASCII; otherwise that integer type.
 */
export function idItem(key, idType = "auto") {
	const s = String(key);
	if (idType === "A" || !/^\d+$/.test(s)) return A(s);
	const n = Number(s);
	let t = idType;
	if (t === "auto") t = n <= 0xff ? "U1" : n <= 0xffff ? "U2" : n <= 0xffffffff ? "U4" : "U8";
	if (t === "U8" || t === "I8") return NUM[t](BigInt(s));
	return NUM[t](n);
}

/** A variable's value item; undefined/null gives a zero-length item of the type. */
export function valueItem(type, v) {
	const none = v === undefined || v === null;
	if (type === "A") return A(none ? "" : String(v));
	if (type === "B") return B(Buffer.from(none ? [] : [Number(v) & 0xff]));
	if (type === "BOOLEAN") return none ? Secs2ItemFactory.createBooleanItem() : BOOLEAN(Boolean(v));
	const make = NUM[type];
	if (none) return make();
	if (type === "U8" || type === "I8") return make(BigInt(Math.trunc(Number(v))));
	if (type === "F4" || type === "F8") return make(Number(v));
	return make(Math.trunc(Number(v)));
}

/** A value item as plain JSON for an "event" line. */
export function plainValue(it) {
	const j = itemJson(it);
	if (!j) return null;
	const [t, v] = j;
	if (t === "A") return v;
	if (t === "L") return v;
	if (Array.isArray(v) && v.length === 1) return v[0];
	if (Array.isArray(v) && v.length === 0) return null;
	return v;
}

/** SECS-II message header (10 bytes) for S9Fx MHEAD. */
export function mhead(msg) {
	const h = Buffer.alloc(10);
	h.writeUInt16BE(msg.deviceId & 0xffff, 0);
	h[2] = (msg.stream & 0x7f) | (msg.wBit ? 0x80 : 0);
	h[3] = msg.func;
	h.writeUInt32BE(msg.systemBytes >>> 0, 6);
	return h;
}

export const sfName = (s, f) => `S${s}F${f}`;

// ---------------------------------------------------------------- trace

const CTL = {
	1: "select.req",
	2: "select.rsp",
	3: "deselect.req",
	4: "deselect.rsp",
	5: "linktest.req",
	6: "linktest.rsp",
	7: "reject.req",
	9: "separate.req",
};

function trace(dir, msg) {
	if (msg.sType === 0) {
		out({
			kind: "msg",
			dir,
			sf: sfName(msg.stream, msg.func),
			w: msg.wBit,
			sys: msg.systemBytes,
			session: msg.deviceId,
			sml: msg.toSml(),
			body: itemJson(msg.body),
		});
	} else {
		const line = { kind: "ctl", dir, type: CTL[msg.sType] ?? `stype${msg.sType}`, sys: msg.systemBytes };
		if (msg.sType === 2 || msg.sType === 4) line.status = msg.func;
		if (msg.sType === 7) {
			line.reason = msg.func;
			line.rejected = msg.stream;
		}
		if (msg.pType !== 0) line.ptype = msg.pType;
		out(line);
	}
}

export class ProtocolError extends Error {}

// ----------------------------------------------------------- communicator

function Peer(Base) {
	return class extends Base {
		constructor(config) {
			super(config);
			this.pending = new Map(); // sys -> { stream, func, resolve, reject, timer, mhead }
			this._lastIn = null;
			this.on("disconnected", () => {
				for (const [sys, p] of this.pending) {
					clearTimeout(p.timer);
					this.pending.delete(sys);
					p.reject(new Error(`connection closed while waiting for the reply to ${sfName(p.stream, p.func)}`));
				}
			});
		}

		get selected() {
			return this.state === HsmsState.Selected;
		}

		/** Make a passive side re-listen on the same port after a disconnect (port 0 => the one it got). */
		pinPort() {
			const addr = this.server?.address();
			if (addr && typeof addr === "object") this.port = addr.port;
			return this.port;
		}

		// every frame sent, control or data, passes here (except the few
		// secs4js's passive side writes to a not-yet-selected socket)
		sendBufferWithLogs(direction, protocol, buffer, meta) {
			try {
				trace("out", HsmsMessage.fromBuffer(buffer));
			} catch {
				/* not a frame we can decode: nothing to trace */
			}
			return super.sendBufferWithLogs(direction, protocol, buffer, meta);
		}

		// same loop as secs4js 0.4.7 HsmsCommunicator.processBuffer, except
		// that a frame whose body fails to parse is reported as "bad-frame"
		// with its header instead of only an "error" event
		processBuffer() {
			for (;;) {
				if (this.buffer.length < 4) return;
				const length = this.buffer.readUInt32BE(0);
				if (length < 10) {
					super.processBuffer();
					return;
				}
				if (this.buffer.length < 4 + length) return;
				const frame = this.buffer.subarray(0, 4 + length);
				this.buffer = this.buffer.subarray(4 + length);
				let msg;
				try {
					msg = HsmsMessage.fromBuffer(frame);
				} catch (err) {
					const header = Buffer.from(frame.subarray(4, 14));
					out({ kind: "bad-frame", dir: "in", header: header.toString("hex"), error: err.message });
					this.emit("bad-frame", header, err);
					continue;
				}
				this.processHsmsMessage(msg);
			}
		}

		processHsmsMessage(msg) {
			this._lastIn = msg;
			trace("in", msg);
			if (msg.sType === 7) this.emit("reject", msg);
			if (msg.sType !== 0 || this.state !== HsmsState.Selected) return super.processHsmsMessage(msg);
			if (msg.deviceId !== this.deviceId) {
				this.emit("bad-session", msg);
				return;
			}
			if (msg.func % 2 === 0) {
				// a reply (SxF0 included): only to a pending request of the same stream
				const p = this.pending.get(msg.systemBytes);
				if (p && p.stream === msg.stream && (msg.func === p.func + 1 || msg.func === 0)) {
					clearTimeout(p.timer);
					this.pending.delete(msg.systemBytes);
					p.resolve(msg);
				} else {
					this.emit("orphan-reply", msg);
				}
				return;
			}
			if (msg.stream === 9 && msg.body instanceof Secs2ItemBinary && msg.body.value.length === 10) {
				// S9Fx names the header of the message it complains about: fail that request now
				const sys = msg.body.value.readUInt32BE(6);
				const p = this.pending.get(sys);
				if (p) {
					clearTimeout(p.timer);
					this.pending.delete(sys);
					p.reject(new ProtocolError(`peer answered ${sfName(p.stream, p.func)} with ${sfName(9, msg.func)}`));
				}
			}
			this.emit("message", msg);
		}

		handleSelectReq(msg) {
			// the passive side's pre-select code calls this directly
			if (this._lastIn !== msg) trace("in", msg);
			super.handleSelectReq(msg);
		}

		/**
		 * Send a primary and wait for its reply. wbit false with
		 * expectReply true: send without the W-bit and still wait up to T3.
		 * Rejects with ProtocolError on T3 (err.mhead = the request's header).
		 * onSent() runs once the frame is handed to the kernel.
		 */
		request(stream, func, body, { wbit = true, expectReply = wbit, onSent } = {}) {
			if (this.state !== HsmsState.Selected) return Promise.reject(new Error(`not selected: cannot send ${sfName(stream, func)}`));
			const sys = this.getNextSystemBytes();
			const msg = this.createMessage(stream, func, wbit, body ?? null, sys);
			const buf = msg.toBuffer();
			const sent = () => this.sendBufferWithLogs("Sent", "SECS", buf, { stream, func, wBit: wbit, systemBytes: sys });
			if (!expectReply)
				return sent().then(() => {
					onSent?.();
					return null;
				});
			return new Promise((resolve, reject) => {
				const timer = setTimeout(() => {
					this.pending.delete(sys);
					const e = new ProtocolError(`T3 (${this.timeoutT3} s): no reply to ${sfName(stream, func)} sys=${sys}`);
					e.mhead = mhead(msg);
					e.t3 = true;
					reject(e);
				}, this.timeoutT3 * 1000);
				this.pending.set(sys, { stream, func, resolve, reject, timer });
				sent().then(
					() => onSent?.(),
					(err) => {
						clearTimeout(timer);
						this.pending.delete(sys);
						reject(err);
					},
				);
			});
		}

		/** Reply to a primary (secs4js reply: same system bytes, W off). */
		answer(primary, func, body) {
			if (this.state !== HsmsState.Selected) return Promise.resolve();
			return this.reply(primary, primary.stream, func, body ?? null).catch((e) => log(`reply ${sfName(primary.stream, func)} failed: ${e.message}`));
		}
	};
}

export const ActivePeer = Peer(HsmsActiveCommunicator);
export const PassivePeer = Peer(HsmsPassiveCommunicator);

/** Communicator config from common options. */
export function commConfig(opt, { isEquip, name }) {
	const cfg = {
		ip: opt.bind ?? "127.0.0.1",
		port: opt.port,
		deviceId: opt.deviceId,
		isEquip,
		name,
		// secs4js's active heartbeat: 0 means never (2^31-1 ms is setTimeout's ceiling)
		linkTestInterval: opt.linktestEvery > 0 ? Math.round(opt.linktestEvery * 1000) : 2 ** 31 - 1,
	};
	for (const t of ["t3", "t5", "t6", "t7", "t8"]) if (opt[t] !== undefined) cfg[`timeoutT${t[1]}`] = opt[t];
	return cfg;
}

/** Options both peers take. */
export const COMMON_SPEC = {
	port: { type: "int", def: undefined },
	bind: { type: "str", def: undefined },
	deviceId: { type: "int", def: 0 },
	scenario: { type: "str", def: undefined },
	maxSeconds: { type: "num", def: 60 },
	t3: { type: "num" },
	t5: { type: "num" },
	t6: { type: "num" },
	t7: { type: "num" },
	t8: { type: "num" },
	linktestEvery: { type: "num", def: 0 },
	sysBase: { type: "int", def: 0 },
	idType: { type: "str", def: undefined },
};

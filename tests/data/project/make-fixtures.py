#!/usr/bin/env python3
# tests/data/project/make-fixtures.py: writes the checked-in fixture
# streams of tests/project.bats (run.ndjson: two 300 mm wafers with
# random, cluster, scratch and edge defects; partial.ndjson: a stream
# with missing fields, foreign lines and journal commit records).
# A development tool only: the tests read the files, never run this.
import hashlib, json, math, random, os

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = "t-proj"
rnd = random.Random(8)
seq = 0
clock = 0.0

def ev(typ, **kw):
    global seq, clock
    seq += 1
    clock += 0.013
    s = int(clock)
    us = int((clock - s) * 1e6)
    t = "2026-11-21T09:%02d:%02d.%06dZ" % (s // 60 % 60, s % 60, us)
    h = hashlib.blake2b(("%s\n%d" % (RUN, seq)).encode(), digest_size=8).hexdigest()
    o = {"v": 1, "type": typ, "run": RUN, "seq": seq, "t": t, "id": h}
    o.update(kw)
    return json.dumps(o, separators=(",", ":"))

D, EDGE, P, COLS, ROWS = 300.0, 3.0, 10000.0, 30, 30
OX = OY = -150000.0
R = (D / 2 - EDGE) * 1000

def on_wafer(c, r):
    x0, y0 = OX + c * P, OY + r * P
    return all(x * x + y * y <= R * R for x in (x0, x0 + P) for y in (y0, y0 + P))

dies = [(c, r) for r in range(ROWS) for c in range(COLS) if on_wafer(c, r)]
CLASSES = [("particle", 1), ("scratch", 2), ("residue", 3), ("pit", 4)]

def defects_for(wafer):
    out = []
    def add(wx, wy, cls, area):
        c, r = int((wx - OX) // P), int((wy - OY) // P)
        if (c, r) in dieset:
            out.append((c, r, wx, wy, cls, area))
    for _ in range(60):  # random particles
        a = rnd.uniform(0, 2 * math.pi); rr = R * math.sqrt(rnd.random())
        add(rr * math.cos(a), rr * math.sin(a), 0, 10 ** rnd.uniform(1, 3.5))
    cx, cy = rnd.uniform(-60000, 60000), rnd.uniform(-60000, 60000)
    for _ in range(25):  # local cluster
        add(cx + rnd.gauss(0, 6000), cy + rnd.gauss(0, 6000), 2, 10 ** rnd.uniform(2, 4))
    x0, y0, ang = rnd.uniform(-90000, 0), rnd.uniform(-90000, 0), rnd.uniform(0.3, 1.2)
    for i in range(30):  # scratch
        d = i * 3500
        add(x0 + d * math.cos(ang) + rnd.gauss(0, 300), y0 + d * math.sin(ang) + rnd.gauss(0, 300), 1, 10 ** rnd.uniform(3, 4.5))
    for _ in range(12):  # edge pits
        a = rnd.uniform(0, 2 * math.pi); rr = R - rnd.uniform(0, 9000)
        add(rr * math.cos(a), rr * math.sin(a), 3, 10 ** rnd.uniform(1.5, 5))
    return out

dieset = set(dies)
lines = [ev("run_start", lot="LOT42", recipe="std-300", tool="sim-1", source="sim", wafers=2,
            diameter_mm=D, edge_mm=EDGE, pitch_um=[P, P], origin_um=[OX, OY], cols=COLS, rows=ROWS,
            die_px=[256, 256], pixel_um=39.0625),
         ev("state", state="executing", prev="ready")]
total_dies = 0
for slot, wafer in ((1, "W01"), (2, "W02")):
    lines.append(ev("wafer_start", wafer=wafer, slot=slot, lot="LOT42", dies=len(dies)))
    defs = defects_for(wafer)
    by_die = {}
    for d in defs:
        by_die.setdefault((d[0], d[1]), []).append(d)
    inspected = dies if slot == 1 else dies[:-40]  # wafer 2 stops short
    for (c, r) in inspected:
        ds = sorted(by_die.get((c, r), []), key=lambda d: (d[3], d[2]))
        for i, (c_, r_, wx, wy, cls, area) in enumerate(ds):
            side = math.sqrt(area)
            lines.append(ev("defect", wafer=wafer, col=c, row=r, index=i,
                            x_um=round(wx - (OX + c * P), 2), y_um=round(wy - (OY + r * P), 2),
                            wx_um=round(wx, 2), wy_um=round(wy, 2), bbox=[1, 2, 3, 4],
                            w_um=round(side, 2), h_um=round(side, 2), area_px=max(1, int(area / 1526)),
                            area_um2=round(area, 1), polarity=rnd.choice(["bright", "dark"]),
                            contrast=round(rnd.uniform(10, 80), 1), **{"class": CLASSES[cls][0]},
                            class_num=CLASSES[cls][1]))
        lines.append(ev("die_done", wafer=wafer, col=c, row=r, defects=len(ds)))
        total_dies += 1
        if slot == 2 and (c, r) == inspected[100]:
            lines.append(ev("alarm", alid=1042, text="stage vacuum low", set=True,
                            category="warning", critical=False))
        if slot == 2 and (c, r) == inspected[300]:
            lines.append(ev("alarm", alid=1042, text="stage vacuum low", set=False,
                            category="warning", critical=False))
    lines.append(ev("wafer_end", wafer=wafer, slot=slot, dies=len(inspected)))
    lines.append(ev("wafer_summary", wafer=wafer, slot=slot, defects=0, defective_dies=0,
                    density_cm2=0, signature="scratch" if slot == 1 else "local cluster"))
lines.append(ev("state", state="idle", prev="executing"))
lines.append(ev("run_end", status="completed", wafers=2, dies=total_dies))
# wafer_summary's numbers are filled in from what was written, as detect would.
out = []
for l in lines:
    o = json.loads(l)
    if o["type"] == "wafer_summary":
        w = o["wafer"]
        ds = [json.loads(x) for x in lines if '"defect"' in x and json.loads(x)["type"] == "defect" and json.loads(x)["wafer"] == w]
        nd = sum(1 for x in lines if '"die_done"' in x and json.loads(x)["type"] == "die_done" and json.loads(x)["wafer"] == w)
        o["defects"] = len(ds)
        o["defective_dies"] = len({(d["col"], d["row"]) for d in ds})
        o["density_cm2"] = round(len(ds) / (nd * P * P / 1e8), 6)
        l = json.dumps(o, separators=(",", ":"))
    out.append(l)
with open(os.path.join(HERE, "run.ndjson"), "w") as f:
    f.write("\n".join(out) + "\n")

# A stream from a careless source: no run_start, missing fields, numbers
# as wafer ids, unknown types, a journal commit record, a broken line and
# a last line without its newline.
seq = 0
partial = [
    ev("wafer_start", wafer="P1"),
    ev("defect", wafer="P1", col=3, row=4),
    ev("defect", wafer="P1", col=5, row=2, wx_um=1200.5, wy_um=-3000, **{"class": "particle"}),
    ev("defect", wx_um=10, wy_um=10),
    ev("die_done", wafer="P1", col=3, row=4),
    ev("die_done", wafer="P1"),
    '{"commit":1,"count":6,"bytes":999,"xxh3":"0123456789abcdef"}',
    ev("defect", wafer=7, col=1, row=1, area_um2=-5, **{"class": "we\\ird \"name\""}),
    ev("alarm"),
    ev("mystery", foo=[1, 2, {"type": "defect"}]),
    '{"type":"defect","wafer":"P1","col":',
    "not json at all",
    ev("wafer_end", wafer="P1", dies="many"),
    ev("run_start", diameter_mm=-1, pitch_um="x", cols=1e300),
    ev("defect", wafer="P2", col=-4, row=99999999, wx_um=1e30, wy_um=-1e30, area_um2=1e300),
]
with open(os.path.join(HERE, "partial.ndjson"), "w") as f:
    f.write("\n".join(partial))

# mutated.ndjson: lines of both streams with bytes flipped, cut, or
# stray quotes, escapes, huge numbers and bad UTF-8 put in (fixed seed).
r = random.Random(5)
src = [l.encode() for l in out + partial]
mut = []
for i in range(1500):
    l = bytearray(r.choice(src))
    for _ in range(r.randint(0, 4)):
        op = r.randint(0, 3)
        p = r.randrange(len(l)) if l else 0
        if op == 0 and l:
            l[p] = r.randrange(1, 256)
        elif op == 1 and l:
            del l[p:p + r.randint(1, 20)]
        elif op == 2:
            l[p:p] = r.choice([b'\\', b'"', b'{', b'}', b'[', b'1e999', b'-', b'null', b'\\u0000', b',"wafer":"x"', b'\xff\xfe'])
        else:
            l = l[:p]
    mut.append(bytes(l).replace(b'\n', b' '))
with open(os.path.join(HERE, "mutated.ndjson"), "wb") as f:
    f.write(b'\n'.join(mut) + b'\n')

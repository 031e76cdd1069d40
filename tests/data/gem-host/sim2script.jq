# The events of kerf-acquire --sim as the S6F11 a tool numbered by
# profiles/kerf-sim.json sends: one SML line per event, for
# tests/unit/gem-equip's script (die images as {B64:...}).
def a: "<A \"\(.)\">";
def f8: "<F8 \(.)>";
def f8s: "<F8 \(map(tostring) | join(" "))>";
def u4: "<U4 \(.)>";
def u4s: "<U4 \(map(tostring) | join(" "))>";
def report($rptid; $values): "<L <U4 \($rptid)> <L \($values | join(" "))>>";
def s6f11($ceid; $reports): "S6F11 W <L <U4 \(.seq)> <U4 \($ceid)> <L \($reports | join(" "))>>";
if .type == "run_start" then
	s6f11(100; [report(1; [(.t | a), (.run | a), (.lot | a), (.recipe | a), (.tool | a), (.wafers | u4),
		(.diameter_mm | f8), (.edge_mm | f8), (.pitch_um | f8s), (.origin_um | f8s), (.cols | u4),
		(.rows | u4), (.die_px | u4s), (.pixel_um | f8), (.dies | u4), "<U8 \(.seed)>"])])
elif .type == "state" then s6f11(101; [report(2; [(.t | a), (.state | a), (.prev | a)])])
elif .type == "wafer_start" then
	s6f11(110; [report(3; [(.t | a), (.wafer | a), (.slot | u4), (.lot | a), (.dies | u4), (.signature | a)])])
elif .type == "die" then
	s6f11(120; [report(4; [(.t | a), (.wafer | a), (.col | u4), (.row | u4), (.w | u4), (.h | u4), "{B64:\(.data)}"])])
elif .type == "wafer_end" then s6f11(130; [report(5; [(.t | a), (.wafer | a), (.slot | u4), (.dies | u4)])])
elif .type == "run_end" then s6f11(190; [report(6; [(.t | a), (.status | a), (.wafers | u4), (.dies | u4)])])
else empty end

#!/usr/bin/env bats
# SECS/GEM interop: kerf's equipment and host sides against the secs4js
# test peers of tests/interop/ (Node.js), an implementation nobody in kerf
# wrote.  Every test skips, saying why, when node or secs4js (installed by
# scripts/deps) is missing.  Only 127.0.0.1 and ephemeral ports; every
# wait is bounded polling or a peer's own --max-seconds.

load common
load tool

REPO="$BATS_TEST_DIRNAME/.."
INTEROP="$BATS_TEST_DIRNAME/interop"

setup() {
	T="$BATS_TEST_TMPDIR"
	BG=()
	command -v node >/dev/null || skip "node is not installed (scripts/deps installs what tests/interop needs)"
	[ -d "$INTEROP/node_modules/secs4js" ] || skip "secs4js is not installed in tests/interop (run scripts/deps)"
}

teardown() {
	tool_cleanup
}

# ---------------------------------------------------------------------
# The secs4js GEM host (tests/interop/host.mjs) against kerf-tool, the
# equipment.  The host's scenario tests/data/tool/host-kerf-sim.json
# names the profile's variables by the kerf fields they fill, so that
# its decoded events compare with kerf-acquire --sim field by field.
# ---------------------------------------------------------------------

# A small lot: 2 wafers of about 50 dies, 16 px images.
LOT=(--seed 7 --wafers 2 --diameter 100 --die-px 16)
SCENARIO="$BATS_TEST_DIRNAME/data/tool/host-kerf-sim.json"

# host_run NAME ARGS...: host.mjs against the tool until it exits by
# itself; output $T/NAME.ndjson, log $T/NAME.log, exit status in HOST_ST.
host_run() {
	local name=$1
	shift
	HOST_ST=0
	node "$INTEROP/host.mjs" --scenario "$SCENARIO" --port "$TOOL_PORT" --max-seconds 60 "$@" \
		> "$T/$name.ndjson" 2> "$T/$name.log" || HOST_ST=$?
}

# host_ok NAME: host.mjs exited 0 after lot_end or a confirmed STOP, with no failure.
host_ok() {
	[ "$HOST_ST" -eq 0 ] || { echo "host.mjs exited $HOST_ST"; tail -5 "$T/$1.log"; false; }
	[ "$(jq -c 'select(.kind == "exit") | .failures' "$T/$1.ndjson")" = "[]" ]
}

# events NAME: the host's decoded S6F11, one line each.
events() {
	jq -c 'select(.kind == "event")' "$T/$1.ndjson"
}

# events_ge NAME N: the host has decoded N S6F11 (its output may end mid-line).
events_ge() {
	[ "$(grep -c '"kind":"event"' "$T/$1.ndjson" 2>/dev/null)" -ge "$2" ]
}

# base64 of an array of bytes, as kerf-acquire writes a die's data.
B64='def b64:
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" as $abc
	| . as $b | length as $n
	| [range(0; $n; 3) as $i
	   | ($b[$i] * 65536 + ($b[$i + 1] // 0) * 256 + ($b[$i + 2] // 0)) as $v
	   | [262144, 4096, 64, 1] | map($abc[(($v / .) | floor) % 64:][:1]) | join("")
	   | if $i + 1 >= $n then .[:2] + "==" elif $i + 2 >= $n then .[:3] + "=" else . end]
	| join("");'

@test "secs4js host runs a whole lot on kerf-tool, from select to lot end" {
	tool_start "${LOT[@]}"
	host_run host
	host_ok host
	# The session as facts.md has it: select, both S1F13, S1F1, online,
	# reports, START, then the lot's S6F11 up to run_end.
	run jq -r 'select(.kind == "note" and .what == "equipment") | "\(.mdln) \(.softrev)"' "$T/host.ndjson"
	assert_output "KERF-SIM 1"
	run jq -r 'select(.sf == "select.req" or .sf == "S1F13" or .sf == "S1F14") | "\(.dir) \(.sf)"' \
		"$T/trace.ndjson"
	assert_line --index 0 "in select.req"
	assert_line --index 1 "out S1F13"
	run jq -r 'select(.kind == "command") | "\(.rcmd) \(.hcack)"' "$T/host.ndjson"
	assert_output "START 0"
	kerf-acquire "${LOT[@]}" 2>/dev/null | jq -r .type > "$T/acq.types"
	events host | jq -r '.name | sub("^lot_end$"; "run_end")' > "$T/host.types"
	diff -u "$T/acq.types" "$T/host.types"
	run jq -r 'select(.kind == "event" and .name == "lot_end") | .values.status' "$T/host.ndjson"
	assert_output completed
	tool_stop
}

@test "kerf-tool's events carry, field by field, the values kerf-acquire --sim makes for the same seed" {
	tool_start "${LOT[@]}"
	host_run host
	host_ok host
	tool_stop
	kerf-acquire "${LOT[@]}" 2>/dev/null > "$T/acq.ndjson"
	events host > "$T/ev.ndjson"
	assert_equal "$(wc -l < "$T/ev.ndjson")" "$(wc -l < "$T/acq.ndjson")"
	# Each event: the same type, every value the host got equal to the
	# field of kerf-acquire's event, and the image the die's data.
	run jq -n -c --slurpfile acq "$T/acq.ndjson" --slurpfile host "$T/ev.ndjson" "$B64"'
		[$acq, $host] | transpose[] | . as [$a, $h]
		| ($h.values | del(.image)) as $v
		| select(($h.name | sub("^lot_end$"; "run_end")) != $a.type
			 or ($a | with_entries(select(.key as $k | $v | has($k)))) != $v
			 or ($a.type == "die" and ($h.values.image | b64) != $a.data))
		| {seq: $a.seq, acquire: ($a | del(.data)), host: $v}'
	assert_success
	assert_output ""
	# The values are all there: a die carries t, wafer, col, row, w, h and image.
	run jq -c 'select(.name == "die") | .values | keys' "$T/ev.ndjson"
	assert_line --index 0 '["col","h","image","row","t","w","wafer"]'
}

@test "kerf-tool --truth writes, byte for byte, the truth kerf-acquire --sim writes for the same seed" {
	tool_start "${LOT[@]}" --defect-rate 0.5 --truth "$T/tool.truth"
	host_run host
	host_ok host
	tool_stop
	kerf-acquire "${LOT[@]}" --defect-rate 0.5 --truth "$T/acq.truth" > /dev/null 2>&1
	[ "$(wc -l < "$T/acq.truth")" -gt 20 ]
	cmp "$T/acq.truth" "$T/tool.truth"
}

@test "kerf-tool sends an alarm the host enabled as S5F1 with ALCD 0x80 | category, and not one it did not" {
	jq '.alarms = [{"alid": 4711, "category": 6, "text": "x"}]' "$SCENARIO" > "$T/scenario.json"
	tool_start "${LOT[@]}" --inject alarm@5:4711:warning --inject alarm@8:4712:attention
	SCENARIO="$T/scenario.json" host_run host
	host_ok host
	run jq -c 'select(.kind == "alarm") | [.alid, .set, .category, .text, .w]' "$T/host.ndjson"
	assert_output '[4711,true,6,"simulated warning alarm 4711",true]'
	run jq -r 'select(.sf == "S5F1") | .sml' "$T/trace.ndjson"
	assert_output 'S5F1 W <L [3] <B 0x86> <U4 4711> <A "simulated warning alarm 4711">>'
	# The alarm came right after the 5th die, and the lot went on to its end.
	run jq -r 'select(.sf == "S5F1" or .sf == "S6F11") | .sf' "$T/trace.ndjson"
	[ "$(printf '%s\n' "${lines[@]}" | grep -n S5F1 | cut -d: -f1)" -eq 10 ]
	run jq -r 'select(.kind == "event" and .name == "lot_end") | .values.status' "$T/host.ndjson"
	assert_output completed
	tool_stop
}

@test "kerf-tool aborts the lot after a critical alarm: wafer_end, then run_end aborted" {
	jq '.alarms = [{"alid": 13, "category": 5, "text": "x"}]' "$SCENARIO" > "$T/scenario.json"
	tool_start "${LOT[@]}" --inject alarm@5:13:irrecoverable
	SCENARIO="$T/scenario.json" host_run host
	host_ok host
	run jq -c 'select(.kind == "alarm") | [.alid, .category]' "$T/host.ndjson"
	assert_output '[13,5]'
	run jq -r 'select(.kind == "event") | "\(.name) \(.values.status // .values.dies // "")"' "$T/host.ndjson"
	assert_line --index $((${#lines[@]} - 2)) "wafer_end 5"
	assert_line --index $((${#lines[@]} - 1)) "lot_end aborted"
	tool_stop
}

@test "kerf-tool accepts PAUSE and STOP with HCACK 4, each confirmed by its state event, and RESUME with HCACK 0" {
	tool_start "${LOT[@]}"
	host_run host --pause-at 10 --stop-at 30 --resume-after 100
	host_ok host
	run jq -r 'select(.kind == "command") | "\(.rcmd) \(.hcack)"' "$T/host.ndjson"
	assert_output "$(printf 'START 0\nPAUSE 4\nRESUME 0\nSTOP 4')"
	run jq -r 'select(.kind == "note" and .what == "confirmed") | .rcmd' "$T/host.ndjson"
	assert_output "$(printf 'START\nPAUSE\nRESUME\nSTOP')"
	run jq -r 'select(.kind == "event" and .name == "state") | "\(.values.prev)>\(.values.state)"' "$T/host.ndjson"
	assert_output "$(printf 'idle>ready\nready>executing\nexecuting>paused\npaused>executing\nexecuting>stopping')"
	# Paused, nothing went out until the resume; the pause cost one second of machine time.
	run jq -r 'select(.kind == "event") | "\(.values.state // .name) \(.values.t)"' "$T/host.ndjson"
	i=$(printf '%s\n' "${lines[@]}" | grep -n '^paused ' | cut -d: -f1)
	assert_line --index "$i" --regexp '^executing '
	paused_t=${lines[i - 1]#* }
	resumed_t=${lines[i]#* }
	assert_equal "${resumed_t#*.}" "${paused_t#*.}"
	assert_equal "$(date -ud "$resumed_t" +%s)" $(($(date -ud "$paused_t" +%s) + 1))
	tool_stop
}

@test "kerf-tool refuses START with HCACK 2 while ONLINE LOCAL" {
	tool_start "${LOT[@]}" --local
	host_run host
	assert_equal "$HOST_ST" 1
	run jq -r 'select(.kind == "command") | "\(.rcmd) \(.hcack)"' "$T/host.ndjson"
	assert_output "START 2"
	grep -q '"gem":"control","state":"online_local"' "$T/tool.err"
	tool_stop
}

@test "kerf-tool answers the host's Linktest.req, and the host answers its own" {
	tool_start "${LOT[@]}" --linktest 0.05
	node "$INTEROP/host.mjs" --scenario "$SCENARIO" --port "$TOOL_PORT" --no-start --max-seconds 60 \
		> "$T/host.ndjson" 2> "$T/host.log" &
	BG+=("$!")
	wait_for grep -q '"dir":"in","sf":"linktest.rsp"' "$T/trace.ndjson"
	kill -TERM "${BG[-1]}"
	host_run host2
	host_ok host2
	grep -q '"what":"linktest-ok"' "$T/host2.ndjson"
	grep -q '"dir":"in","sf":"linktest.req"' "$T/trace.ndjson"
	grep -q '"dir":"out","sf":"linktest.rsp"' "$T/trace.ndjson"
	tool_stop
}

@test "kerf-tool keeps the lot when its host drops the link; the next host sets up again and gets the rest" {
	# Paced, so that the first host is still in the middle of the lot when it dies.
	tool_start "${LOT[@]}" --rate 50
	node "$INTEROP/host.mjs" --scenario "$SCENARIO" --port "$TOOL_PORT" --max-seconds 60 \
		> "$T/host1.ndjson" 2> "$T/host1.log" &
	BG+=("$!")
	wait_for events_ge host1 20
	kill -KILL "${BG[-1]}"
	wait "${BG[-1]}" 2>/dev/null || true
	wait_for grep -q '"gem":"held"' "$T/tool.err"
	host_run host2 --no-start
	host_ok host2
	# Each event of the lot went out once over the two links: none again,
	# none skipped; the one open at the drop is lost.
	kerf-acquire "${LOT[@]}" 2>/dev/null > "$T/acq.ndjson"
	assert_equal "$(grep -c '"dir":"out","sf":"S6F11"' "$T/trace.ndjson")" "$(wc -l < "$T/acq.ndjson")"
	# The hosts saw every die once at most, all but the one open at the
	# drop and one the dying host may have answered without printing it
	# (its last line may be cut too).
	{ grep '"kind":"event"' "$T/host1.ndjson" | jq -c -R 'fromjson?'; events host2; } |
		jq -r 'select(.name == "die") | "\(.values.wafer) \(.values.col) \(.values.row)"' > "$T/dies"
	assert_equal "$(sort "$T/dies" | uniq -d)" ""
	[ "$(wc -l < "$T/dies")" -ge $(($(grep -c '"type":"die"' "$T/acq.ndjson") - 2)) ]
	run jq -r 'select(.kind == "event" and .name == "lot_end") | .values.status' "$T/host2.ndjson"
	assert_output completed
	grep -q '"gem":"resumed"' "$T/tool.err"
	tool_stop
}

@test "kerf-tool sends only the events the host enabled, with the reports it linked, in its order" {
	# Only die and run_end; the die report in reverse and under another
	# RPTID; a report defined and never linked.
	jq '.events = {"die": {"ceid": 120, "reports": [77]}, "lot_end": {"ceid": 190, "reports": [506]}}
	    | .reports["77"] = (.reports["504"] | reverse) | .reports["9"] = [23] | .commands = {}' \
		"$SCENARIO" > "$T/scenario.json"
	tool_start "${LOT[@]}"
	SCENARIO="$T/scenario.json" host_run host
	host_ok host
	run jq -r 'select(.kind == "event") | .name' "$T/host.ndjson"
	want=$(kerf-acquire "${LOT[@]}" 2>/dev/null | grep -c '"type":"die"')
	assert_equal "$(printf '%s\n' "${lines[@]}" | grep -c '^die$')" "$want"
	assert_equal "${#lines[@]}" $((want + 1))
	assert_line --index $want lot_end
	# Report 77 as defined: image, h, w, row, col, wafer, t (the first die is col 3, row 1).
	run jq -c 'select(.kind == "event" and .name == "die") | .reports["77"] | [(.[0] | length), .[1:]]' \
		"$T/host.ndjson"
	assert_line --index 0 '[256,[16,16,1,3,"W01","2026-01-05T06:00:02.220000Z"]]'
	# The S6F11 themselves: the host's RPTID, the profile's CEID.
	run jq -r 'select(.sf == "S6F11") | .sml' "$T/trace.ndjson"
	assert_line --index 0 --regexp '^S6F11 W <L \[3\] <U4 1> <U1 120> <L \[1\] <L \[2\] <U1 77> <L \[7\] <B \[256\] \.\.\.>'
	tool_stop
}

@test "kerf-tool --connect runs a lot for a passive secs4js host" {
	node "$INTEROP/host.mjs" --scenario "$SCENARIO" --passive --port 0 --max-seconds 60 \
		> "$T/host.ndjson" 2> "$T/host.log" &
	host=$!
	BG+=("$host")
	wait_for grep -q '"kind":"listen"' "$T/host.ndjson"
	port=$(jq -r 'select(.kind == "listen") | .port' "$T/host.ndjson")
	kerf-tool --connect "hsms:127.0.0.1:$port" --max-seconds 60 "${LOT[@]}" > "$T/tool.out" 2> "$T/tool.err" &
	TOOL_PID=$!
	BG+=("$TOOL_PID")
	wait_for pid_gone "$host"
	HOST_ST=0
	wait "$host" || HOST_ST=$?
	host_ok host
	[ ! -s "$T/tool.out" ]
	run jq -r 'select(.kind == "event" and .name == "lot_end") | .values.status' "$T/host.ndjson"
	assert_output completed
	tool_stop
}

@test "kerf-tool --hsms-trace writes one record per message, the die images shortened" {
	tool_start --seed 7 --wafers 1 --diameter 100
	host_run host
	host_ok host
	tool_stop
	# Every record: t, dir, sf, w, sys and session; a data message's sml too.
	run jq -c 'select((.t | test("^2[0-9-]+T[0-9:]+\\.[0-9]{6}Z$") | not) or (.dir | IN("in", "out") | not)
		or ([.sf, .w, .sys, .session] | map(type) != ["string", "boolean", "number", "number"])
		or ((.sf | test("^S[0-9]+F[0-9]+$")) and (.sml | type) != "string"))' "$T/trace.ndjson"
	assert_output ""
	# As many data messages as the host saw, in each direction.
	for d in in out; do
		assert_equal "$(jq -c "select((.sf | test(\"^S\")) and .dir == \"$d\")" "$T/trace.ndjson" | wc -l)" \
			"$(jq -c "select(.kind == \"msg\" and .dir == \"$([ $d = in ] && echo out || echo in)\")" \
				"$T/host.ndjson" | wc -l)"
	done
	run jq -r 'select(.sf == "S6F11" and (.sml | contains("<B [4096] ...>"))) | .sml' "$T/trace.ndjson"
	[ "${#lines[@]}" -gt 0 ]
	[ "$(jq -r 'select(.sf == "S6F11") | .sml | length' "$T/trace.ndjson" | sort -n | tail -1)" -lt 400 ]
	run jq -r 'select(.sf | test("^S") | not) | .sf' "$T/trace.ndjson"
	assert_line --index 0 select.req
	assert_line --index 1 select.rsp
}

# ---------------------------------------------------------------------
# kerf-acquire as the GEM host (--connect, --listen hsms:) against the
# secs4js equipment (tests/interop/equipment.mjs).  The equipment plays
# the tool of profiles/example-defects.json, a tool without images that
# reports its own defects: tests/data/gem-host/defects.json is its
# scenario (same VIDs, CEIDs and commands as the profile).
# ---------------------------------------------------------------------

DEFECTS_SCENARIO="$BATS_TEST_DIRNAME/data/gem-host/defects.json"

# eq_start ARGS...: equipment.mjs (passive) in the background with the
# defects scenario; stdout $T/eq.ndjson, stderr $T/eq.log; port in EQ_PORT.
eq_start() {
	node "$INTEROP/equipment.mjs" --scenario "${SCEN:-$DEFECTS_SCENARIO}" --port 0 --max-seconds 60 "$@" \
		> "$T/eq.ndjson" 2> "$T/eq.log" &
	EQ_PID=$!
	BG+=("$EQ_PID")
	wait_for test -s "$T/eq.ndjson"
	EQ_PORT=$(head -n1 "$T/eq.ndjson" | jq .port)
}

# eq_done: the equipment exited by itself, 0, with no protocol failure.
eq_done() {
	local st=0
	wait_for pid_gone "$EQ_PID"
	wait "$EQ_PID" || st=$?
	[ "$st" -eq 0 ] || { echo "equipment.mjs exited $st"; tail -5 "$T/eq.log"; false; }
	[ "$(jq -c 'select(.kind == "exit") | .failures' "$T/eq.ndjson")" = "[]" ]
}

# host_acquire ARGS...: kerf-acquire --connect to the equipment, in the
# foreground: events $T/out.ndjson, log $T/err.ndjson, status in ACQ_ST.
host_acquire() {
	ACQ_ST=0
	kerf-acquire --connect "hsms:127.0.0.1:$EQ_PORT" --profile example-defects --lot LOT-DEF-0001 \
		--hsms-trace "$T/htrace.ndjson" "$@" > "$T/out.ndjson" 2> "$T/err.ndjson" || ACQ_ST=$?
}

# host_acquire_bg ARGS...: the same in the background; its pid in ACQ_PID.
host_acquire_bg() {
	kerf-acquire --connect "hsms:127.0.0.1:$EQ_PORT" --profile example-defects --lot LOT-DEF-0001 \
		--hsms-trace "$T/htrace.ndjson" "$@" > "$T/out.ndjson" 2> "$T/err.ndjson" &
	ACQ_PID=$!
	BG+=("$ACQ_PID")
}

acq_wait() {
	ACQ_ST=0
	wait "$ACQ_PID" || ACQ_ST=$?
}

# has_rec FILE FILTER: FILE has a JSON line that FILTER selects.
has_rec() {
	[ -n "$(jq -c -R "fromjson? | select($2)" "$1" 2>/dev/null)" ]
}

# valid FILE: kerf-validate passes every event of FILE, with no warning.
valid() {
	kerf-validate < "$1" > "$T/valid.out" 2> "$T/valid.err"
	[ "$(wc -l < "$T/valid.out")" -eq "$(wc -l < "$1")" ]
	! has_rec "$T/valid.err" '.lvl == "warn" or .lvl == "error"' || { grep -v stats "$T/valid.err"; false; }
}

@test "kerf-acquire runs a whole lot on the secs4js equipment: both S1F13, set-up, events and alarms that pass kerf-validate" {
	eq_start
	host_acquire
	[ "$ACQ_ST" -eq 0 ] || { grep -v stats "$T/err.ndjson" | tail; false; }
	eq_done
	# Both sides sent S1F13, and the set-up came in E30's order.
	run jq -r 'select(.kind == "msg" and .dir == "in") | .sf' "$T/eq.ndjson"
	assert_line --index 0 S1F13
	run jq -r 'select(.kind == "note") | .what' "$T/eq.ndjson"
	assert_output --partial "$(printf '%s\n' communicating online enabled reports reports links enabled alarms command)"
	has_rec "$T/eq.ndjson" '.kind == "note" and .what == "command" and .rcmd == "START" and .hcack == 0'
	has_rec "$T/eq.ndjson" '.kind == "msg" and .dir == "in" and .sf == "S2F41" and (.sml | contains("LOT-DEF-0001"))'
	valid "$T/out.ndjson"
	# Every defect the tool found, and its alarms, set, cleared and overridden by the profile.
	[ "$(jq -c 'select(.type == "defect")' "$T/out.ndjson" | wc -l)" -eq \
		"$(jq -r 'select(.kind == "note" and .what == "event" and .event == "defect") | .n' "$T/eq.ndjson" | wc -l)" ]
	run jq -r 'select(.type == "alarm") | "\(.alid) \(.set) \(.category) \(.alcd)"' "$T/out.ndjson"
	assert_output "$(printf '%s\n' '5001 true warning 134' '5001 false warning 6' '5002 true attention 132')"
	run jq -r 'select(.type == "run_start") | "\(.source) \(.lot) \(.recipe) \(.tool)"' "$T/out.ndjson"
	assert_output "hsms LOT-DEF-0001 INSP-DEF EXAMPLE-DEFECTS"
	[ "$(jq -r 'select(.type == "run_end").status' "$T/out.ndjson")" = completed ]
}

@test "the image-less tool's defects go through kerf-detect untouched and into a KLARF per wafer" {
	eq_start
	host_acquire
	[ "$ACQ_ST" -eq 0 ]
	kerf-validate < "$T/out.ndjson" 2>/dev/null | kerf-detect 2>/dev/null | kerf-persist -C "$T/run" > "$T/persisted" 2>/dev/null
	diff <(jq -c 'select(.type == "defect")' "$T/out.ndjson") <(jq -c 'select(.type == "defect")' "$T/persisted")
	# Each wafer: a KLARF with the defects the tool counted, and the die results it reported.
	while read -r wafer defects; do
		jq -e --arg w "$wafer" --argjson n "$defects" \
			'.wafers[] | select(.wafer == $w) | select(.defects == $n and .dies == 6 and .complete)' \
			"$T/run/summary.json" > /dev/null || { jq . "$T/run/summary.json"; false; }
		klarf=$(jq -r --arg w "$wafer" '.wafers[] | select(.wafer == $w).klarf' "$T/run/summary.json")
		[ "$(sed -n '/^DefectList/,/;/p' "$T/run/$klarf" | grep -c '^ [0-9]')" -eq "$defects" ]
	done < <(jq -r 'select(.type == "wafer_end") | "\(.wafer) \(.wafer_defects)"' "$T/out.ndjson")
	[ "$(ls "$T/run/klarf" | wc -l)" -eq 2 ]
}

@test "SIGUSR1, SIGUSR2 and SIGTERM reach the tool as PAUSE (HCACK 4), RESUME (HCACK 0) and STOP (HCACK 4)" {
	eq_start --event-interval 40
	host_acquire_bg
	wait_for has_rec "$T/out.ndjson" '.type == "wafer_start"'
	kill -USR1 "$ACQ_PID"
	wait_for has_rec "$T/out.ndjson" '.type == "state" and .state == "paused"'
	kill -USR2 "$ACQ_PID"
	wait_for has_rec "$T/out.ndjson" '.type == "state" and .state == "executing" and .prev == "paused"'
	kill -TERM "$ACQ_PID"
	acq_wait
	[ "$ACQ_ST" -eq 0 ]
	eq_done
	run jq -r 'select(.gem == "hcack") | "\(.op) \(.hcack)"' "$T/err.ndjson"
	assert_output "$(printf '%s\n' 'start 0' 'pause 4' 'resume 0' 'stop 4')"
	# The tool's processing_stopped ends the run; the open wafer is closed first.
	run jq -r '.type' "$T/out.ndjson"
	assert_line --index -2 wafer_end
	assert_line --index -1 run_end
	[ "$(jq -r 'select(.type == "run_end").status' "$T/out.ndjson")" = stopped ]
	valid "$T/out.ndjson"
}

@test "a PAUSE the tool refuses (HCACK 2) changes nothing: the lot goes on to its end" {
	eq_start --event-interval 20 --hcack PAUSE=2
	host_acquire_bg
	wait_for has_rec "$T/out.ndjson" '.type == "wafer_start"'
	kill -USR1 "$ACQ_PID"
	wait_for has_rec "$T/err.ndjson" '.gem == "hcack" and .op == "pause"'
	kill -USR2 "$ACQ_PID"
	acq_wait
	[ "$ACQ_ST" -eq 0 ]
	has_rec "$T/err.ndjson" '.gem == "hcack" and .op == "pause" and .hcack == 2 and .meaning == "cannot do now" and .lvl == "warn"'
	# Not paused, so no RESUME goes out.
	! has_rec "$T/err.ndjson" '.gem == "command_sent" and .op == "resume"'
	! has_rec "$T/out.ndjson" '.type == "state" and .state == "paused"'
	[ "$(jq -r 'select(.type == "run_end").status' "$T/out.ndjson")" = completed ]
	valid "$T/out.ndjson"
}

@test "Linktest.req from the tool is answered, and kerf-acquire's own every --linktest" {
	eq_start --linktest-after 3 --event-interval 30
	host_acquire --linktest 0.2
	[ "$ACQ_ST" -eq 0 ]
	eq_done
	has_rec "$T/htrace.ndjson" '.dir == "in" and .sf == "linktest.req"'
	has_rec "$T/htrace.ndjson" '.dir == "out" and .sf == "linktest.rsp"'
	has_rec "$T/htrace.ndjson" '.dir == "out" and .sf == "linktest.req"'
	has_rec "$T/htrace.ndjson" '.dir == "in" and .sf == "linktest.rsp"'
}

@test "a dropped connection without --reconnect fails the run with exit 69 naming the cause" {
	eq_start --drop-after 10
	host_acquire
	[ "$ACQ_ST" -eq 69 ]
	has_rec "$T/err.ndjson" '.link == "lost" and .cause == "peer_closed"'
	has_rec "$T/err.ndjson" '.reason == "connection_lost" and .cause == "peer_closed" and .lvl == "error"'
	# The stream is closed as --listen closes it: alarm 9001, the open wafer's wafer_end, run_end aborted.
	run jq -r '[.type, .alid // .status // ""] | join(" ")' "$T/out.ndjson"
	assert_line --index -3 "alarm 9001"
	assert_line --index -2 "wafer_end "
	assert_line --index -1 "run_end aborted"
	valid "$T/out.ndjson"
}

@test "with --reconnect the run goes on after a dropped connection, and kerf-validate reports the gap" {
	eq_start --drop-after 10 --after-reconnect resume --event-interval 20
	host_acquire --reconnect 120s --t5 0.2
	[ "$ACQ_ST" -eq 0 ] || { grep -v stats "$T/err.ndjson" | tail; false; }
	eq_done
	has_rec "$T/err.ndjson" '.link == "lost" and .cause == "peer_closed"'
	[ "$(jq -c 'select(.link == "online")' "$T/err.ndjson" | wc -l)" -eq 2 ]
	[ "$(jq -r 'select(.type == "run_end").status' "$T/out.ndjson")" = completed ]
	# Everything acknowledged before the drop is there: the first 10 S6F11 the tool sent.
	[ "$(jq -c 'select(.type != "alarm")' "$T/out.ndjson" | head -n 10 | wc -l)" -eq 10 ]
	kerf-validate < "$T/out.ndjson" > /dev/null 2> "$T/valid.err"
	has_rec "$T/valid.err" '.msg | test("gap in sequence")'
}

@test "S5F1 sent without the W-bit is still answered with S5F2 <B 0>" {
	eq_start --s5f1-no-wbit
	host_acquire
	[ "$ACQ_ST" -eq 0 ]
	eq_done
	[ "$(jq -c 'select(.kind == "msg" and .dir == "out" and .sf == "S5F1" and .w == false)' "$T/eq.ndjson" | wc -l)" -eq 3 ]
	[ "$(jq -c 'select(.kind == "msg" and .dir == "in" and .sf == "S5F2" and .body == ["B", [0]])' "$T/eq.ndjson" | wc -l)" -eq 3 ]
	[ "$(jq -c 'select(.type == "alarm")' "$T/out.ndjson" | wc -l)" -eq 3 ]
}

@test "both S1F13 with the same system bytes and a slow START still make a lot" {
	eq_start --sys-base 1 --delay START=500 --delay S1F13=200
	host_acquire
	[ "$ACQ_ST" -eq 0 ]
	eq_done
	valid "$T/out.ndjson"
}

@test "a critical alarm from the tool aborts the lot: ABORT, run_end aborted, exit 3" {
	jq '.alarms[0].category = 5' "$DEFECTS_SCENARIO" > "$T/critical.json"
	SCEN="$T/critical.json" eq_start
	host_acquire
	[ "$ACQ_ST" -eq 3 ]
	has_rec "$T/eq.ndjson" '.kind == "note" and .what == "command" and .rcmd == "ABORT"'
	run jq -r '[.type, .category // .status // ""] | join(" ")' "$T/out.ndjson"
	assert_line --index -3 "alarm irrecoverable"
	assert_line --index -1 "run_end aborted"
	valid "$T/out.ndjson"
}

@test "--listen hsms: waits for an active secs4js equipment and runs its lot" {
	kerf-acquire --listen hsms:127.0.0.1:0 --profile example-defects --lot LOT-DEF-0001 \
		> "$T/out.ndjson" 2> "$T/err.ndjson" &
	ACQ_PID=$!
	BG+=("$ACQ_PID")
	wait_for has_rec "$T/err.ndjson" '.hsms == "listening"'
	port=$(jq -r 'select(.hsms == "listening").port' "$T/err.ndjson")
	node "$INTEROP/equipment.mjs" --scenario "$DEFECTS_SCENARIO" --active --port "$port" --max-seconds 60 \
		> "$T/eq.ndjson" 2> "$T/eq.log" &
	EQ_PID=$!
	BG+=("$EQ_PID")
	acq_wait
	[ "$ACQ_ST" -eq 0 ]
	eq_done
	valid "$T/out.ndjson"
}

@test "under kerf run, a connection the tool drops and takes back within --reconnect is a gap kerf-validate reports, and the run completes" {
	eq_start --drop-after 10 --after-reconnect resume --event-interval 20
	kerf run -C "$T/run" --no-project --acquire-arg=--connect --acquire-arg="hsms:127.0.0.1:$EQ_PORT" \
		--acquire-arg=--profile --acquire-arg=example-defects --acquire-arg=--lot --acquire-arg=LOT-DEF-0001 \
		--acquire-arg=--reconnect=120s --acquire-arg=--t5=0.2 < /dev/null > "$T/run.out" 2>&1 ||
		{ cat "$T/run.out"; false; }
	eq_done
	[ "$(jq -r .state "$T/run/status.json")" = completed ]
	# The way of the link, in the run's log: lost (why), then online again.
	run jq -r 'select(.link) | [.link, .cause // empty] | join(" ")' "$T/run/log.ndjson"
	assert_line --index 4 online
	assert_line --index 5 "lost peer_closed"
	assert_line --index -2 online
	assert_line --index -1 "closed local"
	# The tool's events while away never reached kerf: validate names the gap.
	has_rec "$T/run/log.ndjson" '.stage == "kerf-validate" and (.msg | test("gap in sequence"))'
	[ "$(jq -r 'select(.type == "run_end") | .status' "$T"/run/journal/seg-*.ndjson)" = completed ]
	has_rec "$T/run/hsms.ndjson" '.dir == "in" and .sf == "S6F11"'
}

@test "under kerf run, a connection the tool drops without --reconnect fails the run, the lost link its named cause" {
	eq_start --drop-after 10
	st=0
	kerf run -C "$T/run" --no-project --acquire-arg=--connect --acquire-arg="hsms:127.0.0.1:$EQ_PORT" \
		--acquire-arg=--profile --acquire-arg=example-defects --acquire-arg=--lot --acquire-arg=LOT-DEF-0001 \
		< /dev/null > "$T/run.out" 2>&1 || st=$?
	[ "$st" -ne 0 ]
	[ "$(jq -r .state "$T/run/status.json")" = failed ]
	[ "$(jq -r '.outcome.cause | "\(.stage) \(.how)"' "$T/run/status.json")" = "kerf-acquire exit 69" ]
	[ "$(jq -r .outcome.cause.error "$T/run/status.json")" = "machine alarm 9001 (irrecoverable): machine connection lost: peer_closed" ]
	[ "$(jq -r '.stages[0].link | "\(.state) \(.cause)"' "$T/run/status.json")" = "lost peer_closed" ]
	# What was journaled before the loss stays: the stream closed as
	# --listen closes it (alarm 9001, wafer_end, run_end aborted).
	# What kerf-persist journaled before the teardown verifies, and is
	# the stream's first events with no seq left out (an event
	# kerf-detect adds, such as wafer_summary, shares the seq of the
	# event it comes from).
	kerf-persist --verify -C "$T/run"
	n=$(jq -r 'select(.stage == "kerf-persist" and .msg == "stats" and .final) | .journaled' "$T/run/log.ndjson")
	[ "$n" -gt 0 ]
	[ "$(jq -c 'select(.seq)' "$T"/run/journal/seg-*.ndjson | wc -l)" -eq "$n" ]
	run sh -c "jq -r 'select(.seq) | .seq' '$T'/run/journal/seg-*.ndjson | sort -n -u"
	assert_output "$(seq 1 "$(jq -r 'select(.seq) | .seq' "$T"/run/journal/seg-*.ndjson | sort -n | tail -n 1)")"
}

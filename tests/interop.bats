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
	wait_for -t 30 pid_gone "$host"
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

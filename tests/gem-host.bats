#!/usr/bin/env bats
# kerf-acquire as a GEM host (--connect / --listen hsms:, lib/gem_host.c,
# lib/acquire_hsms.c) against test peers of kerf's own:
# tests/unit/gem-equip (a scripted GEM equipment on lib/hsms and
# lib/secs: the acks, HCACKs and messages its options and script say)
# and tests/unit/hsms-raw (exact bytes, for tools that misbehave below
# GEM).  The interop tests against secs4js are in tests/interop.bats.
#
# Only 127.0.0.1 and ephemeral ports.  A timer is short only in the tests
# about its expiry; every wait is bounded polling.

load common

setup() {
	if [ -z "${KERF_UNIT:-}" ]; then
		case "$KERF_BIN" in
		*/build/san/bin) KERF_UNIT="$KERF_BIN/../tests" ;;
		*) KERF_UNIT="$BATS_TEST_DIRNAME/../build/release/tests" ;;
		esac
	fi
	EQUIP="$KERF_UNIT/gem-equip"
	RAW="$KERF_UNIT/hsms-raw"
	PROFILES="$BATS_TEST_DIRNAME/../profiles"
	GD="$DATA/gem-host"
	T="$BATS_TEST_TMPDIR"
	BG=()
}

teardown() {
	local p
	for p in "${BG[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

has() {
	grep -q -- "$2" "$1" 2>/dev/null
}

# count_is N FILE PATTERN: FILE has N lines matching PATTERN.
count_is() {
	[ "$(grep -c -- "$3" "$2" 2>/dev/null)" -eq "$1" ]
}

# has_record FILE FILTER: FILE has a JSON line that FILTER selects.
has_record() {
	[ -n "$(jq -c -R "fromjson? | select($2)" "$1" 2>/dev/null)" ]
}

# equip ARGS...: gem-equip in the background, output in $T/eq.out; its port in PORT.
equip() {
	"$EQUIP" "$@" >"$T/eq.out" 2>"$T/eq.err" &
	BG+=("$!")
	EQ_PID=$!
	wait_for has "$T/eq.out" '"event":"listening"'
	PORT=$(jq -r 'select(.event == "listening").port' "$T/eq.out")
}

# acquire PROFILE ARGS...: kerf-acquire --connect to the peer at PORT, in
# the foreground: events in $T/out.ndjson, log in $T/err.ndjson, status in ST.
acquire() {
	local profile=$1
	shift
	ST=0
	kerf-acquire --connect "hsms:127.0.0.1:$PORT" --profile "$profile" "$@" \
		>"$T/out.ndjson" 2>"$T/err.ndjson" || ST=$?
}

# acquire_bg PROFILE ARGS...: the same in the background; its pid in APID.
acquire_bg() {
	local profile=$1
	shift
	kerf-acquire --connect "hsms:127.0.0.1:$PORT" --profile "$profile" "$@" \
		>"$T/out.ndjson" 2>"$T/err.ndjson" &
	APID=$!
	BG+=("$APID")
}

# stop_bg: SIGTERM to kerf-acquire in the background; its status in ST.
stop_bg() {
	ST=0
	kill -TERM "$APID"
	wait "$APID" || ST=$?
}

# kill_bg: the test has seen what it waited for, and a scripted tool
# never ends its lot (a STOP would wait for its run_end): SIGKILL
# kerf-acquire in the background.
kill_bg() {
	kill -KILL "$APID"
	wait "$APID" || true
}

# frame HEADER BODY: an hsms-raw send line for one frame (hex, no spaces).
frame() {
	printf 'send %08x %s %s\n' $(((${#1} + ${#2}) / 2)) "$1" "$2"
}

# script_of SIM_ARGS...: the simulator's events ($T/sim.ndjson) as the
# S6F11 script of a tool numbered by profiles/kerf-sim.json ($T/script).
script_of() {
	kerf-acquire --sim "$@" >"$T/sim.ndjson" 2>/dev/null
	{ jq -r -f "$GD/sim2script.jq" "$T/sim.ndjson"; echo end; } >"$T/script"
}

@test "kerf-acquire --check-profile prints the profile's path and a one-line summary" {
	run --separate-stderr kerf-acquire --check-profile --profile "$PROFILES/kerf-sim.json"
	assert_success
	assert_line -n 0 "$PROFILES/kerf-sim.json"
	assert_line -n 1 --partial "kerf-sim: model KERF-SIM softrev 1, die images, 27 variables, 6 reports, 6 events"
	assert_line -n 1 --partial "commands start=START pause=PAUSE resume=RESUME stop=STOP abort=ABORT"
}

@test "a profile name is looked up in \$KERF_PROFILE_PATH first, then beside the program" {
	mkdir -p "$T/a" "$T/b"
	jq '.name = "mine"' "$PROFILES/kerf-sim.json" >"$T/b/kerf-sim.json"
	KERF_PROFILE_PATH="$T/a:$T/b" run --separate-stderr kerf-acquire --check-profile --profile kerf-sim
	assert_success
	assert_line -n 0 "$T/b/kerf-sim.json"
	assert_line -n 1 --partial "mine: model KERF-SIM"
	# Without it the source tree's profiles/ is found from bin/../profiles.
	KERF_PROFILE_PATH= run --separate-stderr kerf-acquire --check-profile --profile example-defects
	assert_success
	[ "${lines[0]}" -ef "$PROFILES/example-defects.json" ]
}

@test "an unknown profile name exits 64 naming every place looked in" {
	KERF_PROFILE_PATH="$T/none" run --separate-stderr kerf-acquire --check-profile --profile nosuch
	assert_failure 64
	[[ "$stderr" == *"no profile 'nosuch': looked for '$T/none/nosuch.json', "* ]]
}

@test "a bad profile is refused with exit 65 naming the key, before any connection" {
	jq '.reports["4"] += [99]' "$PROFILES/kerf-sim.json" >"$T/bad.json"
	run --separate-stderr kerf-acquire --check-profile --profile "$T/bad.json"
	assert_failure 65
	[[ "$stderr" == *"$T/bad.json: reports.4[7]: no variable 99"* ]]
	jq '.commands.start.params.SLOT = "slot"' "$PROFILES/kerf-sim.json" >"$T/bad2.json"
	PORT=$("$RAW" --free-port)
	acquire "$T/bad2.json"
	[ "$ST" -eq 65 ]
	has_record "$T/err.ndjson" '.reason == "bad_profile" and (.msg | test("commands.start: parameter .SLOT. takes .slot."))'
	! has_record "$T/err.ndjson" '.link'
}

@test "GEM host options are usage errors without --connect or --listen hsms:, and hsms: needs --profile" {
	run --separate-stderr kerf-acquire --sim --t3 5
	assert_failure 64
	[[ "$stderr" == *"--t3 is for the GEM host"* ]]
	run --separate-stderr kerf-acquire --connect hsms:127.0.0.1:5000
	assert_failure 64
	[[ "$stderr" == *"--connect hsms: needs --profile"* ]]
	run --separate-stderr kerf-acquire --connect tcp:127.0.0.1:5000 --profile kerf-sim
	assert_failure 64
	run --separate-stderr kerf-acquire --connect hsms:127.0.0.1:5000 --profile kerf-sim --t5 0
	assert_failure 64
	run --separate-stderr kerf-acquire --connect hsms:127.0.0.1:5000 --profile kerf-sim --device-id 40000
	assert_failure 64
}

@test "a tool that sends the simulated run through the kerf-sim profile gives the simulator's events, seq for seq" {
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	equip --script "$T/script"
	acquire kerf-sim --hsms-trace "$T/trace.ndjson"
	[ "$ST" -eq 0 ] || { cat "$T/err.ndjson"; false; }
	diff -u <(jq -cS 'del(.source)' "$T/sim.ndjson") <(jq -cS 'del(.source)' "$T/out.ndjson")
	[ "$(jq -r 'select(.type == "run_start").source' "$T/out.ndjson")" = hsms ]
	kerf-validate <"$T/out.ndjson" >/dev/null 2>"$T/val.err"
	! has_record "$T/val.err" '.lvl == "warn" or .lvl == "error"'
	wait_for pid_gone "$EQ_PID"
	has_record "$T/eq.out" '.event == "exit" and .host_left'
}

@test "the set-up follows the GEM session: S1F13 both ways, S1F1, S1F17, S2F37, S2F33 twice, S2F35, S2F37, S5F3, START" {
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	equip --script "$T/script"
	acquire kerf-sim --hsms-trace "$T/trace.ndjson"
	[ "$ST" -eq 0 ]
	run jq -r 'select(.dir == "out" and .sf != "S6F12") | .sf' "$T/trace.ndjson"
	assert_output "$(printf '%s\n' select.req S1F13 S1F14 S1F1 S1F17 S2F37 S2F33 S2F33 S2F35 S2F37 S5F3 S2F41 separate.req)"
	has_record "$T/trace.ndjson" '.sf == "S1F14" and .dir == "out" and .sml == "S1F14 <L [2] <B 0x00> <L [0]>>"'
	has_record "$T/trace.ndjson" '.sf == "S2F37" and .sml == "S2F37 W <L [2] <BOOLEAN FALSE> <L [0]>>"'
	has_record "$T/trace.ndjson" '.sf == "S2F33" and (.sml | test("^S2F33 W <L \\[2\\] <U4 [0-9]+> <L \\[0\\]>>$"))'
	has_record "$T/trace.ndjson" '.sf == "S2F33" and (.sml | contains("<L [2] <U4 4> <L [7] <U4 1> <U4 40> <U4 50> <U4 51> <U4 52> <U4 53> <U4 54>>>"))'
	has_record "$T/trace.ndjson" '.sf == "S2F35" and (.sml | contains("<L [2] <U4 120> <L [1] <U4 4>>>"))'
	has_record "$T/trace.ndjson" '.sf == "S5F3" and .sml == "S5F3 W <L [2] <B 0x80> <U4>>"'
	has_record "$T/trace.ndjson" '.sf == "S2F41" and (.sml | contains("<A \"START\"> <L [3] <L [2] <A \"LOTID\"> <A \"SIMLOT\">>"))'
	# Images are shortened in the trace; every record names its direction and system bytes.
	has_record "$T/trace.ndjson" '.sf == "S6F11" and .dir == "in" and .w and (.sml | contains("<B [256] ...>"))'
	[ -z "$(jq -c 'select((.t and .dir and .sf and (.sys | type == "number") and (.session | type == "number")) | not)' "$T/trace.ndjson")" ]
	for l in connecting connected selected communicating online closed; do
		has_record "$T/err.ndjson" ".link == \"$l\"" || { echo "no link $l"; false; }
	done
}

@test "a set-up step the tool refuses fails the run with exit 69, naming the step and the code" {
	equip --ack S2F36=5
	acquire kerf-sim
	[ "$ST" -eq 69 ]
	has_record "$T/err.ndjson" '.reason == "setup_failed" and .step == "S2F35 link reports" and .why == "LRACK 5 (a report does not exist)"'
	[ ! -s "$T/out.ndjson" ]
}

@test "ONLACK 2 (already online) is accepted; ONLACK 1 fails the set-up" {
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	equip --ack S1F18=2 --script "$T/script"
	acquire kerf-sim
	[ "$ST" -eq 0 ]
	has_record "$T/err.ndjson" '.gem == "already_online"'
	wait_for pid_gone "$EQ_PID"
	equip --ack S1F18=1
	acquire kerf-sim
	[ "$ST" -eq 69 ]
	has_record "$T/err.ndjson" '.step == "S1F17 go online" and .why == "ONLACK 1 (not allowed)"'
}

@test "a tool that refuses to enable every alarm at once gets the profile's alarms one by one" {
	jq '.alarms = {"7": {"category": "warning"}, "8": {}}' "$PROFILES/kerf-sim.json" >"$T/p.json"
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	equip --ack S5F4=1 --script "$T/script"
	acquire "$T/p.json" --hsms-trace "$T/trace.ndjson"
	[ "$ST" -eq 69 ]
	# gem-equip refuses every S5F3: the first of the one-by-one fails the set-up.
	has_record "$T/err.ndjson" '.gem == "alarms_one_by_one"'
	has_record "$T/trace.ndjson" '.sf == "S5F3" and .sml == "S5F3 W <L [2] <B 0x80> <U4 7>>"'
	has_record "$T/err.ndjson" '.step == "S5F3 enable alarms" and .why == "ACKC5 1 (error)"'
}

@test "START refused with HCACK 2 ends the run with exit 69 naming what the tool said" {
	equip --hcack START=2
	acquire kerf-sim
	[ "$ST" -eq 69 ]
	has_record "$T/err.ndjson" '.gem == "hcack" and .op == "start" and .hcack == 2 and .meaning == "cannot do now"'
	has_record "$T/err.ndjson" '.reason == "start_refused" and .lvl == "error"'
	[ ! -s "$T/out.ndjson" ]
}

@test "a reply that never comes: T3 is logged and the run fails with exit 69" {
	equip --silent S1F17
	acquire kerf-sim --t3 0.3
	[ "$ST" -eq 69 ]
	has_record "$T/err.ndjson" '.hsms == "t3" and .stream == 1 and .function == 17'
	has_record "$T/err.ndjson" '.reason == "setup_failed" and .step == "S1F17 go online" and .why == "no reply within T3"'
}

@test "the tool's S1F13 is enough when ours gets COMMACK 1" {
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	equip --ack S1F14=1 --script "$T/script"
	acquire kerf-sim
	[ "$ST" -eq 0 ]
	has_record "$T/err.ndjson" '.gem == "s1f13_failed" and .why == "S1F14 COMMACK 1 (denied)"'
}

@test "a tool that does not send S1F13 and denies ours fails the set-up" {
	equip --ack S1F14=1 --no-s1f13
	acquire kerf-sim
	[ "$ST" -eq 69 ]
	has_record "$T/err.ndjson" '.step == "S1F13 establish communications" and .why == "S1F14 COMMACK 1 (denied)"'
}

@test "a tool of another model is only a warning for now" {
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	equip --mdln OTHER-TOOL --softrev 9 --script "$T/script"
	acquire kerf-sim
	[ "$ST" -eq 0 ]
	has_record "$T/err.ndjson" '.gem == "model_mismatch" and .lvl == "warn" and .mdln == "OTHER-TOOL" and .profile_model == "KERF-SIM"'
	[ "$(jq -r 'select(.type == "run_start").tool' "$T/out.ndjson")" = kerf-sim ]
}

@test "a report with the wrong number of values makes a reject record, not a wrong event" {
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	# The wafer_end report (RPTID 5: t, wafer, slot, dies) with one value too few.
	sed -i 's/^\(S6F11 W <L <U4 [0-9]*> <U4 130> <L <L <U4 5> <L <A "[^"]*"> <A "W01">\) <U4 1>/\1/' "$T/script"
	grep -q '<U4 130> <L <L <U4 5> <L <A "[^"]*"> <A "W01"> <U4 52>>' "$T/script"
	equip --script "$T/script"
	KERF_RUNDIR="$T" acquire kerf-sim
	[ "$ST" -eq 0 ]
	has_record "$T/rejects.ndjson" '.reason == "bad_report" and .msg == "CEID 130 report 5 has 3 values, its definition 4" and (.raw | startswith("S6F11 W <L [3]"))'
	has_record "$T/err.ndjson" '.gem == "bad_report" and .lvl == "error"'
	# The tool's wafer_end was refused; kerf closes the wafer at run_end with the dies it saw.
	has_record "$T/err.ndjson" '.msg == "run_end with wafer '"'"'W01'"'"' open: wafer_end first"'
	[ "$(jq -c 'select(.type == "wafer_end" and .dies == 52 and .slot == 1)' "$T/out.ndjson" | wc -l)" -eq 1 ]
	# Every S6F11 was still answered.
	[ "$(grep -c '"sf":"S6F12"' "$T/eq.out")" -eq "$(grep -c '^S6F11' "$T/script")" ]
	has_record "$T/err.ndjson" '.msg == "stats" and .final and .rejected == 1'
}

@test "a value the profile's conversion refuses makes a bad_value reject" {
	printf '%s\n' 'S6F11 W <L <U4 1> <U4 100> <L <L <U4 1> <L <A "noon"> <A "r"> <A "L"> <A "R"> <A "T"> <U4 1> <F8 100> <F8 3> <F8 10000 10000> <F8 -50000 -50000> <U4 10> <U4 10> <U4 16 16> <F8 625> <U4 52> <U8 5>>>>>' end >"$T/script"
	equip --script "$T/script"
	KERF_RUNDIR="$T" acquire_bg kerf-sim
	wait_for test -s "$T/rejects.ndjson"
	kill_bg
	has_record "$T/rejects.ndjson" '.reason == "bad_value" and (.msg | startswith("CEID 100 report 1 VID 1 (t): '"'"'noon'"'"' is neither RFC 3339 UTC nor a SEMI clock"))'
}

@test "an unknown CEID is logged and ignored" {
	printf '%s\n' 'S6F11 W <L <U4 1> <U4 777> <L>>' 'S6F11 <L <A "2"> <A "778"> <L>>' end >"$T/script"
	equip --script "$T/script"
	acquire_bg kerf-sim
	wait_for count_is 2 "$T/eq.out" '"sf":"S6F12"'
	kill_bg
	has_record "$T/err.ndjson" '.gem == "unknown_ceid" and .ceid == 777'
	has_record "$T/err.ndjson" '.gem == "unknown_ceid" and .ceid == 778'
	[ "$(grep -c '"sf":"S6F12"' "$T/eq.out")" -eq 2 ]
}

@test "S5F1 without the W-bit is answered S5F2 <B 0> and becomes an alarm event" {
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	sed -i '5a S5F1 <L <B 0x86> <U2 4711> <A "Lamp hours above limit   ">>' "$T/script"
	equip --script "$T/script"
	acquire kerf-sim
	[ "$ST" -eq 0 ]
	has_record "$T/eq.out" '.event == "in" and .sf == "S5F2" and .sml == "S5F2 <B 0x00>"'
	has_record "$T/out.ndjson" '.type == "alarm" and .alid == 4711 and .text == "Lamp hours above limit" and .set and .category == "warning" and .critical == false and .alcd == 134'
	kerf-validate <"$T/out.ndjson" >/dev/null
}

@test "a critical alarm aborts the lot: ABORT to the tool, run_end aborted, exit 3" {
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	sed -i '8a S5F1 W <L <B 0x85> <U4 9> <A "Stage collision">>' "$T/script"
	equip --script "$T/script"
	acquire kerf-sim
	[ "$ST" -eq 3 ]
	has_record "$T/eq.out" '.event == "in" and .sf == "S2F41" and (.sml | contains("<A \"ABORT\">"))'
	run jq -r '[.type, .status // .category // ""] | join(" ")' "$T/out.ndjson"
	assert_line -n -3 "alarm irrecoverable"
	assert_line -n -2 "wafer_end "
	assert_line -n -1 "run_end aborted"
	kerf-validate <"$T/out.ndjson" >/dev/null
}

@test "S9Fx from the tool is logged as an error naming its meaning and the message it is about" {
	printf '%s\n' 'S9F5 <B 0x00 0x00 0x82 0x29 0x00 0x00 0x00 0x00 0x00 0x07>' 'S9F7 <B 0x00>' end >"$T/script"
	equip --script "$T/script"
	acquire_bg kerf-sim
	wait_for has_record "$T/err.ndjson" '.gem == "s9" and .function == 7'
	kill_bg
	has_record "$T/err.ndjson" '.gem == "s9" and .lvl == "error" and .meaning == "unknown function" and .about == "S2F41 (system bytes 00000007)"'
	has_record "$T/err.ndjson" '.gem == "s9" and .meaning == "illegal data"'
}

@test "an unknown primary from the tool is answered with SxF0, as a host does" {
	printf '%s\n' 'S64F1 W <L>' 'S2F17 W' 'S10F1 W <L <B 0> <A "hello operator">>' end >"$T/script"
	equip --script "$T/script"
	acquire_bg kerf-sim
	wait_for has "$T/eq.out" '"sf":"S10F2"'
	kill_bg
	has_record "$T/eq.out" '.event == "in" and .sml == "S64F0"'
	has_record "$T/err.ndjson" '.gem == "unknown_message" and .stream == 64 and .function == 1'
	has_record "$T/eq.out" '.event == "in" and .sf == "S2F18" and (.sml | test("<A \"[0-9]{16}\">"))'
	has_record "$T/err.ndjson" '.gem == "terminal" and .text == "hello operator"'
	! grep -q '"sf":"S9F' "$T/eq.out"
}

@test "SIGTERM before the tool started the lot exits 75 with nothing emitted" {
	equip --silent S2F41
	acquire_bg kerf-sim
	wait_for has "$T/eq.out" '"sf":"S2F41"'
	stop_bg
	[ "$ST" -eq 75 ]
	[ ! -s "$T/out.ndjson" ]
}

@test "no tool at the address: connect attempts every T5, then exit 69 after --ready-timeout" {
	PORT=$("$RAW" --free-port)
	acquire kerf-sim --ready-timeout 0.6 --t5 0.2
	[ "$ST" -eq 69 ]
	[ "$(jq -c 'select(.hsms == "connect_failed")' "$T/err.ndjson" | wc -l)" -ge 2 ]
	has_record "$T/err.ndjson" '.reason == "no_connection" and (.msg | contains("no connection with"))'
}

@test "a tool that accepts the connection but never selects: T7 closes it and the run fails with exit 69" {
	kerf-acquire --listen hsms:127.0.0.1:0 --profile kerf-sim --t7 0.3 >"$T/out.ndjson" 2>"$T/err.ndjson" &
	local pid=$!
	wait_for has_record "$T/err.ndjson" '.hsms == "listening"'
	PORT=$(jq -r 'select(.hsms == "listening").port' "$T/err.ndjson")
	run "$RAW" "127.0.0.1:$PORT" <<<'eof 10'
	assert_output "$(printf 'connected\neof\ndone')"
	wait "$pid" || ST=$?
	[ "$ST" -eq 69 ]
	has_record "$T/err.ndjson" '.hsms == "closed" and .cause == "t7"'
	has_record "$T/err.ndjson" '.link == "lost" and .cause == "t7"'
	has_record "$T/err.ndjson" '.reason == "connection_lost" and .cause == "t7"'
}

@test "a tool that never answers Select.req: T6 closes the link and the run fails with exit 69" {
	"$RAW" --listen 127.0.0.1:0 <<<'eof 10' >"$T/raw.out" &
	BG+=("$!")
	wait_for has "$T/raw.out" listening
	PORT=$(awk '/^listening/ { print $2 }' "$T/raw.out")
	acquire kerf-sim --t6 0.3
	[ "$ST" -eq 69 ]
	has_record "$T/err.ndjson" '.hsms == "closed" and .cause == "t6"'
	has_record "$T/err.ndjson" '.reason == "connection_lost" and .cause == "t6"'
}

@test "garbage bytes from the tool drop the link as a protocol error: exit 69 naming it" {
	printf '%s\n' 'wait 1' 'send 0000000a ffff 0000 0002 $SYS' 'wait 2' 'send 00000003 ffffff' 'eof 10' |
		"$RAW" --listen 127.0.0.1:0 >"$T/raw.out" &
	BG+=("$!")
	wait_for has "$T/raw.out" listening
	PORT=$(awk '/^listening/ { print $2 }' "$T/raw.out")
	acquire kerf-sim
	[ "$ST" -eq 69 ]
	has_record "$T/err.ndjson" '.hsms == "closed" and .cause == "protocol_error"'
	has_record "$T/err.ndjson" '.reason == "connection_lost" and .cause == "protocol_error"'
}

@test "hostile messages from the tool keep kerf-acquire's peak memory small" {
	# After select: an S6F11 whose lists claim 16 million items each; one
	# whose column is an array of 300000 U4 (1.2 MB) in a report of the
	# right length; then a length prefix of 2 GB, which ends the link.
	local hdr=0000860b000000000070 big
	big=$(head -c 1200000 /dev/zero | od -An -v -tx1 | tr -d ' \n')
	{
		echo 'wait 1'
		echo 'send 0000000a ffff 0000 0002 $SYS'
		echo 'wait 2'
		frame "$hdr" 03ffffff03ffffff03ffffff0000
		frame 0000860b000000000071 "0103a50101a5017801010102a50104010741143230"`
			`"32362d30312d30355430363a30303a30305a410157b3124f80${big}a50101a50101a50101210100"
		echo 'sleep 300'
		echo 'send 7fffffff 0000 860b 0000 00000072'
		echo 'eof 10'
	} >"$T/hostile"
	"$RAW" --listen 127.0.0.1:0 <"$T/hostile" >"$T/raw.out" &
	BG+=("$!")
	wait_for has "$T/raw.out" listening
	PORT=$(awk '/^listening/ { print $2 }' "$T/raw.out")
	ST=0
	KERF_RUNDIR="$T" ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=0" /usr/bin/time -f %M -o "$T/rss" \
		kerf-acquire --connect "hsms:127.0.0.1:$PORT" --profile kerf-sim >"$T/out.ndjson" 2>"$T/err.ndjson" || ST=$?
	[ "$ST" -eq 69 ]
	has_record "$T/err.ndjson" '.hsms == "frame_too_long"'
	has_record "$T/rejects.ndjson" '.reason == "bad_report" and (.msg | contains("does not decode"))'
	has_record "$T/rejects.ndjson" '.reason == "bad_value" and (.msg | contains("VID 50 (col): more than 65536 elements"))'
	echo "peak RSS $(tail -1 "$T/rss") KB"
	# ASan's shadow memory makes the sanitizer build's figure meaningless.
	if [[ "$KERF_BIN" != */san/* ]]; then
		[ "$(tail -1 "$T/rss")" -lt 40000 ]
	fi
}

@test "--listen hsms: makes kerf the passive side: a tool that connects runs its lot" {
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	kerf-acquire --listen hsms:127.0.0.1:0 --profile kerf-sim >"$T/out.ndjson" 2>"$T/err.ndjson" &
	local pid=$!
	wait_for has_record "$T/err.ndjson" '.hsms == "listening"'
	PORT=$(jq -r 'select(.hsms == "listening").port' "$T/err.ndjson")
	"$EQUIP" --active "127.0.0.1:$PORT" --script "$T/script" >"$T/eq.out" 2>"$T/eq.err" &
	BG+=("$!")
	wait "$pid" || ST=$?
	[ "${ST:-0}" -eq 0 ]
	diff -u <(jq -cS 'del(.source)' "$T/sim.ndjson") <(jq -cS 'del(.source)' "$T/out.ndjson")
}

@test "--device-id sets the session id of every data message" {
	script_of --diameter 100 --die-px 16 --wafers 1 --seed 5
	equip --device-id 7 --script "$T/script"
	acquire kerf-sim --device-id 7 --hsms-trace "$T/trace.ndjson"
	[ "$ST" -eq 0 ]
	[ -z "$(jq -c 'select(.sf | startswith("S")) | select(.session != 7)' "$T/trace.ndjson")" ]
}

@test "kerf-acquire as the host of kerf-tool, the simulated tool on the wire, gets kerf-acquire --sim's lot" {
	kerf-tool --listen hsms:127.0.0.1:0 --seed 7 --diameter 100 --die-px 16 --max-seconds 60 \
		>"$T/tool.out" 2>"$T/tool.err" &
	BG+=("$!")
	wait_for test -s "$T/tool.out"
	PORT=$(jq -r '.listen | sub(".*:"; "")' "$T/tool.out")
	acquire kerf-sim --wafers 2
	[ "$ST" -eq 0 ] || { grep -v stats "$T/err.ndjson" | tail; false; }
	kerf-acquire --sim --seed 7 --wafers 2 --diameter 100 --die-px 16 >"$T/sim.ndjson" 2>/dev/null
	# kerf-tool's clock is the wall clock; everything else is the same, seq for seq.
	diff -u <(jq -cS 'del(.source, .t)' "$T/sim.ndjson") <(jq -cS 'del(.source, .t)' "$T/out.ndjson")
}

@test "a critical alarm before the tool's run_start aborts the lot at once: exit 3, nothing written" {
	printf '%s\n' 'S5F1 W <L <B 0x81> <U4 9> <A "Door open">>' end >"$T/script"
	equip --script "$T/script"
	acquire kerf-sim
	[ "$ST" -eq 3 ]
	has_record "$T/eq.out" '.event == "in" and .sf == "S2F41" and (.sml | contains("<A \"ABORT\">"))'
	has_record "$T/err.ndjson" '.msg == "critical alarm 9: aborting the lot"'
	[ ! -s "$T/out.ndjson" ]
}

@test "a run_end without a run_start (a profile with the wrong CEID) exits 65 with nothing written" {
	printf '%s\n' 'S6F11 W <L <U4 1> <U4 190> <L <L <U4 6> <L <A "2026-01-05T06:00:05.34Z"> <A "completed"> <U4 1> <U4 52>>>>>' end >"$T/script"
	equip --script "$T/script"
	acquire kerf-sim
	[ "$ST" -eq 65 ]
	has_record "$T/err.ndjson" '.reason == "no_run_start" and (.msg | contains("CEID 100"))'
	[ ! -s "$T/out.ndjson" ]
}

@test "an HSMS run's final stats record carries the S6F11-to-stdout latency, lat_p50_us <= lat_p99_us; --sim's carries none" {
	kerf-tool --listen hsms:127.0.0.1:0 --seed 7 --diameter 100 --die-px 16 --max-seconds 60 \
		>"$T/tool.out" 2>"$T/tool.err" &
	BG+=("$!")
	wait_for test -s "$T/tool.out"
	PORT=$(jq -r '.listen | sub(".*:"; "")' "$T/tool.out")
	KERF_LOG=json acquire kerf-sim --wafers 1
	[ "$ST" -eq 0 ] || { grep -v stats "$T/err.ndjson" | tail; false; }
	has_record "$T/err.ndjson" '.msg == "stats" and .final and .out > 0 and
		(.lat_p50_us | type) == "number" and (.lat_p99_us | type) == "number" and
		.lat_p50_us <= .lat_p99_us'
	KERF_LOG=json kerf-acquire --sim --seed 7 --wafers 1 --diameter 100 --die-px 16 >/dev/null 2>"$T/sim.err"
	has_record "$T/sim.err" '.msg == "stats" and .final and .out > 0 and
		(has("lat_p50_us") or has("lat_p99_us") | not)'
}

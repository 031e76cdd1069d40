#!/usr/bin/env bats
# kerf-tool: the simulated inspection tool as a GEM equipment over
# HSMS-SS.  These tests need no Node.js: the host is lib/hsms's own test
# endpoint (tests/unit/hsms-node: it sends a list of messages once
# selected and prints every reply), or a raw peer that answers nothing
# (tests/unit/hsms-raw).  The whole sessions against an independent GEM
# host (secs4js) are in tests/interop.bats.
#
# Only 127.0.0.1 and ephemeral ports; every wait is bounded polling.

load common
load tool

REPO="$BATS_TEST_DIRNAME/.."

setup() {
	T="$BATS_TEST_TMPDIR"
	BG=()
}

teardown() {
	tool_cleanup
}

# host MSG...: lib/hsms's test endpoint as the host, connected to $TOOL_PORT;
# once selected it sends every MSG ("S2F41W <L <A \"START\"> <L>>": the
# message, W for the W-bit, then the body in SML) in order, without
# waiting for the replies.  Its events in $T/host.out.
host() {
	local args=() m sf body hex
	for m in "$@"; do
		sf=${m%% *}
		body=""
		[ "$sf" = "$m" ] || body=${m#* }
		hex=$(printf '%s' "$body" | "$KERF_UNIT/t-secs" encode | tr -d ' \n')
		args+=(--send "$sf${hex:+:$hex}")
	done
	"$KERF_UNIT/hsms-node" --active "127.0.0.1:$TOOL_PORT" --t3 60 "${args[@]}" > "$T/host.out" 2> "$T/host.err" &
	BG+=("$!")
}

# count FILTER: how many events of the host FILTER selects.
count() {
	jq -c "select($1)" "$T/host.out" 2>/dev/null | wc -l
}

# replies_ge N: the host has N replies.
replies_ge() {
	[ "$(count '.event == "reply"')" -ge "$1" ]
}

# sml FILTER [K]: the body of the K-th (from 1) host event FILTER selects, as SML.
sml() {
	jq -r "select($1) | .body" "$T/host.out" | sed -n "${2:-1}p" | "$KERF_UNIT/t-secs" decode | sed -E 's/^ok ?//'
}

# answer REQUEST [K]: the tool's answer to the K-th REQUEST ("S2F41") as "SxFy SML".
answer() {
	jq -r --arg r "$1" 'select(.event == "reply" and .request == $r) | "S\(.stream)F\(.function) \(.body)"' \
		"$T/host.out" | sed -n "${2:-1}p" | {
		read -r sf hex
		printf '%s %s\n' "$sf" "$(printf '%s' "$hex" | "$KERF_UNIT/t-secs" decode | sed -E 's/^ok ?//')"
	}
}

SETUP=('S1F13W <L>' 'S1F17W')

@test "kerf-tool --help prints its usage on stdout, and kerf-tool(1) names every option in it" {
	run --separate-stderr kerf-tool --help
	assert_success
	[ -z "$stderr" ]
	assert_line --index 0 'Usage: kerf-tool [--listen hsms:HOST:PORT] [OPTION]...'
	page=$(mandoc -Tascii "$REPO/man/kerf-tool.1" | col -b)
	for o in $(grep -oE -- '--[a-z][a-z0-9-]*' <<< "$output" | sort -u); do
		grep -qF -- "$o" <<< "$page" || { echo "kerf-tool(1) does not name $o"; false; }
	done
}

@test "kerf-tool refuses a bad command line with exit 64 and a message on stderr" {
	for args in "--listen 127.0.0.1:5000" "--listen hsms:127.0.0.1" "--listen hsms:127.0.0.1:70000" \
		"--listen hsms:::1:5000" "--listen hsms:127.0.0.1:0 --connect hsms:127.0.0.1:5000" "--t3 0" \
		"--t6 soon" "--device-id 40000" "--wafers 30" "--inject alarm@5:1:nope" "--inject crash@5" \
		"--seed -1" "--lot ''" "--bogus" "extra"; do
		eval "run --separate-stderr kerf-tool $args"
		[ "$status" -eq 64 ] || { echo "kerf-tool $args: exit $status"; false; }
		[ -z "$output" ]
		[[ "$stderr" == kerf-tool:* ]] || { echo "kerf-tool $args: $stderr"; false; }
	done
}

@test "kerf-tool prints the address it listens on as its first line and ends after --max-seconds with exit 0" {
	run --separate-stderr kerf-tool --listen hsms:127.0.0.1:0 --max-seconds 0.2
	assert_success
	assert_equal "${#lines[@]}" 1
	assert_output --regexp '^\{"listen":"127\.0\.0\.1:[0-9]+"\}$'
	[ "$(jq -r '.listen | sub(".*:"; "") | tonumber > 0' <<< "$output")" = true ]
}

@test "kerf-tool ends on SIGTERM with exit 0, saying so in its log" {
	tool_start
	tool_stop
	grep -q '"msg":"stopped by a signal"' "$T/tool.err"
}

@test "kerf-tool exits 69 when it cannot listen on its address" {
	tool_start
	run --separate-stderr kerf-tool --listen "hsms:127.0.0.1:$TOOL_PORT" --max-seconds 5
	assert_equal "$status" 69
	[[ "$stderr" == *"cannot listen on '127.0.0.1:$TOOL_PORT'"* ]]
}

@test "kerf-tool exits 74 when --truth or --hsms-trace cannot be opened" {
	run --separate-stderr kerf-tool --listen hsms:127.0.0.1:0 --truth "$T/no/such/dir/truth"
	assert_equal "$status" 74
	[[ "$stderr" == *"cannot open '$T/no/such/dir/truth'"* ]]
	run --separate-stderr kerf-tool --listen hsms:127.0.0.1:0 --hsms-trace "$T/no/such/dir/trace"
	assert_equal "$status" 74
}

@test "kerf-tool exits 64 when its lot's geometry holds no die" {
	run --separate-stderr kerf-tool --listen hsms:127.0.0.1:0 --diameter 50 --pitch 100000
	assert_equal "$status" 64
}

@test "kerf-tool finds a profile by name in KERF_PROFILE_PATH and names its model in S1F13" {
	mkdir "$T/p"
	jq '.model = "CUSTOM-7" | .softrev = "9.9"' "$REPO/profiles/kerf-sim.json" > "$T/p/custom.json"
	KERF_PROFILE_PATH="$T/nothing:$T/p" tool_start --profile custom
	host "${SETUP[@]}" 'S1F1W'
	wait_for replies_ge 3
	run sml '.event == "message" and .stream == 1 and .function == 13'
	assert_output '<L [2] <A "CUSTOM-7"> <A "9.9">>'
	run answer S1F1
	assert_output 'S1F2 <L [2] <A "CUSTOM-7"> <A "9.9">>'
	tool_stop
}

@test "kerf-tool exits 64 naming where it looked for a profile that is nowhere, 65 for a profile that is not valid" {
	run --separate-stderr env KERF_PROFILE_PATH="$T/a:$T/b" kerf-tool --listen hsms:127.0.0.1:0 --profile nosuch
	assert_equal "$status" 64
	[[ "$stderr" == *"no profile 'nosuch': looked for '$T/a/nosuch.json', '$T/b/nosuch.json', "* ]]
	jq 'del(.events["190"])' "$REPO/profiles/kerf-sim.json" > "$T/bad.json"
	run --separate-stderr kerf-tool --listen hsms:127.0.0.1:0 --profile "$T/bad.json"
	assert_equal "$status" 65
	[[ "$stderr" == *"a run_start and a run_end event are needed"* ]]
}

@test "kerf-tool sends its own S1F13 right after select and answers the host's with COMMACK 0 and its model" {
	tool_start
	host 'S1F13W <L>'
	wait_for replies_ge 1
	run sml '.event == "message" and .stream == 1 and .function == 13'
	assert_output '<L [2] <A "KERF-SIM"> <A "1">>'
	run answer S1F13
	assert_output 'S1F14 <L [2] <B 0x00> <L [2] <A "KERF-SIM"> <A "1">>>'
	tool_stop
}

@test "kerf-tool answers SxF0 before communication and while offline; S1F17 gives ONLACK 0, then 2; S1F15 goes offline" {
	tool_start
	host 'S2F37W <L <BOOLEAN TRUE> <L>>' 'S1F13W <L>' 'S2F37W <L <BOOLEAN TRUE> <L>>' 'S1F17W' \
		'S2F37W <L <BOOLEAN TRUE> <L>>' 'S1F17W' 'S1F15W' 'S2F37W <L <BOOLEAN TRUE> <L>>'
	wait_for replies_ge 8
	run answer S2F37 1
	assert_output 'S2F0 '
	run answer S2F37 2
	assert_output 'S2F0 '
	run answer S2F37 3
	assert_output 'S2F38 <B 0x00>'
	run answer S1F17 1
	assert_output 'S1F18 <B 0x00>'
	run answer S1F17 2
	assert_output 'S1F18 <B 0x02>'
	run answer S1F15
	assert_output 'S1F16 <B 0x00>'
	run answer S2F37 4
	assert_output 'S2F0 '
	grep -q '"gem":"control","state":"offline","prev":"online_remote"' "$T/tool.err"
	tool_stop
}

@test "kerf-tool answers an unknown stream with S9F3, an unknown function with S9F5, a body without the message's structure with S9F7" {
	tool_start
	host "${SETUP[@]}" 'S8F1W' 'S2F99W' 'S2F33W <L <U4 1>>' 'S2F41W <A "START">' 'S1F1W'
	wait_for replies_ge 3
	wait_for test "$(count '.event == "message" and .stream == 9')" -ge 4
	run jq -r 'select(.event == "message" and .stream == 9) | .function' "$T/host.out"
	assert_output "$(printf '3\n5\n7\n7')"
	# Each S9 names the header of the message it is about (stream|W, function).
	run sml '.event == "message" and .stream == 9' 1
	assert_output --regexp '^<B 0x00 0x00 0x88 0x01 '
	run answer S1F1
	assert_output 'S1F2 <L [2] <A "KERF-SIM"> <A "1">>'
	tool_stop
}

@test "kerf-tool refuses report definitions, links and enables it cannot take, changing nothing" {
	tool_start
	host "${SETUP[@]}" \
		'S2F33W <L <U4 1> <L <L <U4 7> <L <U4 1> <U4 50>>>>>' \
		'S2F33W <L <U4 2> <L <L <U4 8> <L <U4 1>>> <L <U4 7> <L <U4 51>>>>>' \
		'S2F33W <L <U4 3> <L <L <U4 9> <L <U4 1> <U4 999>>>>>' \
		'S2F33W <L <U4 4> <L <L <F4 1.5> <L <U4 1>>>>>' \
		'S2F35W <L <U4 5> <L <L <U4 999> <L <U4 7>>>>>' \
		'S2F35W <L <U4 6> <L <L <U4 120> <L <U4 8>>>>>' \
		'S2F35W <L <U4 7> <L <L <A "120"> <L <U1 7>>>>>' \
		'S2F35W <L <U4 8> <L <L <U4 120> <L <U4 7>>>>>' \
		'S2F37W <L <BOOLEAN TRUE> <L <U4 120> <U4 999>>>' \
		'S2F33W <L <U4 9> <L <L <U4 8> <L <U4 1>>>>>'
	wait_for replies_ge 12
	for k in 1:0x00 2:0x03 3:0x04 4:0x02 5:0x00; do
		run answer S2F33 "${k%:*}"
		assert_output "S2F34 <B ${k#*:}>"
	done
	# The second S2F33 was refused whole: report 8 was not defined then.
	for k in 1:0x04 2:0x05 3:0x00 4:0x03; do
		run answer S2F35 "${k%:*}"
		assert_output "S2F36 <B ${k#*:}>"
	done
	run answer S2F37
	assert_output 'S2F38 <B 0x01>'
	tool_stop
}

@test "kerf-tool answers remote commands with HCACK 1, 2, 3 and 5 where they cannot be done, 0 for START" {
	# The lot must still run when the first ABORT comes: after its first
	# die it waits for a command it carries out (that ABORT).
	tool_start --wafers 1 --diameter 100 --rate 1 --inject wait@1
	host "${SETUP[@]}" \
		'S2F41W <L <A "FLY"> <L>>' \
		'S2F41W <L <A "PAUSE"> <L>>' \
		'S2F41W <L <A "START"> <L <L <A "WAFERS"> <U4 30>> <L <A "COLOUR"> <A "red">> <L <A "LOTID"> <U4 7>>>>' \
		'S2F41W <L <A "START"> <L <L <A "LOTID"> <A "LOT-9">> <L <A "WAFERS"> <A "1">>>>' \
		'S2F41W <L <A "START"> <L>>' \
		'S2F41W <L <A "RESUME"> <L>>' \
		'S2F41W <L <A "ABORT"> <L>>' \
		'S2F41W <L <A "ABORT"> <L>>' \
		'S2F41W <L <A "PAUSE"> <L>>'
	wait_for replies_ge 11
	run answer S2F41 1
	assert_output 'S2F42 <L [2] <B 0x01> <L [0]>>'
	run answer S2F41 2
	assert_output 'S2F42 <L [2] <B 0x02> <L [0]>>'
	run answer S2F41 3
	assert_output 'S2F42 <L [2] <B 0x03> <L [3] <L [2] <A "WAFERS"> <B 0x02>> <L [2] <A "COLOUR"> <B 0x01>> <L [2] <A "LOTID"> <B 0x03>>>>'
	run answer S2F41 4
	assert_output 'S2F42 <L [2] <B 0x00> <L [0]>>'
	run jq -c '[.run, .lot, .recipe, .wafers]' < <(grep '"gem":"lot_start"' "$T/tool.err")
	assert_output '["sim-1","LOT-9","sim-default",1]'
	run answer S2F41 5
	assert_output 'S2F42 <L [2] <B 0x05> <L [0]>>'
	run answer S2F41 6
	assert_output 'S2F42 <L [2] <B 0x05> <L [0]>>'
	run answer S2F41 7
	assert_output 'S2F42 <L [2] <B 0x00> <L [0]>>'
	run answer S2F41 8
	assert_output 'S2F42 <L [2] <B 0x05> <L [0]>>'
	run answer S2F41 9
	assert_output 'S2F42 <L [2] <B 0x02> <L [0]>>'
	tool_stop
}

@test "kerf-tool goes on with the lot when the host never answers its S6F11: T3 logged, S9F9 sent" {
	frame() { # frame STREAM FUNCTION W SYS [SML]: a data frame (session 0) as hex
		local body=""
		[ -z "${5:-}" ] || body=$(printf '%s' "$5" | "$KERF_UNIT/t-secs" encode | tr -d ' \n')
		printf 'send %08x 0000 %02x%02x 0000 %08x %s\n' $((10 + ${#body} / 2)) $(($1 | $3 * 128)) "$2" "$4" "$body"
	}
	tool_start --wafers 1 --diameter 100 --t3 0.3
	{
		echo 'send 0000000a ffff 0000 0001 00000001'
		echo 'wait 2'
		echo 'send 0000000c 0000 010e 0000 $SYS 0100'  # S1F14 <L> to the tool's S1F13
		frame 1 13 1 2 '<L>'
		frame 1 17 1 3
		frame 2 33 1 4 '<L <U4 1> <L <L <U4 7> <L <U4 50> <U4 51>>>>>'
		frame 2 35 1 5 '<L <U4 2> <L <L <U4 120> <L <U4 7>>>>>'
		frame 2 37 1 6 '<L <BOOLEAN TRUE> <L <U4 120>>>'
		frame 2 41 1 7 '<L <A "START"> <L>>'
		# select.rsp, S1F13, S1F14, S1F18, S2F34, S2F36, S2F38, S2F42,
		# then S6F11, S9F9 (T3), S6F11, S9F9, S6F11
		echo 'wait 13 20'
	} > "$T/script"
	"$KERF_UNIT/hsms-raw" "127.0.0.1:$TOOL_PORT" < "$T/script" > "$T/raw.out" 2> "$T/raw.err"
	# S6F11 (0x86 0x0b) then S9F9 (0x09 0x09) about it, and the next S6F11.
	run awk '$1 == "in" { print $3 $4 }' "$T/raw.out"
	assert_line --index 8 860b
	assert_line --index 9 0909
	assert_line --index 10 860b
	wait_for grep -q '"msg":"no answer to S6F11 (t3): it is lost, the lot goes on"' "$T/tool.err"
	tool_stop
}

# kerf run over HSMS: kerf-acquire --connect to kerf-tool, as the README's tour does.
HSMS_RUN=(--wafers 2 --acquire-arg=--profile --acquire-arg=kerf-sim --acquire-arg=--connect)

@test "kerf run over HSMS against kerf-tool writes the KLARF files, maps and defects of kerf run on the simulator with the same seed" {
	tool_start --seed 7 --diameter 100 --die-px 16 --defect-rate 0.5
	kerf run -C "$T/gem" "${HSMS_RUN[@]}" --acquire-arg="hsms:127.0.0.1:$TOOL_PORT" \
		< /dev/null > "$T/gem.out" 2>&1 || { cat "$T/gem.out"; false; }
	tool_stop
	kerf run -C "$T/sim" --wafers 2 --seed 7 --acquire-arg=--diameter=100 --acquire-arg=--die-px=16 \
		--acquire-arg=--defect-rate=0.5 < /dev/null > "$T/sim.out" 2>&1 || { cat "$T/sim.out"; false; }
	# The run's name (its directory's) is in each KLARF's DeviceID and
	# each map's caption; nothing else may differ.
	[ "$(ls "$T/sim/klarf" | wc -l)" -eq 2 ]
	[ "$(ls "$T/sim/wafermap"/*.svg | wc -l)" -eq 2 ]
	diff -u <(cd "$T/sim" && ls klarf wafermap) <(cd "$T/gem" && ls klarf wafermap)
	for f in "$T"/sim/klarf/* "$T"/sim/wafermap/*; do
		diff -u <(sed -E 's/(DeviceID "|run )sim/\1RUN/' "$f") <(sed -E 's/(DeviceID "|run )gem/\1RUN/' "$T/gem/${f#"$T/sim/"}")
	done
	# The same defects, journaled; the tool's come with source hsms.
	defects() { cat "$1"/journal/seg-*.ndjson | jq -c 'select(.type == "defect") | del(.run, .id, .source, .t)'; }
	[ "$(defects "$T/sim" | wc -l)" -gt 0 ]
	diff -u <(defects "$T/sim") <(defects "$T/gem")
	[ "$(jq -r 'select(.type == "run_start") | .source' "$T"/gem/journal/seg-*.ndjson)" = hsms ]
}

@test "kerf run over HSMS logs every HSMS message in RUNDIR/hsms.ndjson and the tool link in status.json and kerf status" {
	tool_start --seed 7 --diameter 100 --die-px 16
	kerf run -C "$T/gem" "${HSMS_RUN[@]}" --acquire-arg="hsms:127.0.0.1:$TOOL_PORT" --no-project \
		< /dev/null > "$T/gem.out" 2>&1 || { cat "$T/gem.out"; false; }
	# One record per message, in both directions: every S6F11 the tool
	# sent (as its own trace has them), each answered with S6F12.
	sent=$(jq -c 'select(.dir == "out" and .sf == "S6F11")' "$T/trace.ndjson" | wc -l)
	[ "$sent" -gt 100 ]
	[ "$(jq -c 'select(.dir == "in" and .sf == "S6F11" and .w == true)' "$T/gem/hsms.ndjson" | wc -l)" -eq "$sent" ]
	[ "$(jq -c 'select(.dir == "out" and .sf == "S6F12")' "$T/gem/hsms.ndjson" | wc -l)" -eq "$sent" ]
	[ "$(jq -r 'select(.sf == "S2F41") | .sml' "$T/gem/hsms.ndjson" | head -n1)" != "" ]
	# The link's way, logged by the stage; its last word in status.json.
	run jq -r 'select(.link) | .link' "$T/gem/log.ndjson"
	assert_output "$(printf '%s\n' connecting connected selected communicating online closed)"
	[ "$(jq -r '.stages[0].link.state' "$T/gem/status.json")" = closed ]
	jq -e '.stages[0].link.since | test("^20[0-9-]+T")' "$T/gem/status.json"
	[ "$(jq -r '.stages[1] | has("link")' "$T/gem/status.json")" = false ]
	run kerf status -C "$T/gem"
	assert_success
	assert_line --regexp '^tool link: closed \(local\) since 20[0-9-]+T.*, stage kerf-acquire$'
}

@test "kerf status and status.json show the tool link online while an HSMS run goes on, and lost with its cause when the tool goes away" {
	tool_start --seed 7 --diameter 100 --die-px 16 --wafers 25 --rate 100
	kerf run -C "$T/gem" "${HSMS_RUN[@]}" --wafers 25 --acquire-arg="hsms:127.0.0.1:$TOOL_PORT" --no-project \
		< /dev/null > "$T/gem.out" 2>&1 &
	KPID=$!
	BG+=("$KPID")
	link_is() { [ "$(jq -r '.stages[0].link.state' "$T/gem/status.json" 2>/dev/null)" = "$1" ]; }
	wait_for link_is online
	# The lot has begun (a die has come): the loss below cuts a run, so
	# it is a critical alarm in the stream, not a failed connection.
	dies_came() { jq -e '.stages[0].counters.dies >= 1' "$T/gem/status.json" >/dev/null 2>&1; }
	wait_for dies_came
	# The tool is frozen from here on, so the lot cannot end before it
	# goes away, however slow the machine.
	kill -STOP "$TOOL_PID"
	run kerf status -C "$T/gem"
	assert_line --regexp '^tool link: online since .*, stage kerf-acquire$'
	# The tool dies: the run fails naming the lost link, and the link's
	# last state says why.
	kill -KILL "$TOOL_PID"
	st=0
	wait_for pid_gone "$KPID"
	wait "$KPID" || st=$?
	[ "$st" -ne 0 ]
	[ "$(jq -r .state "$T/gem/status.json")" = failed ]
	[ "$(jq -r '.stages[0].link | "\(.state) \(.cause)"' "$T/gem/status.json")" = "lost peer_closed" ]
	[ "$(jq -r .outcome.cause.error "$T/gem/status.json")" = "machine alarm 9001 (irrecoverable): machine connection lost: peer_closed" ]
	run kerf status -C "$T/gem"
	assert_line --regexp '^tool link: lost \(peer_closed\) since .*, stage kerf-acquire$'
}

@test "over HSMS, kerf pause prints the tool's refusal and the run stays running; kerf stop --wait prints the tool's confirmation" {
	# The lot must not end before the stop, however slow the machine:
	# after its 30th die the tool waits for a command it carries out (the
	# refused pause is not one; the stop is).
	tool_start --seed 7 --diameter 100 --die-px 16 --wafers 25 --rate 100 --inject refuse@pause:2 --inject wait@30
	kerf run -C "$T/gem" "${HSMS_RUN[@]}" --acquire-arg="hsms:127.0.0.1:$TOOL_PORT" --no-project \
		< /dev/null > "$T/gem.out" 2>&1 &
	KPID=$!
	BG+=("$KPID")
	run_is() { [ "$(jq -r .state "$T/gem/status.json" 2>/dev/null)" = "$1" ]; }
	wait_for run_is running
	run kerf pause -C "$T/gem"
	[ "$status" -eq 75 ]
	assert_output --regexp '^pause refused by the tool: cannot do now \(command [0-9]+\)$'
	run_is running
	[ "$(jq -r '.command | "\(.op) \(.fate) \(.hcack)"' "$T/gem/status.json")" = "pause refused 2" ]
	run kerf stop --wait -C "$T/gem"
	assert_success
	assert_output --regexp '^stop confirmed by the tool: run_end stopped \(command [0-9]+\); run cancelled, exit 130$'
	run jq -r 'select(.kind == "command" and .op != "start" and .fate != "queued") | "\(.op) \(.fate) \(.fate_by)"' \
		"$T/gem/timeline.ndjson"
	assert_output "$(printf '%s\n' 'pause requested kerf' 'pause sent tool' 'pause refused tool' \
		'stop requested kerf' 'stop sent tool' 'stop accepted tool' 'stop confirmed tool')"
}

@test "over HSMS, a stop the tool refuses while START is unconfirmed changes nothing: START's time-out fails the run, named" {
	tool_start --seed 7 --diameter 100 --die-px 16 --inject ignore@start
	kerf run -C "$T/gem" "${HSMS_RUN[@]}" --acquire-arg="hsms:127.0.0.1:$TOOL_PORT" --no-project \
		--acquire-arg=--confirm-timeout=3s < /dev/null > "$T/gem.out" 2>&1 &
	KPID=$!
	BG+=("$KPID")
	start_accepted() { jq -e '.commands[]? | select(.op == "start" and .fate == "accepted")' "$T/gem/status.json" >/dev/null 2>&1; }
	wait_for start_accepted
	run kerf stop --wait -C "$T/gem"
	[ "$status" -eq 75 ]
	assert_output --regexp '^stop refused by the tool: cannot do now \(command [0-9]+\)$'
	st=0
	wait_for pid_gone "$KPID"
	wait "$KPID" || st=$?
	[ "$st" -eq 1 ]
	[ "$(jq -r .state "$T/gem/status.json")" = failed ]
	[ "$(jq -r '.outcome.cause | "\(.stage) \(.how)"' "$T/gem/status.json")" = "kerf-acquire exit 69" ]
	jq -e '.outcome.cause.error | test("did not carry out START in time")' "$T/gem/status.json"
}

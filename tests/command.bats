#!/usr/bin/env bats
# The machine command boundary (lib/command.c): every command to the tool
# goes through one coordinator, whose rules are one table; each rule is
# driven here against the in-process simulator (kerf-acquire --sim) and
# against kerf-tool over HSMS, checking the command records kerf-acquire
# writes on stderr and the event stream.
#
# Exact points, no timing: hold@N keeps kerf-acquire's output back after
# N events until the next signal (over HSMS the tool waits too: it sends
# its next report only once kerf-acquire acknowledged the last), a pause
# holds the lot for as long as a test needs, and the simulated tool's
# injected faults (ignore@, refuse@) and --pause-after make it slow,
# forgetful or unwilling.  Every wait is bounded polling.

load common
load tool

setup() {
	T="$BATS_TEST_TMPDIR"
	BG=()
	# A small, quick wafer: 100 mm, 20 mm pitch, 16 px dies (12 dies a wafer).
	SMALL=(--diameter 100 --edge 0 --pitch 20000 --die-px 16)
}

teardown() {
	tool_cleanup
}

# sim ARGS...: kerf-acquire --sim with a lot of 25 small wafers in the
# background: events $T/out, log $T/err, pid APID.
sim() {
	kerf-acquire "${SMALL[@]}" --wafers 25 "$@" > "$T/out" 2> "$T/err" &
	APID=$!
	BG+=("$APID")
}

# gem ARGS...: kerf-acquire as the GEM host of the kerf-tool started by
# tool_start, in the background, the same files.
gem() {
	kerf-acquire --connect "hsms:127.0.0.1:$TOOL_PORT" --profile kerf-sim --wafers 25 "${SMALL[@]}" "$@" \
		> "$T/out" 2> "$T/err" &
	APID=$!
	BG+=("$APID")
}

# tool ARGS...: kerf-tool with the same small wafers.
tool() {
	tool_start "${SMALL[@]}" "$@"
}

# finish: wait for kerf-acquire; its status in ST.
finish() {
	ST=0
	wait "$APID" || ST=$?
}

lines_ge() { # FILE N
	[ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ]
}

# has FILE FILTER: FILE has a JSON record that FILTER selects.
has() {
	[ -n "$(jq -c -R "fromjson? | select($2)" "$1" 2>/dev/null)" ]
}

# fate ID FATE: the command record of cmd_id ID with fate FATE is out.
fate() {
	has "$T/err" ".cmd_id == $1 and .fate == \"$2\""
}

# fates: every command record as "ID COMMAND FATE BY[ hcack N][ into N]".
fates() {
	jq -r 'select(.cmd_id) | [.cmd_id, .command, .fate, .by]
		+ (if .hcack then ["hcack", .hcack] else [] end)
		+ (if .into then ["into", .into] else [] end) | map(tostring) | join(" ")' "$T/err"
}

# types: the events as "TYPE STATE-OR-STATUS".
types() {
	jq -r '[.type, (.state // .status // "")] | join(" ")' "$T/out"
}

# dies_before STATE: the dies written before the first state event STATE.
dies_before() {
	types | sed "/^state $1\$/q" | grep -c '^die '
}

# tool_took OP: the die after which the simulated tool accepted OP ("at_die" of its record).
tool_took() {
	jq -r --arg op "$1" 'select(.sim == "command" and .op == $op) | .at_die' "$2"
}

@test "the command rules are exactly the table in tests/data/command/table.out" {
	golden_table t-command "$DATA/command/table.out"
	# A stop or abort pending makes a pause or resume moot; a duplicate is never sent twice.
	assert_line 'rule accepted stop pause -> yield'
	assert_line 'rule accepted abort resume -> yield'
	for st in queued sent accepted; do
		for op in start pause resume stop abort; do
			assert_line "rule $st $op $op -> merge"
		done
	done
	# Nothing goes ahead of a command that awaits its answer.
	[ -z "$(grep '^rule sent .* -> go$' <<<"$output")" ]
}

# ---- kerf-acquire --sim ----

@test "sim: a pause is accepted, then confirmed by state paused --pause-after dies later; resume is confirmed by HCACK 0" {
	sim --pause-after 3 --inject hold@10
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 confirmed
	kill -USR2 "$APID"
	finish
	assert_equal "$ST" 0
	run fates
	assert_output "$(printf '%s\n' '1 start queued kerf' '1 start sent kerf' '1 start confirmed kerf hcack 0' \
		'2 pause queued operator' '2 pause sent operator' '2 pause accepted operator hcack 4' \
		'2 pause confirmed operator hcack 4' \
		'3 resume queued operator' '3 resume sent operator' '3 resume confirmed operator hcack 0')"
	has "$T/err" '.cmd_id == 2 and .fate == "confirmed" and .reason == "state paused" and .lvl == "info"'
	# Taken exactly 3 dies after the die at which the tool accepted it (the 6th: event 10).
	assert_equal "$(tool_took pause "$T/err")" 6
	assert_equal "$(dies_before paused)" 9
	run types
	assert_line --index -1 'run_end completed'
	assert_equal "$(grep -c '^die ' <(types))" 300
}

@test "sim: a second pause while the first is pending is merged into it, not sent twice" {
	sim --inject ignore@pause --inject hold@10 --inject hold@20
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 accepted
	wait_for lines_ge "$T/out" 20
	kill -USR1 "$APID"
	finish
	assert_equal "$ST" 0
	has "$T/err" '.cmd_id == 3 and .command == "pause" and .fate == "merged" and .into == 2 and .by == "operator"'
	run fates
	refute_line --regexp '^3 pause (queued|sent)'
	# The simulated tool heard one pause; it never took it, and the lot's end settled it.
	[ "$(jq -c 'select(.sim == "command" and .op == "pause")' "$T/err" | wc -l)" -eq 1 ]
	has "$T/err" '.cmd_id == 2 and .fate == "superseded" and .reason == "the tool ended the run (completed)"'
	! types | grep -q '^state paused'
}

@test "sim: a stop supersedes a queued resume; the pause it made moot is settled by the stopped run" {
	sim --inject ignore@pause --inject hold@10 --inject hold@12 --inject hold@14
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 accepted
	wait_for lines_ge "$T/out" 12
	kill -USR2 "$APID"
	# The resume waits behind the pause the tool has not confirmed.
	wait_for fate 3 queued
	wait_for lines_ge "$T/out" 14
	kill -TERM "$APID"
	finish
	assert_equal "$ST" 0
	run fates
	assert_line '3 resume superseded operator into 4'
	refute_line --regexp '^3 resume sent'
	assert_line '4 stop accepted operator hcack 4'
	assert_line '4 stop confirmed operator hcack 4'
	assert_line --index -1 '2 pause superseded operator hcack 4'
	has "$T/err" '.cmd_id == 3 and .reason == "stop #4 supersedes it"'
	run types
	assert_line --index -1 'run_end stopped'
}

@test "sim: a stop supersedes a queued pause held behind a resume the tool has not confirmed" {
	sim --inject ignore@resume --inject hold@10
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 confirmed
	# Paused: the lot waits for as long as the test needs.
	kill -USR2 "$APID"
	wait_for fate 3 accepted
	kill -USR1 "$APID"
	wait_for fate 4 queued
	kill -TERM "$APID"
	finish
	assert_equal "$ST" 0
	run fates
	assert_line '4 pause superseded operator into 5'
	assert_line '5 stop confirmed operator hcack 4'
	assert_line '3 resume superseded operator hcack 4'
	run types
	assert_line --index -4 'state paused'
	assert_line --index -3 'state stopping'
	assert_line --index -1 'run_end stopped'
}

@test "sim: a critical alarm's abort goes ahead of everything: it supersedes the queued commands and is sent at once" {
	sim --inject ignore@pause --inject hold@10 --inject hold@12 --inject alarm@20:42:safety
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 accepted
	wait_for lines_ge "$T/out" 12
	kill -USR2 "$APID"
	wait_for fate 3 queued
	finish
	assert_equal "$ST" 3
	run fates
	assert_line '4 abort queued alarm'
	assert_line '3 resume superseded operator into 4'
	assert_line '4 abort sent alarm'
	assert_line '4 abort confirmed alarm hcack 0'
	assert_line --index -1 '2 pause superseded operator hcack 4'
	run types
	assert_line --index -1 'run_end aborted'
}

@test "sim: a pause the tool refuses (already paused, HCACK 5) is reported with its reason and changes nothing" {
	sim --inject hold@10
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 confirmed
	kill -USR1 "$APID"
	wait_for fate 3 refused
	has "$T/err" '.cmd_id == 3 and .hcack == 5 and .reason == "rejected, already in that state" and .lvl == "warn" and .by == "operator"'
	# Still paused: nothing came after the state event.
	run jq -r '[.type, .state] | join(" ")' <(tail -n 1 "$T/out")
	assert_output 'state paused'
	kill -USR2 "$APID"
	finish
	assert_equal "$ST" 0
	[ "$(grep -c '^state paused' <(types))" -eq 1 ]
	run types
	assert_line --index -1 'run_end completed'
}

@test "sim: a stop the tool refuses (HCACK 2) changes nothing: the lot completes" {
	sim --inject refuse@stop:2 --inject hold@10
	wait_for lines_ge "$T/out" 10
	kill -TERM "$APID"
	finish
	assert_equal "$ST" 0
	has "$T/err" '.cmd_id == 2 and .command == "stop" and .fate == "refused" and .hcack == 2 and .reason == "cannot do now"'
	run types
	assert_line --index -1 'run_end completed'
	refute_line 'state stopping'
}

@test "sim: a resume while the tool is not paused is refused by kerf and never sent" {
	sim --inject hold@10
	wait_for lines_ge "$T/out" 10
	kill -USR2 "$APID"
	finish
	assert_equal "$ST" 0
	has "$T/err" '.cmd_id == 2 and .command == "resume" and .fate == "refused" and .reason == "the tool is not paused (state executing): not sent"'
	! has "$T/err" '.hcack and .cmd_id == 2'
	! has "$T/err" '.sim == "command" and .op == "resume"'
}

@test "sim: a pause the tool never confirms times out at --confirm-timeout and changes nothing" {
	# The stall holds the output; commands and deadlines go on meanwhile.
	sim --inject ignore@pause --confirm-timeout 0.2s --inject stall@10:86400
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 timed_out
	has "$T/err" '.cmd_id == 2 and .lvl == "warn" and .hcack == 4 and .reason == "the tool did not confirm it within 0.2s"'
	kill -TERM "$APID"
	finish
	assert_equal "$ST" 0
	! types | grep -q '^state paused'
	run types
	assert_line --index -1 'run_end stopped'
}

@test "sim: a stop the tool never confirms times out, and kerf ends the run itself" {
	sim --inject ignore@stop --confirm-timeout 0.2s --inject hold@10
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 confirmed
	kill -TERM "$APID"
	finish
	assert_equal "$ST" 0
	has "$T/err" '.cmd_id == 3 and .command == "stop" and .fate == "timed_out" and .reason == "the tool did not confirm it within 0.2s"'
	has "$T/err" '.msg == "the tool did not confirm the stop: kerf ends the run itself"'
	run types
	assert_line --index -1 'run_end stopped'
}

@test "sim: START is one command too: a simulator that never starts the lot fails the run at the deadline, nothing written" {
	run --separate-stderr kerf-acquire "${SMALL[@]}" --inject ignore@start --confirm-timeout 0.2s
	assert_equal "$status" 69
	assert_output ""
	printf '%s\n' "${stderr_lines[@]}" > "$T/err"
	has "$T/err" '.cmd_id == 1 and .command == "start" and .fate == "timed_out" and .by == "kerf"'
	has "$T/err" '.reason == "start_refused"'
}

# ---- kerf-acquire as the GEM host of kerf-tool, over HSMS ----

# s2f41: the remote commands kerf-tool received, one RCMD a line.
s2f41() {
	jq -r 'select(.sf == "S2F41") | .sml | capture("<A \"(?<r>[A-Z]+)\">").r' "$T/trace.ndjson"
}

@test "hsms: a pause is accepted (HCACK 4), then confirmed by the tool's state paused --pause-after dies later" {
	tool --pause-after 3
	gem --inject hold@10
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 confirmed
	kill -USR2 "$APID"
	wait_for fate 3 confirmed
	finish
	assert_equal "$ST" 0
	run fates
	assert_line '2 pause accepted operator hcack 4'
	assert_line '2 pause confirmed operator hcack 4'
	assert_line '3 resume confirmed operator hcack 0'
	at=$(tool_took pause "$T/tool.err")
	assert_equal "$(dies_before paused)" $((at + 3))
	run types
	assert_line --index -1 'run_end completed'
	run s2f41
	assert_output "$(printf '%s\n' START PAUSE RESUME)"
	tool_stop
}

@test "hsms: a second pause while the first is pending is merged: one S2F41 PAUSE on the wire" {
	tool --inject ignore@pause
	gem --inject hold@10 --inject hold@20
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 accepted
	wait_for lines_ge "$T/out" 20
	kill -USR1 "$APID"
	finish
	assert_equal "$ST" 0
	has "$T/err" '.cmd_id == 3 and .fate == "merged" and .into == 2'
	run s2f41
	assert_output "$(printf '%s\n' START PAUSE)"
	has "$T/err" '.cmd_id == 2 and .fate == "superseded" and .reason == "the tool ended the run (completed)"'
	tool_stop
}

@test "hsms: a stop supersedes a queued resume, which never reaches the tool" {
	tool --inject ignore@pause
	gem --inject hold@10 --inject hold@12 --inject hold@14
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 accepted
	wait_for lines_ge "$T/out" 12
	kill -USR2 "$APID"
	wait_for fate 3 queued
	wait_for lines_ge "$T/out" 14
	kill -TERM "$APID"
	finish
	assert_equal "$ST" 0
	run fates
	assert_line '3 resume superseded operator into 4'
	assert_line '4 stop confirmed operator hcack 4'
	run s2f41
	assert_output "$(printf '%s\n' START PAUSE STOP)"
	run types
	assert_line --index -1 'run_end stopped'
	tool_stop
}

@test "hsms: a critical alarm's abort supersedes the queued resume and goes to the tool at once" {
	tool --inject ignore@pause --inject alarm@40:42:safety
	gem --inject hold@10 --inject hold@12
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 accepted
	wait_for lines_ge "$T/out" 12
	kill -USR2 "$APID"
	wait_for fate 3 queued
	finish
	assert_equal "$ST" 3
	run fates
	assert_line '3 resume superseded operator into 4'
	assert_line '4 abort confirmed alarm hcack 0'
	run s2f41
	assert_output "$(printf '%s\n' START PAUSE ABORT)"
	run types
	assert_line --index -1 'run_end aborted'
	tool_stop
}

@test "hsms: a stop the tool refuses (HCACK 2) is reported with the tool's reason and the lot completes" {
	tool --inject refuse@stop:2
	gem --inject hold@10
	wait_for lines_ge "$T/out" 10
	kill -TERM "$APID"
	finish
	assert_equal "$ST" 0
	has "$T/err" '.cmd_id == 2 and .command == "stop" and .fate == "refused" and .hcack == 2 and .reason == "cannot do now" and .lvl == "warn"'
	run types
	assert_line --index -1 'run_end completed'
	refute_line 'state stopping'
	tool_stop
}

@test "hsms: a stop the tool accepts and never confirms times out, and kerf ends the run itself" {
	tool --inject ignore@stop
	gem --confirm-timeout 0.3s --inject hold@10
	wait_for lines_ge "$T/out" 10
	kill -USR1 "$APID"
	wait_for fate 2 confirmed
	# Paused, the tool sends nothing: only the deadline can end the stop.
	kill -TERM "$APID"
	finish
	assert_equal "$ST" 0
	run fates
	assert_line '3 stop accepted operator hcack 4'
	assert_line '3 stop timed_out operator hcack 4'
	run s2f41
	assert_output "$(printf '%s\n' START PAUSE STOP)"
	run types
	assert_line --index -1 'run_end stopped'
	kerf-validate < "$T/out" > /dev/null
	tool_stop
}

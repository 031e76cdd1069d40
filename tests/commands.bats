#!/usr/bin/env bats
# The machine command boundary, supervisor side: run state follows the
# tool, not the request, and kerf pause, resume and stop --wait say what
# the tool made of the command.  The tool is fake/kerf-acquire with
# FAKE_CTL: it logs the command records of kerf-events(5) when, and in
# the order, the test tells it, after the test has seen the signal reach
# it (it logs each signal), so every race below is played in one order,
# decided here.

load common
load kerf-run
bats_require_minimum_version 1.5.0

setup() {
	R="$BATS_TEST_TMPDIR/run"
	OUT="$BATS_TEST_TMPDIR/out"
	ERR="$BATS_TEST_TMPDIR/err"
	CTL="$BATS_TEST_TMPDIR/ctl"
	: >"$CTL"
	BG=()
}

teardown() {
	local p
	for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -n "${KPID:-}" ]; then kill -9 "$KPID" 2>/dev/null || true; fi
}

# tell LINE: the fake tool carries out LINE next (see fake/kerf-acquire).
tell() { printf '%s\n' "$*" >>"$CTL"; }

# rec OP CMD_ID FATE [BY [JSON]]: the tool logs a command record.
rec() {
	tell "say $(jq -nc --arg op "$1" --argjson id "$2" --arg fate "$3" --arg by "${4:-operator}" \
		--argjson x "${5:-{\}}" \
		'{t: "2026-12-01T00:00:00Z", lvl: "info", msg: "\($op): \($fate)",
		  command: $op, cmd_id: $id, fate: $fate, by: $by} + $x')"
}

# got SIG [N]: the fake tool has received SIG (USR1, USR2, TERM) N times
# (default once), as it logged.
got() { [ "$(grep -c "\"msg\":\"fake tool got $1\"" "$R/log.ndjson" 2>/dev/null)" -ge "${2:-1}" ]; }

# start_tool: a run whose first stage is the fake tool; it logs START's
# records (so it reports commands) before its first output, and runs.
start_tool() {
	rec start 1 sent kerf
	rec start 1 confirmed kerf
	tell go
	FAKE_CTL="$CTL" start_run -C "$R" --stage "$FAKE" --stage cat "$@"
	wait_for state_is running
}

# fate ID: kerf's command ID's fate, as status.json has it.
fate() { jq -r --argjson id "$1" '.commands[] | select(.id == $id) | .fate' "$R/status.json"; }
fate_is() { [ "$(fate "$1")" = "$2" ]; }
ncommands() { [ "$(jq '.commands | length' "$R/status.json" 2>/dev/null)" = "$1" ]; }
transitions() { jq -r 'select(.kind == "transition") | "\(.from)>\(.to)"' "$R/timeline.ndjson" | paste -sd' '; }

@test "kerf pause waits for the tool: pausing until it confirms, then paused; kerf pause says so, exit 0" {
	start_tool
	in_bg pause kerf pause -C "$R"
	wait_for got USR1
	wait_for state_is pausing
	rec pause 2 sent
	rec pause 2 accepted operator '{"hcack": 4}'
	wait_for fate_is 2 accepted
	state_is pausing
	tell hold
	tell 'out {"type":"state","state":"paused"}'
	rec pause 2 confirmed
	result pause
	[ "$rc" -eq 0 ]
	[ "$out" = "pause confirmed by the tool (command 2)" ]
	state_is paused
	[ "$(jq -c '.command | [.id, .op, .by, .cmd_id, .fate, .fate_by, .hcack]' "$R/status.json")" = \
		'[2,"pause","operator",2,"confirmed","tool",4]' ]
	# Every fate is in the timeline, and the command moved the state.
	run jq -r 'select(.kind == "command" and .id == 2) | .fate' "$R/timeline.ndjson"
	assert_output "$(printf 'requested\nsent\naccepted\nconfirmed')"
	[ "$(transitions)" = "idle>preparing preparing>running running>pausing pausing>paused" ]
	run kerf status -C "$R"
	assert_line "command: 2 pause confirmed by the tool (HCACK 4)"
	kerf stop -C "$R" --abort
	finish_run
}

@test "a pause the tool refuses goes back to running, with the tool's reason in status.json, the timeline and kerf pause's answer, exit 75" {
	start_tool
	in_bg pause kerf pause -C "$R"
	wait_for got USR1
	rec pause 2 refused operator '{"hcack": 2, "reason": "HCACK 2: cannot perform now"}'
	result pause
	[ "$rc" -eq 75 ]
	[ "$out" = "pause refused by the tool: HCACK 2: cannot perform now (command 2)" ]
	state_is running
	[ "$(jq -r '.command.reason' "$R/status.json")" = "HCACK 2: cannot perform now" ]
	run jq -c 'select(.kind == "transition" and .event == "cmd_refused") | [.from, .to, .command, .fate, .reason]' "$R/timeline.ndjson"
	assert_output '["pausing","running","pause","refused","HCACK 2: cannot perform now"]'
	kerf stop -C "$R" --abort
	finish_run
}

@test "a pause that times out at the tool goes back to running, named timed_out; kerf pause exits 124" {
	start_tool
	in_bg pause kerf pause -C "$R"
	wait_for got USR1
	rec pause 2 sent
	rec pause 2 timed_out operator '{"reason": "no reply within T3 (45 s)"}'
	result pause
	[ "$rc" -eq 124 ]
	[ "$out" = "pause timed_out by the tool: no reply within T3 (45 s) (command 2)" ]
	state_is running
	run jq -c 'select(.kind == "transition" and .event == "cmd_timed_out") | [.from, .to, .fate]' "$R/timeline.ndjson"
	assert_output '["pausing","running","timed_out"]'
	kerf stop -C "$R" --abort
	finish_run
}

@test "kerf pause with no outcome within --timeout says how far the command got, exit 124, and the run stays pausing" {
	start_tool
	in_bg pause kerf pause -C "$R" --timeout 0.5
	wait_for got USR1
	# The tool says nothing until kerf pause has given up, so what it
	# prints is where kerf had the command when the timeout came: not yet
	# taken, or taken and sent (how far kerf got in 0.5 s depends on the
	# machine; that it says which does not).
	result pause
	[ "$rc" -eq 124 ]
	[[ "$out" =~ ^"pause: no outcome within 0.5s ("("kerf has not taken the request"|requested|queued|sent)")"$ ]]
	rec pause 2 sent
	wait_for fate_is 2 sent
	state_is pausing
	kerf stop -C "$R" --abort
	finish_run
}

@test "a resume the tool confirms: resuming, then running; one the tool refuses: back to paused" {
	start_tool
	in_bg pause kerf pause -C "$R"
	wait_for got USR1
	rec pause 2 confirmed
	result pause
	[ "$rc" -eq 0 ]
	in_bg resume kerf resume -C "$R"
	wait_for got USR2
	wait_for state_is resuming
	rec resume 3 refused operator '{"hcack": 2, "reason": "not paused at the tool"}'
	result resume
	[ "$rc" -eq 75 ]
	state_is paused
	in_bg resume2 kerf resume -C "$R"
	wait_for got USR2 2
	rec resume 4 confirmed
	result resume2
	[ "$rc" -eq 0 ]
	[ "$out" = "resume confirmed by the tool (command 4)" ]
	state_is running
	[ "$(transitions)" = "idle>preparing preparing>running running>pausing pausing>paused paused>resuming resuming>paused paused>resuming resuming>running" ]
	kerf stop -C "$R" --abort
	finish_run
}

@test "stop during starting: the stop waits for the tool, which confirms it; cancelled with nothing acquired; kerf stop --wait says so" {
	# START sent and not yet confirmed: the tool is going from ready to
	# executing, and has written nothing.
	rec start 1 sent kerf
	FAKE_CTL="$CTL" start_run -C "$R" --stage "$FAKE" --stage cat
	wait_for jq -e '.command.op == "start"' "$R/status.json"
	state_is preparing
	in_bg stop kerf stop -C "$R" --wait
	wait_for got TERM
	wait_for state_is stop-requested
	[ "$(jq -r .outcome.cause "$R/status.json")" = null ]
	rec stop 2 queued
	rec start 1 confirmed kerf
	rec stop 2 sent
	wait_for fate_is 2 sent
	state_is stop-requested
	rec stop 2 confirmed
	tell "end stopped 0"
	result stop
	[ "$rc" -eq 0 ]
	[ "$out" = "stop confirmed by the tool (command 2); run cancelled, exit 130" ]
	finish_run
	[ "$KRC" -eq 130 ]
	[ "$(transitions)" = "idle>preparing preparing>stop-requested stop-requested>stopping stopping>cancelled" ]
	[ "$(grep -c '"type":"die"' "$OUT")" -eq 0 ]
	[ "$(jq -c '[.outcome.cause.what, .outcome.pending_command]' "$R/status.json")" = '["operator_stop",null]' ]
}

@test "pause, then stop before the pause is confirmed: the stop supersedes the queued pause; kerf pause says superseded (75), the run ends cancelled" {
	start_tool
	in_bg pause kerf pause -C "$R"
	wait_for got USR1
	rec pause 2 queued
	wait_for fate_is 2 queued
	in_bg stop kerf stop -C "$R" --wait
	wait_for got TERM
	wait_for state_is stop-requested
	rec pause 2 superseded operator '{"reason": "STOP supersedes a queued PAUSE"}'
	result pause
	[ "$rc" -eq 75 ]
	[ "$out" = "pause superseded by the tool: STOP supersedes a queued PAUSE (command 2)" ]
	# Still waiting for the stop.
	state_is stop-requested
	rec stop 3 sent
	rec stop 3 confirmed
	tell "end stopped 0"
	result stop
	[ "$rc" -eq 0 ]
	[ "$out" = "stop confirmed by the tool (command 3); run cancelled, exit 130" ]
	finish_run
	[ "$KRC" -eq 130 ]
	[ "$(transitions)" = "idle>preparing preparing>running running>pausing pausing>stop-requested stop-requested>stopping stopping>cancelled" ]
}

@test "pause, then stop: the tool confirms the pause, then refuses the stop: the run goes back to paused, not running" {
	start_tool
	in_bg pause kerf pause -C "$R"
	wait_for got USR1
	rec pause 2 sent
	in_bg stop kerf stop -C "$R" --wait
	wait_for got TERM
	wait_for state_is stop-requested
	rec stop 3 queued
	rec pause 2 confirmed
	result pause
	[ "$rc" -eq 0 ]
	[ "$out" = "pause confirmed by the tool (command 2)" ]
	state_is stop-requested
	rec stop 3 refused operator '{"hcack": 2, "reason": "lot cannot be stopped in this state"}'
	result stop
	[ "$rc" -eq 75 ]
	[ "$out" = "stop refused by the tool: lot cannot be stopped in this state (command 3)" ]
	state_is paused
	[ "$(jq -r .outcome.cause "$R/status.json")" = null ]
	run jq -c 'select(.kind == "transition") | [.event, .from, .to, .settled]' "$R/timeline.ndjson"
	assert_line '["paused","stop-requested","stop-requested","paused"]'
	assert_line '["cmd_refused","stop-requested","paused",null]'
	# A stop after a refused one is a first stop again, not an abort.
	in_bg stop2 kerf stop -C "$R" --wait
	wait_for got TERM 2
	wait_for state_is stop-requested
	rec stop 4 confirmed
	tell "end stopped 0"
	result stop2
	[ "$rc" -eq 0 ]
	finish_run
	[ "$KRC" -eq 130 ]
}

@test "two operators pause and resume at once: whatever the order, the pause goes to the tool and the resume is refused by kerf" {
	start_tool
	in_bg pause kerf pause -C "$R"
	in_bg resume kerf resume -C "$R"
	wait_for got USR1
	wait_for ncommands 3
	rec pause 2 sent
	rec pause 2 confirmed
	result pause
	[ "$rc" -eq 0 ]
	[ "$out" = "pause confirmed by the tool (command $(jq '.commands[] | select(.op == "pause") | .id' "$R/status.json"))" ]
	result resume
	[ "$rc" -eq 75 ]
	[[ "$out" =~ ^"resume refused by kerf: "("the run is running already"|"a pause is pending (command "[0-9]+")")" (command "[0-9]+")"$ ]]
	state_is paused
	# The tool got one command: the resume never reached it.
	[ "$(grep -c '"msg":"fake tool got' "$R/log.ndjson")" -eq 1 ]
	got USR1
	kerf stop -C "$R" --abort
	finish_run
}

@test "two operators pause at once: one pause reaches the tool, both are told what it made of it" {
	start_tool
	in_bg p1 kerf pause -C "$R"
	wait_for got USR1
	# The second pause reaches kerf while the first is pending at the
	# tool (two signals sent together may arrive as one, so the test
	# waits for the first to be taken before it sends the second).
	in_bg p2 kerf pause -C "$R"
	wait_for jq -e '[.commands[] | select(.op == "pause")] | length == 2' "$R/status.json"
	jq -e '[.commands[] | select(.op == "pause" and .fate == "merged")] | length == 1' "$R/status.json"
	rec pause 2 confirmed
	result p1
	[ "$rc" -eq 0 ]
	p1=$out
	result p2
	[ "$rc" -eq 0 ]
	[ "$out" = "$p1" ]
	[[ "$out" == "pause confirmed by the tool (command "* ]]
	state_is paused
	[ "$(grep -c '"cmd_id":2' <(jq -c '.commands[]' "$R/status.json"))" -eq 1 ]
	kerf stop -C "$R" --abort
	finish_run
}

@test "a critical alarm while a stop is pending wins: failed, exit 3, the outcome says a stop was pending; kerf stop --wait says so and exits 3" {
	start_tool
	in_bg stop kerf stop -C "$R" --wait
	wait_for got TERM
	rec stop 2 sent
	rec stop 2 accepted operator '{"hcack": 4}'
	wait_for fate_is 2 accepted
	state_is stop-requested
	# The tool raises a critical alarm; its ABORT goes ahead of the stop.
	rec abort 3 sent alarm
	rec stop 2 superseded operator '{"reason": "ABORT goes ahead of everything"}'
	rec abort 3 confirmed alarm
	tell 'out {"type":"alarm","critical":true}'
	tell "end aborted 3"
	result stop
	finish_run
	[ "$KRC" -eq 3 ]
	[ "$rc" -eq 3 ]
	[ "$out" = "stop superseded by the tool: ABORT goes ahead of everything (command 2); run failed, exit 3" ]
	[ "$(jq -r '[.state, .outcome.cause.kind, .outcome.cause.msg] | join("|")' "$R/status.json")" = \
		"failed|alarm|critical alarm while a stop was pending (command 2)" ]
	[ "$(jq -c '.outcome.pending_command | [.id, .op, .fate]' "$R/status.json")" = '[2,"stop","superseded"]' ]
	[ "$(jq -c '.outcome.pending_command.op' "$R/summary.json")" = '"stop"' ]
	[ "$(transitions)" = "idle>preparing preparing>running running>stop-requested stop-requested>stopping stopping>failed" ]
	# The alarm's own command is in the timeline too.
	run jq -c 'select(.kind == "command" and .by == "alarm") | [.op, .fate, .fate_by]' "$R/timeline.ndjson"
	assert_line '["abort","confirmed","tool"]'
}

@test "the tool finishing the lot while a stop is pending: completed, exit 0, the stop noted; kerf stop --wait says so" {
	start_tool
	in_bg stop kerf stop -C "$R" --wait
	wait_for got TERM
	rec stop 2 sent
	rec stop 2 accepted operator '{"hcack": 4}'
	wait_for fate_is 2 accepted
	tell "end completed 0"
	result stop
	finish_run
	[ "$KRC" -eq 0 ]
	[ "$rc" -eq 0 ]
	[ "$out" = "stop superseded by kerf: the tool completed the lot while the stop was pending (command 2); run completed, exit 0" ]
	[ "$(jq -r '[.state, .outcome.cause] | join("|")' "$R/status.json")" = "completed|" ]
	[ "$(jq -c '.outcome.pending_command | [.op, .fate, .fate_by]' "$R/status.json")" = '["stop","superseded","kerf"]' ]
	[ "$(transitions)" = "idle>preparing preparing>running running>stop-requested stop-requested>completed" ]
	run kerf status -C "$R"
	assert_line "pending command: 2 stop superseded by kerf (HCACK 4): the tool completed the lot while the stop was pending"
}

@test "a first stage that logs no command record: kerf confirms at once and says so; a foreign one is paused by SIGSTOP" {
	start_run -C "$R" --stage "$FAKE" --stage cat
	wait_for state_is running
	run jq -c 'select(.kind == "command_reporting") | [.stage, .reports, .why]' "$R/timeline.ndjson"
	assert_output '["kerf-acquire",false,"it became ready without a command record"]'
	run kerf pause -C "$R"
	assert_success
	assert_output "pause confirmed by kerf: the first stage does not report commands (command 1)"
	state_is paused
	run kerf stop -C "$R" --wait
	assert_success
	assert_output "stop confirmed by kerf: the first stage does not report commands (command 2); run cancelled, exit 130"
	finish_run
	[ "$KRC" -eq 130 ]

	rm -rf "$R"
	start_run -C "$R" --stage "sh -c 'echo x; exec tail -f /dev/null'" --stage cat
	wait_for state_is running
	run kerf pause -C "$R"
	assert_success
	assert_output "pause confirmed by kerf: SIGSTOP takes effect at once (command 1)"
	run kerf resume -C "$R"
	assert_success
	assert_output "resume confirmed by kerf: SIGCONT takes effect at once (command 2)"
	kerf stop -C "$R" --abort
	finish_run
}

@test "kerf pause, resume and stop --wait refused by kerf where they do not apply, each with its reason, exit 75" {
	start_tool
	run kerf resume -C "$R"
	[ "$status" -eq 75 ]
	assert_output "resume refused by kerf: the run is running already (command 2)"
	in_bg pause kerf pause -C "$R"
	wait_for got USR1
	wait_for state_is pausing
	run kerf resume -C "$R"
	[ "$status" -eq 75 ]
	assert_output "resume refused by kerf: a pause is pending (command 3) (command 4)"
	rec pause 2 confirmed
	result pause
	run kerf pause -C "$R"
	[ "$status" -eq 75 ]
	assert_output "pause refused by kerf: the run is paused already (command 5)"
	run kerf run -C "$R.2" --timeout 1 --stage true
	[ "$status" -eq 64 ]
	kerf stop -C "$R" --abort
	finish_run
}

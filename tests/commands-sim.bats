#!/usr/bin/env bats
# The races of kerf(7) "Commands to the tool", played against the
# simulated tool: the real supervisor (kerf run, default pipeline) over
# the real kerf-acquire, --sim in process or the GEM host of kerf-tool
# over HSMS.  tests/commands.bats plays the same races with a fake first
# stage; here the tool's own answers decide.
#
# Exact points, no timing: hold@N keeps kerf-acquire's output back after
# N events until the next signal (so the run is running, at a known die,
# for as long as a test needs), stall@N holds it while commands and
# deadlines go on, and the simulator's injected faults (ignore@,
# refuse@) make the tool slow, forgetful or unwilling.  Every wait is
# bounded polling; no sleep is an assertion.

load common
load kerf-run
load tool
bats_require_minimum_version 1.5.0

setup() {
	T="$BATS_TEST_TMPDIR"
	R="$T/run"
	OUT="$T/out"
	ERR="$T/err"
	BG=()
	# A small, quick lot: 100 mm wafers, 20 mm pitch, 16 px dies (12 dies a wafer).
	SMALL=(--no-project --acquire-arg=--diameter=100 --acquire-arg=--edge=0 --acquire-arg=--pitch=20000
		--acquire-arg=--die-px=16)
}

teardown() {
	if [ -n "${KPID:-}" ]; then kill -9 "$KPID" 2>/dev/null || true; fi
	tool_cleanup
}

# run_sim ARGS...: kerf run, default pipeline over kerf-acquire --sim, the small lot.
run_sim() {
	start_run -C "$R" "${SMALL[@]}" "$@"
}

# inject SPEC...: --acquire-arg=--inject=SPEC for each.
inject() {
	local s
	INJ=()
	for s in "$@"; do INJ+=("--acquire-arg=--inject=$s"); done
}

# st FILTER: jq FILTER of status.json, raw.
st() { jq -r "$1" "$R/status.json"; }
# fate_of OP FATE: kerf's last command OP has FATE in status.json.
fate_of() { [ "$(jq -r --arg op "$1" '[.commands[] | select(.op == $op)] | last | .fate' "$R/status.json" 2>/dev/null)" = "$2" ]; }
transitions() { jq -r 'select(.kind == "transition") | "\(.from)>\(.to)"' "$R/timeline.ndjson" | paste -sd' '; }
# fates OP: the fates of kerf's commands OP in the timeline, one a line.
fates() { jq -r --arg op "$1" 'select(.kind == "command" and .op == $op) | .fate' "$R/timeline.ndjson"; }
# acq_cmds: kerf-acquire's command records (from the run's log) as "COMMAND FATE".
acq_cmds() { jq -r 'select(.stage == "kerf-acquire" and .cmd_id) | "\(.command) \(.fate)"' "$R/log.ndjson"; }
# tool_heard OP: how many OP the simulated tool was sent.
tool_heard() { jq -c --arg op "$1" 'select(.sim == "command" and .op == $op)' "$2" | wc -l; }
# dies: the dies persisted (summary.json).
dies() { jq -r .totals.dies "$R/summary.json"; }

# ---- 1. stop during starting ----

@test "sim: stop during starting, START accepted and not carried out: the tool drops the lot; cancelled, exit 130, nothing acquired; kerf stop --wait says so" {
	inject ignore@start
	run_sim --wafers 5 "${INJ[@]}"
	# START accepted by the tool, not carried out: the run is still preparing.
	wait_for jq -e '.command.op == "start" and .command.fate == "accepted"' "$R/status.json"
	state_is preparing
	run kerf stop -C "$R" --wait
	assert_success
	assert_output "stop superseded by the tool: kerf ended the run before the tool started the lot (command 2); run cancelled, exit 130"
	finish_run
	[ "$KRC" -eq 130 ]
	[ "$(transitions)" = "idle>preparing preparing>stop-requested stop-requested>stopping stopping>cancelled" ]
	[ "$(st '[.state, .outcome.cause.what] | join("|")')" = "cancelled|operator_stop" ]
	# kerf-acquire exited 75, having written nothing; START never confirmed.
	[ "$(jq -r 'select(.kind == "stage_exit" and .stage == "kerf-acquire") | .exit' "$R/timeline.ndjson")" = 75 ]
	[ "$(dies)" -eq 0 ]
	run fates start
	refute_line confirmed
	run fates stop
	assert_output "$(printf '%s\n' requested queued sent accepted superseded)"
}

# ---- 2. pause, then stop before the pause is confirmed ----

@test "sim: pause, then stop before the tool confirmed the pause: the stop goes ahead, the pause is superseded (75), the run ends cancelled, 130" {
	inject ignore@pause hold@10 hold@14
	run_sim --wafers 25 "${INJ[@]}"
	wait_for state_is running
	in_bg pause kerf pause -C "$R"
	wait_for fate_of pause accepted
	state_is pausing
	in_bg stop kerf stop -C "$R" --wait
	result stop
	[ "$rc" -eq 0 ]
	[[ "$out" =~ ^"stop confirmed by the tool: run_end stopped (command "[0-9]+"); run cancelled, exit 130"$ ]]
	result pause
	[ "$rc" -eq 75 ]
	[[ "$out" =~ ^"pause superseded by the tool: the tool ended the run (stopped) (command "[0-9]+")"$ ]]
	finish_run
	[ "$KRC" -eq 130 ]
	[ "$(transitions)" = "idle>preparing preparing>running running>pausing pausing>stop-requested stop-requested>stopping stopping>cancelled" ]
	[ "$(st '[.state, .outcome.cause.what] | join("|")')" = "cancelled|operator_stop" ]
	run fates pause
	assert_output "$(printf '%s\n' requested queued sent accepted superseded)"
	run acq_cmds
	assert_line "stop confirmed"
	refute_line "pause confirmed"
}

# ---- 3. two operators, pause and resume at once ----

@test "sim: two operators pause and resume at once: whatever the order, the pause goes to the tool and the resume is refused by kerf" {
	# The tool accepts the pause and takes its time (never, here), so the
	# run is running or pausing whichever signal kerf reads first.
	# hold@12 holds the lot again once the pause reached kerf-acquire.
	inject ignore@pause hold@10 hold@12
	run_sim --wafers 25 "${INJ[@]}"
	wait_for state_is running
	in_bg pause kerf pause -C "$R" --timeout 60
	in_bg resume kerf resume -C "$R"
	result resume
	[ "$rc" -eq 75 ]
	[[ "$out" =~ ^"resume refused by kerf: "("the run is running already"|"a pause is pending (command "[0-9]+")")" (command "[0-9]+")"$ ]]
	wait_for fate_of pause accepted
	state_is pausing
	# The tool heard one pause and no resume.
	[ "$(tool_heard pause "$R/log.ndjson")" -eq 1 ]
	[ "$(tool_heard resume "$R/log.ndjson")" -eq 0 ]
	run acq_cmds
	refute_line --partial resume
	kerf stop -C "$R" --wait
	result pause
	[ "$rc" -eq 75 ]
	[[ "$out" == "pause superseded by the tool: "* ]]
	finish_run
	[ "$KRC" -eq 130 ]
}

@test "sim: two operators pause and resume at once in a paused run: the resume goes to the tool and the pause is refused by kerf" {
	inject hold@10
	run_sim --wafers 25 "${INJ[@]}"
	wait_for state_is running
	run kerf pause -C "$R"
	assert_success
	state_is paused
	# Both commands must reach kerf before the tool can answer either:
	# kerf-acquire (the tool, here) is frozen until kerf has judged both,
	# so the resume is still pending whichever of the two kerf reads first.
	acq=$(stage_pid kerf-acquire)
	kill -STOP "$acq"
	in_bg pause kerf pause -C "$R"
	in_bg resume kerf resume -C "$R"
	result pause
	[ "$rc" -eq 75 ]
	[[ "$out" =~ ^"pause refused by kerf: "("the run is paused already"|"a resume is pending (command "[0-9]+")")" (command "[0-9]+")"$ ]]
	wait_for fate_of resume requested
	kill -CONT "$acq"
	result resume
	[ "$rc" -eq 0 ]
	[[ "$out" =~ ^"resume confirmed by the tool: ".*" (command "[0-9]+")"$ ]]
	[ "$(tool_heard pause "$R/log.ndjson")" -eq 1 ]
	[ "$(tool_heard resume "$R/log.ndjson")" -eq 1 ]
	finish_run
	[ "$KRC" -eq 0 ]
	[ "$(st .state)" = completed ]
}

# ---- 4. a critical alarm while a stop is pending ----

@test "sim: a critical alarm while a stop is pending wins: failed, exit 3, the outcome says a stop was pending; kerf stop --wait exits 3" {
	inject ignore@stop hold@10 alarm@30:42:safety
	run_sim --wafers 25 "${INJ[@]}"
	wait_for state_is running
	in_bg stop kerf stop -C "$R" --wait
	result stop
	finish_run
	[ "$KRC" -eq 3 ]
	[ "$rc" -eq 3 ]
	[[ "$out" =~ ^"stop superseded by the tool: ".*" (command 2); run failed, exit 3"$ ]]
	[ "$(st '[.state, .outcome.cause.kind, .outcome.cause.msg] | join("|")')" = \
		"failed|alarm|critical alarm while a stop was pending (command 2)" ]
	[ "$(st '.outcome.pending_command | "\(.id) \(.op) \(.fate)"')" = "2 stop superseded" ]
	[ "$(transitions)" = "idle>preparing preparing>running running>stop-requested stop-requested>stopping stopping>failed" ]
	run jq -c 'select(.kind == "command" and .by == "alarm") | [.op, .fate]' "$R/timeline.ndjson"
	assert_line '["abort","confirmed"]'
	# The alarm is persisted: the pipeline drained.
	[ "$(jq -r .stream_status "$R/summary.json")" = aborted ]
}

# ---- 5. the tool finishing the lot while a stop is pending ----

@test "sim: the tool finishing the lot while a stop is pending: completed, exit 0, the stop noted; kerf stop --wait says so" {
	inject ignore@stop hold@10
	run_sim --wafers 2 "${INJ[@]}"
	wait_for state_is running
	in_bg stop kerf stop -C "$R" --wait
	result stop
	finish_run
	[ "$KRC" -eq 0 ]
	[ "$rc" -eq 0 ]
	[[ "$out" =~ ^"stop superseded by the tool: the tool ended the run (completed) (command 2); run completed, exit 0"$ ]]
	[ "$(st '[.state, .outcome.cause] | join("|")')" = "completed|" ]
	[ "$(st '.outcome.pending_command | "\(.op) \(.fate)"')" = "stop superseded" ]
	[ "$(transitions)" = "idle>preparing preparing>running running>stop-requested stop-requested>completed" ]
	[ "$(dies)" -eq 24 ]
}

# ---- 6. a command refused by the tool, one that times out ----

@test "sim: a pause the tool refuses (HCACK 2): kerf pause prints the tool's reason, exit 75; the run goes on running" {
	inject refuse@pause:2 hold@10 hold@12
	run_sim --wafers 25 "${INJ[@]}"
	wait_for state_is running
	run kerf pause -C "$R"
	[ "$status" -eq 75 ]
	assert_output --regexp '^pause refused by the tool: cannot do now \(command 2\)$'
	state_is running
	[ "$(st '.command | "\(.op) \(.fate) \(.hcack)"')" = "pause refused 2" ]
	run jq -c 'select(.kind == "transition" and .event == "cmd_refused") | [.from, .to, .reason]' "$R/timeline.ndjson"
	assert_output '["pausing","running","cannot do now"]'
	run kerf stop -C "$R" --wait
	assert_success
	finish_run
	[ "$KRC" -eq 130 ]
}

@test "sim: a pause the tool never confirms times out at --confirm-timeout: kerf pause exit 124; the run goes back to running" {
	# The stall holds the output; the tool's commands and deadlines go on.
	inject ignore@pause stall@10:86400
	run_sim --wafers 25 --acquire-arg=--confirm-timeout=0.3s "${INJ[@]}"
	wait_for state_is running
	run kerf pause -C "$R"
	[ "$status" -eq 124 ]
	assert_output "pause timed_out by the tool: the tool did not confirm it within 0.3s (command 2)"
	state_is running
	run jq -c 'select(.kind == "transition" and .event == "cmd_timed_out") | [.from, .to, .fate]' "$R/timeline.ndjson"
	assert_output '["pausing","running","timed_out"]'
	run kerf stop -C "$R" --wait
	assert_success
	finish_run
	[ "$KRC" -eq 130 ]
}

# ---- over HSMS, with kerf-tool ----

HSMS=(--acquire-arg=--profile --acquire-arg=kerf-sim --acquire-arg=--connect)

@test "hsms: a critical alarm while a stop is pending wins: failed, exit 3, the stop noted; kerf stop --wait exits 3" {
	tool_start --diameter 100 --edge 0 --pitch 20000 --die-px 16 --inject ignore@stop --inject alarm@40:42:safety
	inject hold@10
	start_run -C "$R" "${SMALL[@]}" --wafers 25 "${HSMS[@]}" --acquire-arg="hsms:127.0.0.1:$TOOL_PORT" "${INJ[@]}"
	wait_for state_is running
	in_bg stop kerf stop -C "$R" --wait
	result stop
	finish_run
	[ "$KRC" -eq 3 ]
	[ "$rc" -eq 3 ]
	[[ "$out" == "stop superseded by the tool: "*"; run failed, exit 3" ]]
	[ "$(st '[.state, .outcome.cause.kind] | join("|")')" = "failed|alarm" ]
	[[ "$(st .outcome.cause.msg)" =~ ^"critical alarm while a stop was pending (command "[0-9]+")"$ ]]
	[ "$(st '.outcome.pending_command | "\(.op) \(.fate)"')" = "stop superseded" ]
	run jq -r 'select(.sf == "S2F41") | .sml | capture("<A \"(?<r>[A-Z]+)\">").r' "$T/trace.ndjson"
	assert_output "$(printf '%s\n' START STOP ABORT)"
	tool_stop
}

@test "hsms: the tool finishing the lot while a stop is pending: completed, exit 0, the stop noted" {
	tool_start --diameter 100 --edge 0 --pitch 20000 --die-px 16 --inject ignore@stop
	inject hold@10
	start_run -C "$R" "${SMALL[@]}" --wafers 2 "${HSMS[@]}" --acquire-arg="hsms:127.0.0.1:$TOOL_PORT" "${INJ[@]}"
	wait_for state_is running
	in_bg stop kerf stop -C "$R" --wait
	result stop
	finish_run
	[ "$KRC" -eq 0 ]
	[ "$rc" -eq 0 ]
	[[ "$out" == "stop superseded by the tool: "*"; run completed, exit 0" ]]
	[ "$(st '[.state, .outcome.pending_command.op, .outcome.pending_command.fate] | join("|")')" = "completed|stop|superseded" ]
	tool_stop
}

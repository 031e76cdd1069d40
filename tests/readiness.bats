#!/usr/bin/env bats
# Readiness checked together (issue 18, item 3): kerf run's own checks
# (rundir, programs, machine_ready) and kerf-acquire's tool checks
# (tool_link, tool_model, tool_online, tool_recipe) against kerf-tool.
# The first failure ends preparation naming the check; the ready
# timeout cuts a check still running with cause timeout naming it.
#
# Only 127.0.0.1 and ephemeral ports; every wait is bounded polling.

load common
load tool

setup() {
	T="$BATS_TEST_TMPDIR"
	R="$T/run"
	BG=()
	# kerf-sim with every tool check on: the model must match, the
	# recipe must be on the tool (S7F19), and the control state (VID 5)
	# must be ONLINE REMOTE.
	jq '. + {readiness: {model_must_match: true, recipes: true, control_state_vid: 5}}' \
		"$BATS_TEST_DIRNAME/../profiles/kerf-sim.json" > "$T/strict.json"
}

teardown() {
	tool_cleanup
}

# over_hsms ARGS...: kerf run over HSMS against $TOOL_PORT with the strict
# profile; its status in KRC.
over_hsms() {
	KRC=0
	timeout 60 kerf run -C "$R" --wafers 1 --no-project --acquire-arg=--profile --acquire-arg="$T/strict.json" \
		--acquire-arg=--connect --acquire-arg="hsms:127.0.0.1:$TOOL_PORT" "$@" \
		< /dev/null > "$T/kerf.out" 2> "$T/kerf.err" || KRC=$?
}

# cause FIELD: the run's outcome.cause.FIELD in status.json.
cause() {
	jq -r ".outcome.cause.$1" "$R/status.json"
}

# outcome CHECK: CHECK's outcome in status.json.
outcome() {
	jq -r --arg c "$1" '.checks[] | select(.check == $c) | .outcome' "$R/status.json"
}

@test "a good run over HSMS: every check's outcome and duration in status.json and the timeline, then ready" {
	tool_start --profile "$T/strict.json" --die-px 16 --diameter 100
	over_hsms
	tool_stop
	[ "$KRC" -eq 0 ] || { cat "$T/kerf.err"; false; }
	# Every check, whatever the order they finished in, with its duration.
	[ "$(jq '[.checks[] | select(.duration_ms | type != "number")] | length' "$R/status.json")" -eq 0 ]
	diff <(jq -r '.checks[] | "\(.check) \(.outcome)"' "$R/status.json" | sort) \
		<(printf '%s\n' 'machine_ready ok' 'programs ok' 'rundir ok' 'tool_link ok' 'tool_model ok' \
			'tool_online ok' 'tool_recipe ok')
	# The timeline: a final check record for each, with its duration, all before ready.
	run jq -r 'select(.kind == "check" and .outcome == "ok") | "\(.check) \(.duration_ms | type)"' "$R/timeline.ndjson"
	[ "${#lines[@]}" -eq 7 ]
	[[ "$output" != *null* ]]
	last_check=$(jq -s 'map(.kind == "check" and .outcome == "ok") | rindex(true)' "$R/timeline.ndjson")
	ready=$(jq -s 'map(.kind == "transition" and .event == "ready") | index(true)' "$R/timeline.ndjson")
	[ "$last_check" -lt "$ready" ]
	# The tool's S7F19 was answered beside the set-up, and S1F3 read the control state.
	grep -q '"sf":"S7F19"' "$R/hsms.ndjson"
	grep -q '"sf":"S1F3"' "$R/hsms.ndjson"
}

@test "the default pipeline on the simulator reports the tool checks as skipped and completes" {
	run kerf run -C "$R" --wafers 1 --no-project
	assert_success
	run jq -r '.checks[] | "\(.check) \(.outcome)"' "$R/status.json"
	assert_line 'tool_link skipped'
	assert_line 'tool_recipe skipped'
	assert_line 'machine_ready ok'
	[ "$(jq -r .state "$R/status.json")" = completed ]
}

@test "free space below --min-free: check rundir is the cause, nothing is launched" {
	run --separate-stderr kerf run -C "$R" --min-free 1000000G --stage cat
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"readiness check 'rundir' failed"*"below --min-free"* ]]
	[ "$(cause kind)" = preparation ]
	[ "$(cause check)" = rundir ]
	[ "$(outcome rundir)" = failed ]
	[ "$(outcome programs)" = cancelled ]
	[ -z "$(jq -r 'select(.kind == "stage_start")' "$R/timeline.ndjson")" ]
}

@test "a run directory that is not writable: check rundir is the cause" {
	local as=()
	if [ "$(id -u)" -eq 0 ]; then
		command -v setpriv >/dev/null || skip "no setpriv to run kerf as another user"
		as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		MNT_TMP=$(mktemp -d /tmp/kerf-ro.XXXXXX)
		chmod 755 "$MNT_TMP"
		R="$MNT_TMP/run"
	fi
	mkdir -p "$R"
	: >"$R/lock"
	: >"$R/timeline.ndjson"
	chmod a+rw "$R/lock" "$R/timeline.ndjson"
	chmod a-w "$R"
	run --separate-stderr "${as[@]}" "$KERF_BIN/kerf" run -C "$R" --stage true
	chmod u+w "$R"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"readiness check 'rundir' failed: run directory '$R' is not writable"* ]]
	run jq -r 'select(.kind == "check") | "\(.check) \(.outcome)"' "$R/timeline.ndjson"
	[ -z "${MNT_TMP:-}" ] || rm -rf "$MNT_TMP"
	assert_line 'rundir failed'
	assert_line 'programs cancelled'
}

@test "a stage program missing: check programs is the cause, naming the stage" {
	run --separate-stderr kerf run -C "$R" --stage cat --stage no-such-program-kerf
	[ "$status" -eq 1 ]
	[ "$(cause check)" = programs ]
	[ "$(outcome programs)" = failed ]
	[ "$(outcome rundir)" = ok ]
	jq -r '.checks[] | select(.check == "programs") | .reason' "$R/status.json" | grep -q "no-such-program-kerf"
}

@test "kerf-tool of another model: check tool_model is the cause, the others are cancelled or done" {
	tool_start --profile "$T/strict.json" --model OTHER-TOOL
	over_hsms
	[ "$KRC" -eq 1 ] || { cat "$T/kerf.err"; false; }
	[ "$(jq -r .state "$R/status.json")" = failed ]
	[ "$(cause kind)" = preparation ]
	[ "$(cause check)" = tool_model ]
	[[ "$(cause msg)" == *"OTHER-TOOL"* ]]
	[ "$(outcome tool_model)" = failed ]
	[ "$(outcome tool_link)" = ok ]
	# Nothing after the model: cancelled, not run.
	[ "$(outcome tool_online)" = cancelled ]
	jq -c 'select(.kind == "transition" and .event == "not_ready") | .check' "$R/timeline.ndjson" | grep -qx '"tool_model"'
	# The tool never got START.
	! grep -q '"sf":"S2F41"' "$R/hsms.ndjson"
}

@test "a model mismatch is only a warning when the profile does not say the model must match" {
	jq '.readiness.model_must_match = false' "$T/strict.json" > "$T/lax.json" && mv "$T/lax.json" "$T/strict.json"
	tool_start --profile "$T/strict.json" --model OTHER-TOOL --die-px 16 --diameter 100
	over_hsms
	tool_stop
	[ "$KRC" -eq 0 ] || { cat "$T/kerf.err"; false; }
	[ "$(outcome tool_model)" = ok ]
	jq -r '.checks[] | select(.check == "tool_model") | .reason' "$R/status.json" | grep -q OTHER-TOOL
}

@test "kerf-tool refusing to go online: check tool_online is the cause" {
	tool_start --profile "$T/strict.json" --refuse-online
	over_hsms
	[ "$KRC" -eq 1 ] || { cat "$T/kerf.err"; false; }
	[ "$(cause check)" = tool_online ]
	[[ "$(cause msg)" == *"ONLACK 1"* ]]
	[ "$(outcome tool_model)" = ok ]
}

@test "kerf-tool ONLINE LOCAL: check tool_online is the cause (the control state is not remote)" {
	tool_start --profile "$T/strict.json" --local
	over_hsms
	[ "$KRC" -eq 1 ] || { cat "$T/kerf.err"; false; }
	[ "$(cause check)" = tool_online ]
	[[ "$(cause msg)" == *"not ONLINE REMOTE"*"online local"* ]]
}

@test "the recipe missing on the tool: check tool_recipe is the cause" {
	tool_start --profile "$T/strict.json" --recipes other-a,other-b
	over_hsms
	[ "$KRC" -eq 1 ] || { cat "$T/kerf.err"; false; }
	[ "$(cause check)" = tool_recipe ]
	[[ "$(cause msg)" == *"recipe 'sim-default' is not on the tool (2 recipes listed)"* ]]
	[ "$(outcome tool_recipe)" = failed ]
}

@test "a tool that never answers S7F19 is cut by --ready-timeout: cause timeout naming tool_recipe" {
	tool_start --profile "$T/strict.json" --mute S7F19
	over_hsms --ready-timeout 1s
	[ "$KRC" -eq 124 ] || { cat "$T/kerf.err"; false; }
	[ "$(jq -r .state "$R/status.json")" = timed-out ]
	[ "$(cause kind)" = timeout ]
	[ "$(cause what)" = ready_timeout ]
	[ "$(cause check)" = tool_recipe ]
	[ "$(outcome tool_recipe)" = timeout ]
	# The other tool checks had finished: they stay ok.
	[ "$(outcome tool_model)" = ok ]
	[ "$(outcome tool_online)" = ok ]
}

@test "a tool that never answers S1F1 is cut by --ready-timeout: cause timeout naming tool_model" {
	jq '.readiness.recipes = false' "$T/strict.json" > "$T/x.json" && mv "$T/x.json" "$T/strict.json"
	tool_start --profile "$T/strict.json" --mute S1F1
	over_hsms --ready-timeout 1s
	[ "$KRC" -eq 124 ] || { cat "$T/kerf.err"; false; }
	[ "$(cause kind)" = timeout ]
	[ "$(cause check)" = tool_model ]
	[ "$(outcome tool_model)" = timeout ]
	[ "$(outcome tool_recipe)" = skipped ]
	# Never begun: cancelled, not timed out.
	[ "$(outcome tool_online)" = cancelled ]
}

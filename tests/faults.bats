#!/usr/bin/env bats
# kerf's fault matrix, with real processes: a stage that exits non-zero
# mid-run, one killed with SIGKILL mid-run, one that hangs ignoring
# SIGTERM; for a foreign command and for each of the five kerf stages.
# Each time: the run fails (or times out) naming that stage, the exit
# code is right, every process of the run is gone, and the timeline shows
# the supervisor got there in order: SIGTERM to the group after the
# cause, SIGKILL only once the grace period was over.  Then: the supervisor SIGKILLed, grandchildren,
# the operator's stop losing nothing, stall, deadline, ready timeout,
# an optional stage's failure, and the root cause behind broken pipes.
#
# Real stages misbehave through tests/data/kerf/wrap (documented there)
# or are killed by the pid in status.json; their tests skip until the
# program is built.

load common
load kerf-run
bats_require_minimum_version 1.5.0

GRACE_MS=1000
NAMES=(kerf-acquire kerf-validate kerf-detect kerf-persist kerf-project)

stage_has_input() { jq -e --arg n "$1" '.stages[] | select(.name == $n) | (.counters.in // .counters.out // 0) > 0' "$R/status.json" >/dev/null 2>&1; }

# assert_outcome STATE EXIT STAGE HOW-REGEX: status.json names it.
assert_outcome() {
	[ "$KRC" -eq "$2" ] || { echo "kerf run exited $KRC, not $2"; cat "$ERR"; false; }
	run jq -r '[.state, .outcome.cause.stage, .outcome.cause.how] | join("|")' "$R/status.json"
	[[ "$output" =~ ^$1\|$3\|$4$ ]] || { echo "outcome: $output, wanted $1|$3|$4"; false; }
	[ "$(jq -r '.outcome.exit_code' "$R/summary.json")" = "$2" ]
}

# assert_all_gone: no process of the run is left, and the timeline says
# how the supervisor got there: no signal before the cause; then SIGTERM
# to the whole group with the grace period; a SIGKILL, if one was
# needed, to the group only once the grace period was over (measured on
# the supervisor's own clock, so a slow machine can only widen the gap);
# an exit record for every stage, then all_exited.  How long the stages
# took to go is not judged: that depends on the machine.
assert_all_gone() {
	wait_for pgrp_gone "$(run_pgid)"
	for p in $(jq -r '.stages[].pid' "$R/status.json"); do wait_for pid_gone "$p"; done
	run jq -rs --argjson grace "$GRACE_MS" --argjson nstages "$(jq '.stages | length' "$R/status.json")" '
		(map(.kind) | index("cause")) as $c
		| (map(.kind) | index("all_exited")) as $e
		| [to_entries[] | select(.value.kind == "signal_sent")] as $sig
		| ($sig | map(select(.value.sig == "TERM" and .value.target == "group"))) as $term
		| ($sig | map(select(.value.sig == "KILL"))) as $kill
		| if $c == null then "no cause in the timeline"
		  elif ($sig | map(select(.key < $c)) | length) > 0 then "a signal was sent before the cause"
		  elif ($term | length) != 1 then "\($term | length) SIGTERMs to the group, not one"
		  elif $term[0].value.grace_ms != $grace then "grace_ms \($term[0].value.grace_ms), not \($grace)"
		  elif ($sig[0].value.sig != "TERM" or $sig[0].value.target != "group") then "the first signal was not SIGTERM to the group"
		  elif ($kill | map(select(.value.target != "group" or .value.why != "grace period over"
				or .key < $term[0].key or .value.ms - $term[0].value.ms < $grace)) | length) > 0
			then "SIGKILL before the grace period was over: \($kill | map(.value))"
		  elif $e == null then "no all_exited record"
		  elif $e < $term[0].key then "all_exited before the SIGTERM"
		  elif ([.[:$e][] | select(.kind == "stage_exit")] | length) != $nstages then "not every stage has an exit record before all_exited"
		  else empty end' "$R/timeline.ndjson"
	assert_success
	assert_output ""
}

need() {
	for p in "$@"; do [ -x "$KERF_BIN/$p" ] || skip "$p is not built yet"; done
}

# real_args VICTIM WRAP...: the default pipeline as --stage arguments,
# each stage named like the default one; the VICTIM stage (an index)
# is run through WRAP; kerf-project is critical here.
real_args() {
	local victim=$1
	shift
	local cmds=("kerf-acquire --wafers 2 --seed 7 ${ACQ_EXTRA:-}" "kerf-validate" "kerf-detect"
		"kerf-persist -C $R --downstream-optional" "kerf-project -C $R")
	ARGS=(--grace "$((GRACE_MS / 1000))" --tick 100ms)
	local i
	for i in 0 1 2 3 4; do
		local c=${cmds[$i]}
		[ "$i" = "$victim" ] && [ $# -gt 0 ] && c="$* $c"
		ARGS+=(--stage "$c" --name "${NAMES[$i]}")
	done
}

# ---- a foreign command ----

@test "a foreign stage exiting non-zero mid-run fails the run naming it, exit 1" {
	start_run -C "$R" --grace 1 --stage 'seq 1 100000000' --stage cat \
		--stage "$D/exit-after 1000 5" --name victim --stage cat
	finish_run
	assert_outcome failed 1 victim 'exit 5'
	# seq and cat died of the broken pipe: consequences, not causes.
	[ "$(jq -r '[.stages[0:3][] | .verdict] | join(",")' "$R/status.json")" = "consequence,consequence,cause" ]
	assert_all_gone
}

@test "a foreign stage killed with SIGKILL mid-run fails the run naming it, exit 1" {
	start_run -C "$R" --grace 1 --tick 50ms --stage "$FAKE" --stage cat --name victim --stage cat
	wait_for state_is running
	wait_for test -s "$OUT"
	kill -9 "$(stage_pid victim)"
	finish_run
	assert_outcome failed 1 victim 'signal KILL'
	assert_all_gone
}

@test "a foreign stage hanging and ignoring SIGTERM is named by the stall watchdog, exit 124" {
	start_run -C "$R" --grace 1 --stall 1 --tick 100ms --stage "$FAKE" \
		--stage "$D/hang-ignoring-term 50" --name victim --stage cat
	finish_run
	assert_outcome timed-out 124 victim 'no progress for [0-9]+ ms'
	[ "$(jq -r .outcome.cause.what "$R/status.json")" = stall ]
	# It needed the SIGKILL.
	grep -q '"kind":"signal_sent".*"sig":"KILL"' "$R/timeline.ndjson"
	assert_all_gone
}

# ---- the five kerf stages ----

exit_midrun() {
	local i=$1 mode=exit
	need "${NAMES[@]}"
	[ "$i" = 0 ] && mode=exit-out
	real_args "$i" "$D/wrap" "$mode" 300
	start_run -C "$R" "${ARGS[@]}"
	finish_run
	assert_outcome failed 1 "${NAMES[$i]}" 'exit 2'
	assert_all_gone
}

kill_midrun() {
	local i=$1
	need "${NAMES[@]}"
	# Paced, and held open by a day-long stall after 1000 of its about
	# 1240 events: the run cannot end before the kill, however slow the
	# machine.  Stats every 100 ms show the victim's input soon.
	ACQ_EXTRA="--rate 400 --inject stall@1000:86400" real_args "$i"
	KERF_STATS_MS=100 start_run -C "$R" "${ARGS[@]}"
	wait_for stage_has_input "${NAMES[$i]}"
	kill -9 "$(stage_pid "${NAMES[$i]}")"
	finish_run
	assert_outcome failed 1 "${NAMES[$i]}" 'signal KILL'
	assert_all_gone
}

hang_midrun() {
	local i=$1 mode=hang
	need "${NAMES[@]}"
	[ "$i" = 0 ] && mode=hang-out
	real_args "$i" "$D/wrap" "$mode" 300
	ARGS+=(--stall 1)
	start_run -C "$R" "${ARGS[@]}"
	finish_run
	assert_outcome timed-out 124 "${NAMES[$i]}" 'no progress for [0-9]+ ms'
	# The wrapper ignores SIGTERM: it needed the SIGKILL.
	grep -q '"kind":"signal_sent".*"sig":"KILL"' "$R/timeline.ndjson"
	assert_all_gone
}

@test "kerf-acquire exiting non-zero mid-run fails the run naming it" { exit_midrun 0; }
@test "kerf-validate exiting non-zero mid-run fails the run naming it" { exit_midrun 1; }
@test "kerf-detect exiting non-zero mid-run fails the run naming it" { exit_midrun 2; }
@test "kerf-persist exiting non-zero mid-run fails the run naming it" { exit_midrun 3; }
@test "kerf-project exiting non-zero mid-run fails the run naming it" { exit_midrun 4; }
@test "kerf-acquire killed with SIGKILL mid-run fails the run naming it" { kill_midrun 0; }
@test "kerf-validate killed with SIGKILL mid-run fails the run naming it" { kill_midrun 1; }
@test "kerf-detect killed with SIGKILL mid-run fails the run naming it" { kill_midrun 2; }
@test "kerf-persist killed with SIGKILL mid-run fails the run naming it, not the broken pipes upstream" { kill_midrun 3; }
@test "kerf-project killed with SIGKILL mid-run fails the run naming it" { kill_midrun 4; }
@test "kerf-acquire hanging and ignoring SIGTERM times the run out naming it" { hang_midrun 0; }
@test "kerf-validate hanging and ignoring SIGTERM times the run out naming it" { hang_midrun 1; }
@test "kerf-detect hanging and ignoring SIGTERM times the run out naming it" { hang_midrun 2; }
@test "kerf-persist hanging and ignoring SIGTERM times the run out naming it" { hang_midrun 3; }
@test "kerf-project hanging and ignoring SIGTERM times the run out naming it" { hang_midrun 4; }

@test "kerf-acquire's injected crash fails the default pipeline naming it" {
	need "${NAMES[@]}"
	start_run -C "$R" --wafers 2 --acquire-arg --inject --acquire-arg crash@200 --grace 1
	finish_run
	assert_outcome failed 1 kerf-acquire 'signal KILL'
	assert_all_gone
}

# ---- the supervisor itself, grandchildren ----

@test "SIGKILL to the supervisor leaves no stage and no grandchild alive" {
	start_run -C "$R" --tick 50ms --stage "$FAKE" --stage "$D/forks-grandchild $BATS_TEST_TMPDIR/gc" --stage cat
	wait_for state_is running
	wait_for test -s "$BATS_TEST_TMPDIR/gc"
	pg=$(run_pgid)
	kill -9 "$KPID"
	wait "$KPID" || true
	KPID=
	wait_for pgrp_gone "$pg"
	wait_for pid_gone "$(cat "$BATS_TEST_TMPDIR/gc")"
	for p in $(jq -r '.stages[].pid' "$R/status.json"); do wait_for pid_gone "$p"; done
	run kerf status -C "$R"
	assert_line --partial ": running (no supervisor: it died)"
	# The lock died with it: a new run may take the directory.
	run --separate-stderr kerf run -C "$R" --stage true
	assert_success
}

@test "a closed stderr does not kill kerf run" {
	run bash -c "kerf run -C '$R' --stage 'seq 1 10' --stage 'sh -c \"cat; echo done >&2\"' 2>&-"
	assert_success
	[ "$(jq -r .state "$R/status.json")" = completed ]
}

@test "a stage's grandchild does not survive a failed run" {
	start_run -C "$R" --grace 1 --stage "$FAKE" --stage "$D/forks-grandchild $BATS_TEST_TMPDIR/gc" \
		--stage "$D/exit-after 20 9" --name victim
	finish_run
	assert_outcome failed 1 victim 'exit 9'
	wait_for pid_gone "$(cat "$BATS_TEST_TMPDIR/gc")"
	assert_all_gone
}

@test "a stage's grandchild does not survive a completed run" {
	run --separate-stderr kerf run -C "$R" --stage 'seq 1 10' --stage "$D/forks-grandchild $BATS_TEST_TMPDIR/gc"
	assert_success
	wait_for pid_gone "$(cat "$BATS_TEST_TMPDIR/gc")"
	wait_for pgrp_gone "$(run_pgid)"
}

# ---- operator, alarm, timeouts, optional ----

@test "operator stop mid-run: cancelled, exit 130, every event acquired before the stop is persisted" {
	need "${NAMES[@]}"
	# Paced, and held open by a day-long stall after 1500 of its about
	# 1860 events: the stop always comes before the lot's end.
	start_run -C "$R" --wafers 3 --record --acquire-arg --rate --acquire-arg 400 \
		--acquire-arg --inject --acquire-arg stall@1500:86400
	wait_for stage_has_input kerf-persist
	kerf stop -C "$R"
	finish_run
	[ "$KRC" -eq 130 ]
	[ "$(jq -r .state "$R/status.json")" = cancelled ]
	[ "$(jq -r '[.stages[] | .verdict] | unique | join(",")' "$R/status.json")" = ok ]
	acquired=$(wc -l <"$R/acquired.ndjson")
	[ "$(tail -n 1 "$R/acquired.ndjson" | jq -r .status)" = stopped ]
	[ "$(jq -r '.stages[1].counters.in' "$R/status.json")" -eq "$acquired" ]
	# Every acquired seq is in the journal: as itself, or for a die as
	# the die_done kerf-detect made from it.
	jq -r .seq "$R/acquired.ndjson" | sort -u >"$BATS_TEST_TMPDIR/acq.seq"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/acq.seq")" -gt 10 ]
	cat "$R"/journal/*.ndjson | jq -r 'select(.type != null) | .seq' | sort -u >"$BATS_TEST_TMPDIR/jnl.seq"
	diff -u "$BATS_TEST_TMPDIR/acq.seq" "$BATS_TEST_TMPDIR/jnl.seq"
	[ "$(jq -r '.stages[3].counters.unsent // 0' "$R/status.json")" -eq 0 ]
}

@test "kerf-acquire exiting 3 on a critical alarm: state failed, exit 3, downstream drained" {
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	cp "$FAKE" "$BATS_TEST_TMPDIR/bin/kerf-acquire"
	FAKE_ALARM=30 start_run -C "$R" --stage "$BATS_TEST_TMPDIR/bin/kerf-acquire" --stage cat \
		--stage 'sh -c "sleep 0.3; exec cat"'
	finish_run
	[ "$KRC" -eq 3 ]
	[ "$(jq -r '[.state, .outcome.cause.kind, .outcome.cause.stage] | join("|")' "$R/status.json")" = "failed|alarm|kerf-acquire" ]
	# Nothing was torn down: the last line made it through.
	[ "$(grep -c '"type":"die"' "$OUT")" -eq 30 ]
	[ "$(tail -n 1 "$OUT" | jq -r .status)" = aborted ]
	run jq -r 'select(.kind == "signal_sent")' "$R/timeline.ndjson"
	assert_output ""
}

@test "--stall names a stage with input waiting and no progress: timed-out, exit 124" {
	start_run -C "$R" --stall 0.5 --tick 50ms --grace 1 --stage "$FAKE" --stage 'sh -c "head -n 3; exec sleep 1000"' --name slow
	finish_run
	assert_outcome timed-out 124 slow 'no progress for [0-9]+ ms'
	assert_all_gone
}

@test "--deadline times the whole run out: timed-out, exit 124" {
	start_run -C "$R" --deadline 0.5 --grace 1 --stage "$FAKE" --stage cat
	finish_run
	[ "$KRC" -eq 124 ]
	[ "$(jq -r '[.state, .outcome.cause.what] | join("|")' "$R/status.json")" = "timed-out|deadline" ]
	assert_all_gone
}

@test "--ready-timeout: a first stage that produces nothing in time times the run out in preparation" {
	start_run -C "$R" --ready-timeout 0.3 --grace 1 --stage 'sleep 100' --stage cat
	finish_run
	[ "$KRC" -eq 124 ]
	[ "$(jq -r '[.state, .outcome.cause.what] | join("|")' "$R/status.json")" = "timed-out|ready_timeout" ]
	run jq -r 'select(.kind == "transition") | .from + ">" + .to' "$R/timeline.ndjson"
	assert_output "$(printf 'idle>preparing\npreparing>stopping\nstopping>timed-out')"
	assert_all_gone
}

@test "kerf-acquire not ready within --ready-timeout: timed-out in preparation naming it, exit 124" {
	need "${NAMES[@]}"
	start_run -C "$R" --ready-timeout 0.5 --grace 1 --acquire-arg --inject --acquire-arg notready
	finish_run
	assert_outcome timed-out 124 kerf-acquire 'no output in 500 ms'
	[ "$(jq -r .outcome.cause.what "$R/status.json")" = ready_timeout ]
	assert_all_gone
}

@test "an optional stage's failure leaves the run completed and degraded, exit 0" {
	run --separate-stderr kerf run -C "$R" --stage 'seq 1 100' --stage 'tee /dev/null' \
		--stage 'sh -c "head -n 1 >/dev/null; exit 7"' --name viewer --optional
	assert_success
	[ "$(jq -r '[.state, .outcome.degraded, .outcome.degraded_stages[0]] | join("|")' "$R/status.json")" = "completed|true|viewer" ]
	[ "$(jq -r .outcome.degraded "$R/summary.json")" = true ]
	[[ "$stderr" == *"optional stage 'viewer' failed (exit 7)"* ]]
}

@test "the default pipeline's kerf-project failing leaves the run completed and degraded" {
	need "${NAMES[@]}"
	run --separate-stderr kerf run -C "$R" --wafers 1 --project-arg --no-such-option
	assert_success
	[ "$(jq -r '[.state, .outcome.degraded_stages[0]] | join("|")' "$R/status.json")" = "completed|kerf-project" ]
}

@test "an exit 74 logged with reason downstream_closed is a consequence, whatever its message says" {
	# The victim exits only once its reader has (head closes its input
	# before it exits), so kerf notices the reader's exit no later.
	kerf run -C "$R" --stage "$D/output-closed '{\"lvl\":\"error\",\"msg\":\"gone\",\"reason\":\"downstream_closed\"}' $BATS_TEST_TMPDIR/reader.pid" \
		--name victim --stage "sh -c 'echo \$\$ > $BATS_TEST_TMPDIR/reader.pid; exec head -n 1'"
	[ "$(jq -r '.stages[] | select(.name == "victim") | .verdict' "$R/status.json")" = consequence ]
}

@test "an exit 74 whose error has no reason downstream_closed is the cause, whatever its message says" {
	run kerf run -C "$R" --stage "$D/output-closed '{\"lvl\":\"error\",\"msg\":\"cannot write standard output: downstream closed\"}'" \
		--name victim --stage 'head -n 1'
	assert_failure 1
	[ "$(jq -r '[.outcome.cause.stage, (.stages[] | select(.name == "victim") | .verdict)] | join("|")' "$R/status.json")" = "victim|cause" ]
}

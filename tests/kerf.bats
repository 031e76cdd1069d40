#!/usr/bin/env bats
# kerf, the supervisor: runs, status, stop, pause, the lock, options.
# The mechanics are tested with foreign commands and the scripts in
# tests/data/kerf (fake/kerf-acquire keeps kerf-acquire's signal
# contract); the default pipeline's tests skip until its programs exist.

load common
load kerf-run
bats_require_minimum_version 1.5.0

have_lines() { [ -s "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }
need_stages() {
	for p in kerf-acquire kerf-validate kerf-detect kerf-persist; do
		[ -x "$KERF_BIN/$p" ] || skip "$p is not built yet"
	done
}

@test "kerf run supervises a pipeline of foreign commands to completion, exit 0" {
	seq 1 1000 >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr kerf run -C "$R" --stage cat --stage 'grep --line-buffered 7' --stage 'wc -l' \
		<"$BATS_TEST_TMPDIR/in"
	assert_success
	assert_output "$(grep 7 "$BATS_TEST_TMPDIR/in" | wc -l)"
	[ "$(jq -r .state "$R/status.json")" = completed ]
	[ "$(jq -r .outcome.exit_code "$R/status.json")" = 0 ]
	[ "$(jq -r '[.stages[].state] | unique | join(",")' "$R/status.json")" = exited ]
	run jq -r 'select(.kind == "transition") | .to' "$R/timeline.ndjson"
	assert_output "$(printf 'preparing\nrunning\ncompleted')"
	[ "$(jq -r .outcome.state "$R/summary.json")" = completed ]
	wait_for pgrp_gone "$(run_pgid)"
}

@test "kerf run prints the run directory and the outcome as its last stderr line" {
	run --separate-stderr kerf run -C "$R" --stage true
	assert_success
	last=$(printf '%s\n' "$stderr" | tail -n 1)
	[ "$(jq -r .rundir <<<"$last")" = "$R" ]
	[ "$(jq -r .state <<<"$last")" = completed ]
	KERF_LOG=text run --separate-stderr kerf run -C "$R.2" --stage 'sh -c "exit 4"'
	[ "$status" -eq 1 ]
	[[ "$(printf '%s\n' "$stderr" | tail -n 1)" == "kerf: run 'run.2' failed (exit 1); run directory '$R.2'" ]]
}

@test "kerf run without -C creates runs/ID and points runs/latest at it" {
	cd "$BATS_TEST_TMPDIR"
	run kerf run --run first --stage true
	assert_success
	assert_file_exists runs/first/status.json
	[ "$(readlink runs/latest)" = first ]
	[ "$(jq -r .run runs/first/status.json)" = first ]
	run kerf status
	assert_success
	assert_output --partial "run first in runs/latest: completed"
}

@test "kerf run gives every stage KERF_RUNDIR and KERF_RUN, the run id defaulting to the directory name" {
	run --separate-stderr kerf run -C "$R" --stage "sh -c 'echo \$KERF_RUN \$KERF_RUNDIR'"
	assert_success
	assert_output "run $(cd "$R" && pwd -P)"
}

@test "kerf run tags each stage's stderr with stage and run in log.ndjson and shows warnings" {
	run --separate-stderr kerf run -C "$R" --stage 'sh -c "echo plain text >&2; echo {\\\"lvl\\\":\\\"warn\\\",\\\"msg\\\":\\\"careful\\\"} >&2; echo {\\\"lvl\\\":\\\"info\\\",\\\"msg\\\":\\\"quiet\\\"} >&2"' --name talker
	assert_success
	run jq -c 'select(.stage == "talker") | [.run, .msg]' "$R/log.ndjson"
	assert_output "$(printf '%s\n' '["run","plain text"]' '["run","careful"]' '["run","quiet"]')"
	[[ "$stderr" == *careful* ]]
	[[ "$stderr" == *"plain text"* ]]
	[[ "$stderr" != *quiet* ]]
}

@test "kerf run keeps each stage's stats counters in status.json" {
	run kerf run -C "$R" --stage 'sh -c "echo {\\\"msg\\\":\\\"stats\\\",\\\"in\\\":5,\\\"out\\\":4,\\\"rejected\\\":1} >&2"'
	assert_success
	[ "$(jq -c '.stages[0].counters' "$R/status.json")" = '{"in":5,"out":4,"rejected":1}' ]
	[ "$(grep -c '"msg":"stats"' "$R/log.ndjson")" -eq 1 ]
}

@test "kerf status shows every stage's pid, state, queue and counters; --json is for jq" {
	start_run -C "$R" --tick 50ms --stage "$FAKE" --stage cat --stage 'tee /dev/null'
	wait_for state_is running
	wait_for jq -e '.stages[1].queue.cap > 0' "$R/status.json"
	run kerf status -C "$R"
	assert_success
	assert_line --partial "run run in $R: running (supervisor pid $KPID)"
	assert_line --regexp '^kerf-acquire +[0-9]+ running'
	assert_line --regexp '^cat +[0-9]+ running +[0-9]+/65536'
	run kerf status -C "$R" --json
	assert_success
	[ "$(jq -r '.stages | length' <<<"$output")" -eq 3 ]
	[ "$(jq -r '.stages[2].pid' <<<"$output")" -gt 0 ]
	kerf stop -C "$R"
	finish_run
	[ "$KRC" -eq 130 ]
}

@test "kerf pause and kerf resume pause the first stage and the run" {
	start_run -C "$R" --stage "$FAKE" --stage "cat"
	wait_for state_is running
	kerf pause -C "$R"
	wait_for state_is paused
	[ "$(jq -r .stages[0].state "$R/status.json")" = paused ]
	# The producer got the pause: its state event is the last line out
	# until the resume.
	wait_for grep -q '"state":"paused"}$' "$OUT"
	[ "$(tail -n 1 "$OUT")" = '{"type":"state","state":"paused"}' ]
	kerf resume -C "$R"
	wait_for state_is running
	wait_for grep -q '"prev":"paused"' "$OUT"
	n2=$(wc -l <"$OUT")
	wait_for have_lines "$OUT" $((n2 + 5))
	kerf stop -C "$R" --wait
	finish_run
	[ "$KRC" -eq 130 ]
	# One pause, and the line after it is the resume: a paused producer
	# produced nothing, however long the pause lasted.
	[ "$(grep -c '"state":"paused"' "$OUT")" -eq 1 ]
	run grep -A 1 '"state":"paused"' "$OUT"
	assert_output "$(printf '%s\n' '{"type":"state","state":"paused"}' '{"type":"state","state":"executing","prev":"paused"}')"
	run jq -r 'select(.kind == "transition") | .to' "$R/timeline.ndjson"
	# A first stage that reports no commands: kerf confirms each one at
	# once (tests/commands.bats has a tool that answers).
	assert_output "$(printf 'preparing\nrunning\npausing\npaused\nresuming\nrunning\nstop-requested\nstopping\ncancelled')"
}

@test "kerf stop stops acquisition, lets the pipeline drain, state cancelled, exit 130" {
	start_run -C "$R" --stage "$FAKE" --stage 'sh -c "sleep 0.2; exec cat"'
	wait_for have_lines "$OUT" 3
	kerf stop -C "$R" --wait
	finish_run
	[ "$KRC" -eq 130 ]
	[ "$(jq -r .state "$R/status.json")" = cancelled ]
	# Everything the producer emitted came out of the end of the pipeline.
	last=$(tail -n 1 "$OUT")
	[ "$(jq -r .status <<<"$last")" = stopped ]
	[ "$(grep -c '"type":"die"' "$OUT")" -eq "$(jq -r .dies <<<"$last")" ]
	[ "$(jq -r '.stages[] | .verdict' "$R/status.json" | sort -u)" = ok ]
}

@test "the first SIGINT to kerf run stops like kerf stop; the second aborts at once" {
	start_run -C "$R" --grace 5 --stage "$FAKE" --stage 'sh -c "cat; exec sleep 1000"'
	wait_for have_lines "$OUT" 3
	kill -INT "$KPID"
	wait_for state_is stopping
	wait_for grep -q run_end "$OUT"
	kill -INT "$KPID"
	finish_run
	[ "$KRC" -eq 130 ]
	[ "$(jq -r .outcome.cause.what "$R/status.json")" = abort ]
	# The abort sent SIGTERM to the whole group at once, and the stage
	# that would have slept on died of it (not of a SIGKILL after the
	# 5 s grace), as its exit record in the timeline says.
	run jq -r 'select(.kind == "signal_sent" and .target == "group") | .sig + " " + .why' "$R/timeline.ndjson"
	assert_line --index 0 "TERM abort"
	run jq -r 'select(.kind == "stage_exit" and .stage == "sh") | .signal' "$R/timeline.ndjson"
	assert_output TERM
	wait_for pgrp_gone "$(run_pgid)"
}

@test "a second kerf run on the same run directory is refused with exit 75" {
	start_run -C "$R" --stage "$FAKE" --stage cat
	wait_for state_is running
	run --separate-stderr kerf run -C "$R" --stage true
	[ "$status" -eq 75 ]
	[[ "$stderr" == *"is in use by another kerf run (pid $KPID)"* ]]
	state_is running
	kerf stop -C "$R"
	finish_run
	[ "$KRC" -eq 130 ]
	run kerf run -C "$R" --stage true
	assert_success
}

@test "kerf stop, pause and resume without an active run exit 69" {
	mkdir -p "$R"
	for c in stop pause resume; do
		run --separate-stderr kerf "$c" -C "$R"
		[ "$status" -eq 69 ]
		[[ "$stderr" == *"no run is active in '$R'"* ]]
	done
	run kerf status -C "$R"
	[ "$status" -eq 69 ]
}

@test "kerf run rejects bad usage with exit 64" {
	bad=("--optional --stage true" "--name x" "--grace soon" "--echo loud" "--stall" "extra")
	for args in "${bad[@]}"; do
		# shellcheck disable=SC2086
		run kerf run -C "$R" $args
		[ "$status" -eq 64 ] || { echo "kerf run $args exited $status"; false; }
	done
	for st in "" "'unterminated" "a \"b"; do
		run kerf run -C "$R" --stage "$st"
		[ "$status" -eq 64 ] || { echo "kerf run --stage $st exited $status"; false; }
	done
	run kerf status --wafers 3
	[ "$status" -eq 64 ]
	[ ! -e "$R/status.json" ]
}

@test "kerf run fails in preparation when a program is missing, and starts no stage" {
	run --separate-stderr kerf run -C "$R" --stage cat --stage no-such-program-kerf
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"program 'no-such-program-kerf' not found"* ]]
	[ "$(jq -r .state "$R/status.json")" = failed ]
	[ "$(jq -r .outcome.cause.what "$R/status.json")" = preparation ]
	run jq -r 'select(.kind == "stage_start")' "$R/timeline.ndjson"
	assert_output ""
}

@test "kerf run refuses a run directory it cannot create or lock, exit 74" {
	run --separate-stderr kerf run -C /proc/kerf-cannot-be-here --stage true
	[ "$status" -eq 74 ]
	[[ "$stderr" == *"cannot create run directory '/proc/kerf-cannot-be-here'"* ]]
}

@test "kerf run fails in preparation when the run directory is not writable" {
	local as=()
	if [ "$(id -u)" -eq 0 ]; then
		# Root writes through permissions: run kerf as nobody, in a
		# directory nobody can reach.
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
	[ -z "${MNT_TMP:-}" ] || rm -rf "$MNT_TMP"
	[ "$status" -eq 1 ]
	[[ "$stderr" == *"run directory '$R' is not writable"* ]]
}

@test "kerf run on a read-only file system exits 74 naming the run directory's lock and the error" {
	mkdir -p "$R"
	mount -t tmpfs -o size=1m tmpfs "$R" 2>/dev/null || skip "cannot mount a tmpfs here (needs root)"
	MNT=$R
	mount -o remount,ro "$R"
	run --separate-stderr kerf run -C "$R" --stage true
	[ "$status" -eq 74 ]
	[[ "$stderr" == *"cannot open '$R/lock': Read-only file system"* ]]
	# Nothing was started.
	[ ! -e "$R/status.json" ]
}

@test "stages start with an empty signal mask, default SIGPIPE and only fds 0, 1 and 2" {
	run --separate-stderr kerf run -C "$R" --stage 'grep -E ^Sig(Blk|Ign) /proc/self/status'
	assert_success
	assert_line "SigBlk:	0000000000000000"
	ign=$(sed -n 's/^SigIgn:\t//p' <<<"$output")
	# SIGPIPE is bit 12 (signal 13): it must not be ignored.
	[ $((0x$ign & (1 << 12))) -eq 0 ]
	# ls's own directory descriptor aside, only 0, 1 and 2 are open.
	run --separate-stderr kerf run -C "$R.2" --stage 'ls -l /proc/self/fd' 3</dev/null 7</dev/null
	assert_success
	fds=$(grep -v -e '^total' -e '/proc/[0-9]*/fd$' <<<"$output" | awk '{ print $9 }' | sort -n | tr '\n' ' ')
	[ "$fds" = "0 1 2 " ]
}

@test "kerf run splits --stage into words without a shell, with ' and \" quoting" {
	run --separate-stderr kerf run -C "$R" --stage "printf '%s|' one 'two words' \"three \\\"q\\\"\" \$HOME;x"
	assert_success
	assert_output 'one|two words|three "q"|$HOME;x|'
}

@test "kerf run --name names a stage and two stages of one program get distinct names" {
	run --separate-stderr kerf run -C "$R" --stage 'echo hi' --name source --stage cat --stage cat
	assert_success
	[ "$(jq -r '[.stages[].name] | join(",")' "$R/status.json")" = "source,cat,cat#2" ]
}

@test "kerf run writes status.json atomically at a steady tick while running" {
	start_run -C "$R" --tick 50ms --stage "$FAKE" --stage cat
	wait_for state_is running
	u1=$(jq -r .updated "$R/status.json")
	wait_for bash -c "[ \"\$(jq -r .updated '$R/status.json')\" != '$u1' ]"
	wait_for bash -c "[ \$(grep -c '\"kind\":\"sample\"' '$R/timeline.ndjson') -ge 3 ]"
	kerf stop -C "$R"
	finish_run
	[ "$KRC" -eq 130 ]
}

@test "kerf run adds its outcome to the summary.json a stage wrote" {
	run kerf run -C "$R" --stage "sh -c 'echo {\\\"wafers\\\":2} > \$KERF_RUNDIR/summary.json'"
	assert_success
	[ "$(jq -c '[.wafers, .outcome.state, .outcome.exit_code]' "$R/summary.json")" = '[2,"completed",0]' ]
}

@test "kerf run with the default pipeline completes a small lot (make run)" {
	need_stages
	run --separate-stderr kerf run -C "$R" --wafers 1 --record
	assert_success
	[ "$(jq -r .state "$R/status.json")" = completed ]
	assert_file_exists "$R/acquired.ndjson"
	assert_file_exists "$R/summary.json"
	[ "$(jq -r .outcome.exit_code "$R/summary.json")" = 0 ]
	[ "$(jq -r '.stages[0].name' "$R/status.json")" = kerf-acquire ]
	[ "$(jq -r '.stages[3].argv | join(" ")' "$R/status.json")" = "kerf-persist -C $R$( [ -x "$KERF_BIN/kerf-project" ] && echo ' --downstream-optional')" ]
}

@test "the run state table allows exactly the transitions in tests/data/kerf/table.out" {
	golden_table runstate-table "$D/table.out"
	# Every final state refuses everything.
	[ -z "$(grep -E '^(completed|failed|cancelled|timed-out) ' <<<"$output")" ]
}

@test "the blame rules give exactly the verdicts in tests/data/kerf/blame.out" {
	golden_table blame-table "$D/blame.out"
	# An exit after kerf signalled the stage is never blamed, nor one explained downstream.
	[ -z "$(grep -E '(^| |,)signalled[ ,].* at_exit -> (cause|failed)$' <<<"$output")" ]
	[ -z "$(grep -E '^broken_pipe .*downstream.* -> (cause|failed|suspect)$' <<<"$output")" ]
}

@test "kerf pause while the run is stopping is refused by kerf, exit 75, and noted in the timeline" {
	start_run -C "$R" --stage "$FAKE" --stage 'sh -c "cat; exec sleep 1000"'
	wait_for have_lines "$OUT" 2
	kill -TERM "$KPID"
	wait_for state_is stopping
	run kerf pause -C "$R"
	[ "$status" -eq 75 ]
	assert_output "pause refused by kerf: the run is stopping (command 2)"
	run jq -c 'select(.kind == "command" and .op == "pause") | [.fate, .fate_by, .reason, .state]' "$R/timeline.ndjson"
	assert_output '["refused","kerf","the run is stopping","stopping"]'
	state_is stopping
	kerf stop -C "$R" --abort
	finish_run
	[ "$KRC" -eq 130 ]
}

@test "kerf killed just before or after renaming status.json leaves a whole status.json, its stages go with it, and the next run cleans up" {
	local c pids p
	for c in status-before-rename:3 status-after-rename:3; do
		rm -rf "$R"
		run --separate-stderr env KERF_FAILPOINT="$c" kerf run -C "$R" --stage "$FAKE" --stage cat
		[ "$status" -eq 137 ]
		[[ "$stderr" == *"failpoint '${c%%:*}' reached (time 3)"* ]]
		# Whole, and it names the stages it had started.
		jq -e '.state and (.stages | length == 2)' "$R/status.json" >/dev/null
		pids=$(jq -r '.stages[].pid' "$R/status.json")
		for p in $pids; do wait_for pid_gone "$p"; done
		run kerf status -C "$R"
		assert_line --partial "no supervisor: it died"
		if [ "${c%%:*}" = status-before-rename ]; then
			[ -n "$(find "$R" -name 'status.json.tmp.*')" ]
		fi
		# The next run in the directory takes it over and leaves no temporary.
		run kerf run -C "$R" --stage 'echo done'
		assert_success
		[ -z "$(find "$R" -name '*.tmp.*')" ]
		[ "$(jq -r .state "$R/status.json")" = completed ]
	done
}

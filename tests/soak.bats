#!/usr/bin/env bats
# scripts/soak: the whole pipeline for a while, every process's memory
# and open fds sampled each second, and a verdict on whether they stayed
# flat.  Here for a few seconds only (the real soak is 10 minutes): a
# test starts a soak of an hour, waits for the samples or lots it needs,
# then says the time is up (SIGUSR1), so nothing depends on how much the
# machine gets done in a given time.
load common
bats_require_minimum_version 1.5.0

SOAK="$BATS_TEST_DIRNAME/../scripts/soak"

setup() {
	cd "$BATS_TEST_TMPDIR"
}

teardown() {
	if [ -n "${SPID:-}" ]; then kill "$SPID" 2>/dev/null || true; fi
}

# start_soak ARGS...: scripts/soak -t 1h -o soak ARGS in the background
# ($SPID), its output in ./said.
start_soak() {
	"$SOAK" -t 1h -o soak "$@" >said 2>&1 &
	SPID=$!
}

# time_is_up: SIGUSR1 to the soak, then wait for it; $rc is its status.
time_is_up() {
	kill -USR1 "$SPID"
	wait_for pid_gone "$SPID"
	rc=0
	wait "$SPID" || rc=$?
	SPID=
}

# rounds_of_every_stage N: every process has N samples with real numbers.
rounds_of_every_stage() {
	local s
	for s in kerf kerf-acquire kerf-validate kerf-detect kerf-persist kerf-project; do
		[ "$(jq -R --arg s "$s" 'fromjson? | select(.stage == $s and .rss_kb > 0 and .fds > 0)' \
			soak/samples.ndjson 2>/dev/null | jq -s length)" -ge "$1" ] || return 1
	done
}

# lots_ended N: N lots have ended.
lots_ended() { [ -s soak/lots.ndjson ] && [ "$(wc -l <soak/lots.ndjson)" -ge "$1" ]; }

# lots_in_order: every lot but the last completed on its own; the last
# completed too, or was stopped by the soak (cancelled, kerf exit 130),
# whichever the time being up found it doing.
lots_in_order() {
	jq -se '(.[:-1] | all(.state == "completed" and .kerf_exit == 0 and (.stopped_by_soak | not)))
		and (last | (.state == "completed" and .kerf_exit == 0)
			or (.stopped_by_soak and .state == "cancelled" and .kerf_exit == 130))' soak/lots.ndjson
}

# samples FILE STAGE RSS FDS...: a synthetic 40-second sample file, one
# process, the RSS values spread evenly over the time (FDS likewise).
samples() {
	local f=$1 stage=$2 rss=$3 fds=$4 i
	: >"$f"
	for i in $(seq 0 39); do
		printf '{"t":"x","elapsed_s":%d,"stage":"%s","pid":7,"rss_kb":%d,"fds":%d}\n' \
			"$i" "$stage" $((rss + (i * ${5:-0}))) $((fds + (i * ${6:-0}) / 10)) >>"$f"
	done
}

@test "scripts/soak samples every stage's memory and fds each second and says whether they stayed flat" {
	start_soak -B "$KERF_BIN"
	wait_for rounds_of_every_stage 5
	time_is_up
	cat said
	[ "$rc" -le 1 ]
	[ -s soak/samples.ndjson ] && [ -s soak/summary.json ]
	# Each process at most once a round, and rounds on the second: the
	# k-th round (from 0) is at least k seconds after the start, by the
	# soak's own clock, however late a round may come.
	run jq -rs 'group_by([.elapsed_s, .pid]) | map(select(length > 1)) | .[] | "sampled twice: \(.[0])"' soak/samples.ndjson
	assert_output ""
	run jq -rs '[.[].elapsed_s] | unique | to_entries[] | select(.value < .key - 0.01)
		| "round \(.key) at \(.value) s"' soak/samples.ndjson
	assert_output ""
	# The lot (25 wafers: minutes) stopped when the time was up, losing nothing.
	lots_in_order
	last=$(jq -rs 'last | .dir' soak/lots.ndjson)
	if [ "$(jq -rs 'last | .stopped_by_soak' soak/lots.ndjson)" = true ]; then
		[ "$(jq -r .state "$last/status.json")" = cancelled ]
	fi
	run kerf-persist --verify -C "$last"
	[ "$status" -eq 0 ]
	# A verdict per process, and the exit status follows the verdict.
	[ "$(jq '.processes | length' soak/summary.json)" -ge 6 ]
	jq -e '.processes[] | .verdict | IN("flat", "too short", "memory grew", "fds grew", "memory and fds grew")' soak/summary.json
	if [ "$(jq -r .flat soak/summary.json)" = true ]; then
		grep -q "soak: flat" said && [ "$rc" -eq 0 ]
	else
		grep -q "soak: NOT flat" said && [ "$rc" -eq 1 ]
	fi
}

@test "scripts/soak calls steady memory and fds flat" {
	samples s.ndjson kerf-persist 5000 6 0 0
	run "$SOAK" -s s.ndjson
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r '.processes[].verdict')" = flat ]
}

@test "scripts/soak calls memory that keeps growing not flat" {
	# 5000 KiB growing 200 KiB a second: 13 MB by the end.
	samples s.ndjson kerf-detect 5000 6 200 0
	run "$SOAK" -s s.ndjson
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq -r '.processes[].verdict')" = "memory grew" ]
	[ "$(echo "$output" | jq -r .flat)" = false ]
}

@test "scripts/soak calls a growing number of open fds not flat" {
	samples s.ndjson kerf 2000 6 0 5
	run "$SOAK" -s s.ndjson
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq -r '.processes[].verdict')" = "fds grew" ]
}

# wafer_samples FILE GROWTH_AFTER: 40 samples of a lot whose first two
# wafers take 20 s; memory climbs from 5 to 25 MB during them, then
# grows GROWTH_AFTER KiB a second.
wafer_samples() {
	local f=$1 i rss
	: >"$f"
	for i in $(seq 0 39); do
		if [ "$i" -lt 20 ]; then rss=$((5000 + i * 1000)); else rss=$((25000 + (i - 20) * $2)); fi
		printf '{"t":"x","elapsed_s":%d,"lot":1,"wafers":%d,"stage":"kerf-project","pid":7,"rss_kb":%d,"fds":3}\n' \
			"$i" $((i / 10 + 1)) "$rss" >>"$f"
	done
}

@test "scripts/soak lets memory grow during a lot's first two wafers" {
	wafer_samples s.ndjson 0
	run "$SOAK" -s s.ndjson
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | jq -r '.processes[].verdict')" = flat ]
}

@test "scripts/soak still calls memory that grows after the first two wafers not flat" {
	wafer_samples s.ndjson 1000
	run "$SOAK" -s s.ndjson
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq -r '.processes[].verdict')" = "memory grew" ]
}

@test "scripts/soak does not judge a run too short to have two quarters" {
	printf '{"t":"x","elapsed_s":0,"stage":"kerf","pid":7,"rss_kb":1,"fds":1}\n' >s.ndjson
	run "$SOAK" -s s.ndjson
	[ "$status" -eq 1 ]
	[ "$(echo "$output" | jq -r '.processes[].verdict')" = "too short" ]
}

@test "scripts/soak runs lots back to back until the time is up, keeping only the last journal" {
	start_soak -B "$KERF_BIN" -- --wafers 1 --no-project \
		--acquire-arg=--pitch --acquire-arg=30000 --acquire-arg=--die-px --acquire-arg=8
	wait_for lots_ended 2
	time_is_up
	cat said
	n=$(wc -l <soak/lots.ndjson)
	[ "$n" -ge 2 ]
	lots_in_order
	[ ! -d soak/run-1/journal ] && [ -f soak/run-1/summary.json ]
	jq -e '.lots | length > 1' soak/summary.json
	# The exit status and the last line follow the summary.  Lots this
	# short are over before a sample or too short to judge (unless the
	# machine is very slow): a soak that judged no process, or found a
	# lot other than the last too short, is not flat.
	if [ "$(jq -r .flat soak/summary.json)" = true ]; then
		[ "$rc" -eq 0 ] && grep -q "soak: flat" said
	else
		[ "$rc" -eq 1 ] && grep -q "soak: NOT flat" said
	fi
	if jq -e --argjson n "$n" '.processes | to_entries
		| any(.value.verdict == "too short" and (.key | capture("^lot (?<l>[0-9]+):").l | tonumber) < $n)' \
		soak/summary.json >/dev/null || [ "$(jq '.processes | length' soak/summary.json)" -eq 0 ]; then
		[ "$(jq -r .flat soak/summary.json)" = false ]
	fi
}

#!/usr/bin/env bats
# scripts/soak: the whole pipeline for a while, every process's memory
# and open fds sampled each second, and a verdict on whether they stayed
# flat.  Here for a few seconds only (the real soak is 10 minutes).
load common
bats_require_minimum_version 1.5.0

SOAK="$BATS_TEST_DIRNAME/../scripts/soak"

setup() {
	cd "$BATS_TEST_TMPDIR"
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
	run "$SOAK" -t 6 -o soak -B "$KERF_BIN"
	echo "$output"
	[ "$status" -le 1 ]
	local said=$output rc=$status
	[ -s soak/samples.ndjson ] && [ -s soak/summary.json ]
	# Every process, sampled about once a second, with real numbers.
	for s in kerf kerf-acquire kerf-validate kerf-detect kerf-persist kerf-project; do
		n=$(jq --arg s "$s" 'select(.stage == $s and .rss_kb > 0 and .fds > 0)' soak/samples.ndjson | jq -s length)
		[ "$n" -ge 5 ] && [ "$n" -le 8 ] || { echo "$s: $n samples"; false; }
	done
	# One lot, stopped by the soak when the time was up, losing nothing.
	[ "$(wc -l <soak/lots.ndjson)" -eq 1 ]
	jq -e '.lot == 1 and .stopped_by_soak and .state == "cancelled" and .kerf_exit == 130' soak/lots.ndjson
	[ "$(jq -r .state soak/run-1/status.json)" = cancelled ]
	run kerf-persist --verify -C soak/run-1
	[ "$status" -eq 0 ]
	# A verdict per process, and the exit status follows the verdict.
	[ "$(jq '.processes | length' soak/summary.json)" -eq 6 ]
	jq -e '.processes[] | .verdict | IN("flat", "too short", "memory grew", "fds grew", "memory and fds grew")' soak/summary.json
	jq -e '.processes[] | select(.verdict == "too short")' soak/summary.json && false
	if [ "$(jq -r .flat soak/summary.json)" = true ]; then
		[[ "$said" == *"soak: flat"* ]] && [ "$rc" -eq 0 ]
	else
		[[ "$said" == *"soak: NOT flat"* ]] && [ "$rc" -eq 1 ]
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
	run "$SOAK" -t 3 -o soak -B "$KERF_BIN" -- --wafers 1 --no-project \
		--acquire-arg=--pitch --acquire-arg=30000 --acquire-arg=--die-px --acquire-arg=8
	echo "$output"
	n=$(wc -l <soak/lots.ndjson)
	[ "$n" -ge 2 ]
	# Every lot but the last completed on its own; lots this short are
	# too short to judge, so the soak cannot call them flat.
	[ "$(jq -s '[.[:-1][] | select(.state == "completed" and .kerf_exit == 0)] | length' soak/lots.ndjson)" -eq $((n - 1)) ]
	[ ! -d soak/run-1/journal ] && [ -f soak/run-1/summary.json ]
	jq -e '.lots | length > 1' soak/summary.json
	[ "$status" -eq 1 ]
	[[ "$output" == *"soak: NOT flat"* ]]
}

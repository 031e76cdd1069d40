#!/usr/bin/env bats
# End to end: the README's `make run`, and the run directory a supervised
# default pipeline leaves behind, checked file by file against itself.

load common

REPO="$BATS_TEST_DIRNAME/.."

setup() {
	R="$BATS_TEST_TMPDIR/run"
}

@test "make run supervises a simulated lot and prints where its run directory is" {
	run --separate-stderr make -s -C "$REPO" run SAN="${SAN:-}" RUN_ARGS="--wafers 1 --seed 11"
	assert_success
	dir=$(printf '%s\n' "$stderr" | jq -Rr 'fromjson? | select(.rundir) | .rundir' | tail -1)
	[ -n "$dir" ] || { echo "no run directory in: $stderr"; false; }
	case "$dir" in /*) ;; *) dir="$REPO/$dir" ;; esac
	[ "$(jq -r .state "$dir/status.json")" = completed ]
	rm -rf "$dir"
}

@test "the default pipeline leaves status, journal, one KLARF and one wafer map per wafer, and a summary that agree" {
	run kerf run -C "$R" --wafers 2 --seed 4
	assert_success
	[ "$(jq -r .state "$R/status.json")" = completed ]

	# The journal verifies and holds the whole run.
	run kerf-persist --verify -C "$R"
	assert_success
	events=$(cat "$R"/journal/*.ndjson | jq -c 'select(.type)' | wc -l)
	[ "$events" -gt 0 ]
	[ "$(cat "$R"/journal/*.ndjson | jq -r 'select(.type == "run_end") | .status')" = completed ]

	# One KLARF and one SVG per wafer the summary lists.
	wafers=$(jq '.wafers | length' "$R/summary.json")
	[ "$wafers" = 2 ]
	[ "$(ls "$R"/klarf/*.klarf | wc -l)" = "$wafers" ]
	[ "$(ls "$R"/wafermap/*.svg | wc -l)" = "$wafers" ]
	assert_file_exists "$R/index.html"

	# summary.json's defect total is the number of defect events journaled.
	defects=$(cat "$R"/journal/*.ndjson | jq -c 'select(.type == "defect")' | wc -l)
	[ "$(jq .totals.defects "$R/summary.json")" = "$defects" ]
	[ "$(jq -r .outcome.state "$R/summary.json")" = completed ]

	# Each KLARF lists its wafer's defects: the DefectList rows add up.
	klarf_defects=0
	for k in "$R"/klarf/*.klarf; do
		n=$(kerf-acquire --klarf "$k" | jq -c 'select(.type == "defect")' | wc -l)
		klarf_defects=$((klarf_defects + n))
	done
	[ "$klarf_defects" = "$defects" ]

	# Nothing was rejected and no temporary file was left behind.
	[ ! -s "$R/rejects.ndjson" ]
	run find "$R" -name '*.tmp*'
	assert_output ""
}

@test "kerf status and status.json count kerf-detect's work in dies, with a rate from its stats while it works" {
	KERF_STATS_MS=100 kerf run -C "$R" --wafers 2 --seed 5 --no-project \
		--acquire-arg=--rate --acquire-arg=300 >/dev/null 2>"$BATS_TEST_TMPDIR/err" &
	local pid=$! st=0
	# While it works, kerf status says how many dies a second kerf-detect
	# compares, not the few lines it passes on.
	busy() {
		kerf status -C "$R" >"$BATS_TEST_TMPDIR/status" 2>/dev/null &&
			grep -Eq '^kerf-detect +[0-9]+ running .* ([1-9][0-9]*\.[0-9]|0\.[1-9]) dies/s ' \
				"$BATS_TEST_TMPDIR/status"
	}
	wait_for busy || { kill "$pid" 2>/dev/null; wait "$pid"; false; }
	grep -E '^kerf-detect ' "$BATS_TEST_TMPDIR/status" | grep -Eq ' dies=([0-9]+) .*work=\1( |$)'
	wait "$pid" || st=$?
	[ "$st" = 0 ] || { cat "$BATS_TEST_TMPDIR/err"; false; }

	# At the end: work is the dies it processed, each with its die_done
	# in the journal, every die kerf-acquire made.
	c=$(jq -c '.stages[] | select(.name == "kerf-detect") | .counters' "$R/status.json")
	[ "$(jq -r .unit <<<"$c")" = dies ]
	work=$(jq .work <<<"$c")
	[ "$work" -gt 0 ]
	[ "$(jq .dies <<<"$c")" = "$work" ]
	[ "$(cat "$R"/journal/seg-*.ndjson | grep -c '"type":"die_done"')" = "$work" ]
	[ "$(jq '.stages[] | select(.name == "kerf-acquire") | .counters.dies' "$R/status.json")" = "$work" ]

	# per_s is computed from the counters: the change of work over the
	# change of elapsed_ms since the previous stats record (the first:
	# since the start; the final: over the whole run).
	jq -s '[.[] | select(.stage == "kerf-detect" and .msg == "stats")] as $r
		| [range(0; $r | length) as $i | $r[$i] as $b
		   | (if $i == 0 or $b.final then {work: 0, elapsed_ms: 0} else $r[$i - 1] end) as $a
		   | (($b.work - $a.work) * 1000 / ($b.elapsed_ms - $a.elapsed_ms)) - $b.per_s
		   | fabs <= 0.051]
		| length > 2 and all' "$R/log.ndjson" >"$BATS_TEST_TMPDIR/check"
	[ "$(cat "$BATS_TEST_TMPDIR/check")" = true ]
	[ "$(jq 'select(.stage == "kerf-detect" and .final) | .per_s > 0' "$R/log.ndjson")" = true ]
}

@test "a failing middle stage fails the whole run, names it, and leaves no stage running" {
	run --separate-stderr kerf run -C "$R" --grace 2s \
		--stage 'kerf-acquire --sim --wafers 2 --seed 4' \
		--stage kerf-validate \
		--stage "sh -c 'head -n 300 >/dev/null; exit 7'" --name middle \
		--stage "kerf-persist -C $R"
	assert_failure 1
	[ "$(jq -r .state "$R/status.json")" = failed ]
	[ "$(jq -r .outcome.cause.stage "$R/status.json")" = middle ]
	[ "$(jq -r .outcome.cause.how "$R/status.json")" = "exit 7" ]
	[[ "$stderr" == *middle* ]]
	# Every stage has exited: status.json lists no live pid.
	for pid in $(jq -r '.stages[].pid // empty' "$R/status.json"); do
		wait_for pid_gone "$pid"
	done
}

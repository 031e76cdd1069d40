#!/usr/bin/env bats
# The run's metrics for monitoring: kerf status --format openmetrics and
# RUNDIR/metrics.prom, the same bytes from the same status.json, checked
# with real parsers: promtool (Debian's prometheus) and, where it is
# installed, node_exporter's textfile collector.

load common
load kerf-run
load metrics
bats_require_minimum_version 1.5.0

# One finished run for the tests that only read it: one wafer, one line
# of garbage that kerf-validate rejects.
setup_file() {
	FIN="$BATS_FILE_TMPDIR/fin"
	kerf run -C "$FIN" --wafers 1 --no-project --acquire-arg=--inject --acquire-arg=garbage@50 \
		>/dev/null 2>"$BATS_FILE_TMPDIR/fin.err"
	export FIN
}

@test "the metrics writer spells units, counters, escapes and values that are not finite as the golden text, which promtool parses" {
	golden_table om-text "$DATA/metrics/om-text.out"
	need_promtool
	lints_clean "$DATA/metrics/om-text.out"
}

@test "kerf status --format openmetrics of a finished run is metrics.prom, byte for byte, complete, and promtool finds nothing wrong" {
	need_promtool
	kerf status -C "$FIN" --format openmetrics >"$BATS_TEST_TMPDIR/om"
	cmp "$BATS_TEST_TMPDIR/om" "$FIN/metrics.prom"
	[ "$(tail -n 1 "$FIN/metrics.prom")" = "# EOF" ]
	lints_clean "$FIN/metrics.prom"
}

@test "the metrics say what status.json says: state, exit code, events, rejects, defects, work rates" {
	local f="$FIN/metrics.prom" st="$FIN/status.json" run
	run=$(jq -r .run "$st")
	[ "$(metric kerf_run_state "run=\"$run\",state=\"completed\"" "$f")" = 1 ]
	[ "$(grep -c '^kerf_run_state{.*} 1$' "$f")" -eq 1 ]
	[ "$(metric kerf_run_final "run=\"$run\"" "$f")" = 1 ]
	[ "$(metric kerf_run_exit_code "run=\"$run\"" "$f")" = "$(jq .outcome.exit_code "$st")" ]
	c() { jq -r --arg s "$1" ".stages[] | select(.name == \$s) | .counters.$2" "$st"; }
	# Events: what kerf-acquire wrote; rejects: kerf-validate's, one per
	# record of rejects.ndjson; defects: what kerf-detect found.
	[ "$(metric kerf_stage_output_lines_total "run=\"$run\",stage=\"kerf-acquire\"" "$f")" = "$(c kerf-acquire out)" ]
	[ "$(c kerf-acquire out)" -gt 0 ]
	[ "$(metric kerf_stage_rejected_lines_total "run=\"$run\",stage=\"kerf-validate\"" "$f")" = 1 ]
	[ "$(wc -l <"$FIN/rejects.ndjson")" -eq 1 ]
	[ "$(metric kerf_stage_defects_total "run=\"$run\",stage=\"kerf-detect\"" "$f")" = "$(c kerf-detect defects)" ]
	[ "$(metric kerf_stage_work_per_second "run=\"$run\",stage=\"kerf-detect\",unit=\"dies\"" "$f")" = \
		"$(jq -r '.stages[] | select(.name == "kerf-detect") | .counters.per_s | tostring | sub("\\.0$"; "")' "$st")" ]
	for s in $(jq -r '.stages[].name' "$st"); do
		[ "$(metric kerf_stage_up "run=\"$run\",stage=\"$s\"" "$f")" = 0 ]
		[ "$(metric kerf_stage_exit_code "run=\"$run\",stage=\"$s\"" "$f")" = 0 ]
		[ "$(metric kerf_stage_verdict_info "run=\"$run\",stage=\"$s\",verdict=\"ok\"" "$f")" = 1 ]
	done
}

@test "a running run's metrics, printed and in metrics.prom, parse with promtool and show it running, with its queues" {
	need_promtool
	# A day-long stall after 2000 events holds the run open; stop ends it.
	start_run -C "$R" --tick 50ms --wafers 25 --no-project --acquire-arg=--rate --acquire-arg=200 \
		--acquire-arg=--inject --acquire-arg=stall@2000:86400
	wait_for state_is running
	wait_for jq -e '.stages[1].queue.cap > 0' "$R/status.json"
	kerf status -C "$R" --format openmetrics >"$BATS_TEST_TMPDIR/om"
	lints_clean "$BATS_TEST_TMPDIR/om"
	[ "$(metric kerf_run_state 'run="run",state="running"' "$BATS_TEST_TMPDIR/om")" = 1 ]
	[ "$(metric kerf_run_final 'run="run"' "$BATS_TEST_TMPDIR/om")" = 0 ]
	[ "$(metric kerf_stage_up 'run="run",stage="kerf-acquire"' "$BATS_TEST_TMPDIR/om")" = 1 ]
	[ "$(metric kerf_stage_queue_capacity_bytes 'run="run",stage="kerf-validate"' "$BATS_TEST_TMPDIR/om")" -gt 0 ]
	metric kerf_stage_queue_fill_ratio 'run="run",stage="kerf-validate"' "$BATS_TEST_TMPDIR/om"
	! grep -q '^kerf_run_exit_code' "$BATS_TEST_TMPDIR/om"
	# The file the supervisor keeps is complete whenever it is read.
	cp "$R/metrics.prom" "$BATS_TEST_TMPDIR/file"
	[ "$(tail -n 1 "$BATS_TEST_TMPDIR/file")" = "# EOF" ]
	lints_clean "$BATS_TEST_TMPDIR/file"
	kerf stop -C "$R"
	finish_run
	[ "$KRC" -eq 130 ]
	# Its last write is the final status's.
	[ "$(metric kerf_run_state 'run="run",state="cancelled"' "$R/metrics.prom")" = 1 ]
	[ "$(metric kerf_run_exit_code 'run="run"' "$R/metrics.prom")" = 130 ]
	cmp "$R/metrics.prom" <(kerf status -C "$R" --format openmetrics)
}

@test "a failed run's metrics name the cause and the signal; a stage name with a quote and a backslash is escaped" {
	need_promtool
	run kerf run -C "$R" --stage 'seq 1 100000' --name 'src"q\b' --stage 'sh -c "kill -KILL $$"'
	[ "$status" -eq 1 ]
	lints_clean "$R/metrics.prom"
	grep -qF 'kerf_stage_up{run="run",stage="src\"q\\b"} 0' "$R/metrics.prom"
	grep -qE '^kerf_run_cause_info\{run="run",kind="fault",what="[a-z_]+",stage="sh"\} 1$' "$R/metrics.prom"
	[ "$(metric kerf_stage_exit_signal_info 'run="run",stage="sh",signal="KILL"' "$R/metrics.prom")" = 1 ]
	[ "$(metric kerf_run_state 'run="run",state="failed"' "$R/metrics.prom")" = 1 ]
}

@test "a metrics.prom temporary that a crash left is removed by the next run in the directory" {
	mkdir -p "$R"
	printf 'half' >"$R/metrics.prom.tmp.999999"
	kerf run -C "$R" --stage 'echo done' >/dev/null 2>&1
	[ -z "$(find "$R" -name '*.tmp.*')" ]
	[ "$(tail -n 1 "$R/metrics.prom")" = "# EOF" ]
}

@test "kerf status --format with an unknown format is a usage error, exit 64, naming the formats" {
	run --separate-stderr kerf status -C "$FIN" --format yaml
	[ "$status" -eq 64 ]
	[ -z "$output" ]
	[[ "$stderr" == *"--format takes text, json or openmetrics, not 'yaml'"* ]]
	# --json is --format json.
	[ "$(kerf status -C "$FIN" --json)" = "$(kerf status -C "$FIN" --format json)" ]
}

@test "node_exporter's textfile collector reads two runs' metrics.prom side by side without an error" {
	local ne port sock
	ne=$(command -v prometheus-node-exporter || command -v node_exporter) ||
		skip "node_exporter not installed (Debian package prometheus-node-exporter)"
	mkdir "$BATS_TEST_TMPDIR/textfile"
	kerf run -C "$R" --wafers 1 --no-project >/dev/null 2>&1
	ln -s "$FIN/metrics.prom" "$BATS_TEST_TMPDIR/textfile/fin.prom"
	ln -s "$R/metrics.prom" "$BATS_TEST_TMPDIR/textfile/run.prom"
	"$ne" --web.listen-address=127.0.0.1:0 --collector.disable-defaults --collector.textfile \
		--collector.textfile.directory="$BATS_TEST_TMPDIR/textfile" 2>"$BATS_TEST_TMPDIR/ne.err" &
	KPID=$!
	wait_for grep -q 'Listening on.*address=127.0.0.1:[1-9]' "$BATS_TEST_TMPDIR/ne.err"
	port=$(grep -o 'Listening on.*address=127.0.0.1:[0-9]*' "$BATS_TEST_TMPDIR/ne.err" | head -n 1 | sed 's/.*://')
	# bash's /dev/tcp, on a descriptor of its choosing (bats holds 3).
	exec {sock}<>"/dev/tcp/127.0.0.1/$port"
	printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&"$sock"
	cat <&"$sock" >"$BATS_TEST_TMPDIR/scrape"
	exec {sock}<&-
	kill "$KPID"
	wait "$KPID" || true
	KPID=
	grep -qx 'node_textfile_scrape_error 0' "$BATS_TEST_TMPDIR/scrape"
	# Every sample of both files (node_exporter sorts the labels and
	# spells numbers its own way: count them, and compare one by value).
	[ "$(grep -c '^kerf_' "$BATS_TEST_TMPDIR/scrape")" -eq \
		"$(cat "$FIN/metrics.prom" "$R/metrics.prom" | grep -c '^kerf_')" ]
	[ "$(metric kerf_stage_output_lines_total 'run="fin",stage="kerf-acquire"' "$BATS_TEST_TMPDIR/scrape")" = \
		"$(metric kerf_stage_output_lines_total 'run="fin",stage="kerf-acquire"' "$FIN/metrics.prom")" ]
}

#!/usr/bin/env bats
# kerf-persist: the durable, batched, idempotent journal, KLARF per wafer
# and summary.json.

load common
bats_require_minimum_version 1.5.0

setup_file() {
	export STREAM="$BATS_FILE_TMPDIR/stream.ndjson"
	"$BATS_TEST_DIRNAME/data/persist/gen-stream" 4 300 7 >"$STREAM"
	# A stream without alarms, for exact batch counts.
	grep -v '"type":"alarm"' "$STREAM" >"$BATS_FILE_TMPDIR/calm.ndjson"
	export CALM="$BATS_FILE_TMPDIR/calm.ndjson"
}

teardown() {
	if mountpoint -q "$BATS_TEST_TMPDIR/mnt" 2>/dev/null; then
		umount "$BATS_TEST_TMPDIR/mnt"
	fi
}

setup() {
	R="$BATS_TEST_TMPDIR/run"
	if [ -z "${KERF_UNIT:-}" ]; then
		case "$KERF_BIN" in
		*/build/san/bin) KERF_UNIT="$KERF_BIN/../tests" ;;
		*) KERF_UNIT="$BATS_TEST_DIRNAME/../build/release/tests" ;;
		esac
	fi
}

# The journal's event lines, without commit records.
journal_events() {
	cat "$1"/journal/seg-*.ndjson | grep -v '^{"commit":'
}

# lines_are FILE N: FILE has N lines (for wait_for).
lines_are() {
	[ "$(wc -l <"$1")" -eq "$2" ]
}

# Every input line is in the journal exactly once, and nothing else is.
exactly_once() {
	diff -u <(sort "$2") <(journal_events "$1" | sort)
}

@test "kerf-persist --help prints the usage to stdout and exits 0" {
	run --separate-stderr kerf-persist --help
	assert_success
	assert_line --index 0 --partial "usage: kerf-persist [-C RUNDIR]"
	[ -z "$stderr" ]
}

@test "kerf-persist without -C or KERF_RUNDIR is a usage error (64)" {
	run --separate-stderr kerf-persist </dev/null
	assert_failure 64
	[[ "$stderr" == *"no run directory"* ]]
	run --separate-stderr kerf-persist -C "$R" --fsync sometimes </dev/null
	assert_failure 64
	run --separate-stderr kerf-persist -C "$R" --batch 0 </dev/null
	assert_failure 64
}

@test "kerf-persist takes the run directory from KERF_RUNDIR" {
	KERF_RUNDIR="$R" run --separate-stderr kerf-persist <"$CALM"
	assert_success
	[ -s "$R/journal/seg-00000001.ndjson" ]
}

@test "kerf-persist passes every event on unchanged and journals each once" {
	run --separate-stderr kerf-persist -C "$R" <"$STREAM"
	assert_success
	diff -u "$STREAM" <(printf '%s\n' "$output")
	exactly_once "$R" "$STREAM"
	run kerf-persist --verify -C "$R"
	assert_success
	assert_output --partial "verified"
}

@test "kerf-persist ends each batch with a commit record whose xxh3 and bytes match" {
	kerf-persist -C "$R" --batch 100 --batch-ms 1h <"$CALM" >/dev/null 2>&1
	seg="$R/journal/seg-00000001.ndjson"
	# The first batch: the lines before the first commit record.
	awk '/^\{"commit":/ { exit } { print }' "$seg" >"$BATS_TEST_TMPDIR/b1"
	rec=$(grep -m1 '^{"commit":' "$seg")
	[ "$(jq -r .commit <<<"$rec")" = 1 ]
	[ "$(jq -r .count <<<"$rec")" = 100 ]
	[ "$(jq -r .bytes <<<"$rec")" = "$(wc -c <"$BATS_TEST_TMPDIR/b1")" ]
	sum=$(xxhsum -H3 "$BATS_TEST_TMPDIR/b1" | sed 's/.* = //')
	[ "$(jq -r .xxh3 <<<"$rec")" = "$sum" ]
	# A commit record has no "type", so it cannot pass for an event.
	[ "$(jq -r 'has("type")' <<<"$rec")" = false ]
}

@test "kerf-persist --fsync none journals the same verifiable batches" {
	run --separate-stderr kerf-persist -C "$R" --fsync none <"$STREAM"
	assert_success
	exactly_once "$R" "$STREAM"
	kerf-persist --verify -C "$R"
}

@test "kerf-persist closes a batch every --batch N events" {
	n=$(wc -l <"$CALM")
	kerf-persist -C "$R" --batch 250 --batch-ms 1h <"$CALM" >/dev/null 2>&1
	commits=$(cat "$R"/journal/seg-*.ndjson | grep -c '^{"commit":')
	[ "$commits" -eq $(((n + 249) / 250)) ]
}

@test "kerf-persist flushes a partial batch of an idle input after --batch-ms" {
	mkfifo "$BATS_TEST_TMPDIR/in"
	kerf-persist -C "$R" --batch 1000 --batch-ms 50 <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>/dev/null 3>&- &
	pid=$!
	exec 7>"$BATS_TEST_TMPDIR/in"
	head -3 "$CALM" >&7
	# The input stays open: only the timer can close this batch.
	wait_for lines_are "$BATS_TEST_TMPDIR/out" 3
	grep -q '^{"commit":1,"count":3,' "$R/journal/seg-00000001.ndjson"
	exec 7>&-
	wait "$pid"
}

@test "kerf-persist closes the batch of an alarm at once" {
	mkfifo "$BATS_TEST_TMPDIR/in"
	kerf-persist -C "$R" --batch 1000 --batch-ms 1h <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>/dev/null 3>&- &
	pid=$!
	exec 7>"$BATS_TEST_TMPDIR/in"
	head -2 "$CALM" >&7
	grep -m1 '"type":"alarm"' "$STREAM" >&7
	wait_for lines_are "$BATS_TEST_TMPDIR/out" 3
	exec 7>&-
	wait "$pid"
}

@test "kerf-persist replayed twice journals each event once and passes the whole run on again" {
	kerf-persist -C "$R" <"$STREAM" >/dev/null 2>&1
	run --separate-stderr kerf-persist -C "$R" <"$STREAM"
	assert_success
	diff -u "$STREAM" <(printf '%s\n' "$output")
	exactly_once "$R" "$STREAM"
	n=$(wc -l <"$STREAM")
	grep '"msg":"stats"' <<<"$stderr" | grep -q "\"journaled\":0,\"duplicate\":$n,"
}

# The complete lines of FILE: a kill may cut the last line passed on.
complete_lines() {
	if [ -s "$1" ] && [ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" != '\n' ]; then
		sed '$d' "$1"
	else
		cat "$1"
	fi
}

# crash_at FP N BATCH: kerf-persist on $BIG into $R dies at the Nth reach
# of failpoint FP (the test fails if it does not get there); then a
# recovery with no input, which must leave a journal that verifies and
# holds every line passed on before the kill exactly once, and no
# half-written file in place of a KLARF or summary.json.
crash_at() {
	local fp=$1 n=$2 batch=$3 st=0 ack="$BATS_TEST_TMPDIR/ack"
	KERF_FAILPOINT="$fp:$n" kerf-persist -C "$R" --batch "$batch" --batch-ms 1h \
		<"$BIG" >"$ack" 2>"$BATS_TEST_TMPDIR/err" || st=$?
	if [ "$st" -ne 137 ] || ! grep -q "failpoint '$fp' reached (time $n)" "$BATS_TEST_TMPDIR/err"; then
		echo "$fp:$n with --batch $batch: not reached (exit $st)" >&2
		cat "$BATS_TEST_TMPDIR/err" >&2
		return 1
	fi
	complete_lines "$ack" >"$BATS_TEST_TMPDIR/acked"
	kerf-persist -C "$R" </dev/null >/dev/null 2>>"$BATS_TEST_TMPDIR/log"
	kerf-persist --verify -C "$R" >/dev/null
	missing=$(comm -23 <(sort "$BATS_TEST_TMPDIR/acked") <(journal_events "$R" | sort) | wc -l)
	[ "$missing" -eq 0 ] || { echo "$fp:$n with --batch $batch: $missing acknowledged events lost" >&2; return 1; }
	[ -z "$(journal_events "$R" | sort | uniq -d)" ] ||
		{ echo "$fp:$n with --batch $batch: an event journaled twice" >&2; return 1; }
	# Whatever stands under a final name is whole.
	for k in "$R"/klarf/*.klarf; do
		[ -e "$k" ] || continue
		grep -q '^EndOfFile;' "$k" || { echo "$fp:$n: '$k' is not whole" >&2; return 1; }
	done
	[ ! -e "$R/summary.json" ] || jq -e .events "$R/summary.json" >/dev/null
}

# complete_run: the same input once more, whole: every event passed on in
# input order, the journal holds the input exactly, in order, and the
# KLARF files and summary.json are those of a run that never crashed.
complete_run() {
	run --separate-stderr kerf-persist -C "$R" <"$BIG"
	assert_success
	diff -u "$BIG" <(printf '%s\n' "$output")
	run kerf-persist --verify -C "$R"
	assert_success
	diff -u "$BIG" <(journal_events "$R")
	diff -ru "$CLEAN/klarf" "$R/klarf"
	diff -u "$CLEAN/summary.json" "$R/summary.json"
	[ -z "$(find "$R" -name '*.tmp.*')" ]
}

# The stream for the crash tests: 3 wafers with an alarm in the second,
# and the results of a run that never crashed.
crash_setup() {
	BIG="$BATS_TEST_TMPDIR/big.ndjson"
	CLEAN="$BATS_TEST_TMPDIR/clean"
	"$BATS_TEST_DIRNAME/data/persist/gen-stream" 3 40 11 >"$BIG"
	kerf-persist -C "$CLEAN" <"$BIG" >/dev/null 2>&1
	TOTAL=$(wc -l <"$BIG")
	# Line numbers (with --batch 1, batch numbers) of the first wafer's
	# end and of a die in the middle of the second wafer.
	WEND=$(grep -n '"type":"wafer_end"' "$BIG" | head -n 1 | cut -d: -f1)
	MID=$(grep -n '"type":"die_done"' "$BIG" | sed -n 60p | cut -d: -f1)
	[ "$WEND" -gt 10 ] && [ "$MID" -gt "$WEND" ]
}

@test "kerf-persist killed at every durability failpoint, mid-wafer and at wafer ends, loses nothing acknowledged and a re-run completes the journal byte for byte" {
	crash_setup
	local fp cases c
	for fp in journal-torn journal-uncommitted journal-unsynced journal-synced ack-torn ack-done; do
		# N:BATCH: the first batch; the batch of the first wafer_end and
		# the one after it (its wafer_summary); a batch mid-wafer; with
		# larger batches, one early and the last but one.
		cases="1:1 $WEND:1 $((WEND + 1)):1 $MID:1 2:7 $((TOTAL / 7 - 1)):7 1:50 $((TOTAL / 50 - 1)):50"
		for c in $cases; do
			rm -rf "$R"
			crash_at "$fp" "${c%%:*}" "${c##*:}"
			complete_run
		done
	done
}

@test "kerf-persist killed before and after a KLARF's or summary.json's rename leaves no torn file, and a re-run writes the same results" {
	crash_setup
	local c
	for c in klarf-before-rename:1 klarf-before-rename:3 klarf-after-rename:1 klarf-after-rename:3 \
		summary-before-rename:1; do
		rm -rf "$R"
		crash_at "${c%%:*}" "${c##*:}" 7
		complete_run
	done
}

@test "kerf-persist killed at each failpoint in turn on one journal, each start recovering the last, journals every event exactly once" {
	crash_setup
	local c st
	# Each run starts on what the last one left (no separate recovery).
	# Journal points count batches with new events, the others every
	# batch or wafer end, so the second reach of each lies further on.
	for c in journal-torn:2 ack-done:2 journal-uncommitted:2 klarf-before-rename:1 journal-synced:2 \
		ack-torn:2 journal-unsynced:2 klarf-after-rename:1 journal-torn:2; do
		st=0
		KERF_FAILPOINT="$c" kerf-persist -C "$R" --batch 3 --batch-ms 1h <"$BIG" \
			>"$BATS_TEST_TMPDIR/ack" 2>"$BATS_TEST_TMPDIR/err" || st=$?
		[ "$st" -eq 137 ] && grep -q "failpoint '${c%%:*}' reached" "$BATS_TEST_TMPDIR/err" ||
			{ echo "$c: not reached (exit $st)"; cat "$BATS_TEST_TMPDIR/err"; false; }
		complete_lines "$BATS_TEST_TMPDIR/ack" >"$BATS_TEST_TMPDIR/acked"
		[ "$(comm -23 <(sort "$BATS_TEST_TMPDIR/acked") <(journal_events "$R" | sort) | wc -l)" -eq 0 ]
		[ -z "$(journal_events "$R" | sort | uniq -d)" ]
	done
	[ "$(journal_events "$R" | wc -l)" -lt "$TOTAL" ]
	complete_run
}

@test "kerf-persist killed at random moments loses nothing acknowledged and journals every event exactly once" {
	# Timed kills land wherever they land: this test asserts only what
	# must hold wherever that is (the failpoint tests above reach each
	# window on purpose).
	crash_setup
	mkfifo "$BATS_TEST_TMPDIR/in"
	for seed in 3 17 29 41 53 67 71 83 97 101 113 127; do
		RANDOM=$seed
		have=$(journal_events "$R" 2>/dev/null | wc -l)
		have=$((have + RANDOM % 20))
		[ "$have" -lt "$TOTAL" ] || have=$((TOTAL - 1))
		n=$((1 + RANDOM % 30))
		ack="$BATS_TEST_TMPDIR/ack.$seed"
		kerf-persist -C "$R" --batch $((1 + RANDOM % 3)) --batch-ms 2 <"$BATS_TEST_TMPDIR/in" >"$ack" \
			2>>"$BATS_TEST_TMPDIR/log" 3>&- &
		pid=$!
		exec 7>"$BATS_TEST_TMPDIR/in"
		head -n "$have" "$BIG" >&7
		wait_for lines_are "$ack" "$have"
		sed -n "$((have + 1)),$((have + n))p" "$BIG" >&7
		kill -9 "$pid"
		wait "$pid" || true
		exec 7>&-
		kerf-persist -C "$R" </dev/null >/dev/null 2>>"$BATS_TEST_TMPDIR/log"
		kerf-persist --verify -C "$R" >/dev/null
		complete_lines "$ack" >"$BATS_TEST_TMPDIR/acked"
		[ "$(comm -23 <(sort "$BATS_TEST_TMPDIR/acked") <(journal_events "$R" | sort) | wc -l)" -eq 0 ]
	done
	complete_run
}

@test "KERF_FAILPOINT with an unknown name or a bad count is a usage error naming it" {
	run --separate-stderr env KERF_FAILPOINT=journal-tron kerf-persist -C "$R" </dev/null
	assert_failure 64
	[[ "$stderr" == *"unknown failpoint in 'journal-tron'"* ]]
	run --separate-stderr env KERF_FAILPOINT=journal-torn:0 kerf-persist -C "$R" </dev/null
	assert_failure 64
	[[ "$stderr" == *"not a whole number"* ]]
	run --separate-stderr env KERF_FAILPOINT=journal-torn:2, kerf-persist -C "$R" </dev/null
	assert_failure 64
}

@test "kerf-persist cuts an uncommitted torn tail on start, logs it, and a replay completes the journal" {
	kerf-persist -C "$R" --batch 50 <"$CALM" >/dev/null 2>&1
	seg="$R/journal/seg-00000001.ndjson"
	size=$(stat -c %s "$seg")
	for cut in 1 7 60 333 1000 2500; do
		cp "$seg" "$BATS_TEST_TMPDIR/good"
		truncate -s $((size - cut)) "$seg"
		run kerf-persist --verify -C "$R"
		assert_failure 65
		assert_output --partial "uncommitted tail"
		run --separate-stderr kerf-persist -C "$R" <"$CALM"
		assert_success
		[[ "$stderr" == *"recovery: cut an uncommitted tail"* ]]
		exactly_once "$R" "$CALM"
		kerf-persist --verify -C "$R"
		size=$(stat -c %s "$seg")
	done
}

@test "kerf-persist refuses a journal damaged before its last commit (65) and --verify names the reason" {
	kerf-persist -C "$R" --batch 50 <"$CALM" >/dev/null 2>&1
	seg="$R/journal/seg-00000001.ndjson"
	# Flip one byte inside the first batch.
	printf 'X' | dd of="$seg" bs=1 seek=100 conv=notrunc status=none
	run kerf-persist --verify -C "$R"
	assert_failure 65
	assert_output --partial "commit 1: checksum mismatch"
	cp "$seg" "$BATS_TEST_TMPDIR/before"
	run kerf-persist -C "$R" <"$CALM"
	assert_failure 65
	assert_output --partial "journal is damaged"
	cmp "$seg" "$BATS_TEST_TMPDIR/before"
}

@test "kerf-persist rolls segments at --segment-size and continues in the last one" {
	head -600 "$CALM" >"$BATS_TEST_TMPDIR/a"
	kerf-persist -C "$R" --batch 20 --segment-size 20K <"$BATS_TEST_TMPDIR/a" >/dev/null 2>&1
	n1=$(ls "$R"/journal/seg-*.ndjson | wc -l)
	[ "$n1" -ge 5 ]
	kerf-persist -C "$R" --batch 20 --segment-size 20K <"$CALM" >/dev/null 2>&1
	[ "$(ls "$R"/journal/seg-*.ndjson | wc -l)" -gt "$n1" ]
	run kerf-persist --verify -C "$R"
	assert_success
	exactly_once "$R" "$CALM"
	# Commit numbers run on across segments.
	cat "$R"/journal/seg-*.ndjson | grep '^{"commit":' | jq .commit | awk '$1 != NR { exit 1 }'
}

@test "kerf-persist past RLIMIT_FSIZE fails with a clear error, exit 74, and a consistent journal" {
	run --separate-stderr bash -c "ulimit -f 200; exec kerf-persist -C '$R' --batch 40 <'$STREAM' >'$BATS_TEST_TMPDIR/out'"
	assert_failure 74
	[[ "$stderr" == *"cannot write '$R/journal/seg-00000001.ndjson': File too large"* ]]
	# Only committed batches were passed on, and they are journaled.
	[ "$(wc -l <"$BATS_TEST_TMPDIR/out")" -gt 0 ]
	comm -23 <(sort "$BATS_TEST_TMPDIR/out") <(journal_events "$R" | sort) | wc -l | grep -qx 0
	kerf-persist --verify -C "$R"
	# With room again, the same input completes it exactly once.
	kerf-persist -C "$R" <"$STREAM" >/dev/null 2>&1
	exactly_once "$R" "$STREAM"
}

@test "kerf-persist on a full disk fails with a clear error, exit 74, and a consistent journal" {
	mnt="$BATS_TEST_TMPDIR/mnt"
	mkdir "$mnt"
	mount -t tmpfs -o size=256k tmpfs "$mnt" 2>/dev/null || skip "cannot mount a tmpfs here"
	run --separate-stderr kerf-persist -C "$mnt/run" --batch 40 <"$STREAM"
	assert_failure 74
	[[ "$stderr" == *"cannot write '$mnt/run/"*"': No space left on device"* ]]
	# The partial batch is already cut off: the journal verifies as it is.
	kerf-persist --verify -C "$mnt/run"
	comm -23 <(printf '%s\n' "$output" | sort) <(journal_events "$mnt/run" | sort) | wc -l | grep -qx 0
	cp -r "$mnt/run" "$R"
	umount "$mnt"
	kerf-persist -C "$R" <"$STREAM" >/dev/null 2>&1
	exactly_once "$R" "$STREAM"
}

@test "kerf-persist with --downstream-optional goes on persisting after stdout closes" {
	run --separate-stderr bash -c "kerf-persist -C '$R' --batch 10 --downstream-optional <'$STREAM' | head -1 >/dev/null"
	assert_success
	[ "$(grep -c 'downstream closed' <<<"$stderr")" -eq 1 ]
	exactly_once "$R" "$STREAM"
	[ -s "$R/summary.json" ]
}

@test "kerf-persist without --downstream-optional exits 74 when stdout closes, its journal consistent" {
	run --separate-stderr bash -c "kerf-persist -C '$R' --batch 10 <'$STREAM' | head -1 >/dev/null; exit \${PIPESTATUS[0]}"
	assert_failure 74
	[[ "$stderr" == *"cannot write standard output: downstream closed (Broken pipe)"* ]]
	kerf-persist --verify -C "$R"
}

@test "kerf-persist on SIGTERM commits its batch, exits 75, and passes on only what is journaled" {
	mkfifo "$BATS_TEST_TMPDIR/in"
	KERF_STATS_MS=20 kerf-persist -C "$R" --batch 1000 --batch-ms 1h <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/log" 3>&- &
	pid=$!
	exec 7>"$BATS_TEST_TMPDIR/in"
	head -5 "$CALM" >&7
	# Its periodic stats say when it has read them.
	wait_for grep -q '"in":5,' "$BATS_TEST_TMPDIR/log"
	[ ! -s "$BATS_TEST_TMPDIR/out" ]
	kill -TERM "$pid"
	st=0
	wait "$pid" || st=$?
	[ "$st" -eq 75 ]
	exec 7>&-
	[ "$(wc -l <"$BATS_TEST_TMPDIR/out")" -eq 5 ]
	exactly_once "$R" <(head -5 "$CALM")
	kerf-persist --verify -C "$R"
}

@test "kerf-persist refuses a run directory whose journal another kerf-persist holds (75)" {
	mkfifo "$BATS_TEST_TMPDIR/in"
	kerf-persist -C "$R" <"$BATS_TEST_TMPDIR/in" >/dev/null 2>&1 3>&- &
	pid=$!
	exec 7>"$BATS_TEST_TMPDIR/in"
	wait_for test -e "$R/journal/seg-00000001.ndjson"
	run --separate-stderr kerf-persist -C "$R" </dev/null
	assert_failure 75
	[[ "$stderr" == *"in use by another kerf-persist"* ]]
	exec 7>&-
	wait "$pid"
}

@test "kerf-persist rejects a line without an id with reason envelope, and its counters add up" {
	{ head -3 "$CALM"; echo '{"type":"state","state":"idle"}'; echo 'not json'; } >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr kerf-persist -C "$R" <"$BATS_TEST_TMPDIR/in"
	assert_success
	[ "${#lines[@]}" -eq 3 ]
	[ "$(jq -r .reason "$R/rejects.ndjson" | sort | uniq -c | awk '{print $1, $2}')" = "2 envelope" ]
	stats=$(grep '"final":true' <<<"$stderr")
	[ "$(jq '.in == .journaled + .duplicate + .rejected and .journaled + .duplicate == .out + .unsent' <<<"$stats")" = true ]
	[ "$(jq .rejected <<<"$stats")" = 2 ]
}

@test "kerf-persist writes a KLARF per wafer that reads back to the same defects" {
	[ -x "$KERF_UNIT/persist-klarf" ] || skip "tests/unit/persist-klarf not built (make units)"
	kerf-persist -C "$R" <"$STREAM" >/dev/null 2>&1
	# The lot "LOT/7" is made safe in the file name.
	run ls "$R/klarf"
	assert_output "$(printf 'LOT_7_W01.klarf\nLOT_7_W02.klarf\nLOT_7_W03.klarf\nLOT_7_W04.klarf')"
	"$KERF_UNIT/persist-klarf" "$R"/klarf/*.klarf >"$BATS_TEST_TMPDIR/got"
	jq -r 'select(.type=="defect") | [.wafer,.col,.row,.x_um,.y_um,.w_um,.h_um,.area_um2,.class_num] | @tsv' "$STREAM" |
		awk -F'\t' '{ printf "%s %d %d %.3f %.3f %.3f %.3f %.3f %d\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' >"$BATS_TEST_TMPDIR/want"
	diff -u "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	# DEFDENSITY: defects / (dies x 1 cm² per 10 mm die).
	n=$(jq -r 'select(.type=="defect" and .wafer=="W01")' "$STREAM" | grep -c '"type"')
	want=$(awk -v n="$n" 'BEGIN { printf "%.6e", n / 300 }')
	grep -A1 '^SummaryList' "$R/klarf/LOT_7_W01.klarf" | tail -1 | grep -q " 1 $n $want 300 "
	grep -q '^SampleTestPlan 300$' "$R/klarf/LOT_7_W01.klarf"
	tail -1 "$R/klarf/LOT_7_W01.klarf" | grep -qx 'EndOfFile;'
}

@test "kerf-persist writes summary.json with counts per wafer, densities, signatures, alarms and stream status" {
	kerf-persist -C "$R" <"$STREAM" >/dev/null 2>&1
	S="$R/summary.json"
	[ "$(jq -r .stream_status "$S")" = completed ]
	[ "$(jq '.wafers | length' "$S")" = 4 ]
	[ "$(jq .totals.defects "$S")" = "$(grep -c '"type":"defect"' "$STREAM")" ]
	[ "$(jq -r '.wafers[0] | [.wafer, .slot, .dies, .complete, .signature, .klarf] | @tsv' "$S")" = \
		"$(printf 'W01\t1\t300\ttrue\trandom\tklarf/LOT_7_W01.klarf')" ]
	n=$(jq -r 'select(.type=="defect" and .wafer=="W02")' "$STREAM" | grep -c '"type"')
	jq -e --argjson n "$n" '(.wafers[1].density_cm2 - $n / 300) | fabs < 1e-9' "$S"
	[ "$(jq -r '.alarms[0] | [.alid, .category] | @tsv' "$S")" = "$(printf '1042\twarning')" ]
	[ "$(jq .events "$S")" = "$(wc -l <"$STREAM")" ]
}

@test "kerf-persist rewrites a KLARF lost in a crash after its wafer_end was journaled" {
	kerf-persist -C "$R" <"$STREAM" >/dev/null 2>&1
	cp "$R/klarf/LOT_7_W02.klarf" "$BATS_TEST_TMPDIR/w2"
	rm "$R/klarf/LOT_7_W02.klarf"
	kerf-persist -C "$R" </dev/null >/dev/null 2>&1
	cmp "$BATS_TEST_TMPDIR/w2" "$R/klarf/LOT_7_W02.klarf"
}

@test "kerf-persist stores a simulated run from kerf-acquire and kerf-detect, and its KLARF imports back" {
	command -v kerf-acquire >/dev/null && command -v kerf-detect >/dev/null ||
		skip "kerf-acquire or kerf-detect not built"
	kerf-acquire --sim --wafers 1 --seed 5 2>/dev/null | kerf-detect 2>/dev/null >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr kerf-persist -C "$R" <"$BATS_TEST_TMPDIR/in"
	assert_success
	diff -u "$BATS_TEST_TMPDIR/in" <(printf '%s\n' "$output")
	exactly_once "$R" "$BATS_TEST_TMPDIR/in"
	k=$(ls "$R"/klarf/*.klarf)
	[ "$(wc -l <<<"$k")" -eq 1 ]
	want=$(grep -c '"type":"defect"' "$BATS_TEST_TMPDIR/in")
	[ "$(kerf-acquire --klarf "$k" 2>/dev/null | grep -c '"type":"defect"')" -eq "$want" ]
	[ "$(jq .totals.defects "$R/summary.json")" -eq "$want" ]
}

@test "kerf-persist makes lot and wafer ids safe in KLARF file names" {
	# Wafer W01 renamed to "../W<control-A> 1" (escaped in JSON), lot to ".hidden/lot".
	sed -e '/"W0[2-9]"/d' -e 's|"W01"|"..\\/W\\u0001 1"|g' -e 's|"LOT/7"|".hidden/lot"|g' "$CALM" >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr kerf-persist -C "$R" <"$BATS_TEST_TMPDIR/in"
	assert_success
	run ls -A "$R/klarf"
	assert_output "_hidden_lot__._W__1.klarf"
	[ "$(ls -A "$R")" = "$(printf 'journal\nklarf\nsummary.json')" ]
	[ "$(jq -r '.wafers[0].wafer' "$R/summary.json")" = "$(printf '../W\001 1')" ]
	[ "$(jq '.wafers[0].defects' "$R/summary.json")" -gt 0 ]
}

@test "kerf-persist counts an event repeated within one input once in the journal and the summary" {
	{ head -400 "$CALM"; head -400 "$CALM"; } >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr kerf-persist -C "$R" --batch 50 <"$BATS_TEST_TMPDIR/in"
	assert_success
	[ "${#lines[@]}" -eq 800 ]
	exactly_once "$R" <(head -400 "$CALM")
	[ "$(jq .events "$R/summary.json")" -eq 400 ]
	[ "$(jq .totals.defects "$R/summary.json")" -eq "$(head -400 "$CALM" | grep -c '"type":"defect"')" ]
}

# The final stats record of a log ($1) as one line.
final_stats() {
	grep '"msg":"stats"' <<<"$1" | grep '"final":true'
}

@test "kerf-persist fed a recording again in another order counts every event duplicate and stores nothing new" {
	kerf-persist -C "$R" --batch 100 <"$STREAM" >/dev/null 2>&1
	cat "$R"/journal/seg-*.ndjson >"$BATS_TEST_TMPDIR/before"
	cp "$R/summary.json" "$BATS_TEST_TMPDIR/summary"
	cp -r "$R/klarf" "$BATS_TEST_TMPDIR/klarf"
	# Reversed: seqs below, at and above wherever the input is.
	tac "$STREAM" >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr kerf-persist -C "$R" --batch 100 <"$BATS_TEST_TMPDIR/in"
	assert_success
	diff -u "$BATS_TEST_TMPDIR/in" <(printf '%s\n' "$output")
	n=$(wc -l <"$STREAM")
	[ "$(final_stats "$stderr" | jq -c '[.in, .journaled, .duplicate, .out]')" = "[$n,0,$n,$n]" ]
	cat "$R"/journal/seg-*.ndjson | cmp - "$BATS_TEST_TMPDIR/before"
	cmp "$R/summary.json" "$BATS_TEST_TMPDIR/summary"
	diff -r "$R/klarf" "$BATS_TEST_TMPDIR/klarf"
}

@test "kerf-persist stores an event whose seq is journaled but whose id is new (no false duplicate)" {
	# A defect of a die in the middle of W01 (its seq is shared with the
	# die's die_done) and the last wafer_summary (the seq of its
	# wafer_end, the highest seq of the first input) are held back.
	d=$(grep '"type":"defect"' "$STREAM" | grep '"wafer":"W01"' | sed -n 20p)
	s=$(grep '"type":"wafer_summary"' "$STREAM" | tail -1)
	grep -vxF -e "$d" -e "$s" "$STREAM" | grep -v '"type":"run_end"' >"$BATS_TEST_TMPDIR/first"
	kerf-persist -C "$R" <"$BATS_TEST_TMPDIR/first" >/dev/null 2>&1
	printf '%s\n%s\n' "$s" "$d" >"$BATS_TEST_TMPDIR/more"
	run --separate-stderr kerf-persist -C "$R" <"$BATS_TEST_TMPDIR/more"
	assert_success
	[ "$(final_stats "$stderr" | jq -c '[.journaled, .duplicate]')" = "[2,0]" ]
	# The same with the recording fed again before them, in one input.
	rm -rf "$R"
	kerf-persist -C "$R" <"$BATS_TEST_TMPDIR/first" >/dev/null 2>&1
	cat "$BATS_TEST_TMPDIR/first" "$BATS_TEST_TMPDIR/more" >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr kerf-persist -C "$R" --batch 7 <"$BATS_TEST_TMPDIR/in"
	assert_success
	m=$(wc -l <"$BATS_TEST_TMPDIR/first")
	[ "$(final_stats "$stderr" | jq -c '[.journaled, .duplicate]')" = "[2,$m]" ]
	exactly_once "$R" <(cat "$BATS_TEST_TMPDIR/first" "$BATS_TEST_TMPDIR/more")
	kerf-persist --verify -C "$R"
}

@test "kerf-persist stores a late event from a gap in the seqs, within its wafer and after the wafer's end" {
	# Two die_done events without defects (a seq of their own) arrive
	# late: one of W02 before W02's end, one of W01 after W01's end.
	w1=$(grep '"type":"die_done"' "$STREAM" | grep '"wafer":"W01"' | grep '"defects":0' | sed -n 5p)
	w2=$(grep '"type":"die_done"' "$STREAM" | grep '"wafer":"W02"' | grep '"defects":0' | sed -n 5p)
	end2=$(grep '"type":"wafer_end"' "$STREAM" | grep '"wafer":"W02"')
	grep -vxF -e "$w1" -e "$w2" "$STREAM" |
		awk -v a="$w1" -v b="$w2" -v e="$end2" '$0 == e { print b; print a } { print }' >"$BATS_TEST_TMPDIR/in"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/in")" -eq "$(wc -l <"$STREAM")" ]
	run --separate-stderr kerf-persist -C "$R" --batch 10 <"$BATS_TEST_TMPDIR/in"
	assert_success
	diff -u "$BATS_TEST_TMPDIR/in" <(printf '%s\n' "$output")
	exactly_once "$R" "$STREAM"
	n=$(wc -l <"$STREAM")
	[ "$(final_stats "$stderr" | jq -c '[.journaled, .duplicate]')" = "[$n,0]" ]
	# W02's late die is in its account and its KLARF; W01's came after
	# W01's KLARF was written: it is counted late, and the KLARF stays.
	S="$R/summary.json"
	[ "$(jq -c '[.wafers[] | [.wafer, .dies, .late_events]]' "$S")" = \
		'[["W01",299,1],["W02",300,null],["W03",300,null],["W04",300,null]]' ]
	grep -q '^SampleTestPlan 299$' "$R/klarf/LOT_7_W01.klarf"
	grep -q '^SampleTestPlan 300$' "$R/klarf/LOT_7_W02.klarf"
	[[ "$stderr" == *"an event for wafer 'W01' came after its wafer_end"* ]]
	# The same account after a restart that replays the journal, and a
	# second feed stores nothing.
	cp "$S" "$BATS_TEST_TMPDIR/summary"
	cp "$R/klarf/LOT_7_W01.klarf" "$BATS_TEST_TMPDIR/w1"
	run --separate-stderr kerf-persist -C "$R" <"$STREAM"
	assert_success
	[ "$(final_stats "$stderr" | jq -c '[.journaled, .duplicate]')" = "[0,$n]" ]
	cmp "$S" "$BATS_TEST_TMPDIR/summary"
	cmp "$R/klarf/LOT_7_W01.klarf" "$BATS_TEST_TMPDIR/w1"
}

@test "kerf-persist starts a wafer over when it is inspected again after its wafer_end" {
	# W02's inspection, renamed W01: W01 inspected twice.
	sed -e '/"W0[34]"/d' -e 's/"W02"/"W01"/' "$CALM" >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr kerf-persist -C "$R" <"$BATS_TEST_TMPDIR/in"
	assert_success
	[[ "$stderr" == *"wafer 'W01' is inspected again"* ]]
	n=$(grep '"type":"defect"' "$CALM" | grep -c '"wafer":"W02"')
	[ "$(jq -c '[.wafers[] | [.wafer, .dies, .defects, .complete]]' "$R/summary.json")" = "[[\"W01\",300,$n,true]]" ]
	grep -A1 '^SummaryList' "$R/klarf/LOT_7_W01.klarf" | tail -1 | grep -q " 1 $n "
	[ "$(ls "$R/klarf")" = LOT_7_W01.klarf ]
}

@test "kerf-persist holds every id only while journaled events arrive again, and again when they do" {
	# JOURNAL_QUIET_MIN (4096) new events past the ids held let them go.
	big="$BATS_TEST_TMPDIR/big.ndjson"
	"$BATS_TEST_DIRNAME/data/persist/gen-stream" 12 300 7 >"$big"
	n=$(wc -l <"$big")
	head -1000 "$big" >"$BATS_TEST_TMPDIR/part"
	kerf-persist -C "$R" <"$BATS_TEST_TMPDIR/part" >/dev/null 2>&1
	cat "$big" "$big" >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr kerf-persist -C "$R" <"$BATS_TEST_TMPDIR/in"
	assert_success
	[ "$(final_stats "$stderr" | jq -c '[.journaled, .duplicate]')" = "[$((n - 1000)),$((n + 1000))]" ]
	# Built for the first replay (1000 ids), let go during the new
	# events, built again for the second replay (all of them).
	[ "$(grep -c 'are arriving again' <<<"$stderr")" -eq 2 ]
	[ "$(grep 'are arriving again' <<<"$stderr" | jq -c .ids)" = "$(printf '1000\n%d' "$n")" ]
	[ "$(grep -c 'is let go' <<<"$stderr")" -eq 1 ]
	exactly_once "$R" "$big"
}

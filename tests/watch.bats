#!/usr/bin/env bats
# kerf watch: files dropped the way inspection tools drop them, each
# complete file run once as a kerf reprocess job, in order per tool.
# Every wait is bounded polling on what the watcher writes (its log, the
# ledger, results.ndjson); a file that must NOT have been taken yet is
# checked after a later file, dropped behind it, has been taken and run.

load common
load reprocess
load metrics
bats_require_minimum_version 1.5.0

setup_file() {
	local R=$BATS_FILE_TMPDIR/rec s
	mkdir -p "$R"
	# Recorded streams of two tools, each of other content.
	for s in 1 2 3; do
		kerf-acquire --sim --wafers 1 --seed "$s" --diameter 100 --die-px 32 --tool TOOLA \
			>"$R/a$s.ndjson" 2>/dev/null
	done
	for s in 1 2; do
		kerf-acquire --sim --wafers 1 --seed "$((s + 8))" --diameter 100 --die-px 32 --tool TOOLB \
			>"$R/b$s.ndjson" 2>/dev/null
	done
}

setup() {
	R=$BATS_FILE_TMPDIR/rec
	D=$BATS_TEST_TMPDIR/drop
	O=$BATS_TEST_TMPDIR/out
	LOG=$BATS_TEST_TMPDIR/watch.log
	mkdir -p "$D"
}

teardown() {
	if [ -n "${WPID:-}" ]; then kill -9 "$WPID" 2>/dev/null || true; fi
	exec 7>&- 2>/dev/null || true
}

# start_watch [OPTIONS...]: kerf watch -o $O OPTIONS $D in the background
# (the kerf named by $WATCH_KERF, if set), once it follows $D.
start_watch() {
	local before
	before=$(watching)
	"${WATCH_KERF:-kerf}" watch -o "$O" --settle-ms 200 "$@" "$D" 2>>"$LOG" 3>&- &
	WPID=$!
	wait_for watching_more_than "$before"
}
# watching: how many watchers have logged that they follow $D.
watching() {
	[ -f "$LOG" ] || { echo 0; return; }
	grep -c '"msg":"watching ' "$LOG" || true
}
watching_more_than() { [ "$(watching)" -gt "$1" ]; }

# stop_watch: SIGTERM, and the watcher exits 0 once its jobs have ended.
stop_watch() {
	local rc=0
	kill -TERM "$WPID"
	wait "$WPID" || rc=$?
	WPID=
	[ "$rc" -eq 0 ] || { echo "kerf watch exited $rc"; cat "$LOG"; return 1; }
}

# records NAME: how many records results.ndjson holds for NAME.
records() {
	[ -f "$O/results.ndjson" ] || { echo 0; return; }
	jq -s --arg n "$1" 'map(select(.name == $n)) | length' "$O/results.ndjson"
}
has_record() { [ "$(records "$1")" -ge 1 ]; }
has_records() { [ "$(records "$1")" -ge "$2" ]; }

# ledger: the ledger's events without their commit records.
ledger() {
	cat "$O"/.watch/journal/seg-*.ndjson | jq -c 'select(has("commit") | not)'
}
# ledger_ends N: the ledger holds at least N watch.end events.  A job's
# record in results.ndjson comes before the watcher has reaped the job
# and committed its watch.end: wait for this before reading ends.
ledger_ends() { [ "$(ledger | jq -s 'map(select(.type == "watch.end")) | length')" -ge "$1" ]; }

# dies FILE: the die events of a recorded stream.
dies() { grep -c '"type":"die"' "$1"; }

@test "kerf watch takes a file written slowly only once it is closed, and runs it whole" {
	start_watch
	exec 7>"$D/slow.ndjson"
	head -n 20 "$R/a1.ndjson" >&7
	# A file of another tool, dropped while slow.ndjson is still open.
	cp "$R/b1.ndjson" "$D/other.ndjson"
	wait_for has_record other
	[ "$(result other outcome)" = completed ]
	run grep -c '^slow' "$O/inputs.tsv"
	assert_output 0
	tail -n +21 "$R/a1.ndjson" >&7
	exec 7>&-
	wait_for has_record slow
	[ "$(result slow outcome)" = completed ]
	[ "$(result slow dies)" -eq "$(dies "$R/a1.ndjson")" ]
	[ "$(records slow)" -eq 1 ]
	stop_watch
}

@test "kerf watch takes a file written under a temporary name once it is renamed into place" {
	start_watch
	cat "$R/a1.ndjson" >"$D/.x.ndjson.tmp"
	cp "$R/a2.ndjson" "$D/y.part"
	mv "$D/.x.ndjson.tmp" "$D/x.ndjson"
	wait_for has_record x
	[ "$(result x outcome)" = completed ]
	[ "$(result x dies)" -eq "$(dies "$R/a1.ndjson")" ]
	mv "$D/y.part" "$D/y.ndjson"
	wait_for has_record y
	# Only the two renamed names were ever taken.
	run cut -f1 "$O/inputs.tsv"
	assert_output "$(printf 'x\ny')"
	stop_watch
}

@test "kerf watch runs a file copied in twice once, and a changed file again" {
	start_watch
	cp "$R/a1.ndjson" "$D/a.ndjson"
	wait_for has_record a
	cp "$R/a1.ndjson" "$D/again.ndjson"
	wait_for grep -q "'$D/again.ndjson' already taken as 'a'" "$LOG"
	cp "$R/a1.ndjson" "$D/a.ndjson"
	wait_for grep -q "'$D/a.ndjson' already taken as 'a'" "$LOG"
	# The same path with other content is another file: run again.
	cp "$R/a2.ndjson" "$D/a.ndjson"
	wait_for has_record a-2
	[ "$(result a-2 outcome)" = completed ]
	[ "$(records a)" -eq 1 ]
	[ "$(records again)" -eq 0 ]
	[ "$(wc -l <"$O/results.ndjson")" -eq 2 ]
	stop_watch
}

@test "kerf watch keys a KLARF file by its InspectionStationID and a stream by its run_start tool" {
	start_watch
	cp "$BATS_TEST_DIRNAME/data/klarf/jk-klarf12Example.klarf" "$D/lot1.klarf"
	cp "$R/b1.ndjson" "$D/s.ndjson"
	wait_for has_record lot1.klarf
	wait_for has_record s
	[ "$(result lot1.klarf kind)" = klarf ]
	[ "$(result lot1.klarf outcome)" = completed ]
	[ "$(result s kind)" = stream ]
	run ledger
	assert_line --partial '"type":"watch.taken","hash":'
	[ "$(ledger | jq -r 'select(.name == "lot1.klarf") | .key')" = "aVendor A B" ]
	[ "$(ledger | jq -r 'select(.name == "s") | .key')" = TOOLB ]
	stop_watch
}

@test "kerf watch runs one tool's files one at a time in the order they landed, beside another tool's" {
	start_watch -j 2
	for s in 1 2 3; do cp "$R/a$s.ndjson" "$D/t$s.ndjson"; done
	cp "$R/b1.ndjson" "$D/u.ndjson"
	for n in t1 t2 t3 u; do wait_for has_record "$n"; done
	wait_for ledger_ends 4
	# In the ledger, TOOLA's runs start in the order taken, each after
	# the one before it ended.
	run bash -c "cat '$O'/.watch/journal/seg-*.ndjson | jq -rs '
		map(select(has(\"commit\") | not)) as \$l
		| (\$l | map(select(.type == \"watch.taken\" and .key == \"TOOLA\")) | map(.task)) as \$a
		| \$l | map(select((.type == \"watch.start\" or .type == \"watch.end\") and (.task as \$t | \$a | index(\$t) != null)))
		| map(\"\(.type) \(.task)\") | .[]'"
	assert_output "$(printf 'watch.start 1\nwatch.end 1\nwatch.start 2\nwatch.end 2\nwatch.start 3\nwatch.end 3')"
	run cut -f1 "$O/inputs.tsv"
	assert_output "$(printf 't1\nt2\nt3\nu')"
	stop_watch
}

@test "kerf watch started again runs nothing that completed and takes what landed while it was down" {
	start_watch
	cp "$R/a1.ndjson" "$D/a.ndjson"
	wait_for has_record a
	stop_watch
	cp "$R/a2.ndjson" "$D/b.ndjson"
	start_watch
	wait_for has_record b
	cp "$R/a3.ndjson" "$D/c.ndjson"
	wait_for has_record c
	[ "$(records a)" -eq 1 ]
	[ "$(records b)" -eq 1 ]
	run cut -f1 "$O/inputs.tsv"
	assert_output "$(printf 'a\nb\nc')"
	stop_watch
	run kerf-persist --verify -C "$O/.watch"
	assert_success
}

@test "kerf watch --poll takes a file once it has settled" {
	start_watch --poll
	cat "$R/a1.ndjson" >"$D/p.tmp"
	mv "$D/p.tmp" "$D/p.ndjson"
	wait_for has_record p
	cp "$R/b1.ndjson" "$D/q.ndjson"
	wait_for has_record q
	[ "$(records p)" -eq 1 ]
	[ "$(result p outcome)" = completed ]
	run grep -c '"mode":"poll"' "$LOG"
	assert_output 1
	stop_watch
}

@test "a file whose run fails is recorded failed and not run again" {
	start_watch
	printf '{"v":1,"type":"run_start"}\nnot json\n' >"$D/bad.ndjson"
	wait_for has_record bad
	[ "$(result bad outcome)" != completed ]
	wait_for grep -q "'bad' failed" "$LOG"
	cp "$R/a1.ndjson" "$D/good.ndjson"
	wait_for has_record good
	[ "$(records bad)" -eq 1 ]
	[ "$(ledger | jq -r 'select(.type == "watch.end" and .task == 1) | .outcome')" = failed ]
	stop_watch
}

@test "kerf watch refuses a second watcher on the same OUTDIR with 75" {
	start_watch
	run --separate-stderr kerf watch -o "$O" "$D"
	assert_failure 75
	[[ "$stderr" == *"in use by another kerf watch"* ]]
	stop_watch
}

@test "kerf watch usage errors exit 64" {
	run --separate-stderr kerf watch "$D"
	assert_failure 64
	[[ "$stderr" == *"-o OUTDIR"* ]]
	run --separate-stderr kerf watch -o "$O"
	assert_failure 64
	run --separate-stderr kerf watch -o "$O" "$D/nonesuch"
	assert_failure 64
	run --separate-stderr kerf watch -o "$O" -j 0 "$D"
	assert_failure 64
	run --separate-stderr kerf watch --help
	assert_success
	[[ "$output" == *"Usage: kerf watch -o OUTDIR"* ]]
}

# held_kerf: make $HELD/kerf, a copy of kerf (a kerf runs the stages
# beside its own executable) whose kerf-acquire first notes that it has
# started ($HELD/started) and then waits until the test opens the gate
# ($HELD/gate), so that the test can act while a job is surely mid-run.
held_kerf() {
	HELD=$BATS_TEST_TMPDIR/held
	mkdir -p "$HELD"
	cp "$KERF_BIN/kerf" "$HELD/kerf"
	for p in kerf-validate kerf-detect kerf-persist kerf-project; do ln -s "$KERF_BIN/$p" "$HELD/$p"; done
	cat >"$HELD/kerf-acquire" <<'EOF2'
#!/usr/bin/env bash
touch "$HELD/started"
while [ ! -e "$HELD/gate" ]; do sleep 0.02; done
exec "$KERF_BIN/kerf-acquire" "$@"
EOF2
	chmod +x "$HELD/kerf-acquire"
	export HELD KERF_BIN
}

@test "kerf watch killed mid-run runs the cut run again from the start when started again, once" {
	held_kerf
	WATCH_KERF=$HELD/kerf start_watch
	cp "$R/a1.ndjson" "$D/a.ndjson"
	wait_for test -e "$HELD/started"
	kill -9 "$WPID"
	wait "$WPID" || true
	WPID=
	touch "$HELD/gate"
	start_watch
	wait_for has_record a
	wait_for ledger_ends 1
	[ "$(result a outcome)" = completed ]
	[ "$(records a)" -eq 1 ]
	grep -q "'a' was cut mid-run; it runs again from the start" "$LOG"
	run bash -c "cat '$O'/.watch/journal/seg-*.ndjson | jq -r 'select(.task == 1) | .type'"
	assert_output "$(printf 'watch.taken\nwatch.start\nwatch.start\nwatch.end')"
	stop_watch
}

# st FILTER: a jq FILTER on the watcher's status answer is true.
st() { kerf watch -C "$O" --json status | jq -e "$1" >/dev/null; }

@test "kerf watch -C pause takes nothing new until resume, and status shows each key's backlog" {
	start_watch
	run kerf watch -C "$O" pause
	assert_success
	cp "$R/a1.ndjson" "$D/a.ndjson"
	cp "$R/b1.ndjson" "$D/b.ndjson"
	wait_for st '.taken == 2'
	st '.paused and .running == 0'
	st '[.keys[] | select(.pending == 1 and .running == 0 and .oldest_pending_ms >= 0)] | length == 2'
	run kerf watch -C "$O" status
	assert_success
	assert_line --regexp '^TOOLA +1 +0 +0 +0 '
	[ ! -e "$O/results.ndjson" ]
	kerf watch -C "$O" resume
	wait_for has_record a
	wait_for has_record b
	wait_for st '[.keys[] | select(.done == 1 and .pending == 0)] | length == 2'
	stop_watch
}

@test "kerf watch -C jobs N changes the concurrency at once, and stop lets running jobs finish" {
	held_kerf
	WATCH_KERF=$HELD/kerf start_watch -j 1
	cp "$R/a1.ndjson" "$D/a.ndjson"
	cp "$R/b1.ndjson" "$D/b.ndjson"
	wait_for st '.taken == 2 and .running == 1'
	st '.jobs == 1'
	kerf watch -C "$O" jobs 2
	wait_for st '.running == 2'
	cp "$R/a2.ndjson" "$D/c.ndjson"
	wait_for st '.taken == 3'
	kerf watch -C "$O" stop
	st '.stopping'
	touch "$HELD/gate"
	wait "$WPID"
	WPID=
	[ "$(result a outcome)" = completed ]
	[ "$(result b outcome)" = completed ]
	# Stopping took nothing new: c waits for the next start.
	[ "$(records c)" -eq 0 ]
	run kerf watch -C "$O" status
	assert_failure 69
}

@test "kerf watch --key REGEX gives one tool's files the keys its group names, and those keys run side by side" {
	held_kerf
	WATCH_KERF=$HELD/kerf start_watch -j 2 --key '/(line[0-9]+)_[^/]*$'
	# Two streams of the same tool, TOOLA, from two lines of it.
	cp "$R/a1.ndjson" "$D/line1_a.ndjson"
	cp "$R/a2.ndjson" "$D/line2_a.ndjson"
	# One key runs one job at a time: two at once are two keys.
	wait_for st '.running == 2'
	st '[.keys[].key] | sort == ["line1", "line2"]'
	st '[.keys[] | select(.running == 1 and .pending == 0)] | length == 2'
	run kerf watch -C "$O" status
	assert_line --regexp '^line1 +0 +1 +0 +0 '
	assert_line --regexp '^line2 +0 +1 +0 +0 '
	# A name the expression does not match keeps its tool as its key.
	cp "$R/a3.ndjson" "$D/spare.ndjson"
	wait_for st '.taken == 3'
	st '[.keys[] | select(.key == "TOOLA" and .pending == 1)] | length == 1'
	run grep -c "spare.ndjson' does not match --key '/(line\[0-9\]+)_\[^/\]\*\$': its key is 'TOOLA'" "$LOG"
	assert_output 1
	touch "$HELD/gate"
	for n in line1_a line2_a spare; do wait_for has_record "$n"; done
	[ "$(ledger | jq -r 'select(.type == "watch.taken") | .key' | tr '\n' ' ')" = "line1 line2 TOOLA " ]
	stop_watch
}

@test "kerf watch --key dir keys a file by its directory, a regex without a group by its whole match, and a bad regex exits 64" {
	start_watch --key dir
	cp "$R/a1.ndjson" "$D/a.ndjson"
	wait_for has_record a
	stop_watch
	rm "$D/a.ndjson"
	O=$BATS_TEST_TMPDIR/out2
	start_watch --key 'line[0-9]+'
	cp "$R/a2.ndjson" "$D/line7_b.ndjson"
	wait_for has_record line7_b
	stop_watch
	[ "$(ledger | jq -r 'select(.type == "watch.taken") | .key')" = line7 ]
	O=$BATS_TEST_TMPDIR/out
	[ "$(ledger | jq -r 'select(.type == "watch.taken") | .key')" = drop ]
	run --separate-stderr kerf watch -o "$O" --key '(' "$D"
	assert_failure 64
	[[ "$stderr" == *"--key: '(' is not a regular expression"* ]]
}

@test "kerf watch -C talks to a watcher whose OUTDIR is too deep for a socket's name" {
	O=$BATS_TEST_TMPDIR/$(printf 'a-directory-deep-in-the-tree-%d/' 1 2 3 4)out
	# Longer than a unix socket's name may be (108 bytes).
	[ "${#O}" -gt 108 ]
	start_watch
	kerf watch -C "$O" pause
	cp "$R/a1.ndjson" "$D/a.ndjson"
	wait_for st '.taken == 1 and .paused'
	run kerf watch -C "$O" status
	assert_success
	assert_line --regexp '^TOOLA +1 +0 +0 +0 '
	kerf watch -C "$O" resume
	wait_for has_record a
	kerf watch -C "$O" stop
	wait "$WPID"
	WPID=
	[ -z "$(grep -i 'too long' "$LOG")" ]
}

@test "kerf watch -C refuses a bad command with 64" {
	start_watch
	run --separate-stderr kerf watch -C "$O" jobs 0
	assert_failure 64
	run --separate-stderr kerf watch -C "$O" frobnicate
	assert_failure 64
	run --separate-stderr kerf watch -C "$O"
	assert_failure 64
	stop_watch
}

@test "a tool with 2 files waiting is served before a busy tool's 200-file backlog" {
	local k="$BATS_TEST_DIRNAME/data/klarf/jk-klarf12Example.klarf" i
	start_watch
	kerf watch -C "$O" pause
	# 200 KLARF files of one tool, each of other content (its LotID) ...
	for i in $(seq 200); do sed "s/^LotID \"aLot\";/LotID \"lot$i\";/" "$k" >"$D/k$i.klarf"; done
	# ... and then 2 streams of another.
	cp "$R/b1.ndjson" "$D/b1.ndjson"
	cp "$R/b2.ndjson" "$D/b2.ndjson"
	wait_for st '.taken == 202'
	kerf watch -C "$O" resume
	wait_for has_record b1
	wait_for has_record b2
	wait_for ledger_ends 4
	kerf watch -C "$O" pause
	# Round-robin with one job at a time: k1 b1 k2 b2, so the busy tool
	# had run two of its files when the other tool's last one ended.
	run bash -c "cat '$O'/.watch/journal/seg-*.ndjson | jq -rs '
		map(select(has(\"commit\") | not)) as \$l
		| (\$l | map(select(.type == \"watch.taken\")) | map({key: (.task | tostring), value: .name}) | from_entries) as \$n
		| \$l | map(select(.type == \"watch.end\") | \$n[.task | tostring]) | .[0:4] | join(\" \")'"
	assert_output "k1.klarf b1 k2.klarf b2"
	# Status shows each key's backlog: the busy tool's 200 files are all
	# there, pending, running or done (the pause stops new starts, not
	# the one that may have begun after b2 ended), the other's 2 done.
	st '[.keys[] | select(.key == "aVendor A B" and .pending + .running + .done + .failed == 200 and .done >= 2)] | length == 1'
	st '[.keys[] | select(.done == 2 and .pending == 0 and .running == 0)] | length == 1'
	stop_watch
}

@test "kerf watch killed at each of its failpoints and started again loses and repeats nothing" {
	local fp rc
	# The journal's points are reached by the watcher's ledger commits
	# too: 1 is a.ndjson's watch.taken, 2 its watch.start.  (Points past
	# those would be reached by the job's kerf-persist as well, which
	# inherits KERF_FAILPOINT.)
	for fp in watch-snapshot watch-taken watch-started watch-ended \
		journal-torn:1 journal-uncommitted:1 journal-torn:2 journal-synced:2; do
		O=$BATS_TEST_TMPDIR/out-${fp/:/-}
		LOG=$BATS_TEST_TMPDIR/watch-${fp/:/-}.log
		rm -rf "$D" && mkdir -p "$D"
		KERF_FAILPOINT=$fp start_watch
		cp "$R/a1.ndjson" "$D/a.ndjson"
		rc=0
		wait "$WPID" || rc=$?
		WPID=
		[ "$rc" -eq 137 ] || { echo "$fp: kerf watch exited $rc"; cat "$LOG"; false; }
		start_watch
		wait_for has_record a
		cp "$R/b1.ndjson" "$D/b.ndjson"
		wait_for has_record b
		stop_watch
		[ "$(result a outcome)" = completed ] || { echo "$fp: a did not complete"; false; }
		[ "$(records a)" -eq 1 ] || { echo "$fp: a ran $(records a) times"; false; }
		[ "$(ledger | jq -s 'map(select(.type == "watch.taken")) | length')" -eq 2 ] ||
			{ echo "$fp: the ledger took other than a and b"; ledger; false; }
		run cut -f1 "$O/inputs.tsv"
		assert_output "$(printf 'a\nb')"
		run kerf-persist --verify -C "$O/.watch"
		assert_success
	done
	# Where the job had run, its end was taken from its record, not run again.
	O=$BATS_TEST_TMPDIR/out-watch-ended
	[ "$(ledger | jq -s 'map(select(.type == "watch.start" and .task == 1)) | length')" -eq 1 ]
}

@test "kerf watch defers every start while the --defer-if file exists, and on low free space" {
	local flag=$BATS_TEST_TMPDIR/maintenance
	touch "$flag"
	start_watch --defer-if "$flag"
	cp "$R/a1.ndjson" "$D/a.ndjson"
	wait_for st '.taken == 1 and .running == 0'
	wait_for st ".deferred == \"'$flag' exists\""
	run kerf watch -C "$O" status
	assert_line "deferred: '$flag' exists"
	[ ! -e "$O/results.ndjson" ]
	rm "$flag"
	wait_for has_record a
	st '.deferred == null'
	grep -q "deferring every start: '$flag' exists" "$LOG"
	grep -q 'no longer deferring' "$LOG"
	stop_watch

	# No file system here has 100 petabytes free.
	O=$BATS_TEST_TMPDIR/out2
	LOG=$BATS_TEST_TMPDIR/watch2.log
	rm "$D/a.ndjson"
	start_watch --min-free 100000000G
	cp "$R/a2.ndjson" "$D/b.ndjson"
	wait_for st '.taken == 1'
	wait_for st '.deferred | test("bytes free in .*, under --min-free")'
	st '.running == 0 and .keys[0].pending == 1'
	stop_watch
}

# metrics_agree FILE: the metrics text in FILE says what kerf watch -C
# status --json says now: each key's files pending, running, done and
# failed, and the totals and flags.
metrics_agree() {
	local js od k s v want
	js=$(kerf watch -C "$O" --json status)
	od=$(jq -r .outdir <<<"$js")
	# agree NAME LABELS JQ: the sample is the value of JQ on the status.
	agree() {
		v=$(metric "$1" "$2" "$3") || v=none
		want=$(jq --arg k "${k:-}" "$4" <<<"$js")
		[ "$v" = "$want" ] || { echo "$1{$2} is $v in $3, status --json says $want"; return 1; }
	}
	for k in $(jq -r '.keys[].key' <<<"$js"); do
		for s in pending running; do
			agree kerf_watch_files_$s "outdir=\"$od\",key=\"$k\"" "$1" ".keys[] | select(.key == \$k) | .$s" || return 1
		done
		for s in done failed; do
			agree kerf_watch_files_${s}_total "outdir=\"$od\",key=\"$k\"" "$1" ".keys[] | select(.key == \$k) | .$s" ||
				return 1
		done
	done
	agree kerf_watch_files_taken_total "outdir=\"$od\"" "$1" .taken &&
		agree kerf_watch_jobs_limit "outdir=\"$od\"" "$1" .jobs &&
		agree kerf_watch_jobs_running "outdir=\"$od\"" "$1" .running &&
		agree kerf_watch_paused "outdir=\"$od\"" "$1" 'if .paused then 1 else 0 end' &&
		agree kerf_watch_stopping "outdir=\"$od\"" "$1" 'if .stopping then 1 else 0 end' &&
		agree kerf_watch_deferred "outdir=\"$od\"" "$1" 'if .deferred then 1 else 0 end'
}

@test "kerf watch keeps OUTDIR/metrics.prom, and -C --format openmetrics prints its state: promtool parses both, and they say what status --json says" {
	local flag=$BATS_TEST_TMPDIR/maintenance od
	need_promtool
	held_kerf
	WATCH_KERF=$HELD/kerf start_watch --defer-if "$flag"
	# a runs (held at the gate), b waits behind it, c waits for a slot.
	cp "$R/a1.ndjson" "$D/a.ndjson"
	wait_for st '.running == 1'
	cp "$R/a2.ndjson" "$D/b.ndjson"
	cp "$R/b1.ndjson" "$D/c.ndjson"
	wait_for st '.taken == 3'
	kerf watch -C "$O" --format openmetrics status >"$BATS_TEST_TMPDIR/om"
	lints_clean "$BATS_TEST_TMPDIR/om"
	[ "$(tail -n 1 "$BATS_TEST_TMPDIR/om")" = "# EOF" ]
	metrics_agree "$BATS_TEST_TMPDIR/om"
	wait_for metrics_agree "$O/metrics.prom"
	lints_clean "$O/metrics.prom"
	od=$(kerf watch -C "$O" --json status | jq -r .outdir)
	[ "$(metric kerf_watch_files_running "outdir=\"$od\",key=\"TOOLA\"" "$O/metrics.prom")" = 1 ]
	[ "$(metric kerf_watch_files_pending "outdir=\"$od\",key=\"TOOLB\"" "$O/metrics.prom")" = 1 ]
	metric kerf_watch_oldest_pending_age_seconds "outdir=\"$od\",key=\"TOOLB\"" "$O/metrics.prom"
	# Deferred: a ends, nothing else starts, the file says why.
	touch "$flag"
	touch "$HELD/gate"
	wait_for st '.deferred != null and .running == 0 and ([.keys[].done] | add) == 1'
	wait_for metrics_agree "$O/metrics.prom"
	lints_clean "$O/metrics.prom"
	[ "$(metric kerf_watch_deferred_info "outdir=\"$od\",reason=\"defer-if\"" "$O/metrics.prom")" = 1 ]
	kerf watch -C "$O" --format openmetrics status >"$BATS_TEST_TMPDIR/om"
	metrics_agree "$BATS_TEST_TMPDIR/om"
	# --format json is --json.
	cmp <(kerf watch -C "$O" --format json status | jq -S 'del(.keys[].oldest_pending_ms)') \
		<(kerf watch -C "$O" --json status | jq -S 'del(.keys[].oldest_pending_ms)')
	rm "$flag"
	for n in b c; do wait_for has_record "$n"; done
	stop_watch
	# The watcher's last write: stopped, nothing running, everything done.
	lints_clean "$O/metrics.prom"
	[ "$(metric kerf_watch_stopping "outdir=\"$od\"" "$O/metrics.prom")" = 1 ]
	[ "$(metric kerf_watch_jobs_running "outdir=\"$od\"" "$O/metrics.prom")" = 0 ]
	[ "$(metric kerf_watch_files_done_total "outdir=\"$od\",key=\"TOOLA\"" "$O/metrics.prom")" = 2 ]
	[ "$(metric kerf_watch_files_done_total "outdir=\"$od\",key=\"TOOLB\"" "$O/metrics.prom")" = 1 ]
	run --separate-stderr kerf watch -o "$O" --format openmetrics "$D"
	assert_failure 64
}

@test "a second kerf watch -C stop aborts the running jobs' runs as kerf stop --abort does, and they run again at the next start" {
	held_kerf
	WATCH_KERF=$HELD/kerf start_watch
	cp "$R/a1.ndjson" "$D/a.ndjson"
	wait_for test -e "$HELD/started"
	kerf watch -C "$O" stop
	st '.stopping and .running == 1'
	kerf watch -C "$O" stop
	# The gate stays shut: only the second stop can end the job.
	wait "$WPID"
	WPID=
	[ "$(records a)" -eq 1 ]
	[ "$(result a outcome)" = cancelled ]
	# Aborted, as kerf stop --abort aborts a run (not drained).
	[ "$(jq -r '.outcome.cause | "\(.kind) \(.what)"' "$O/a/status.json")" = "operator abort" ]
	[ "$(jq -r '.commands | map(.op) | join(" ")' "$O/a/status.json")" = abort ]
	[ "$(result a reason)" = "operator abort" ]
	# Not the file's failure: it is pending again, and runs from the start
	# when the watcher starts again.
	[ "$(ledger | jq -r 'select(.type == "watch.end") | .outcome')" = stopped ]
	grep -q "'a' stopped (exit 130): it runs again from the start at the next start" "$LOG"
	touch "$HELD/gate"
	start_watch
	wait_for has_records a 2
	wait_for ledger_ends 2
	[ "$(jq -r 'select(.name == "a") | .outcome' "$O/results.ndjson" | paste -sd' ')" = "cancelled completed" ]
	run bash -c "cat '$O'/.watch/journal/seg-*.ndjson | jq -r 'select(.task == 1) | [.type, .outcome // empty] | join(\" \")'"
	assert_output "$(printf 'watch.taken\nwatch.start\nwatch.end stopped\nwatch.start\nwatch.end done')"
}

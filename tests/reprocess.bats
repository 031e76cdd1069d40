#!/usr/bin/env bats
# kerf reprocess: recorded runs through kerf run, scheduled by GNU
# parallel, one result record per job, resumable.  The recorded runs are
# made here by kerf-acquire (tests/reprocess.bash), so they always follow
# the current event schema.  A job that a test must catch midway is held
# open by the test (hold), never merely slowed down by a paced replay.
# tests/reprocess-ssh.bats runs batches over real ssh.

load common
load reprocess
bats_require_minimum_version 1.5.0

setup_file() {
	command -v parallel >/dev/null || return 0
	recordings "$BATS_FILE_TMPDIR/rec"
}

setup() {
	command -v parallel >/dev/null || skip "GNU parallel not installed (scripts/deps)"
	REC="$BATS_FILE_TMPDIR/rec"
	IN="$BATS_TEST_TMPDIR/in"
	O="$BATS_TEST_TMPDIR/out"
	mkdir -p "$IN"
	cp "$REC"/run[123].ndjson "$IN"/
}

teardown() {
	if [ -n "${KPID:-}" ]; then kill -9 "$KPID" 2>/dev/null || true; fi
	exec 6<&- 2>/dev/null || true
}

# hold NAME LINES: make "$HOLDING_KERF" a kerf whose jobs replay NAME's
# recording from a fifo holding only its first LINES lines, kept open on
# fd 6, so that NAME's job cannot reach the end of its run until the test
# writes the rest (release NAME LINES) or stops it.  It is a copy of kerf
# (a kerf runs the stage programs beside its own executable) with a
# kerf-acquire beside it that swaps the fifo in for that one recording;
# the recorded run itself stays a plain file, planned as usual, and what
# the batch records (settings, joblog) is what kerf would record.
hold() {
	local b=$BATS_TEST_TMPDIR/holding p
	mkdir -p "$b"
	cp "$KERF_BIN/kerf" "$b/kerf"
	for p in kerf-validate kerf-detect kerf-persist kerf-project; do ln -s "$KERF_BIN/$p" "$b/$p"; done
	cat >"$b/kerf-acquire" <<'EOF2'
#!/usr/bin/env bash
args=()
for a in "$@"; do
	[ "$a" = "$HOLD_FROM" ] && a=$HOLD_FIFO
	args+=("$a")
done
exec "$KERF_BIN/kerf-acquire" "${args[@]}"
EOF2
	chmod +x "$b/kerf-acquire"
	HOLD_FROM=$(realpath "$IN/$1.ndjson")
	HOLD_FIFO=$BATS_TEST_TMPDIR/hold.fifo
	export HOLD_FROM HOLD_FIFO KERF_BIN
	mkfifo "$HOLD_FIFO"
	# Read and write: opening never waits for the job to start.
	exec 6<>"$HOLD_FIFO"
	head -n "$2" "$REC/$1.ndjson" >&6
	HOLDING_KERF=$b/kerf
}
release() {
	tail -n +"$(($2 + 1))" "$REC/$1.ndjson" >&6
	exec 6<&-
}

# defect_list FILE: a KLARF file's DefectList, without the timestamps.
defect_list() {
	sed -n '/^DefectList/,$p' "$1"
}

# held_batch DIES: a batch of run1..run3, three jobs at once, in the
# background (KPID; its table and log in $BATS_TEST_TMPDIR/table), once
# run2, held midway (hold), has journaled DIES dies.
held_batch() {
	hold run2 30
	"$HOLDING_KERF" reprocess -o "$O" -j 3 --no-project \
		"$IN"/run1.ndjson "$IN"/run2.ndjson "$IN"/run3.ndjson >"$BATS_TEST_TMPDIR/table" 2>&1 6<&- &
	KPID=$!
	wait_for journal_has "$O/run2" "$1"
}

journal_has() { [ "$(cat "$1"/journal/seg-*.ndjson 2>/dev/null | grep -c '"type":"die_done"')" -ge "$2" ]; }
state_is() { [ "$(jq -r .state "$1/status.json" 2>/dev/null)" = "$2" ]; }

@test "kerf reprocess runs each recorded run in its own run directory and appends one record per job" {
	run --separate-stderr kerf reprocess -o "$O" -j 3 --no-project "$IN"/run1.ndjson "$IN"/run2.ndjson "$IN"/run3.ndjson
	succeeded
	assert_line --regexp '^RUN +OUTCOME +EXIT +STAGE +EVENTS +DEFECTS +WALL$'
	assert_line --regexp '^run1 +completed +0 +- +[0-9]+ +[0-9]+ +[0-9.]+s$'
	assert_line --partial "3 recorded runs: 3 completed, 0 not completed, 0 not run"
	# Concurrent jobs: every line one whole record.
	[ "$(wc -l <"$O/results.ndjson")" -eq 3 ]
	jq -e . "$O/results.ndjson" >/dev/null
	for n in run1 run2 run3; do
		[ "$(result $n outcome)" = completed ]
		[ "$(result $n exit_code)" = 0 ]
		[ "$(result $n rundir)" = "$(realpath "$O")/$n" ]
		[ "$(result $n recorded)" = "$(realpath "$IN/$n.ndjson")" ]
		[ "$(result $n events)" = "$(jq .events "$O/$n/summary.json")" ]
		[ "$(result $n defects)" = "$(jq .totals.defects "$O/$n/summary.json")" ]
		[ "$(result $n stage)" = null ]
		[ "$(result $n wall_ms)" -ge 0 ]
		kerf-persist --verify -C "$O/$n"
		[ "$(jq -r .outcome.state "$O/$n/summary.json")" = completed ]
	done
	[ "$(grep -c . "$O/joblog")" -eq 4 ]
}

@test "a corrupt recorded run fails alone with its reason, and --resume-failed reruns only it once fixed" {
	cp "$REC/corrupt.ndjson" "$IN/run2.ndjson"
	run --separate-stderr kerf reprocess -o "$O" -j 1 --no-project "$IN"/run1.ndjson "$IN"/run2.ndjson "$IN"/run3.ndjson
	assert_failure 1
	[ "$(result run1 outcome)" = completed ]
	[ "$(result run3 outcome)" = completed ]
	[ "$(result run2 outcome)" = failed ]
	[ "$(result run2 exit_code)" = 1 ]
	[ "$(result run2 stage)" = kerf-validate ]
	[ "$(result run2 how)" = "exit 65" ]
	[[ "$(result run2 reason)" == "line 20: checksum:"* ]]
	assert_line --regexp '^run2 +failed +1 +kerf-validate '
	assert_line --partial "run2: line 20: checksum:"
	assert_line --partial "2 completed, 1 not completed"
	[[ "$stderr" == *"'run2' failed"* ]]

	cp "$REC/run2.ndjson" "$IN/run2.ndjson"
	# No settings given: the batch's (settings.json) are used.
	run --separate-stderr kerf reprocess -o "$O" -j 1 --resume-failed
	succeeded
	[ "$(jq -s 'last | .argv | index("--no-project") != null' "$O/results.ndjson")" = true ]
	assert_line --partial "3 completed, 0 not completed"
	# The joblog shows one rerun, of job 2 only; one more record.
	[ "$(tail -n +2 "$O/joblog" | cut -f1 | tr '\n' ' ')" = "1 2 3 2 " ]
	[ "$(wc -l <"$O/results.ndjson")" -eq 4 ]
	[ "$(result run2 outcome)" = completed ]
	[ "$(jq -s 'map(select(.name == "run1")) | length' "$O/results.ndjson")" -eq 1 ]
}

@test "--lenient keeps a corrupt recording's bad line as a reject instead of failing its job" {
	cp "$REC/corrupt.ndjson" "$IN/run2.ndjson"
	run --separate-stderr kerf reprocess -o "$O" --lenient --no-project "$IN/run2.ndjson"
	succeeded
	[ "$(result run2 outcome)" = completed ]
	[ "$(jq -r 'select(.stage == "kerf-validate") | .reason' "$O/run2/rejects.ndjson")" = checksum ]
	[ "$(jq -s 'last | .argv | index("--strict")' "$O/results.ndjson")" = null ]
}

@test "reprocessing a recorded run twice with the same settings gives the same journal and KLARF defect lists" {
	run --separate-stderr kerf reprocess -o "$O/a" -j 1 --no-project "$IN/run1.ndjson"
	succeeded
	run --separate-stderr kerf reprocess -o "$O/b" -j 2 --no-project --detect-arg=-j1 \
		--persist-arg=--batch=7 "$IN/run1.ndjson"
	succeeded
	[ "$(journal "$O/a/run1" | wc -l)" -gt 50 ]
	diff -u <(journal "$O/a/run1") <(journal "$O/b/run1")
	k=$(cd "$O/a/run1/klarf" && ls)
	[ -n "$k" ]
	diff -u <(defect_list "$O/a/run1/klarf/$k") <(defect_list "$O/b/run1/klarf/$k")
	# A change in the detector's settings shows.
	run --separate-stderr kerf reprocess -o "$O/c" --no-project --detect-arg=--k=2.5 "$IN/run1.ndjson"
	succeeded
	! diff -q <(defect_list "$O/a/run1/klarf/$k") <(defect_list "$O/c/run1/klarf/$k") >/dev/null
}

@test "a run stopped midway is cancelled while the batch goes on, and --resume-failed reprocesses it from scratch" {
	# run2 is held midway (dies are being journaled): the stop can never
	# come after its end.
	held_batch 10
	kerf stop -C "$O/run2"
	rc=0
	wait "$KPID" || rc=$?
	KPID=
	[ "$rc" -eq 1 ]
	[ "$(result run2 outcome)" = cancelled ]
	[ "$(result run2 exit_code)" = 130 ]
	# A stopped replay invents no run_end: the stream stays open.
	[ "$(jq -r .stream_status "$O/run2/summary.json")" = null ]
	[ "$(result run1 outcome)" = completed ]
	[ "$(result run3 outcome)" = completed ]
	grep -q '^run2 *cancelled *130' "$BATS_TEST_TMPDIR/table"

	run --separate-stderr kerf reprocess -o "$O" -j 3 --no-project --resume-failed
	succeeded
	[ "$(result run2 outcome)" = completed ]
	[ "$(wc -l <"$O/results.ndjson")" -eq 4 ]
	# Nothing of the stopped attempt is left: same journal as a run never stopped.
	kerf reprocess -o "$O/fresh" --no-project "$IN/run2.ndjson" >/dev/null 2>&1
	diff -u <(journal "$O/fresh/run2") <(journal "$O/run2")
	[ "$(jq -r .stream_status "$O/run2/summary.json")" = completed ]
}

@test "kerf reprocess stopped by SIGTERM lets the running job finish, starts no other, and --resume runs the rest" {
	# run2 is held until the batch has taken the SIGTERM, then let go.
	hold run2 30
	"$HOLDING_KERF" reprocess -o "$O" -j 1 --no-project \
		"$IN"/run1.ndjson "$IN"/run2.ndjson "$IN"/run3.ndjson >"$BATS_TEST_TMPDIR/table" 2>&1 6<&- &
	KPID=$!
	wait_for state_is "$O/run2" running
	kill -TERM "$KPID"
	wait_for grep -q 'No new jobs will be started' "$BATS_TEST_TMPDIR/table"
	release run2 30
	rc=0
	wait "$KPID" || rc=$?
	KPID=
	[ "$rc" -eq 130 ]
	[ "$(result run2 outcome)" = completed ]
	[ ! -e "$O/run3" ]
	grep -q '^run3 *not-run' "$BATS_TEST_TMPDIR/table"
	grep -q '2 completed, 0 not completed, 1 not run' "$BATS_TEST_TMPDIR/table"

	run --separate-stderr kerf reprocess -o "$O" -j 1 --no-project --resume
	succeeded
	[ "$(result run3 outcome)" = completed ]
	[ "$(tail -n +2 "$O/joblog" | cut -f1 | tr '\n' ' ')" = "1 2 3 " ]
	[ "$(wc -l <"$O/results.ndjson")" -eq 3 ]
}

@test "a second SIGTERM stops the running job too, and --resume-failed reprocesses it" {
	# run1 is held midway: it cannot end between the two signals.
	hold run1 30
	"$HOLDING_KERF" reprocess -o "$O" -j 1 --no-project \
		"$IN"/run1.ndjson "$IN"/run2.ndjson >"$BATS_TEST_TMPDIR/table" 2>&1 6<&- &
	KPID=$!
	wait_for journal_has "$O/run1" 5
	kill -TERM "$KPID"
	wait_for grep -q 'No new jobs will be started' "$BATS_TEST_TMPDIR/table"
	kill -TERM "$KPID"
	rc=0
	wait "$KPID" || rc=$?
	KPID=
	[ "$rc" -eq 130 ]
	[ "$(result run1 outcome)" = cancelled ]
	# A stopped replay invents no run_end: the stream stays open.
	[ "$(jq -r .stream_status "$O/run1/summary.json")" = null ]
	[ ! -e "$O/run2" ]

	run --separate-stderr kerf reprocess -o "$O" --resume-failed
	succeeded
	[ "$(result run1 outcome)" = completed ]
	[ "$(result run2 outcome)" = completed ]
}

@test "--halt now,fail=1 stops the batch at the first failure" {
	cp "$REC/corrupt.ndjson" "$IN/bad.ndjson"
	run --separate-stderr kerf reprocess -o "$O" -j 1 --halt now,fail=1 --no-project \
		"$IN"/bad.ndjson "$IN"/run1.ndjson "$IN"/run3.ndjson
	assert_failure 1
	[ "$(wc -l <"$O/results.ndjson")" -eq 1 ]
	[ "$(result bad outcome)" = failed ]
	assert_line --regexp '^run1 +not-run '
	assert_line --partial "0 completed, 1 not completed, 2 not run"
}

@test "a directory of KLARF files is reprocessed as one run through kerf-acquire --klarf" {
	mkdir "$IN/lot7"
	cp "$DATA/klarf/amat-complus3t.001" "$DATA/klarf/jk-klarf12DefectListExample.klarf" "$IN/lot7/"
	run --separate-stderr kerf reprocess -o "$O" --no-project "$IN/lot7"
	succeeded
	[ "$(result lot7 kind)" = klarf ]
	[ "$(result lot7 outcome)" = completed ]
	[ "$(result lot7 wafers)" -eq 2 ]
	[ "$(result lot7 defects)" -eq 29 ]
	[ "$(ls "$O/lot7/klarf" | wc -l)" -eq 2 ]
}

@test "--dry-run writes the plan and prints the GNU parallel command: joblog, halt policy, hosts, the job and its settings" {
	printf '4/host1\n' >"$IN/hosts"
	run --separate-stderr kerf reprocess -o "$O" --dry-run -j 4 --sshlogin 2/host2 --slf "$IN/hosts" \
		--detect-arg '--k=5' "$IN/run1.ndjson"
	succeeded
	assert_output --partial " -q --joblog $(realpath "$O")/joblog --jobs 4 --halt never --termseq TERM,10000,TERM,5000,KILL,25 --sshlogin 2/host2 --slf $IN/hosts "
	# Remote hosts run the kerf on their PATH, reading the shared OUTDIR.
	assert_output --regexp " --arg-file $(realpath "$O")/inputs.tsv kerf reprocess -o $(realpath "$O") --task '\{#\}' --detect-arg --k=5$"
	[ "$(cat "$O/inputs.tsv")" = "run1	$(realpath "$IN/run1.ndjson")" ]
	[ ! -e "$O/joblog" ]
	# Locally, the job is this very kerf.
	run --separate-stderr kerf reprocess -o "$O/local" --dry-run "$IN/run1.ndjson"
	assert_output --partial " $(realpath "$(command -v kerf)") reprocess -o "
}

@test "with --sshlogin the jobs run the kerf on the host's PATH (':' is this host, without ssh)" {
	run --separate-stderr kerf reprocess -o "$O" --sshlogin 2/: --no-project "$IN"/run1.ndjson "$IN"/run2.ndjson
	succeeded
	[ "$(tail -n +2 "$O/joblog" | cut -f2 | sort -u)" = ":" ]
	tail -n +2 "$O/joblog" | cut -f9 | grep -q "^kerf reprocess -o $(realpath "$O") --task [12] --no-project$"
	[ "$(result run1 outcome)" = completed ]
	[ "$(result run2 outcome)" = completed ]
}

@test "over ssh the jobs' ssh never prompts and gives up on a silent host, unless PARALLEL_SSH or --ssh names another" {
	run --separate-stderr kerf reprocess -o "$O/a" --dry-run --sshlogin 2/host2 "$IN/run1.ndjson"
	succeeded
	assert_output --partial " --sshlogin 2/host2 --ssh 'ssh -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4' --arg-file "
	PARALLEL_SSH="ssh -F $IN/ssh_config" run --separate-stderr kerf reprocess -o "$O/b" --dry-run \
		--sshlogin 2/host2 "$IN/run1.ndjson"
	succeeded
	refute_output --regexp ' --ssh[ =]'
	run --separate-stderr kerf reprocess -o "$O/c" --dry-run --sshlogin 2/host2 \
		--parallel-arg=--ssh=myssh "$IN/run1.ndjson"
	succeeded
	assert_output --partial " --sshlogin 2/host2 --ssh=myssh --arg-file "
	refute_output --partial BatchMode
	# No hosts, no ssh.
	run --separate-stderr kerf reprocess -o "$O/d" --dry-run "$IN/run1.ndjson"
	succeeded
	refute_output --regexp ' --ssh[ =]'
}

@test "a job killed outright is shown lost with the joblog's exit status, and --resume-failed reruns it" {
	held_batch 5
	task=$(ps -eo pid=,args= | awk -v c="reprocess -o $(realpath "$O") --task 2 --no-project" \
		'index($0, c) && !/awk/ { print $1 }')
	[ -n "$task" ]
	# Its kerf run outlives it (told to stop): the rerun must wait for it.
	krun=$(ps -o pid= --ppid "$task")
	kill -KILL $task
	rc=0
	wait "$KPID" || rc=$?
	KPID=
	[ "$rc" -eq 1 ]
	[ "$(jq -s 'map(select(.name == "run2")) | length' "$O/results.ndjson")" -eq 0 ]
	exitval=$(tail -n +2 "$O/joblog" | awk -F'\t' '$1 == 2 { print $8 == 0 ? $7 : 128 + $8 }')
	[ "$exitval" -gt 0 ]
	grep -Eq "^run2 +lost +$exitval " "$BATS_TEST_TMPDIR/table"
	grep -q "^run2: no record: its job on this host " "$BATS_TEST_TMPDIR/table"
	grep -q '2 completed, 1 not completed, 0 not run' "$BATS_TEST_TMPDIR/table"

	exec 6<&-
	wait_for pid_gone $krun
	run --separate-stderr kerf reprocess -o "$O" --resume-failed
	succeeded
	[ "$(result run2 outcome)" = completed ]
	assert_line --partial "3 completed, 0 not completed, 0 not run"
}

@test "recorded runs are named after their file or run directory, repeats get -2" {
	mkdir -p "$IN/a/lotA" "$IN/b/lotA"
	cp "$IN/run1.ndjson" "$IN/a/lotA/acquired.ndjson"
	cp "$IN/run1.ndjson" "$IN/b/lotA/acquired.ndjson"
	run kerf reprocess -o "$O" --dry-run "$IN/a/lotA" "$IN/b/lotA/acquired.ndjson" "$IN/run1.ndjson"
	succeeded
	[ "$(cut -f1 "$O/inputs.tsv" | tr '\n' ' ')" = "lotA lotA-2 run1 " ]
	[ "$(sed -n 1p "$O/inputs.tsv" | cut -f2)" = "$(realpath "$IN/a/lotA/acquired.ndjson")" ]
}

@test "--task runs one job of the batch alone, as a scheduler's array task would" {
	kerf reprocess -o "$O" --dry-run --no-project --detect-arg=--k=4 "$IN"/run1.ndjson "$IN"/run2.ndjson >/dev/null
	run --separate-stderr kerf reprocess -o "$O" --task 2
	succeeded
	# The batch's settings, from settings.json.
	[ "$(result run2 'argv | join(" ")')" = "run -C $(realpath "$O")/run2 --echo none --acquire-arg --replay --acquire-arg $(realpath "$IN")/run2.ndjson --validate-arg --strict --no-project --detect-arg --k=4" ]
	[ ! -e "$O/run2/index.html" ]
	[ "$(wc -l <"$O/results.ndjson")" -eq 1 ]
	[ "$(result run2 outcome)" = completed ]
	[ "$(result run2 task)" = 2 ]
	[ ! -e "$O/run1" ]
	run --separate-stderr kerf reprocess -o "$O" --report
	assert_failure 1
	assert_line --regexp '^run1 +not-run '
	assert_line --regexp '^run2 +completed '
	run --separate-stderr kerf reprocess -o "$O" --task 3
	assert_failure 64
}

@test "kerf reprocess refuses a second batch in the same OUTDIR, a resume with another list, and no OUTDIR" {
	kerf reprocess -o "$O" --no-project "$IN/run1.ndjson" >/dev/null 2>&1
	run --separate-stderr kerf reprocess -o "$O" --no-project "$IN/run1.ndjson"
	assert_failure 64
	[[ "$stderr" == *"already holds a batch"* ]]
	run --separate-stderr kerf reprocess -o "$O" --resume "$IN/run2.ndjson"
	assert_failure 64
	[[ "$stderr" == *"differ from the batch"* ]]
	run --separate-stderr kerf reprocess -o "$O" --resume --detect-arg=--k=3
	assert_failure 64
	[[ "$stderr" == *"settings differ from the batch's"* ]]
	run --separate-stderr kerf reprocess -o "$O" --resume --no-project
	succeeded
	run --separate-stderr kerf reprocess "$IN/run1.ndjson"
	assert_failure 64
	run --separate-stderr kerf reprocess -o "$O/x" "$IN/missing.ndjson"
	assert_failure 64
	[[ "$stderr" == *"missing.ndjson"* ]]
	run --separate-stderr kerf reprocess -o "$O/y" --resume
	assert_failure 64
	[[ "$stderr" == *"no batch to resume"* ]]
	run --separate-stderr kerf reprocess -o "$O/z" --halt sometimes "$IN/run1.ndjson"
	assert_failure 64
	# A job empties its run directory first: never the one holding the recording.
	mkdir -p "$O/w/lotA"
	cp "$IN/run1.ndjson" "$O/w/lotA/acquired.ndjson"
	run --separate-stderr kerf reprocess -o "$O/w" "$O/w/lotA"
	assert_failure 64
	[[ "$stderr" == *"lies in its own output directory"* ]]
	assert_file_exists "$O/w/lotA/acquired.ndjson"
}

# tests/kerf-run.bash: what tests/kerf.bats and tests/faults.bats share
# for driving `kerf run` in the background (load kerf-run after common).

D="$DATA/kerf"
FAKE="$D/fake/kerf-acquire"

setup() {
	R="$BATS_TEST_TMPDIR/run"
	OUT="$BATS_TEST_TMPDIR/out"
	ERR="$BATS_TEST_TMPDIR/err"
}

teardown() {
	# Never leave a run behind, whatever the test did.
	if [ -n "${KPID:-}" ]; then kill -9 "$KPID" 2>/dev/null || true; fi
	# A file system a test mounted.
	if [ -n "${MNT:-}" ]; then umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; fi
}

# start_run ARGS...: kerf run in the background; $KPID.
start_run() {
	kerf run "$@" >"$OUT" 2>"$ERR" &
	KPID=$!
}

# finish_run: wait for it (a minute at most: a run that never ends
# fails the test instead of hanging the suite); $KRC is its exit status.
finish_run() {
	wait_for pid_gone "$KPID"
	KRC=0
	wait "$KPID" || KRC=$?
	KPID=
}

state_is() { [ "$(jq -r .state "$R/status.json" 2>/dev/null)" = "$1" ]; }
run_pgid() { jq -r 'select(.kind == "stage_start") | .pgid' "$R/timeline.ndjson" | head -n 1; }
stage_pid() { jq -r --arg n "$1" '.stages[] | select(.name == $n) | .pid' "$R/status.json"; }

# in_bg NAME CMD...: CMD in the background (its pid added to the array
# BG, for teardown), stdout and stderr in $BATS_TEST_TMPDIR/NAME.out and
# .err, its exit status, once it ends, in NAME.rc.
in_bg() {
	local name=$1
	shift
	(rc=0
	 "$@" >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" || rc=$?
	 echo "$rc" >"$BATS_TEST_TMPDIR/$name.rc") &
	BG+=("$!")
}

# result NAME: wait for in_bg's NAME to end; its output in $out, its status in $rc.
result() {
	wait_for test -s "$BATS_TEST_TMPDIR/$1.rc"
	rc=$(cat "$BATS_TEST_TMPDIR/$1.rc")
	out=$(cat "$BATS_TEST_TMPDIR/$1.out")
}

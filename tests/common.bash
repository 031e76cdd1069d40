# tests/common.bash: sourced by every bats file (load common).
# Puts the programs under test first on PATH ($KERF_BIN: bin/, or the
# sanitizer build's), loads bats-assert, and offers bounded polling.
bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert
bats_load_library bats-file

: "${KERF_BIN:=$BATS_TEST_DIRNAME/../bin}"
export PATH="$KERF_BIN:$PATH"
export LC_ALL=C
export KERF_LOG=json
unset KERF_RUNDIR KERF_RUN
DATA="$BATS_TEST_DIRNAME/data"
# The test programs of tests/unit/ built with the programs under test
# (make check sets it; this is for bats run by hand).
if [ -z "${KERF_UNIT:-}" ]; then
	case "$KERF_BIN" in
	*/build/san/bin) KERF_UNIT="$KERF_BIN/../tests" ;;
	*) KERF_UNIT="$BATS_TEST_DIRNAME/../build/release/tests" ;;
	esac
fi
# ASan's leak checker cannot run under ptrace-less containers reliably;
# keep it on but never let it hide the program's own status.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=0:exitcode=86:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87}"

# golden_table UNIT FILE: the table-printing test program UNIT (from
# tests/unit/) prints exactly FILE; its lines stay in $output and $lines
# for the caller's own checks.
golden_table() {
	[ -x "$KERF_UNIT/$1" ] || skip "$1 not built (make units)"
	run "$KERF_UNIT/$1"
	assert_success
	diff -u "$2" <(printf '%s\n' "$output")
}

# wait_for [-t SECONDS] CMD ARGS...: run CMD every 20 ms until it
# succeeds or SECONDS (default 120) pass; fails the test on timeout.  The
# bound only turns a hang into a failure: far above what any wait takes on
# a loaded machine, never a measure of how fast something happens.
wait_for() {
	local limit=120
	if [ "$1" = "-t" ]; then limit=$2; shift 2; fi
	local deadline=$((SECONDS + limit))
	until "$@"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "wait_for: timed out after ${limit}s: $*" >&2
			return 1
		fi
		sleep 0.02
	done
}

# pid_gone PID: true when no such process (or it is a zombie).
pid_gone() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
	[ -z "$st" ] || [[ "$st" == Z* ]]
}

# pgrp_gone PGID: true when no live process is left in the group.
pgrp_gone() {
	! ps -eo pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# in_pipe_write PID: true while a thread of PID sleeps in write(2) on a
# full pipe: the kernel's wchan says so, or, where it hides wchan, the
# system call the sleeping thread is in (write is 1 on x86-64, 64 on
# arm64).
in_pipe_write() {
	local t w nr
	case $(uname -m) in x86_64) nr=1 ;; aarch64) nr=64 ;; *) nr=none ;; esac
	for t in /proc/"$1"/task/*; do
		w=$(cat "$t/wchan" 2>/dev/null) || continue
		[[ $w == *pipe_write* ]] && return 0
		[ "$w" = 0 ] && [ "$(thread_state "$t")" = S ] &&
			[ "$(cut -d' ' -f1 "$t/syscall" 2>/dev/null)" = "$nr" ] && return 0
	done
	return 1
}

# thread_state /proc/PID/task/TID: its state letter (R, S, D, ...).
thread_state() {
	sed 's/^.*) //' "$1/stat" 2>/dev/null | cut -d' ' -f1
}

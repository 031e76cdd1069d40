#!/usr/bin/env bats
# The stop convention shared by every stage: a stage stopped by SIGTERM
# while blocked writing to a full pipe delivers every line it counted as
# passed on.  (Stop handlers are installed without SA_RESTART so that a
# blocked read returns; stdio would drop its buffer on the interrupted
# write, which is why stages write through stdout_init's stream.)

load common

setup() {
	cd "$BATS_TEST_TMPDIR"
}

final_stats() {
	jq -c 'select(.msg == "stats" and .final == true)' "$1" | tail -1
}

# blocked PID: true once the process sleeps in a write to a full pipe
# (or, where the kernel hides wchan, has read input and sleeps).
blocked() {
	cat /proc/"$1"/task/*/wchan 2>/dev/null | grep -q pipe_write && return 0
	[ "$(cat "/proc/$1/wchan" 2>/dev/null)" = 0 ] &&
		[ "$(awk '/^rchar/ { print $2 }' "/proc/$1/io")" -gt 65536 ] &&
		[ "$(awk '{ print $3 }' "/proc/$1/stat")" = S ]
}

# stop_blocked CMD...: run CMD with stdin from ./in and stdout into a pipe
# nobody reads, SIGTERM it once it blocks, then read what it wrote.
stop_blocked() {
	mkfifo fifo
	"$@" <in >fifo 2>err &
	pid=$!
	exec 8<fifo
	wait_for blocked "$pid"
	kill -TERM "$pid"
	cat <&8 >out
	exec 8<&-
	st=0
	wait "$pid" || st=$?
}

@test "kerf-persist stopped by SIGTERM on a full pipe delivers every event it acknowledged" {
	kerf-acquire --sim --wafers 2 --seed 5 --die-px 16 >in
	stop_blocked kerf-persist -C run --fsync none --batch 50
	[ "$st" = 75 ]
	[ "$(final_stats err | jq .out)" = "$(wc -l <out)" ]
	# What it passed on is exactly the first events of its input.
	head -n "$(wc -l <out)" in | cmp - out
}

@test "kerf-detect stopped by SIGTERM on a full pipe delivers every event it counted" {
	kerf-acquire --sim --wafers 2 --seed 5 --die-px 32 >in
	stop_blocked kerf-detect -j 2 --keep-images
	[ "$st" = 75 ]
	# Lines written: events passed on plus the events detect made.
	written=$(final_stats err | jq '.out + .die_done + .defects + .wafer_summaries')
	[ "$written" = "$(wc -l <out)" ]
}

#!/usr/bin/env bats
# kerf-acquire: the simulated tool, replay, the live source, and the
# machine-boundary duties (readiness, stop, pause, alarms, fault injection).
# KLARF import is in klarf.bats.

load common
bats_require_minimum_version 1.5.0

setup() {
	T="$BATS_TEST_TMPDIR"
	# A small, quick wafer: 100 mm, 20 mm pitch, 16 px dies.
	SMALL=(--diameter 100 --edge 0 --pitch 20000 --die-px 16)
}

# expected_dies D E PX PY: whole dies of PX x PY um inside the usable
# circle of a D mm wafer with E mm edge exclusion, on a grid with a die
# corner at the wafer centre (computed here, independently of the C code).
expected_dies() {
	awk -v D="$1" -v E="$2" -v P="$3" -v Q="$4" 'function abs(v) { return v < 0 ? -v : v }
	function max(a, b) { return a > b ? a : b }
	BEGIN {
		R = D * 500 - E * 1000; n = 0
		for (c = -int(R / P) - 1; c <= int(R / P); c++)
			for (r = -int(R / Q) - 1; r <= int(R / Q); r++) {
				fx = max(abs(c * P), abs((c + 1) * P)); fy = max(abs(r * Q), abs((r + 1) * Q))
				if (fx * fx + fy * fy <= R * R) n++
			}
		print n
	}'
}

lines_ge() { # FILE N: FILE has at least N lines
	[ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ]
}

count_type() { # FILE TYPE
	grep -c "\"type\":\"$2\"" "$1" || true
}

# A jq function: an event's t ("2026-01-05T06:00:02.220000Z") in seconds.
JQ_SECS='def secs: (.[0:19] + "Z" | fromdate) + (.[19:-1] | if . == "" then 0 else tonumber end);'

# types FILE: one line per event, "TYPE STATE-OR-STATUS" (for structure checks).
types() { jq -r '[.type, (.state // .status // "")] | join(" ")' "$1"; }

@test "kerf-acquire --help prints the usage on stdout and exits 0" {
	run kerf-acquire --help
	assert_success
	assert_line --partial "Usage: kerf-acquire [--sim] [OPTION]..."
	assert_line --partial "--inject SPEC"
}

@test "kerf-acquire rejects bad usage with exit 64" {
	run kerf-acquire --wafers 26
	assert_equal "$status" 64
	assert_output --partial "--wafers"
	run kerf-acquire --inject boom@3
	assert_equal "$status" 64
	run kerf-acquire --sim --replay x
	assert_equal "$status" 64
	assert_output --partial "choose one source"
	run kerf-acquire --signature donut
	assert_equal "$status" 64
}

@test "kerf-acquire --sim --seed 7 --wafers 2 is byte-identical across runs" {
	a=$(kerf-acquire --sim --seed 7 --wafers 2 2>/dev/null | sha256sum)
	b=$(kerf-acquire --sim --seed 7 --wafers 2 2>/dev/null | sha256sum)
	assert_equal "$a" "$b"
	c=$(kerf-acquire --sim --seed 8 --wafers 2 2>/dev/null | sha256sum)
	[ "$a" != "$c" ]
}

@test "kerf-acquire --sim emits run_start, states, wafers of dies and run_end in order" {
	kerf-acquire "${SMALL[@]}" --wafers 2 > "$T/out" 2>/dev/null
	run jq -r '[.seq, .type, (.state // .status // "")] | @tsv' "$T/out"
	assert_success
	n=$(wc -l < "$T/out")
	# seq runs 1..n with no gap; ids are unique.
	assert_equal "$(jq -r .seq "$T/out" | awk '$1 != NR { bad = 1 } END { print bad ? "gap" : "ok" }')" ok
	assert_equal "$(jq -r .id "$T/out" | sort -u | wc -l)" "$n"
	assert_line --index 0 --regexp '^1	run_start	$'
	assert_line --index 1 --regexp '^2	state	ready$'
	assert_line --index 2 --regexp '^3	state	executing$'
	assert_line --index 3 --regexp '^4	wafer_start	$'
	assert_line --index $((n - 2)) --regexp 'state	idle$'
	assert_line --index $((n - 1)) --regexp 'run_end	completed$'
	assert_equal "$(count_type "$T/out" wafer_start)" 2
	assert_equal "$(count_type "$T/out" wafer_end)" 2
	# run_start carries the geometry later stages need.
	run jq -c 'select(.type == "run_start") | [.diameter_mm, .edge_mm, .pitch_um, .origin_um, .cols, .rows, .die_px, .pixel_um, .source, .wafers]' "$T/out"
	assert_success
	assert_output '[100,0,[20000,20000],[-60000,-60000],6,6,[16,16],1250,"sim",2]'
}

@test "kerf-acquire --sim die count per wafer matches the geometry (300 mm, 10 mm pitch, 3 mm edge)" {
	want=$(expected_dies 300 3 10000 10000)
	[ "$want" -gt 590 ] && [ "$want" -lt 640 ]
	kerf-acquire --wafers 1 > "$T/out" 2>/dev/null
	assert_equal "$(count_type "$T/out" die)" "$want"
	assert_equal "$(jq -r 'select(.type == "wafer_start") | .dies' "$T/out")" "$want"
	assert_equal "$(jq -r 'select(.type == "wafer_end") | .dies' "$T/out")" "$want"
}

@test "kerf-acquire --sim die count matches the geometry on a 200 mm wafer with a non-square pitch" {
	want=$(expected_dies 200 5 7000 9000)
	kerf-acquire --wafers 1 --diameter 200 --edge 5 --pitch 7000x9000 --die-px 14 > "$T/out" 2>/dev/null
	assert_equal "$(count_type "$T/out" die)" "$want"
	# Every die lies inside the grid and appears once.
	assert_equal "$(jq -r 'select(.type == "die") | "\(.col),\(.row)"' "$T/out" | sort -u | wc -l)" "$want"
	run jq -c 'select(.type == "run_start") | .die_px' "$T/out"
	assert_output '[14,18]'
}

@test "kerf-acquire --sim die images are base64 of w*h pixels with their XXH3" {
	kerf-acquire "${SMALL[@]}" --wafers 1 > "$T/out" 2>/dev/null
	jq -r 'select(.type == "die") | [.data, .xxh3, .w * .h] | @tsv' "$T/out" | head -5 |
	while IFS=$'\t' read -r data sum n; do
		printf '%s' "$data" | base64 -d > "$T/px"
		[ "$(stat -c %s "$T/px")" -eq "$n" ]
		[ "$(xxhsum -H3 < "$T/px" | awk '{ print $NF }')" = "$sum" ]
	done
}

@test "kerf-acquire --truth writes the injected defects, each in a die of the stream" {
	kerf-acquire --seed 3 --wafers 3 --truth "$T/truth" > "$T/out" 2>/dev/null
	[ "$(wc -l < "$T/truth")" -gt 20 ]
	# Each record names a die event by seq, with the same wafer, col and row.
	jq -r 'select(.type == "die") | "\(.seq) \(.wafer) \(.col) \(.row)"' "$T/out" | sort > "$T/dies"
	jq -r '"\(.die_seq) \(.wafer) \(.col) \(.row)"' "$T/truth" | sort -u > "$T/tdies"
	assert_equal "$(comm -13 "$T/dies" "$T/tdies" | wc -l)" 0
	# Defaults cycle the wafer signatures: random, cluster, scratch.
	assert_equal "$(jq -r 'select(.type == "wafer_start") | .signature' "$T/out" | tr '\n' ' ')" "random cluster scratch "
	run jq -r '.signature' "$T/truth"
	assert_line cluster
	assert_line scratch
	# Defects are big and strong enough to find: >= 3 px, contrast >= 4 sigma (sigma 3).
	assert_equal "$(jq -r 'select(.kind == "particle" and (.size_px < 3 or .contrast < 12))' "$T/truth" | wc -l)" 0
	# The truth is reproducible too.
	kerf-acquire --seed 3 --wafers 3 --truth "$T/truth2" > /dev/null 2>&1
	cmp "$T/truth" "$T/truth2"
}

@test "kerf-acquire --sim defects stand out from the same place in a neighbouring die" {
	kerf-acquire --seed 5 --wafers 1 --defect-rate 0.3 --signature random --truth "$T/truth" > "$T/out" 2>/dev/null
	# The first particle of at least 8 px area: compare its bbox with the die before it.
	rec=$(jq -c 'select(.kind == "particle" and .area_px >= 8)' "$T/truth" | head -1)
	seq=$(jq -r .die_seq <<< "$rec")
	read -r x0 y0 x1 y1 < <(jq -r '.bbox | @tsv' <<< "$rec")
	pix() { jq -r --argjson s "$1" 'select(.seq == $s) | .data' "$T/out" | base64 -d | od -An -tu1 -v -w64; }
	pix "$seq" > "$T/a"
	pix $((seq - 1)) > "$T/b"
	[ -s "$T/a" ] && [ -s "$T/b" ]
	diff=$(paste -d' ' "$T/a" "$T/b" | awk -v x0="$x0" -v y0="$y0" -v x1="$x1" -v y1="$y1" '
		NR - 1 >= y0 && NR - 1 <= y1 {
			for (x = x0; x <= x1; x++) { d = $(x + 1) - $(x + 65); if (d < 0) d = -d; s += d; n++ }
		} END { print int(s / n) }')
	# The mean difference over the bbox is far above the noise (sigma 3).
	[ "$diff" -ge 12 ]
}

@test "kerf-acquire --signature scratch draws one line across several dies" {
	kerf-acquire --seed 2 --wafers 1 --signature scratch --defect-rate 0 --truth "$T/truth" > /dev/null 2>&1
	run jq -r 'select(.kind == "scratch") | "\(.col),\(.row)"' "$T/truth"
	assert_success
	[ "${#lines[@]}" -ge 3 ]
}

@test "kerf-acquire --run and KERF_RUN set the run id, default sim-SEED" {
	kerf-acquire "${SMALL[@]}" --wafers 1 --seed 9 2>/dev/null | head -1 > "$T/a" || true
	run jq -r .run "$T/a"
	assert_output sim-9
	KERF_RUN=env-run kerf-acquire "${SMALL[@]}" --wafers 1 2>/dev/null > "$T/b"
	assert_equal "$(jq -r .run "$T/b" | sort -u)" env-run
	kerf-acquire "${SMALL[@]}" --wafers 1 --run opt-run 2>/dev/null > "$T/c"
	assert_equal "$(jq -r .run "$T/c" | sort -u)" opt-run
}

@test "kerf-acquire --rate paces dies on the wall clock" {
	before=$(date -u +%s.%N)
	kerf-acquire "${SMALL[@]}" --wafers 1 --rate 60 > "$T/out" 2>/dev/null
	after=$(date -u +%s.%N)
	assert_equal "$(count_type "$T/out" die)" 12
	# t is the wall clock (not the simulated 2026-01-05 06:00): every
	# event happened between the two readings of the clock around the run.
	run jq -r --argjson a "$before" --argjson b "$after" "$JQ_SECS"'
		select((.t | secs) < $a or (.t | secs) > $b) | .t' "$T/out"
	assert_success
	assert_output ""
	# Die k may not come before (k - 1) / rate after the state executing
	# that starts the pacing: judged from the program's own timestamps,
	# so a slow machine can only make the gaps longer.  (1 ms for the
	# rounding of t.)
	run jq -rs "$JQ_SECS"'
		(map(select(.type == "state" and .state == "executing"))[0].t | secs) as $t0
		| [.[] | select(.type == "die")] | to_entries[]
		| select((.value.t | secs) - $t0 < .key / 60 - 0.001)
		| "die \(.key + 1) came \((.value.t | secs) - $t0) s after executing"' "$T/out"
	assert_success
	assert_output ""
}

@test "kerf-acquire --record writes the same bytes as stdout" {
	kerf-acquire "${SMALL[@]}" --wafers 2 --record "$T/rec" > "$T/out" 2>/dev/null
	cmp "$T/rec" "$T/out"
}

@test "kerf-acquire stops at a die boundary on SIGTERM: state stopping, run_end stopped, exit 0" {
	# --rate makes the signal land between dies; the stall after the
	# 40th event holds the wafer open until it comes, however late.
	kerf-acquire --wafers 1 --rate 200 --inject stall@40:86400 > "$T/out" 2>"$T/err" &
	pid=$!
	wait_for grep -q '"type":"die"' "$T/out"
	kill -TERM "$pid"
	st=0
	wait "$pid" || st=$?
	assert_equal "$st" 0
	# Every line is a whole event; the run is closed properly.
	jq -c . "$T/out" > /dev/null
	run jq -r '[.type, (.state // .status // "")] | @tsv' "$T/out"
	assert_line --index $((${#lines[@]} - 3)) --regexp '^state	stopping$'
	assert_line --index $((${#lines[@]} - 2)) --regexp '^wafer_end'
	assert_line --index $((${#lines[@]} - 1)) --regexp '^run_end	stopped$'
	dies=$(count_type "$T/out" die)
	[ "$dies" -lt 616 ]
	assert_equal "$(jq -r 'select(.type == "wafer_end") | .dies' "$T/out")" "$dies"
}

@test "kerf-acquire stopped between wafers says state stopping too, then run_end stopped" {
	# The stall holds the stream after run_start, ready and executing,
	# before the first wafer: the stop is taken at that wafer boundary.
	kerf-acquire "${SMALL[@]}" --wafers 2 --inject stall@3:30 > "$T/out" 2>/dev/null &
	pid=$!
	wait_for grep -q '"state":"executing"' "$T/out"
	kill -TERM "$pid"
	st=0
	wait "$pid" || st=$?
	assert_equal "$st" 0
	run jq -r '[.type, (.state // .status // "")] | @tsv' "$T/out"
	assert_equal "${#lines[@]}" 5
	assert_line --index 3 --regexp '^state	stopping$'
	assert_line --index 4 --regexp '^run_end	stopped$'
}

@test "kerf-acquire stops on SIGINT the same way" {
	kerf-acquire --wafers 1 --rate 200 --inject stall@40:86400 > "$T/out" 2>/dev/null &
	pid=$!
	wait_for grep -q '"type":"die"' "$T/out"
	kill -INT "$pid"
	st=0
	wait "$pid" || st=$?
	assert_equal "$st" 0
	run jq -r 'select(.type == "run_end") | .status' "$T/out"
	assert_output stopped
}

@test "kerf-acquire pauses on SIGUSR1 and resumes on SIGUSR2 with state events" {
	# 25 wafers are more than a pipe holds: with nobody reading yet it
	# blocks in write(2), so the lot cannot be over before the pause.
	mkfifo "$T/fifo"
	kerf-acquire "${SMALL[@]}" --wafers 25 > "$T/fifo" 2>/dev/null &
	pid=$!
	exec 6<"$T/fifo"
	wait_for in_pipe_write "$pid"
	kill -USR1 "$pid"
	cat <&6 > "$T/out" &
	catpid=$!
	exec 6<&-
	wait_for grep -q '"state":"paused"' "$T/out"
	# Paused: the state event is the last thing out until SIGUSR2.
	wait_for bash -c 'tail -n 1 "$1" | jq -e "select(.type == \"state\")" >/dev/null 2>&1' _ "$T/out"
	run jq -r '[.type, .state] | join(" ")' <(tail -n 1 "$T/out")
	assert_output "state paused"
	kill -USR2 "$pid"
	wait_for grep -q '"state":"executing","prev":"paused"' "$T/out"
	st=0
	wait "$pid" || st=$?
	wait "$catpid"
	assert_equal "$st" 0
	# One pause, and the event after it is the resume: no die came out
	# while paused, whenever the signals came.
	run grep -c '"state":"paused"' "$T/out"
	assert_output 1
	run jq -r '[.type, .state, .prev] | join(" ")' <(grep -A 1 '"state":"paused"' "$T/out")
	assert_output "$(printf 'state paused executing\nstate executing paused')"
	run jq -r 'select(.type == "run_end") | .status' "$T/out"
	assert_output completed
	assert_equal "$(count_type "$T/out" die)" 300
}

@test "kerf-acquire exits 3 after a critical alarm, with run_end aborted after it" {
	run --separate-stderr kerf-acquire "${SMALL[@]}" --wafers 2 --inject alarm@5:42:safety
	assert_equal "$status" 3
	printf '%s\n' "${lines[@]}" > "$T/out"
	run jq -r '[.type, (.status // .category // "")] | @tsv' "$T/out"
	assert_line --index $((${#lines[@]} - 3)) --regexp '^alarm	safety$'
	assert_line --index $((${#lines[@]} - 1)) --regexp '^run_end	aborted$'
	assert_equal "$(count_type "$T/out" die)" 5
	run jq -c 'select(.type == "alarm") | [.alid, .set, .critical]' "$T/out"
	assert_output '[42,true,true]'
}

@test "kerf-acquire goes on after a non-critical alarm" {
	run --separate-stderr kerf-acquire "${SMALL[@]}" --wafers 1 --inject alarm@3:7:warning
	assert_success
	printf '%s\n' "${lines[@]}" > "$T/out"
	run jq -c 'select(.type == "alarm") | [.alid, .category, .critical]' "$T/out"
	assert_output '[7,"warning",false]'
	run jq -r 'select(.type == "run_end") | .status' "$T/out"
	assert_output completed
}

@test "kerf-acquire --inject crash@N dies after exactly N events" {
	run bash -c 'kerf-acquire --inject crash@7 2>/dev/null > "$1"' _ "$T/out"
	[ "$status" -ne 0 ]
	assert_equal "$(wc -l < "$T/out")" 7
	jq -c . "$T/out" > /dev/null
}

@test "kerf-acquire --inject garbage@N emits one malformed line after N events" {
	kerf-acquire "${SMALL[@]}" --wafers 1 --inject garbage@4 > "$T/out" 2>/dev/null
	run sed -n 5p "$T/out"
	refute_output --partial '"id"'
	run jq -c . <(sed -n 5p "$T/out")
	assert_failure
	# All the others are whole events.
	sed 5d "$T/out" | jq -c . > /dev/null
}

@test "kerf-acquire --inject stall@N:SECONDS holds output after N events" {
	# Unpaced, the 12 dies would be out at once: only the stall (a day
	# long) can keep the rest back until the stop.
	kerf-acquire "${SMALL[@]}" --wafers 1 --inject stall@6:86400 > "$T/out" 2>/dev/null &
	pid=$!
	wait_for lines_ge "$T/out" 6
	# A stop ends the stall and the run properly.
	kill -TERM "$pid"
	st=0
	wait "$pid" || st=$?
	assert_equal "$st" 0
	# Nothing came between the 6th event and the stop: the stall held.
	run types "$T/out"
	assert_output "$(printf '%s\n' 'run_start ' 'state ready' 'state executing' 'wafer_start ' 'die ' 'die ' \
		'state stopping' 'wafer_end ' 'run_end stopped')"
}

@test "kerf-acquire --inject wait@DIES: the simulated tool makes nothing after that die until it carries out a command (the stop)" {
	# Unpaced, the 12 dies would be out at once: the simulated tool waits
	# after its 2nd die, until it carries out the stop.
	kerf-acquire "${SMALL[@]}" --wafers 1 --inject wait@2 > "$T/out" 2>/dev/null &
	pid=$!
	wait_for lines_ge "$T/out" 6
	kill -TERM "$pid"
	st=0
	wait "$pid" || st=$?
	assert_equal "$st" 0
	run types "$T/out"
	assert_output "$(printf '%s\n' 'run_start ' 'state ready' 'state executing' 'wafer_start ' 'die ' 'die ' \
		'state stopping' 'wafer_end ' 'run_end stopped')"
	run --separate-stderr kerf-acquire --inject wait@0
	assert_equal "$status" 64
	[[ "$stderr" == *"bad --inject 'wait@0': expected wait@DIES"* ]]
}

@test "kerf-acquire exits 69 with the reason when the machine never becomes ready" {
	run --separate-stderr kerf-acquire --inject notready --ready-timeout 0.2s
	assert_equal "$status" 69
	assert_output ""
	[[ "$stderr" == *"machine not ready after 0.2s"* ]]
}

@test "kerf-acquire exits 74 when stdout is closed" {
	run bash -c 'kerf-acquire --wafers 3 2>"$1" | head -c 1000 > /dev/null; echo "${PIPESTATUS[0]}"' _ "$T/err"
	assert_output 74
	grep -q "cannot write standard output: downstream closed" "$T/err"
}

@test "kerf-acquire --replay re-emits a recording byte for byte" {
	kerf-acquire "${SMALL[@]}" --wafers 2 > "$T/rec" 2>/dev/null
	kerf-acquire --replay "$T/rec" > "$T/out" 2>/dev/null
	cmp "$T/rec" "$T/out"
	kerf-acquire --replay - < "$T/rec" > "$T/out2" 2>/dev/null
	cmp "$T/rec" "$T/out2"
}

@test "kerf-acquire --replay --from-seq/--to-seq cuts a window" {
	kerf-acquire "${SMALL[@]}" --wafers 1 > "$T/rec" 2>/dev/null
	kerf-acquire --replay "$T/rec" --from-seq 3 --to-seq 9 > "$T/out" 2>/dev/null
	assert_equal "$(jq -r .seq "$T/out" | tr '\n' ' ')" "3 4 5 6 7 8 9 "
	awk 'NR >= 3 && NR <= 9' "$T/rec" | cmp - "$T/out"
}

@test "kerf-acquire --replay --speed follows the recorded pace" {
	# The recording spans 12 dies of 20 ms plus loads: 4.54 s of machine time.
	kerf-acquire "${SMALL[@]}" --wafers 1 > "$T/rec" 2>/dev/null
	span_ms=$(jq -rs "$JQ_SECS"' (.[-1].t | secs) - (.[0].t | secs) | . * 1000 | round' "$T/rec")
	assert_equal "$span_ms" 4540
	kerf-acquire --replay "$T/rec" --speed 10 > "$T/out" 2> "$T/err"
	cmp "$T/rec" "$T/out"
	# The last line is due span / 10 after the first: the program's own
	# elapsed_ms (its final stats record) cannot be shorter, on any machine.
	ms=$(jq -r 'select(.msg == "stats" and .final) | .elapsed_ms' "$T/err")
	echo "# replayed $span_ms ms of recording at --speed 10 in $ms ms"
	[ "$ms" -ge $(( span_ms / 10 - 1 )) ]
}

@test "kerf-acquire --replay stopped by SIGTERM ends on a whole recorded event and invents none" {
	kerf-acquire --wafers 1 --die-px 16 > "$T/rec" 2>/dev/null
	mkfifo "$T/fifo"
	kerf-acquire --replay "$T/fifo" --speed 2 > "$T/out" 2>/dev/null &
	pid=$!
	# The recording's first 40 lines and half of the 41st, the fifo held
	# open: the replay cannot reach the end of the run before the stop.
	exec 6>"$T/fifo"
	{ head -n 40 "$T/rec"; sed -n 41p "$T/rec" | head -c 100; } >&6
	wait_for grep -q '"type":"die"' "$T/out"
	kill -TERM "$pid"
	st=0
	wait "$pid" || st=$?
	exec 6>&-
	assert_equal "$st" 0
	# What it passed on is a prefix of the recording, byte for byte: no
	# invented wafer_end or run_end whose seq (and so id) a real event owns.
	n=$(wc -l < "$T/out")
	[ "$n" -lt "$(wc -l < "$T/rec")" ]
	head -n "$n" "$T/rec" | cmp - "$T/out"
}

@test "a stopped replay and a second full replay persist every recorded event exactly once" {
	kerf-acquire --wafers 1 --die-px 16 > "$T/rec" 2>/dev/null
	mkfifo "$T/fifo" "$T/pipe"
	kerf-persist -C "$T/run" --batch 10 < "$T/pipe" > "$T/out" 2>/dev/null &
	ppid=$!
	kerf-acquire --replay "$T/fifo" --speed 4 > "$T/pipe" 2>/dev/null &
	apid=$!
	# Only the first 100 lines, the fifo held open: the first replay is
	# stopped inside the run, never at its end.
	exec 6>"$T/fifo"
	head -n 100 "$T/rec" >&6
	wait_for grep -q '"type":"die"' "$T/out"
	kill -TERM "$apid"
	wait "$apid"
	wait "$ppid"
	exec 6>&-
	kerf-acquire --replay "$T/rec" 2>/dev/null | kerf-persist -C "$T/run" > /dev/null 2>&1
	# The journal holds the recording's events, each once, in order, and
	# none of them is an invented stand-in carrying a real event's id.
	cat "$T/run"/journal/*.ndjson | jq -c 'select(.type)' > "$T/journaled"
	jq -c . "$T/rec" | cmp - "$T/journaled"
}

# Send FILE to a unix socket, then close (python3 is the only client around).
send_unix() {
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(open(sys.argv[2], "rb").read())
s.close()' "$1" "$2"
}

@test "kerf-acquire --listen unix: passes a machine's events through" {
	command -v python3 || skip "python3 is needed as the socket client"
	kerf-acquire "${SMALL[@]}" --wafers 1 > "$T/rec" 2>/dev/null
	kerf-acquire --listen "unix:$T/m.sock" --ready-timeout 60 > "$T/out" 2>"$T/err" &
	pid=$!
	wait_for test -S "$T/m.sock"
	send_unix "$T/m.sock" "$T/rec"
	st=0
	wait "$pid" || st=$?
	assert_equal "$st" 0
	cmp "$T/rec" "$T/out"
}

@test "kerf-acquire --listen turns a dropped connection into an alarm and run_end aborted" {
	command -v python3 || skip "python3 is needed as the socket client"
	kerf-acquire "${SMALL[@]}" --wafers 1 | head -8 > "$T/rec" 2>/dev/null
	kerf-acquire --listen "unix:$T/m.sock" --ready-timeout 60 > "$T/out" 2>"$T/err" &
	pid=$!
	wait_for test -S "$T/m.sock"
	send_unix "$T/m.sock" "$T/rec"
	st=0
	wait "$pid" || st=$?
	assert_equal "$st" 69
	grep -q 'machine connection dropped after 8 events' "$T/err"
	head -8 "$T/out" | cmp - "$T/rec"
	run jq -r '[.seq, .type, (.status // .category // "")] | @tsv' "$T/out"
	assert_line --index 8 --regexp '^9	alarm	irrecoverable$'
	assert_line --index 9 --regexp '^10	wafer_end'
	assert_line --index 10 --regexp '^11	run_end	aborted$'
}

@test "kerf-acquire --listen stopped by SIGTERM closes the machine's run with run_end stopped" {
	command -v python3 || skip "python3 is needed as the socket client"
	kerf-acquire "${SMALL[@]}" --wafers 1 | head -8 > "$T/rec" 2>/dev/null
	kerf-acquire --listen "unix:$T/m.sock" --ready-timeout 60 > "$T/out" 2>"$T/err" &
	pid=$!
	wait_for test -S "$T/m.sock"
	# The machine sends 8 events and then keeps the connection open
	# until kerf-acquire closes it.
	python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(open(sys.argv[2], "rb").read())
s.recv(1)' "$T/m.sock" "$T/rec" &
	client=$!
	wait_for lines_ge "$T/out" 8
	kill -TERM "$pid"
	st=0
	wait "$pid" || st=$?
	kill "$client" 2>/dev/null || true
	assert_equal "$st" 0
	run jq -r '[.seq, .type, (.state // .status // "")] | @tsv' "$T/out"
	assert_line --index 8 --regexp '^9	state	stopping$'
	assert_line --index 9 --regexp '^10	wafer_end	$'
	assert_line --index 10 --regexp '^11	run_end	stopped$'
}

@test "kerf-acquire --replay rejects a line longer than --max-line with reason too_long" {
	kerf-acquire "${SMALL[@]}" --die-px 64 --wafers 1 > "$T/rec" 2>/dev/null
	KERF_RUNDIR="$T" kerf-acquire --replay "$T/rec" --max-line 2K > "$T/out" 2>/dev/null
	dies=$(count_type "$T/rec" die)
	assert_equal "$(count_type "$T/out" die)" 0
	assert_equal "$(wc -l < "$T/out")" $(( $(wc -l < "$T/rec") - dies ))
	assert_equal "$(jq -r .reason "$T/rejects.ndjson" | sort | uniq -c | awk '{ print $1, $2 }')" "$dies too_long"
}

@test "kerf-acquire --listen exits 69 when no machine connects within --ready-timeout" {
	run --separate-stderr kerf-acquire --listen "unix:$T/m.sock" --ready-timeout 0.2
	assert_equal "$status" 69
	[[ "$stderr" == *"no connection to 'unix:$T/m.sock' within 0.2s"* ]]
	[ ! -e "$T/m.sock" ]
}

@test "kerf-acquire --listen tcp: accepts a connection on 127.0.0.1 and names the port it took" {
	kerf-acquire "${SMALL[@]}" --wafers 1 > "$T/rec" 2>/dev/null
	kerf-acquire --listen "tcp:127.0.0.1:0" --ready-timeout 60 > "$T/out" 2>"$T/err" &
	pid=$!
	wait_for grep -q listening "$T/err"
	# Port 0: the kernel chose a free one, and the log says which.
	port=$(jq -r 'select(.port) | .port' "$T/err")
	grep -q "listening on 'tcp:127.0.0.1:$port'" "$T/err"
	cat "$T/rec" > "/dev/tcp/127.0.0.1/$port"
	st=0
	wait "$pid" || st=$?
	assert_equal "$st" 0
	cmp "$T/rec" "$T/out"
}

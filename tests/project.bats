#!/usr/bin/env bats
# tests/project.bats: kerf-project, the operator's view.
#
# Fixtures (tests/data/project/): run.ndjson, a persisted-looking run of
# two 300 mm wafers (made by make-fixtures.py); partial.ndjson, a careless
# stream; status.json, a supervisor status; flood.awk, 100,000 events.
#
# No test here judges how fast kerf-project is: project-flood
# (tests/unit/) writes the flood at a pace, but what is checked is what
# the program does and says, not how long it took.  "The pipe stays
# drained" is proved by state: whenever kerf-project sleeps in poll(2), it
# has read every byte written to its input so far (a reader that only
# read at its redraws would sleep with data waiting; one that spun would
# never sleep).

load common
bats_require_minimum_version 1.5.0

setup_file() {
	awk -v N=100000 -f "$BATS_TEST_DIRNAME/data/project/flood.awk" > "$BATS_FILE_TMPDIR/flood.ndjson"
}

setup() {
	D="$BATS_TEST_TMPDIR/run"
	mkdir -p "$D"
	RUNF="$DATA/project/run.ndjson"
	FLOOD_BIN="${KERF_UNIT:-$BATS_TEST_DIRNAME/../build/release/tests}/project-flood"
	TM="kp$$_$BATS_TEST_NUMBER"
}

teardown() {
	tmux kill-session -t "$TM" 2>/dev/null || true
	exec 7>&- 2>/dev/null || true
}

need_flood() {
	[ -x "$FLOOD_BIN" ] || {
		echo "missing $FLOOD_BIN: build it with 'make units' (or make $FLOOD_BIN)" >&2
		return 1
	}
}

# The figures jq computes from a stream, per wafer: defects, defective dies,
# inspected dies (distinct die_done), density in defects/cm^2.
jq_wafer_figures() {
	jq -s -r '
		(map(select(.type == "run_start"))[0].pitch_um) as $p
		| (map(select(.type == "defect")) | group_by(.wafer)
		   | map({key: .[0].wafer, value: {n: length, dd: (map([.col, .row]) | unique | length)}})
		   | from_entries) as $d
		| (map(select(.type == "die_done")) | group_by(.wafer)
		   | map({key: .[0].wafer, value: (map([.col, .row]) | unique | length)}) | from_entries) as $i
		| $i | keys[] as $w
		| "\($w) \($d[$w].n // 0) \($d[$w].dd // 0) \($i[$w]) \(($d[$w].n // 0) / ($i[$w] * $p[0] * $p[1] / 1e8))"
	' "$1"
}

# stage NAME ARGS...: another kerf program, from the build under test,
# else from bin/ (a sanitizer build may hold kerf-project alone).
stage() {
	local p="$KERF_BIN/$1"
	[ -x "$p" ] || p="$BATS_TEST_DIRNAME/../bin/$1"
	shift
	"$p" "$@"
}

svg_attr() { # FILE NAME
	sed -n "s/.*data-$2=\"\([^\"]*\)\".*/\1/p" "$1" | head -1
}

# tmux helpers: a fixed-size session running an interactive shell.
tm_start() {
	tmux new-session -d -s "$TM" -x 132 -y 45 "env -i PATH='$PATH' TERM=xterm-256color HOME='$HOME' ASAN_OPTIONS='$ASAN_OPTIONS' UBSAN_OPTIONS='$UBSAN_OPTIONS' KERF_LOG=json bash --norc --noprofile -i"
	tmux send-keys -t "$TM" "PS1='ready\$ '" Enter
	wait_for tm_has 'ready\$'
}
tm_has() { tmux capture-pane -p -t "$TM" | grep -q -- "$1"; }

# in_poll PID: PID's (only) thread sleeps in poll(2) (from wchan, or where
# the kernel hides it, from its system call: poll or ppoll).
in_poll() {
	local w nr
	w=$(cat "/proc/$1/wchan" 2>/dev/null) || return 1
	[[ $w == *poll* ]] && return 0
	[ "$w" = 0 ] && [ "$(thread_state "/proc/$1/task/$1")" = S ] || return 1
	nr=$(cut -d' ' -f1 "/proc/$1/syscall" 2>/dev/null)
	case $(uname -m) in
	x86_64) [ "$nr" = 7 ] || [ "$nr" = 271 ] ;;
	aarch64) [ "$nr" = 73 ] ;;
	*) false ;;
	esac
}
# bytes_read PID: all bytes PID has read with read(2) and the like so far.
bytes_read() { awk '/^rchar:/ { print $2 }' "/proc/$1/io"; }
# stats_records FILE: how many stats records a log holds.
stats_records() { grep -c '"msg":"stats"' "$1" || true; }
tm_screen() { tmux capture-pane -p -t "$TM"; }
# The dashboard's frame counter has reached N (a poll may miss frame N itself).
tm_frame_ge() {
	local f
	f=$(tm_screen | sed -n 's/.*frame \([0-9]*\).*/\1/p')
	[ -n "$f" ] && [ "$f" -ge "$1" ]
}

@test "kerf-project --help prints the usage to stdout and exits 0" {
	run kerf-project --help
	assert_success
	assert_line --partial "Usage: kerf-project [-C RUNDIR] [--interval MS]"
	run kerf-project --version
	assert_success
	assert_output --regexp '^kerf-project [0-9]'
}

@test "kerf-project refuses an --interval outside 100..1000 ms with exit 64" {
	for bad in 50 99 1001 2s abc; do
		run kerf-project --interval "$bad" -C "$D" < /dev/null
		assert_failure 64
		assert_output --partial "interval"
	done
	run kerf-project --interval 100 -C "$D" --no-maps < /dev/null
	assert_success
	run kerf-project --interval 1s -C "$D" --no-maps < /dev/null
	assert_success
}

@test "kerf-project writes one wafer-map SVG per wafer that rsvg-convert renders to a PNG" {
	run kerf-project -C "$D" < "$RUNF"
	assert_success
	assert_file_exists "$D/wafermap/W01.svg"
	assert_file_exists "$D/wafermap/W02.svg"
	for w in W01 W02; do
		rsvg-convert -o "$D/$w.png" "$D/wafermap/$w.svg"
		# PNG signature, then the IHDR width: 1000 px.
		[ "$(od -An -tx1 -N8 "$D/$w.png" | tr -d ' \n')" = 89504e470d0a1a0a ]
		[ "$(od -An -tu1 -j16 -N4 "$D/$w.png" | awk '{print $1*16777216+$2*65536+$3*256+$4}')" -eq 1000 ]
		[ "$(stat -c %s "$D/$w.png")" -gt 20000 ]
	done
	# Outline with notch, die grid, defect markers, legend.
	grep -q 'notch' "$D/wafermap/W01.svg"
	[ "$(grep -c '<rect ' "$D/wafermap/W01.svg")" -gt 600 ]
	[ "$(grep -c '<circle ' "$D/wafermap/W01.svg")" -ge 111 ]
	grep -q 'DEFECT CLASS' "$D/wafermap/W01.svg"
}

@test "the map's defect count and density match the figures jq computes from the input" {
	run kerf-project -C "$D" < "$RUNF"
	assert_success
	jq_wafer_figures "$RUNF" > "$D/expected"
	[ "$(wc -l < "$D/expected")" -eq 2 ]
	while read -r w n dd dies dens; do
		f="$D/wafermap/$w.svg"
		[ "$(svg_attr "$f" defects)" -eq "$n" ]
		[ "$(svg_attr "$f" defective-dies)" -eq "$dd" ]
		[ "$(svg_attr "$f" dies)" -eq "$dies" ]
		awk -v a="$(svg_attr "$f" density-cm2)" -v b="$dens" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * b) }'
		# The same numbers are the ones printed on the map.
		grep -q ">Defects</text><text [^>]*>$n</text>" "$f"
		grep -q ">Density</text><text [^>]*>$(printf '%.4g' "$dens") /cm" "$f"
	done < "$D/expected"
	# And they agree with the wafer_summary events of the stream.
	jq -r 'select(.type == "wafer_summary") | "\(.wafer) \(.defects) \(.defective_dies)"' "$RUNF" > "$D/summ"
	awk '{print $1, $2, $3}' "$D/expected" | diff -u "$D/summ" -
}

@test "the maps of a simulated run match kerf-persist's summary.json" {
	stage kerf-acquire --sim --seed 7 --wafers 2 2> "$D/acq.err" | stage kerf-detect 2> "$D/det.err" |
		stage kerf-persist -C "$D" 2> "$D/per.err" | kerf-project -C "$D" > "$D/out" 2> "$D/proj.err"
	assert_file_exists "$D/summary.json"
	jq -r '.wafers[] | "\(.wafer) \(.defects) \(.defective_dies) \(.dies) \(.density_cm2)"' "$D/summary.json" > "$D/expected"
	[ "$(wc -l < "$D/expected")" -eq 2 ]
	while read -r w n dd dies dens; do
		f="$D/wafermap/$w.svg"
		[ "$(svg_attr "$f" defects)" -eq "$n" ]
		[ "$(svg_attr "$f" defective-dies)" -eq "$dd" ]
		[ "$(svg_attr "$f" dies)" -eq "$dies" ]
		awk -v a="$(svg_attr "$f" density-cm2)" -v b="$dens" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * b + 1e-12) }'
		rsvg-convert -o "$D/$w.png" "$f"
	done < "$D/expected"
}

@test "a wafer's map is written when the next wafer starts, before the end of input" {
	mkfifo "$D/in"
	kerf-project -C "$D" < "$D/in" > "$D/out" 2> "$D/err" &
	pid=$!
	exec 7> "$D/in"
	# W01 ends (line 731, its wafer_summary 732) and W02 starts (733).
	head -n 733 "$RUNF" >&7
	wait_for test -s "$D/wafermap/W01.svg"
	[ "$(svg_attr "$D/wafermap/W01.svg" defects)" -eq 111 ]
	[ "$(svg_attr "$D/wafermap/W01.svg" dies)" -eq 616 ]
	grep -q '>Signature</text>' "$D/wafermap/W01.svg"
	[ ! -e "$D/wafermap/W02.svg" ]
	[ ! -e "$D/index.html" ]
	tail -n +734 "$RUNF" >&7
	exec 7>&-
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ]
	[ "$(svg_attr "$D/wafermap/W02.svg" defects)" -eq 114 ]
	grep -q '<img src="wafermap/W01.svg"' "$D/index.html"
	grep -q '<img src="wafermap/W02.svg"' "$D/index.html"
}

@test "events for a wafer after its map was drawn are late: the map and its numbers stay, the run's totals count them" {
	# After W02 has started, W01 is finished: then a W01 defect on a clean
	# die, a die_done, a second wafer_end and a wafer_summary come late.
	{
		head -n 740 "$RUNF"
		jq -c 'select(.type == "defect" and .wafer == "W01")' "$RUNF" | head -1 |
			jq -c '.seq = 5001 | .id = "00000000000000f1" | .col = 0 | .row = 14 | .index = 7'
		jq -c 'select(.type == "die_done" and .wafer == "W01")' "$RUNF" | head -1 |
			jq -c '.seq = 5002 | .id = "00000000000000f2"'
		sed -n '731,732p' "$RUNF"
		tail -n +741 "$RUNF"
	} > "$D/late.ndjson"
	run --separate-stderr kerf-project -C "$D" < "$D/late.ndjson"
	assert_success
	# The wafer's own numbers are those of its map, drawn when W02 started.
	[ "$(svg_attr "$D/wafermap/W01.svg" defects)" -eq 111 ]
	[ "$(svg_attr "$D/wafermap/W01.svg" defective-dies)" -eq 71 ]
	[ "$(svg_attr "$D/wafermap/W01.svg" dies)" -eq 616 ]
	assert_line --index 1 --partial "wafer W01 slot 1: 616 dies, 111 defects on 71 dies"
	assert_line --index 1 --partial "4 late events not on its map"
	assert_line --index 2 --partial "wafer W02 slot 2: 576 dies, 114 defects on 77 dies"
	refute_line --index 2 --partial "late"
	# The run's totals count every defect of the stream.
	assert_line --index 0 --partial "226 defects"
	sed -n '/<h2>Wafer W01/,/<\/div>/p' "$D/index.html" > "$D/card"
	grep -q '<th>Defects</th><td>111</td>' "$D/card"
	grep -q '<th>Late events (not on the map)</th><td>4</td>' "$D/card"
	grep -q '<th>Defects</th><td>226</td>' "$D/index.html"
	run --separate-stderr kerf-project -C "$D" --snapshots --no-maps < "$D/late.ndjson"
	tail -1 <<< "$output" > "$D/last"
	[ "$(jq '.wafers[0].late_events' "$D/last")" -eq 4 ]
	[ "$(jq '.wafers[0].defects' "$D/last")" -eq 111 ]
	[ "$(jq '.wafers[1] | has("late_events")' "$D/last")" = false ]
	[ "$(jq .defects "$D/last")" -eq 226 ]
	[ "$(jq .wafers_done "$D/last")" -eq 2 ]
	# A second pass of the same wafer ids (here the run twice over): its
	# wafer_start finishes the wafer before it, and all of it is late.
	cat "$RUNF" "$RUNF" > "$D/twice.ndjson"
	rm -r "$D/wafermap"
	run --separate-stderr kerf-project -C "$D" < "$D/twice.ndjson"
	assert_success
	n1=$(jq -s 'map(select(.wafer == "W01")) | length' "$RUNF")
	n2=$(jq -s 'map(select(.wafer == "W02")) | length' "$RUNF")
	assert_line --index 0 --partial "450 defects"
	assert_line --index 1 --partial "wafer W01 slot 1: 616 dies, 111 defects on 71 dies, 0.1802 /cm2, scratch, $n1 late events"
	assert_line --index 2 --partial "wafer W02 slot 2: 576 dies, 114 defects on 77 dies, 0.1979 /cm2, local cluster, $n2 late events"
	[ "$(svg_attr "$D/wafermap/W02.svg" defects)" -eq 114 ]
}

@test "memory stays flat: ten times the wafers take at most 1.2 times the peak RSS" {
	# 1x: the flood's first 10,000 lines (13 wafers); 10x: all of it (116
	# wafers), maps and index written.  Each wafer's dies and defect
	# positions are freed once its map is drawn.  ASan's quarantine would
	# keep freed memory resident: off for this measurement.
	head -n 10000 "$BATS_FILE_TMPDIR/flood.ndjson" > "$D/flood1.ndjson"
	for x in 1 10; do
		f="$D/flood$x.ndjson"
		[ "$x" = 10 ] && f="$BATS_FILE_TMPDIR/flood.ndjson"
		mkdir -p "$D/r$x"
		ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=0" \
			/usr/bin/time -f %M -o "$D/rss$x" kerf-project -C "$D/r$x" < "$f" > /dev/null 2> "$D/err$x"
	done
	rss1=$(tail -1 "$D/rss1") rss10=$(tail -1 "$D/rss10")
	echo "# peak RSS ${rss1} KB at 1x, ${rss10} KB at 10x" >&3
	[ "$(ls "$D"/r10/wafermap/*.svg | wc -l)" -eq 116 ]
	grep -q '<img src="wafermap/F116.svg"' "$D/r10/index.html"
	awk -v a="$rss1" -v b="$rss10" 'BEGIN { exit !(b <= 1.2 * a) }'
}

@test "one wafer with more distinct dies than PROJECT_DIES_KEPT tracks 250000 and counts the rest" {
	# 250,100 distinct dies on one wafer: the die table stops growing.
	awk 'BEGIN {
		printf "{\"v\":1,\"type\":\"wafer_start\",\"run\":\"huge\",\"seq\":1,\"t\":\"2026-11-21T10:00:00.000000Z\",\"id\":\"0000000000000001\",\"wafer\":\"H1\",\"slot\":1}\n"
		for (i = 0; i < 250100; i++)
			printf "{\"v\":1,\"type\":\"die_done\",\"run\":\"huge\",\"seq\":%d,\"t\":\"2026-11-21T10:00:00.000000Z\",\"id\":\"%016x\",\"wafer\":\"H1\",\"col\":%d,\"row\":%d}\n", i + 2, i + 2, i % 1000, int(i / 1000)
	}' > "$D/huge.ndjson"
	ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=0" \
		/usr/bin/time -f %M -o "$D/rss" kerf-project -C "$D" --snapshots --no-maps < "$D/huge.ndjson" > "$D/snaps" 2> "$D/err"
	tail -1 "$D/snaps" > "$D/last"
	[ "$(jq .dies "$D/last")" -eq 250100 ]
	[ "$(jq '.wafers[0].dies' "$D/last")" -eq 250000 ]
	[ "$(jq '.wafers[0].untracked_die_events' "$D/last")" -eq 100 ]
	echo "# peak RSS $(tail -1 "$D/rss") KB" >&3
}

@test "index.html shows every wafer's map by relative path with its numbers" {
	run kerf-project -C "$D" < "$RUNF"
	assert_success
	assert_file_exists "$D/index.html"
	for w in W01 W02; do
		grep -q "<img src=\"wafermap/$w.svg\"" "$D/index.html"
	done
	! grep -q 'src="/' "$D/index.html"
	! grep -q 'http://\|https://' "$D/index.html"
	grep -q '<th>Defects</th><td>111</td>' "$D/index.html"
	grep -q '<th>Defects</th><td>114</td>' "$D/index.html"
	grep -q '<th>Defects</th><td>225</td>' "$D/index.html"
}

@test "without a terminal kerf-project prints only a short final summary" {
	run --separate-stderr kerf-project -C "$D" < "$RUNF"
	assert_success
	assert_line --index 0 --partial "run t-proj lot LOT42 stream completed: 2 wafers, 1192 dies inspected, 225 defects, 2 alarms"
	assert_line --index 1 --partial "wafer W01 slot 1: 616 dies, 111 defects on 71 dies"
	assert_line --index 2 --partial "wafer W02 slot 2: 576 dies, 114 defects on 77 dies"
	[ "${#lines[@]}" -eq 4 ]
}

@test "the state and stage figures come from status.json, not from the events" {
	cp "$DATA/project/status.json" "$D/status.json"
	run --separate-stderr kerf-project -C "$D" --snapshots --no-maps < "$RUNF"
	assert_success
	tail -1 <<< "$output" > "$D/last"
	[ "$(jq -r .state "$D/last")" = running ]
	[ "$(jq -r '.stages[2].name + " " + (.stages[2].queue.fill|tostring)' "$D/last")" = "detect 0.75" ]
	[ "$(jq -r .final "$D/last")" = true ]
	# Without status.json the state is unknown, even though the stream ended.
	rm "$D/status.json"
	run --separate-stderr kerf-project -C "$D" --snapshots --no-maps < "$RUNF"
	[ "$(tail -1 <<< "$output" | jq -r .state)" = null ]
	[ "$(tail -1 <<< "$output" | jq -r .stream_status)" = completed ]
}

@test "--snapshots coalesces a flood of 100,000 events into at most one snapshot per interval" {
	need_flood
	F="$BATS_FILE_TMPDIR/flood.ndjson"
	mkfifo "$D/in"
	KERF_STATS_MS=100 kerf-project -C "$D" --snapshots --interval 100 --no-maps < "$D/in" > "$D/snaps" 2> "$D/err" &
	pid=$!
	exec 7> "$D/in"
	# Half the flood, then the input stays open and idle: a snapshot of
	# exactly that half comes out while the stream is still open, and no
	# other while nothing changes, over two more of the program's ticks
	# (two stats records).
	head -n 50000 "$F" | "$FLOOD_BIN" --rate 50000 >&7
	wait_for grep -q '"events":50000,' "$D/snaps"
	n=$(stats_records "$D/err")
	wait_for bash -c '[ "$(grep -c "\"msg\":\"stats\"" "$1")" -ge "$2" ]' _ "$D/err" $((n + 2))
	[ "$(tail -n 1 "$D/snaps" | jq .events)" -eq 50000 ]
	[ "$(grep -c '"events":50000,' "$D/snaps")" -eq 1 ]
	tail -n +50001 "$F" | "$FLOOD_BIN" --rate 50000 >&7
	exec 7>&-
	wait "$pid"
	jq -e . "$D/snaps" > /dev/null
	n=$(wc -l < "$D/snaps")
	echo "# $n snapshots over $(tail -n 1 "$D/snaps" | jq .elapsed_ms) ms" >&3
	# At most one per interval, by the program's own clock (each
	# snapshot's elapsed_ms is the redraw that wrote it): two periodic
	# snapshots are at least 100 ms apart, whatever the machine's speed.
	run jq -rs '[.[] | select(.final | not)] as $s | range(1; $s | length)
		| select($s[.].elapsed_ms - $s[. - 1].elapsed_ms < 100)
		| "snapshots \(. - 1) and \(.) are \($s[.].elapsed_ms - $s[. - 1].elapsed_ms) ms apart"' "$D/snaps"
	assert_success
	assert_output ""
	# Coalesced: each periodic snapshot has something new.
	run jq -rs '[.[] | select(.final | not) | .events] as $e | range(1; $e | length)
		| select($e[.] <= $e[. - 1]) | "snapshot \(.) repeats \($e[.]) events"' "$D/snaps"
	assert_output ""
	tail -1 "$D/snaps" > "$D/last"
	[ "$(jq .final "$D/last")" = true ]
	[ "$(jq .events "$D/last")" -eq 100002 ]
	[ "$(jq .defects "$D/last")" -eq "$(grep -c '"type":"defect"' "$F")" ]
}

@test "kerf-project empties its input pipe as data come, not at its redraws, and sleeps in poll(2) while none do" {
	need_flood
	F="$BATS_FILE_TMPDIR/flood.ndjson"
	mkfifo "$D/in"
	# A long interval: a reader that only read at its redraws would
	# leave a second's worth waiting in the pipe.
	kerf-project -C "$D" --snapshots --interval 1000 --no-maps < "$D/in" > "$D/snaps" 2> "$D/err" &
	pid=$!
	exec 7> "$D/in"
	wait_for in_poll "$pid"
	base=$(bytes_read "$pid")
	sent=0
	# Ten pieces of the flood at its pace, each followed by a pause in
	# the input: once kerf-project sleeps in poll(2) again (it does not
	# spin), it has read every byte sent so far.
	for i in 0 1 2 3 4 5 6 7 8 9; do
		sed -n "$((i * 10000 + 1)),$((i * 10000 + 10000))p" "$F" > "$D/piece"
		"$FLOOD_BIN" --rate 50000 < "$D/piece" >&7
		sent=$((sent + $(stat -c %s "$D/piece")))
		wait_for in_poll "$pid"
		got=$(($(bytes_read "$pid") - base))
		[ "$got" -eq "$sent" ] || { echo "asleep in poll with $((sent - got)) of $sent bytes unread"; false; }
	done
	tail -n +100001 "$F" >&7
	exec 7>&-
	wait "$pid"
	[ "$(tail -n 1 "$D/snaps" | jq .events)" -eq 100002 ]
}

@test "the dashboard under tmux shows the run's state, figures and tool link from status.json" {
	cp "$DATA/project/status.json" "$D/status.json"
	mkfifo "$D/in"
	tm_start
	tmux send-keys -t "$TM" "kerf-project -C '$D' < '$D/in' 2> '$D/err'; echo EXIT=\$?" Enter
	exec 7> "$D/in"
	cat "$RUNF" >&7
	wait_for tm_has 'state running'
	wait_for tm_has 'events 1429'
	tm_screen > "$D/screen"
	grep -q 'run t-proj' "$D/screen"
	grep -q 'elapsed 01:02:03' "$D/screen"
	grep -q 'detect .*4303 running .*75%' "$D/screen"
	# A stage's rate and work are its own: detect counts dies, not the
	# few lines it passes on.
	grep -q 'detect .*4303 running *930 *9168 dies' "$D/screen"
	grep -q 'validate .*running *1836 *9180 lines' "$D/screen"
	grep -q 'particle *107' "$D/screen"
	grep -q 'WAFER W02' "$D/screen"
	grep -q '1042 *clear warning *stage vacuum low' "$D/screen"
	grep -q 'wafers *2/2' "$D/screen"
	grep -q 'recipe .* link online' "$D/screen"
	# The supervisor's word changes: so does the screen.  Detect's next
	# stats record: 14100 dies, 5000 per second.
	jq -c '.state = "paused" | .stages[2].counters.work = 14100 | .stages[2].counters.per_s = 5000
	       | .stages[0].link = {state: "lost", cause: "t6"}' \
		"$DATA/project/status.json" > "$D/status.tmp"
	mv "$D/status.tmp" "$D/status.json"
	wait_for tm_has 'state paused'
	wait_for tm_has 'detect .*4303 running *5000 *14.1k dies'
	wait_for tm_has 'link lost t6'
	exec 7>&-
	wait_for tm_has 'EXIT=0'
}

@test "the dashboard redraws at the interval under a flood of 100,000 events" {
	need_flood
	F="$BATS_FILE_TMPDIR/flood.ndjson"
	mkfifo "$D/in"
	tm_start
	tmux send-keys -t "$TM" "kerf-project -C '$D' --interval 200 --no-maps < '$D/in' 2> '$D/err'; echo EXIT=\$?" Enter
	exec 7> "$D/in"
	# Half the flood, then a pause in the input: the screen shows exactly
	# that half, and the frames go on while nothing comes.
	head -n 50000 "$F" | "$FLOOD_BIN" --rate 40000 --report "$D/flood1.json" >&7
	wait_for tm_has '^events 50000 '
	wait_for tm_has 'frame [0-9]'
	f1=$(tm_screen | sed -n 's/.*frame \([0-9]*\).*/\1/p')
	wait_for tm_frame_ge $((f1 + 2))
	tail -n +50001 "$F" | "$FLOOD_BIN" --rate 40000 --report "$D/flood2.json" >&7
	exec 7>&-
	wait_for tm_has 'EXIT=0'
	jq -c 'select(.final)' "$D/err" > "$D/final"
	redraws=$(jq .redraws "$D/final")
	ms=$(jq .elapsed_ms "$D/final")
	echo "# redraws $redraws in $ms ms at 200 ms; flood $(cat "$D/flood1.json" "$D/flood2.json")" >&3
	[ "$(jq .in "$D/final")" -eq 100002 ]
	# Never more than one redraw per interval, by the program's own clock
	# (its final elapsed_ms): a slow machine can only mean fewer.
	[ "$redraws" -le $(( ms / 200 + 3 )) ]
}

@test "SIGTERM ends the dashboard with exit 75 and leaves the terminal sane" {
	mkfifo "$D/in"
	tm_start
	tmux send-keys -t "$TM" "stty -a > '$D/stty.before'; sh -c 'echo \$\$ > \"$D/pid\"; exec kerf-project -C \"$D\" 2> \"$D/err\"' < '$D/in'; echo EXIT=\$?; stty -a > '$D/stty.after'" Enter
	exec 7> "$D/in"
	cat "$RUNF" >&7
	wait_for tm_has 'events 1429'
	kill -TERM "$(cat "$D/pid")"
	wait_for tm_has 'EXIT=75'
	wait_for test -s "$D/stty.after"
	# Same terminal modes as before (echo, icanon, ...), the prompt is back,
	# the summary is on the normal screen, and the maps were written.
	diff -u "$D/stty.before" "$D/stty.after"
	wait_for tm_has '^ready\$ *$'
	tm_has 'wafer W01 slot 1: 616 dies, 111 defects'
	assert_file_exists "$D/wafermap/W01.svg"
	exec 7>&-
}

@test "a stream with missing fields, foreign lines and commit records is drawn, not a crash" {
	run --separate-stderr kerf-project -C "$D" < "$DATA/project/partial.ndjson"
	assert_success
	assert_line --index 0 --partial "3 wafers"
	for f in "$D"/wafermap/*.svg; do
		rsvg-convert -o "$D/x.png" "$f"
	done
	[ "$(ls "$D"/wafermap/*.svg | wc -l)" -eq 3 ]
	# Every line is accounted for: in = used + ignored + rejected.
	stats=$(grep '"final":true' <<< "$stderr")
	[ "$(jq .in <<< "$stats")" -eq 15 ]
	[ "$(jq '.used + .ignored + .rejected' <<< "$stats")" -eq 15 ]
	[ "$(jq .rejected <<< "$stats")" -eq 2 ]
	[ "$(grep -c '"reason":"json"' <<< "$stderr")" -eq 2 ]
}

@test "kerf-project rejects a line holding a raw NUL byte with reason not_json and does not draw it" {
	# A NUL after a number in a defect: the defect is not counted.
	sed '11s/"index":0,/"index":0\x00,/' "$RUNF" > "$D/nul.ndjson"
	run --separate-stderr kerf-project -C "$D" --no-maps < "$D/nul.ndjson"
	assert_success
	assert_line --index 0 --partial "1192 dies inspected, 224 defects"
	stats=$(grep '"final":true' <<< "$stderr")
	[ "$(jq -c '[.in, .used, .rejected]' <<< "$stats")" = "[1429,1428,1]" ]
	[ "$(jq -r 'select(.reason) | [.reason, .line, .msg] | @tsv' <<< "$stderr")" = \
		"$(printf 'not_json\t11\tat byte 146: raw control byte 0x00')" ]
}

@test "mutated lines (cut, flipped bytes, bad UTF-8) never crash it and every map still renders" {
	run --separate-stderr kerf-project -C "$D" --snapshots < "$DATA/project/mutated.ndjson"
	assert_success
	jq -e . <<< "$output" > /dev/null
	[ "$(tail -1 <<< "$output" | jq .final)" = true ]
	stats=$(grep '"final":true' <<< "$stderr")
	[ "$(jq '.used + .ignored + .rejected' <<< "$stats")" -eq 1500 ]
	[ "$(jq .rejected <<< "$stats")" -gt 0 ]
	for f in "$D"/wafermap/*.svg; do
		rsvg-convert -o "$D/x.png" "$f"
	done
	# The index must stay valid UTF-8 as well.
	iconv -f UTF-8 -t UTF-8 "$D/index.html" > /dev/null
}

@test "--svg-only draws the committed events of RUNDIR/journal/ and leaves out an uncommitted tail" {
	stage kerf-persist -C "$D" < "$RUNF" > /dev/null 2> "$D/persist.err"
	ls "$D"/journal/*.ndjson > /dev/null
	grep -q '"commit"' "$D"/journal/*.ndjson
	# Five defects written after the last commit: never acknowledged, never drawn.
	seg=$(ls "$D"/journal/*.ndjson | tail -1)
	grep '"type":"defect","run":"t-proj","seq":[0-9]*,"t":"[^"]*","id":"[^"]*","wafer":"W01"' "$RUNF" | head -5 |
		sed 's/"id":"[0-9a-f]*"/"id":"00000000000000aa"/' >> "$seg"
	run --separate-stderr kerf-project --svg-only -C "$D"
	assert_success
	grep -q 'uncommitted tail left out' <<< "$stderr"
	[ "$(svg_attr "$D/wafermap/W01.svg" defects)" -eq 111 ]
	[ "$(svg_attr "$D/wafermap/W02.svg" defects)" -eq 114 ]
	[ "$(svg_attr "$D/wafermap/W02.svg" dies)" -eq 576 ]
	# The maps agree with kerf-persist's summary.json.
	[ "$(jq '.wafers[] | select(.wafer == "W02") | .defects' "$D/summary.json")" -eq 114 ]
	assert_file_exists "$D/index.html"
	# No journal at all: an I/O error, said so.
	run kerf-project --svg-only -C "$D/nothing-here"
	assert_failure 74
	assert_output --partial "cannot read"
}

@test "--svg-only draws a KLARF import stream given as a file or on standard input" {
	# What an import gives: run_start, wafers and defects, no die_done; the
	# density then counts wafer_end's dies.
	jq -c 'select(.type != "die_done")' "$RUNF" > "$D/klarf.ndjson"
	run kerf-project --svg-only -C "$D" "$D/klarf.ndjson"
	assert_success
	[ "$(svg_attr "$D/wafermap/W01.svg" defects)" -eq 111 ]
	[ "$(svg_attr "$D/wafermap/W01.svg" dies)" -eq 616 ]
	rm -r "$D/wafermap"
	run kerf-project --svg-only -C "$D" - < "$D/klarf.ndjson"
	assert_success
	[ "$(svg_attr "$D/wafermap/W02.svg" defects)" -eq 114 ]
}

@test "a closed standard output under --snapshots ends kerf-project with exit 74" {
	mkfifo "$D/in" "$D/out"
	kerf-project -C "$D" --snapshots --no-maps < "$D/in" > "$D/out" 2> "$D/err" &
	pid=$!
	head -n 1 "$D/out" > "$D/first" &
	exec 7> "$D/in"
	wait_for test -s "$D/first"
	feed() { head -n 50 "$RUNF" >&7 2>/dev/null; pid_gone "$pid"; }
	wait_for feed
	exec 7>&-
	run wait "$pid"
	assert_failure 74
	grep -q 'cannot write standard output: downstream closed' "$D/err"
	# Said once, not once per attempt.
	[ "$(grep -c 'cannot write standard output' "$D/err")" -eq 1 ]
}

@test "the man page's examples run" {
	cd "$BATS_TEST_DIRNAME/.."
	out="$D"
	run kerf-project -C "$out" < tests/data/project/run.ndjson
	assert_success
	assert_output --partial "maps: $out/index.html"
	run bash -c "kerf-project -C '$out' --snapshots --interval 500 < tests/data/project/run.ndjson 2>/dev/null | jq -c '{events, defects}' | tail -1"
	assert_success
	assert_output '{"events":1429,"defects":225}'
	grep -q 'kerf-project -C out < tests/data/project/run.ndjson' man/kerf-project.1
	grep -q "jq -c '{events, defects}'" man/kerf-project.1
}

@test "man page kerf-project.1 passes mandoc -Tlint" {
	# -W warning: the STYLE notes about pages not installed yet
	# ("referenced manual not found") are not the page's fault.
	run mandoc -Tlint -W warning "$BATS_TEST_DIRNAME/../man/kerf-project.1"
	assert_success
	assert_output ""
}

@test "kerf-project killed just before or after a wafer map's rename leaves no torn map, and its next start draws the same maps and removes the temporary" {
	local c f
	kerf-project -C "$BATS_TEST_TMPDIR/clean" <"$RUNF"
	for c in map-before-rename:1 map-before-rename:2 map-after-rename:1; do
		rm -rf "$D"
		mkdir -p "$D"
		run --separate-stderr env KERF_FAILPOINT="$c" kerf-project -C "$D" <"$RUNF"
		[ "$status" -eq 137 ]
		[[ "$stderr" == *"failpoint '${c%%:*}' reached"* ]]
		# What stands under a map's name is a whole map.
		for f in "$D"/wafermap/*.svg; do
			[ -e "$f" ] || continue
			[ "$(tail -n 1 "$f")" = "</svg>" ]
		done
		if [ "${c%%:*}" = map-before-rename ]; then
			[ -n "$(find "$D/wafermap" -name '*.svg.tmp.*')" ]
		fi
		run kerf-project -C "$D" <"$RUNF"
		assert_success
		[ -z "$(find "$D" -name '*.tmp.*')" ]
		diff -r "$BATS_TEST_TMPDIR/clean/wafermap" "$D/wafermap"
	done
}

#!/usr/bin/env bats
# kerf-detect: die-to-die detection in a bounded, ordered worker pool.
# Fixtures: tests/data/detect/small.{ndjson,truth,out} were made by
# tests/unit/detect-gen (5x3 dies of 64x64 px, noise 3, misregistration
# up to 2 px, two particles and a scratch, an alarm in the first row);
# other inputs are generated per test with detect-gen.

load common

setup() {
	D="$DATA/detect"
	GEN="${KERF_UNIT:-$BATS_TEST_DIRNAME/../build/release/tests}/detect-gen"
	[ -x "$GEN" ] || make -C "$BATS_TEST_DIRNAME/.." -s "build/release/tests/detect-gen" >/dev/null
	T="$BATS_TEST_TMPDIR"
}

# types of the events on stdout, one per line
types() { jq -r .type "$1"; }

@test "kerf-detect --help prints the usage on stdout and exits 0" {
	run kerf-detect --help
	assert_success
	assert_line --index 0 --partial "usage: kerf-detect"
	assert_output --partial "--max-inflight"
}

@test "kerf-detect exits 64 on a bad option value" {
	run kerf-detect --max-inflight 2
	assert_failure 64
	assert_output --partial "max-inflight"
	run kerf-detect --bogus
	assert_failure 64
}

@test "kerf-detect finds the injected defects and writes the expected stream" {
	kerf-detect < "$D/small.ndjson" > "$T/out" 2> "$T/err"
	diff -u "$D/small.out" "$T/out"
	run jq -c 'select(.type == "defect") | [.col, .row, .polarity, .class]' "$T/out"
	assert_line --index 0 '[0,0,"dark","particle_small"]'
	assert_line --index 1 '[2,1,"bright","particle_small"]'
	assert_line --index 2 '[4,2,"bright","scratch"]'
	assert_equal "${#lines[@]}" 3
}

@test "kerf-detect places a defect in the die and on the wafer in micrometres" {
	kerf-detect < "$D/small.ndjson" > "$T/out" 2>/dev/null
	# Particle injected at pixel (20,30) of die (2,1): 10 um pixels, 64 px dies,
	# origin (-1600,-960), pitch 640: x_um 200, y_um (64-30)*10 = 340.
	run jq -c 'select(.type == "defect" and .col == 2) | [.x_um, .y_um, .wx_um, .wy_um, .area_px, .area_um2]' "$T/out"
	assert_output '[200,340,-120,20,12,1200]'
}

@test "kerf-detect gives every defect the id of its run, wafer, die and index" {
	kerf-detect < "$D/small.ndjson" > "$T/out" 2>/dev/null
	want=$(printf 'gen-1\ndefect\nW01\n2\n1\n0' | xxhsum -H3 - | awk '{print $NF}')
	run jq -r 'select(.type == "defect" and .col == 2) | .id' "$T/out"
	assert_output "$want"
	want=$(printf 'gen-1\nwafer_summary\nW01' | xxhsum -H3 - | awk '{print $NF}')
	run jq -r 'select(.type == "wafer_summary") | .id' "$T/out"
	assert_output "$want"
	want=$(printf 'gen-1\ndie_done\n10' | xxhsum -H3 - | awk '{print $NF}')
	run jq -r 'select(.type == "die_done" and .seq == 10) | .id' "$T/out"
	assert_output "$want"
}

@test "kerf-detect writes the same bytes at -j1 and -j2, with a small --max-inflight, and whichever task runs first" {
	# With 8 no row is cut (see the man page): a die waits for the second
	# die on its right, and the four before it stay as references.
	"$GEN" --wafers 2 --cols 6 --rows 4 --seed 5 --defect 1,3,2,30,30,2,25 --defect 2,0,0,10,10,3,-30 --extra > "$T/in"
	kerf-detect -j1 < "$T/in" > "$T/o1" 2>/dev/null
	kerf-detect -j2 --max-inflight 8 < "$T/in" > "$T/o2" 2>/dev/null
	kerf-detect -j2 --max-inflight 64 < "$T/in" > "$T/o3" 2>/dev/null
	# And in an order far from the input's (tasks last in, first out).
	KERF_DETECT_ORDER=newest-first kerf-detect -j1 --max-inflight 8 < "$T/in" > "$T/o4" 2>/dev/null
	KERF_DETECT_ORDER=newest-first kerf-detect -j1 < "$T/in" > "$T/o5" 2>/dev/null
	cmp "$T/o1" "$T/o2"
	cmp "$T/o1" "$T/o3"
	cmp "$T/o1" "$T/o4"
	cmp "$T/o1" "$T/o5"
	run grep -c '"type":"die_done"' "$T/o1"
	assert_output 48
}

@test "kerf-detect passes every other event through unchanged and in order" {
	kerf-detect < "$D/small.ndjson" > "$T/out" 2>/dev/null
	grep -v '"type":"die"' "$D/small.ndjson" > "$T/want"
	grep -v -E '"type":"(defect|die_done|wafer_summary)"' "$T/out" > "$T/got"
	cmp "$T/want" "$T/got"
}

@test "kerf-detect writes a die's defects and die_done in the die's place in the stream" {
	kerf-detect < "$D/small.ndjson" > "$T/out" 2>/dev/null
	# The alarm came after die (1,0): it follows that die's die_done.
	run jq -r 'select(.type == "die_done" or .type == "alarm") | "\(.type) \(.col // "")"' "$T/out"
	assert_line --index 1 "die_done 1"
	assert_line --index 2 "alarm "
	assert_line --index 3 "die_done 2"
	# Seq never goes down.
	jq -s -e '[.[].seq] as $s | $s == ($s | sort)' "$T/out"
}

@test "kerf-detect consumes die events unless --keep-images" {
	kerf-detect < "$D/small.ndjson" > "$T/out" 2>/dev/null
	run grep -c '"type":"die"' "$T/out"
	assert_output 0
	kerf-detect --keep-images < "$D/small.ndjson" > "$T/kept" 2>/dev/null
	grep '"type":"die"' "$D/small.ndjson" > "$T/dies"
	grep '"type":"die"' "$T/kept" | cmp - "$T/dies"
	run jq -r .type "$T/kept"
	assert_line --index 2 "die"
	assert_line --index 3 "defect"
	assert_line --index 4 "die_done"
}

@test "kerf-detect writes a wafer_summary right after each wafer_end" {
	"$GEN" --wafers 2 --cols 5 --rows 3 --defect 2,1,1,30,30,2,30 > "$T/in"
	kerf-detect < "$T/in" > "$T/out" 2>/dev/null
	run jq -r 'select(.type == "wafer_end" or .type == "wafer_summary") | .type' "$T/out"
	assert_output "$(printf 'wafer_end\nwafer_summary\nwafer_end\nwafer_summary')"
	run jq -c 'select(.type == "wafer_summary") | [.wafer, .slot, .dies, .defects, .defective_dies, .density_cm2, .signature]' "$T/out"
	assert_line --index 0 '["W01",1,15,0,0,0,"none"]'
	# One defect over 15 dies of 640 x 640 um = 0.06144 cm2.
	assert_line --index 1 '["W02",2,15,1,1,16.276,"random"]'
}

@test "kerf-detect compares a die alone in its row with the wafer's median reference" {
	"$GEN" --cols 5 --rows 3 --last-row 1 --defect 1,0,2,30,30,2,30 > "$T/in"
	kerf-detect < "$T/in" > "$T/out" 2>/dev/null
	run jq -c 'select(.type == "defect") | [.col, .row, .bbox]' "$T/out"
	assert_output '[0,2,[26,28,33,32]]'
}

@test "kerf-detect's lone-die result does not depend on which worker finishes first" {
	# A die alone in its row waits for the wafer's median even when the
	# wafer has ended before the dies the median comes from are decoded:
	# newest-first decodes the last row's dies, the lone die and the
	# wafer's end before the first rows' dies.
	"$GEN" --cols 5 --rows 3 --last-row 1 --defect 1,0,2,30,30,2,30 > "$T/in"
	kerf-detect -j 1 < "$T/in" > "$T/first" 2>/dev/null
	KERF_DETECT_ORDER=newest-first kerf-detect -j 1 < "$T/in" > "$T/last" 2>/dev/null
	cmp "$T/first" "$T/last"
	run jq -c 'select(.type == "defect") | [.col, .row]' "$T/last"
	assert_output '[0,2]'
}

@test "kerf-detect rejects a die whose pixels do not match its xxh3 with reason checksum, and goes on" {
	"$GEN" --bad 1,2,1,checksum --defect 1,3,1,30,30,2,30 > "$T/in"
	kerf-detect --rejects "$T/rej" < "$T/in" > "$T/out" 2> "$T/err"
	run jq -r .reason "$T/rej"
	assert_output checksum
	run jq -r 'select(.type == "die_done") | "\(.col),\(.row)"' "$T/out"
	assert_equal "${#lines[@]}" 14
	refute_line "2,1"
	run jq -c 'select(.type == "defect") | [.col, .row]' "$T/out"
	assert_output '[3,1]'
	# in = out + consumed + rejected
	run jq -c 'select(.msg == "stats" and .final) | [.in, .out, .consumed, .rejected]' "$T/err"
	assert_output '[19,4,14,1]'
}

@test "kerf-detect rejects undecodable or wrong-sized images with reasons bad_image and image_size" {
	"$GEN" --bad 1,0,0,base64 --bad 1,4,2,size > "$T/in"
	kerf-detect --rejects "$T/rej" < "$T/in" > "$T/out" 2>/dev/null
	run jq -r '"\(.reason) \(.seq)"' "$T/rej"
	assert_line --index 0 "bad_image 2"
	assert_line --index 1 "image_size 16"
	run grep -c '"type":"die_done"' "$T/out"
	assert_output 13
}

@test "kerf-detect rejects dies before a run_start with reason no_run_start" {
	"$GEN" --no-run-start --cols 3 --rows 1 > "$T/in"
	kerf-detect --rejects "$T/rej" < "$T/in" > "$T/out" 2>/dev/null
	run jq -r .reason "$T/rej"
	assert_output "$(printf 'no_run_start\nno_run_start\nno_run_start')"
}

@test "kerf-detect --strict exits 65 on a rejected die" {
	"$GEN" --bad 1,2,1,checksum > "$T/in"
	run kerf-detect --strict --rejects "$T/rej" < "$T/in"
	assert_failure 65
	run jq -r .reason "$T/rej"
	assert_output checksum
}

@test "kerf-detect rejects a line longer than --max-line with reason too_long" {
	kerf-detect --max-line 1K --rejects "$T/rej" < "$D/small.ndjson" > "$T/out" 2>/dev/null
	run jq -r .reason "$T/rej"
	assert_line --index 0 too_long
	assert_equal "${#lines[@]}" 15
	run grep -c '"type":"die_done"' "$T/out"
	assert_output 0
}

@test "kerf-detect reads images given by path" {
	mkdir "$T/img"
	"$GEN" --path "$T/img" --defect 1,2,1,20,30,2,30 > "$T/in"
	run grep -c '"data"' "$T/in"
	assert_output 0
	kerf-detect < "$T/in" > "$T/out" 2>/dev/null
	run jq -c 'select(.type == "defect") | [.col, .row, .x_um, .y_um]' "$T/out"
	assert_output '[2,1,200,340]'
}

@test "kerf-detect ends with a non-zero exit and a log line naming the die when a worker fails" {
	run env KERF_DETECT_FAULT='W01/2,1' kerf-detect < "$D/small.ndjson"
	assert_failure 70
	assert_output --partial "detection failed on die 'W01/2,1'"
}

@test "kerf-detect stats carry pool counts, latency percentiles and recent operations" {
	kerf-detect < "$D/small.ndjson" > /dev/null 2> "$T/err"
	run jq -c 'select(.msg == "stats" and .final) | [.pending, .active, .done, .failed, (.op_p50_us > 0), (.recent | length), .recent[-1].outcome]' "$T/err"
	assert_output '[0,0,15,0,true,15,"done"]'
	run jq -r 'select(.msg == "stats" and .final) | .recent[] | select(.key == "W01/0,0") | "\(.key) \(.start | test("Z$")) \(.dur_us >= .run_us)"' "$T/err"
	assert_output "W01/0,0 true true"
}

@test "kerf-detect stops reading stdin while its output is not read (backpressure)" {
	"$GEN" --cols 20 --rows 10 > "$T/in"
	size=$(stat -c %s "$T/in")
	mkfifo "$T/fifo"
	# Hold the fifo open for reading and read nothing (fd 5: bats owns 3).
	exec 5<>"$T/fifo"
	kerf-detect --keep-images -j2 --max-inflight 4 < "$T/in" > "$T/fifo" 2>/dev/null 5>&- &
	pid=$!
	pos() { awk '/^pos:/ {print $2}' "/proc/$pid/fdinfo/0"; }
	wakes() { awk '/^voluntary_ctxt_switches/ {print $2}' "/proc/$pid/task/$pid/status"; }
	# Blocked: its writer thread sleeps in write(2) on the full pipe, and
	# its reader (the main thread, which waits for room in the pool with
	# a timeout) has woken five times since it last read, each time
	# without reading on.  By then it must have read well short of the
	# end; a reader without backpressure reads the file to its end, one
	# that leaks never stays put for five wake-ups.
	base_pos=-1 base_wakes=0
	settled() {
		local p w
		in_pipe_write "$pid" || return 1
		p=$(pos) w=$(wakes)
		if [ "$p" != "$base_pos" ]; then
			base_pos=$p base_wakes=$w
			return 1
		fi
		[ "$w" -ge $((base_wakes + 5)) ]
	}
	wait_for settled
	read_so_far=$(pos)
	echo "# blocked after reading $read_so_far of $size bytes"
	[ "$read_so_far" -gt 0 ] && [ "$read_so_far" -lt $((size / 2)) ]
	cat "$T/fifo" > "$T/out" 5>&- &
	catpid=$!
	wait "$pid"
	exec 5>&-
	wait "$catpid"
	run grep -c '"type":"die_done"' "$T/out"
	assert_output 200
}

@test "kerf-detect finishes the dies already read on SIGTERM and exits 75" {
	"$GEN" --cols 5 --rows 2 > "$T/in"
	head -n 7 "$T/in" > "$T/part"   # run_start, wafer_start, 5 dies of row 0
	mkfifo "$T/fifo"
	KERF_STATS_MS=20 kerf-detect < "$T/fifo" > "$T/out" 2> "$T/err" 6>&- &
	pid=$!
	exec 6> "$T/fifo"
	cat "$T/part" >&6
	# The row's last two dies wait for its row to go on or end (each
	# wants two dies on its right): 5 lines are out.
	wait_for grep -q '"in":5,' "$T/err"
	kill -TERM "$pid"
	status=0
	wait "$pid" || status=$?
	exec 6>&-
	assert_equal "$status" 75
	run grep -c '"type":"die_done"' "$T/out"
	assert_output 5
	grep -q 'finishing the dies already read' "$T/err"
}

@test "kerf-detect exits 74 when its downstream is gone" {
	"$GEN" --cols 20 --rows 10 > "$T/in"
	run bash -c 'kerf-detect --keep-images < "$1" 2>"$2" | head -c 10 >/dev/null; echo "${PIPESTATUS[0]}"' _ "$T/in" "$T/err"
	assert_output 74
	grep -q 'downstream closed' "$T/err"
}

@test "scripts/score reports recall and precision against the truth" {
	run "$BATS_TEST_DIRNAME/../scripts/score" "$D/small.truth" "$D/small.out"
	assert_success
	assert_line "eligible 3"
	assert_line "recall 1.0000"
	assert_line "false 0"
	assert_line "precision 1.0000"
}

@test "kerf-detect exits 74 when standard output is full" {
	run bash -c 'kerf-detect < "$1" > /dev/full' _ "$D/small.ndjson"
	assert_failure 74
	assert_output --partial "cannot write standard output"
}

@test "kerf-detect reports a defect only in its own die, not in the dies compared with it" {
	# Die (1,0) is a reference of (0,0) (an edge die: its two nearest) and
	# of (2,0); double arbitration keeps its defect out of theirs.
	"$GEN" --cols 5 --rows 1 --defect 1,1,0,30,30,3,40 --defect 1,0,0,10,50,2,-30 > "$T/in"
	kerf-detect < "$T/in" > "$T/out" 2>/dev/null
	run jq -c 'select(.type == "defect") | [.col, .row, .polarity]' "$T/out"
	assert_output "$(printf '%s\n' '[0,0,"dark"]' '[1,0,"bright"]')"
}

@test "kerf-detect writes reject records to \$KERF_RUNDIR/rejects.ndjson" {
	"$GEN" --bad 1,2,1,checksum > "$T/in"
	KERF_RUNDIR="$T" kerf-detect < "$T/in" > /dev/null 2>&1
	run jq -r '"\(.stage) \(.reason) \(.run)"' "$T/rejects.ndjson"
	assert_output "kerf-detect checksum gen-1"
}

@test "kerf-detect finds faint defects: 3 px across at 4 sigma of the noise" {
	# Ten discs of diameter 3 px and contrast 12 (noise 3) at different
	# sub-pixel places, one per die.
	args=()
	for col in 0 1 2 3 4; do
		for row in 0 1; do
			args+=(--defect "1,$col,$row,$((10 + col * 9)).$((col * 2)),$((12 + row * 20 + col * 3)).$((row * 5 + 3)),1.5,12")
		done
	done
	"$GEN" --cols 5 --rows 2 --seed 5 --truth "$T/truth" "${args[@]}" > "$T/in"
	kerf-detect < "$T/in" > "$T/out" 2>/dev/null
	run "$BATS_TEST_DIRNAME/../scripts/score" "$T/truth" "$T/out"
	assert_line "eligible 10"
	assert_line "found 10"
	assert_line "false 0"
}

@test "kerf-detect reports no ghost in a clean die whose two neighbours have a defect in the same place" {
	# Dies 1 and 3 hold the same particle; die 2 between them differs from
	# both (a dark "ghost"), but not from dies 0 and 4.
	"$GEN" --cols 6 --rows 1 --shift 1 --defect 1,1,0,30,30,2,30 --defect 1,3,0,30,30,2,30 > "$T/in"
	kerf-detect < "$T/in" > "$T/out" 2>/dev/null
	run jq -c 'select(.type == "defect") | [.col, .polarity]' "$T/out"
	assert_output "$(printf '%s\n' '[1,"bright"]' '[3,"bright"]')"
}

@test "kerf-detect finds a defect whole when a neighbour has one in the same place" {
	"$GEN" --cols 6 --rows 1 --shift 1 --defect 1,2,0,30,30,2,30 --defect 1,3,0,30,30,2,30 > "$T/in"
	kerf-detect < "$T/in" > "$T/out" 2>/dev/null
	run jq -c 'select(.type == "defect") | [.col, .bbox, .area_px]' "$T/out"
	assert_output "$(printf '%s\n' '[2,[28,28,31,31],12]' '[3,[28,28,31,31],12]')"
}

@test "scripts/accuracy --quick prints its table" {
	run "$BATS_TEST_DIRNAME/../scripts/accuracy" --quick
	assert_success
	assert_line --index 0 "| noise | wafers | recall 3 px | recall 4 px | recall 5+ px | recall 4-6 sigma | recall | precision | false/wafer | goal |"
	assert_line --index 2 --regexp '^\| 3 \| 2 \| '
	run "$BATS_TEST_DIRNAME/../scripts/accuracy" --seeds
	assert_failure 64
}

# Die lines rewritten so that they mean the same to a JSON parser: escaped
# characters in strings and a member with non-ASCII text (which the
# one-pass reader declines: jansson reads them), or reordered members and
# whitespace between tokens (which it takes).  Other lines are unchanged.
escaped_dies() {
	sed -E '/"type":"die"/ {
		s#/#\\/#g
		s/"t":"([0-9]{4})-/"t":"\1\\u002d/
		s/^\{/{"note":"d\xc3\xa9j\xc3\xa0 vu \\u263a \\"\\\\",/
	}' "$1"
}
spaced_dies() {
	sed -E '/"type":"die"/ {
		s/^\{(.*),("data":"[^"]*")(.*)\}$/{\2,\1\3}/
		s/,"/ ,\t"/g
		s/":/" : /g
		s/^\{/ { /
		s/\}$/ } \r/
	}' "$1"
}

@test "kerf-detect's one-pass die reader takes a line only when jansson reads the same values from it" {
	# t-die-fields tries die lines it builds and ~90000 mutations of them
	# (truncations, bytes substituted, inserted and deleted, members
	# twice, reordered, missing, of other types, escaped, nested, numbers
	# past int64 and double, trailing bytes) against json_loadb.
	run "$KERF_UNIT/t-die-fields" mutate
	assert_success
	assert_output --regexp '^tried [0-9]+ taken [0-9]+ declined [0-9]+ wrong 0$'
	[ "$(awk '{print $4}' <<< "$output")" -gt 10000 ]
}

@test "kerf-detect's one-pass die reader takes every die line of a simulated wafer" {
	kerf-acquire --sim --wafers 1 --diameter 100 > "$T/in" 2>/dev/null
	run "$KERF_UNIT/t-die-fields" lines < "$T/in"
	assert_success
	assert_line --index 0 "dies $(grep -c '"type":"die"' "$T/in")"
	assert_line --index 1 --regexp '^tried [0-9]+ taken [0-9]+ declined [0-9]+ wrong 0$'
}

@test "kerf-detect writes the same stream whichever way a die line is written" {
	escaped_dies "$D/small.ndjson" > "$T/escaped"
	spaced_dies "$D/small.ndjson" > "$T/spaced"
	grep -q 'u002d' "$T/escaped"
	grep -q '^ { "data" : ' "$T/spaced"
	kerf-detect < "$T/escaped" > "$T/out.escaped" 2>/dev/null
	kerf-detect < "$T/spaced" > "$T/out.spaced" 2>/dev/null
	diff -u "$D/small.out" "$T/out.escaped"
	diff -u "$D/small.out" "$T/out.spaced"
}

@test "kerf-detect rejects a faulty die for the same reason whichever way its line is written" {
	# Faults in row 0 and 1, die by die (a die line holds "col":C,"row":R,).
	sed -E '/"col":1,"row":0,/ s/"xxh3":"[0-9a-f]{16}"/"xxh3":"0123456789abcdef"/
		/"col":2,"row":0,/ s/"w":64/"w":65/
		/"col":3,"row":0,/ s/"h":64/"h":64.0/
		/"col":4,"row":0,/ s/"seq":[0-9]+,//
		/"col":0,"row":1,/ s/"data":"..../"data":"!!!!/
		/"col":1,"row":1,/ s/"w":64/"w":65,"w":64/
		/"col":2,"row":1,/ s/\}$/,"w":65}/
		/"col":3,"row":1,/ s/"data":"..../"data":"/
		/"col":4,"row":1,/ s/^(.{300}).*/\1/' "$D/small.ndjson" > "$T/plain"
	escaped_dies "$T/plain" > "$T/escaped"
	spaced_dies "$T/plain" > "$T/spaced"
	for v in plain escaped spaced; do
		kerf-detect --rejects "$T/rej.$v" < "$T/$v" > "$T/out.$v" 2>/dev/null
		jq -c '[.seq, .reason, .msg]' "$T/rej.$v" > "$T/why.$v"
	done
	run cat "$T/why.plain"
	assert_line --index 0 '[3,"checksum","pixels do not match xxh3 0123456789abcdef"]'
	assert_line --index 1 '[5,"image_size","die is 65x64, run_start says 64x64"]'
	assert_line --index 2 '[6,"bad_image","die w and h must be integers in 1..16384"]'
	assert_line --index 3 '[null,"bad_die","die event lacks run, seq, t, wafer, col or row"]'
	assert_line --index 4 '[8,"bad_image","data is not valid base64"]'
	assert_line --index 5 '[10,"image_size","die is 65x64, run_start says 64x64"]'
	assert_line --index 6 '[11,"image_size","data holds 5460 base64 characters, 64x64 needs 5464"]'
	assert_line --index 7 --regexp '^\[12,"bad_image","die event is not JSON: '
	assert_equal "${#lines[@]}" 8
	diff -u "$T/why.plain" "$T/why.escaped"
	diff -u "$T/why.plain" "$T/why.spaced"
	cmp "$T/out.plain" "$T/out.escaped"
	cmp "$T/out.plain" "$T/out.spaced"
}

@test "kerf-detect's references and rejects do not depend on which worker finishes first" {
	# Rows 0 and 1 have one good die each, so they wait for the wafer's
	# median, built from its first three good dies (the third is in row
	# 2).  KERF_DETECT_ORDER=newest-first runs the tasks last in, first
	# out: row 2 is decoded and detected before rows 0 and 1 are decoded,
	# the order in which row 2 once let go of the image the median needs.
	sed -E '/"col":[1-4],"row":[01],/ s/"w":64/"w":65/' "$D/small.ndjson" > "$T/lone"
	for o in "" newest-first; do
		KERF_DETECT_ORDER=$o kerf-detect -j 1 --rejects "$T/rej.$o" < "$T/lone" > "$T/out.$o" 2>/dev/null
		jq -c '[.seq, .reason]' "$T/rej.$o" > "$T/why.$o"
	done
	run jq -s -c 'map(.[1]) | unique' "$T/why."
	assert_output '["image_size"]'
	diff -u "$T/why." "$T/why.newest-first"
	cmp "$T/out." "$T/out.newest-first"
	run jq -c 'select(.type == "die_done") | .seq' "$T/out.newest-first"
	assert_equal "${lines[*]}" "2 8 13 14 15 16 17"
}

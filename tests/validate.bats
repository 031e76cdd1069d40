#!/usr/bin/env bats
# kerf-validate: every line checked, every rejection explained, nothing lost.
load common
bats_require_minimum_version 1.5.0

V="$DATA/validate"

setup() {
	cd "$BATS_TEST_TMPDIR"
}

# kerf-acquire from the build under test, else the release build: the
# sanitizer build of kerf-validate can check the release simulator's output.
acquire() {
	if command -v kerf-acquire >/dev/null; then
		kerf-acquire "$@"
	else
		"$BATS_TEST_DIRNAME/../bin/kerf-acquire" "$@"
	fi
}

have_acquire() {
	command -v kerf-acquire >/dev/null || [ -x "$BATS_TEST_DIRNAME/../bin/kerf-acquire" ]
}

# final_stats FILE: the final stats record of a stage's stderr log.
final_stats() {
	jq -c 'select(.msg == "stats" and .final == true)' "$1" | tail -1
}

# adds_up FILE: the final stats say in = out + rejected.
adds_up() {
	local s
	s=$(final_stats "$1")
	[ -n "$s" ] && [ "$(jq '.in == .out + .rejected' <<<"$s")" = true ]
}

@test "kerf-validate passes a valid stream of every event type byte for byte" {
	run -0 --separate-stderr kerf-validate -r rejects.ndjson <"$V/good.ndjson"
	[ "$output" = "$(cat "$V/good.ndjson")" ]
	[ ! -s rejects.ndjson ]
	kerf-validate <"$V/good.ndjson" 2>err | cmp - "$V/good.ndjson"
	n=$(wc -l <"$V/good.ndjson")
	[ "$(final_stats err | jq -c '[.in, .out, .rejected]')" = "[$n,$n,0]" ]
}

@test "kerf-validate rejects each table case with the expected reject record and passes the rest" {
	local n=0 f name args
	for f in "$V"/*.in; do
		name=$(basename "$f" .in)
		args=()
		[ -e "$V/$name.args" ] && read -ra args <"$V/$name.args"
		rm -f rej out err
		kerf-validate "${args[@]}" -r rej <"$f" >out 2>err ||
			{ echo "case $name: exit $?"; cat err; return 1; }
		jq -c 'del(.t)' rej | diff -u "$V/$name.out" - || { echo "case $name: reject records differ"; return 1; }
		# Standard output is exactly the input minus the rejected lines.
		awk 'NR == FNR { bad[$0] = 1; next } !(FNR in bad)' \
			<(jq '.line' rej) "$f" | cmp - out || { echo "case $name: output differs"; return 1; }
		adds_up err || { echo "case $name: counters do not add up"; cat err; return 1; }
		n=$((n + 1))
	done
	[ "$n" -ge 18 ]
}

@test "kerf-validate has a table case for every reason code in its man page" {
	local code
	codes=$(sed -n '/^\.Sh REASON CODES/,/^\.Sh /s/^\.It Cm \([a-z_]*\).*/\1/p' \
		"$BATS_TEST_DIRNAME/../man/kerf-validate.1")
	[ -n "$codes" ]
	for code in $codes; do
		[ -e "$V/$code.in" ] || { echo "no case for $code"; return 1; }
		grep -q "\"reason\":\"$code\"" "$V/$code.out" || { echo "$code.out lacks it"; return 1; }
	done
}

# xxh3 FILE|-: the 16 hex digits of XXH3-64.
xxh3() {
	xxhsum -H3 "$1" | awk '{ print $NF }'
}

@test "kerf-validate passes the benchmark generator's streams whole" {
	local gen=${KERF_UNIT:-$BATS_TEST_DIRNAME/../build/release/tests}/validate-gen
	[ -x "$gen" ] || skip "validate-gen is not built (make units)"
	"$gen" 20000 >small
	"$gen" 300 images >images
	for f in small images; do
		kerf-validate -r rej <$f 2>err | cmp - $f
		[ ! -s rej ]
		adds_up err
	done
}

@test "kerf-validate checks a 1 MiB inline die image and rejects one flipped pixel with checksum" {
	command -v xxhsum >/dev/null || skip "no xxhsum"
	local t='"t":"2026-11-21T09:00:00.000001Z"' b64 sum
	head -c 1048576 /dev/urandom >px
	cp px px2
	printf '\x01' | dd of=px2 bs=1 seek=777777 conv=notrunc status=none
	cmp -s px px2 && printf '\x02' | dd of=px2 bs=1 seek=777777 conv=notrunc status=none
	sum=$(xxh3 px)
	{
		printf '{"v":1,"type":"run_start","run":"big","seq":1,%s,"id":"%s","lot":"L","recipe":"r","tool":"t","source":"sim","wafers":1,"diameter_mm":300,"edge_mm":3,"pitch_um":[10000,10000],"origin_um":[-150000,-150000],"cols":30,"rows":30,"die_px":[1024,1024],"pixel_um":9.765625}\n' \
			"$t" "$(printf 'big\n1' | xxh3 -)"
		for s in 2 3; do
			[ $s = 2 ] && b64=$(base64 -w0 px) || b64=$(base64 -w0 px2)
			printf '{"v":1,"type":"die","run":"big","seq":%s,%s,"id":"%s","wafer":"W1","col":15,"row":15,"w":1024,"h":1024,"data":"%s","xxh3":"%s"}\n' \
				"$s" "$t" "$(printf 'big\n%s' "$s" | xxh3 -)" "$b64" "$sum"
		done
	} >in
	run -0 --separate-stderr kerf-validate --max-line 2M -r rej <in
	[ "${#lines[@]}" = 2 ]
	[ "$output" = "$(head -2 in)" ]
	[ "$(jq -r '[.reason, .seq] | @tsv' rej)" = "$(printf 'checksum\t3')" ]
}

@test "kerf-validate rejects a line longer than --max-line with reason too_long" {
	run -0 --separate-stderr kerf-validate --max-line 400 -r rej <"$V/too_long.in"
	[ "$output" = "$(head -1 "$V/too_long.in")" ]
	[ "$(jq -r '[.reason, .len, .raw_cut, .seq] | @tsv' rej)" = "$(printf 'too_long\t744\ttrue\t2')" ]
}

@test "kerf-validate keeps memory near --max-line on a 100 MB line" {
	command -v /usr/bin/time >/dev/null || skip "no /usr/bin/time"
	local base big
	/usr/bin/time -f %M -o rss0 kerf-validate --max-line 1M -r rej <"$V/good.ndjson" >/dev/null 2>/dev/null
	{ head -c 100000000 /dev/zero | tr '\0' 'a'; echo; cat "$V/good.ndjson"; } |
		/usr/bin/time -f %M -o rss1 kerf-validate --max-line 1M -r rej >out 2>err
	base=$(tail -1 rss0) big=$(tail -1 rss1)
	echo "peak RSS: ${base} KB on a small input, ${big} KB with a 100 MB line"
	# The line reader keeps --max-line plus 64 KiB; allow the parse budget.
	[ "$big" -lt $((base + 8 * 1024)) ]
	[ "$(jq -r '[.reason, .len] | @tsv' rej)" = "$(printf 'too_long\t100000000')" ]
	cmp out "$V/good.ndjson"
}

@test "kerf-validate survives binary garbage, NUL bytes and invalid UTF-8 and accounts for every line" {
	{ head -c 300000 /dev/urandom; printf '\0\0\n\xff\xfe\n{"a":"\xc3\x28"}\n'; cat "$V/good.ndjson"; } >in
	run -0 kerf-validate -r rej <in
	adds_up <(kerf-validate -r /dev/null <in 2>&1 >/dev/null)
	# Every reject record is valid JSON whatever the input was.
	jq -e . rej >/dev/null
	[ "$(jq -s length rej)" -gt 0 ]
}

@test "kerf-validate rejects a raw NUL byte after a number or a literal as not_json and passes no NUL on" {
	# jansson's json_loadb parses {"x":123<NUL>} as {"x":123}.
	kerf-validate -r rej <"$V/not_json-nul-number.in" >out 2>err
	cmp out <(head -1 "$V/not_json-nul-number.in")
	[ "$(jq -r '[.reason, .line, .msg] | @tsv' rej)" = "$(printf '%s\n' \
		$'not_json\t2\tat byte 137: raw control byte 0x00' \
		$'not_json\t3\tat byte 144: raw control byte 0x00')" ]
	adds_up err
}

@test "kerf-validate rejects 10,000-deep nesting of objects and arrays without crashing" {
	{ printf '{"a":%.0s' $(seq 10000); printf '1'; printf '}%.0s' $(seq 10000); echo
	  printf '[%.0s' $(seq 10000); printf ']%.0s' $(seq 10000); echo; } >in
	run -0 --separate-stderr kerf-validate -r rej <in
	[ -z "$output" ]
	[ "$(jq -r .reason rej | sort -u)" = not_json ]
	[ "$(jq -s length rej)" = 2 ]
}

@test "kerf-validate on empty input writes nothing and exits 0" {
	kerf-validate -r rej </dev/null >out 2>err
	[ ! -s out ]
	[ ! -s rej ]
	[ "$(final_stats err | jq -c '[.in, .out, .rejected]')" = "[0,0,0]" ]
}

@test "kerf-validate passes a last line without a newline, adding the newline" {
	head -c -1 "$V/good.ndjson" >in
	run -0 --separate-stderr kerf-validate -r rej <in
	kerf-validate -r rej <in 2>/dev/null | cmp - "$V/good.ndjson"
	[ ! -s rej ]
}

@test "kerf-validate --strict exits 65 on the first bad line and names the reason" {
	{ head -4 "$V/good.ndjson"; sed -n 3p "$V/checksum.in" | sed 's/"seq":3/"seq":5/'; sed -n 5,6p "$V/good.ndjson"; } >in
	run -65 --separate-stderr kerf-validate --strict -r rej <in
	[ "$output" = "$(head -4 "$V/good.ndjson")" ]
	[[ "$stderr" == *'"reason":"bad_id"'* ]]
	[ "$(jq -r .reason rej)" = bad_id ]
	# Without --strict the same input goes on past the bad line.
	run -0 --separate-stderr kerf-validate -r rej2 <in
	[ "${#lines[@]}" = 6 ]
}

@test "kerf-validate warns about a gap by default and passes the line" {
	{ head -2 "$V/good.ndjson"; sed -n 5,6p "$V/good.ndjson"; } >in
	run -0 --separate-stderr kerf-validate -r rej <in
	[ "${#lines[@]}" = 4 ]
	[ ! -s rej ]
	[[ "$stderr" == *'"msg":"gap in sequence: seq 3..4 missing"'* ]]
	kerf-validate -r rej <in 2>err >/dev/null
	[ "$(final_stats err | jq -c '[.gaps, .missing]')" = "[1,2]" ]
}

@test "kerf-validate --on-gap fail exits 65 at a gap" {
	{ head -2 "$V/good.ndjson"; sed -n 5,6p "$V/good.ndjson"; } >in
	run -65 --separate-stderr kerf-validate --on-gap fail -r rej <in
	[ "${#lines[@]}" = 2 ]
	[ "$(jq -r .reason rej)" = gap ]
}

@test "kerf-validate rejects duplicates by default and passes them with --on-duplicate warn" {
	{ head -3 "$V/good.ndjson"; sed -n 3p "$V/good.ndjson"; sed -n 4p "$V/good.ndjson"; } >in
	run -0 --separate-stderr kerf-validate -r rej <in
	[ "${#lines[@]}" = 4 ]
	[ "$(jq -r '[.reason, .line] | @tsv' rej)" = "$(printf 'duplicate\t4')" ]
	run -0 --separate-stderr kerf-validate --on-duplicate warn -r rej2 <in
	[ "${#lines[@]}" = 5 ]
	[ ! -s rej2 ]
	[[ "$stderr" == *'duplicate seq 3 passed on'* ]]
	# A whole run sent twice: every line of the repeat is a duplicate,
	# run_start and run_end included, and nothing else.
	cat "$V/good.ndjson" "$V/good.ndjson" >twice
	run -0 --separate-stderr kerf-validate -r rej3 <twice
	[ "$(jq -r .reason rej3 | sort -u)" = duplicate ]
	[ "$(jq -s length rej3)" = "$(wc -l <"$V/good.ndjson")" ]
	run -0 --separate-stderr kerf-validate --on-duplicate warn -r rej4 <twice
	[ "${#lines[@]}" = "$(wc -l <twice)" ]
	[ ! -s rej4 ]
}

@test "kerf-validate tracks the sequence and geometry of each run separately" {
	run -0 --separate-stderr kerf-validate -r rej <"$V/two_runs.ndjson"
	[ "$output" = "$(cat "$V/two_runs.ndjson")" ]
	[ ! -s rej ]
	# A line of run t1 repeated after run t2's is still a duplicate in t1.
	{ head -4 "$V/two_runs.ndjson"; sed -n 3p "$V/two_runs.ndjson"; } >in
	run -0 --separate-stderr kerf-validate -r rej2 <in
	[ "$(jq -r '[.run, .seq, .reason] | @tsv' rej2)" = "$(printf 't1\t2\tduplicate')" ]
}

@test "kerf-validate writes rejects to \$KERF_RUNDIR/rejects.ndjson under the supervisor" {
	mkdir run
	KERF_RUNDIR=$PWD/run kerf-validate <"$V/checksum.in" >/dev/null 2>err
	[ "$(jq -r .reason run/rejects.ndjson)" = checksum ]
	! grep -q '"reason"' err
	# Without it, reject records go to standard error.
	kerf-validate <"$V/checksum.in" >/dev/null 2>err
	[ "$(jq -r 'select(.reason) | .reason' err)" = checksum ]
}

@test "kerf-validate exits 74 when downstream closes its pipe" {
	line=$(sed -n 3p "$V/good.ndjson")
	run --separate-stderr bash -c "yes '$line' | head -n 100000 | KERF_LOG_LEVEL=error kerf-validate --on-duplicate warn -r /dev/null | head -1 >/dev/null; echo \${PIPESTATUS[2]}"
	[ "$output" = 74 ]
}

@test "kerf-validate stops with 75 on SIGTERM before end of input" {
	mkfifo fifo
	kerf-validate -r rej <fifo >out 2>err &
	pid=$!
	exec 7>fifo
	head -2 "$V/good.ndjson" >&7
	wait_for grep -q run_start out
	kill -TERM "$pid"
	st=0
	wait "$pid" || st=$?
	exec 7>&-
	[ "$st" = 75 ]
	adds_up err
}

@test "kerf-validate stopped by SIGTERM while blocked on a full pipe loses no line it counted" {
	local gen=${KERF_UNIT:-$BATS_TEST_DIRNAME/../build/release/tests}/validate-gen
	[ -x "$gen" ] || skip "validate-gen is not built (make units)"
	"$gen" 20000 >in
	mkfifo fifo
	kerf-validate -r /dev/null <in >fifo 2>err &
	pid=$!
	exec 8<fifo
	# Nobody reads: it fills the pipe and blocks in write(2).  Where the
	# kernel hides wchan ("0"), wait until it has read and sleeps.
	blocked() {
		grep -q pipe_write "/proc/$1/wchan" && return 0
		[ "$(cat "/proc/$1/wchan")" = 0 ] &&
			[ "$(awk '/^rchar/ { print $2 }' "/proc/$1/io")" -gt 65536 ] &&
			[ "$(awk '{ print $3 }' "/proc/$1/stat")" = S ]
	}
	wait_for blocked "$pid"
	kill -TERM "$pid"
	cat <&8 >out
	exec 8<&-
	st=0
	wait "$pid" || st=$?
	[ "$st" = 75 ]
	adds_up err
	[ "$(final_stats err | jq .out)" = "$(wc -l <out)" ]
	head -n "$(wc -l <out)" in | cmp - out
}

# t-validate RESULT MIN: t-validate's summary line RESULT says no
# difference, and that it compared at least MIN lines.
compared_alike() {
	[[ "$1" =~ ^compared\ ([0-9]+)\ scanned\ ([0-9]+)\ passed\ ([0-9]+)\ differ\ 0$ ]] ||
		{ echo "t-validate: $1"; return 1; }
	[ "${BASH_REMATCH[1]}" -ge "$2" ] && [ "${BASH_REMATCH[3]}" -gt 0 ]
}

@test "kerf-validate gives a die line it reads in one pass the result jansson's parse gives: tens of thousands of mutations" {
	[ -x "$KERF_UNIT/t-validate" ] || skip "t-validate is not built (make units)"
	# t-validate checks the die lines of tests/unit/mutate.h and ~170000
	# mutations of them (truncations, bytes substituted, inserted and
	# deleted, members twice, reordered, missing, of other types, escaped,
	# nested, control bytes, numbers past int64, bad base64 and xxh3, dies
	# that miss the grid and the die size) with the one-pass reader and
	# with jansson only: verdict, reason, message, run, seq, seq status.
	run "$KERF_UNIT/t-validate" mutate
	assert_success
	compared_alike "$output" 100000
}

@test "kerf-validate gives every line of a simulated lot the result jansson's parse gives, and reads each die in one pass" {
	[ -x "$KERF_UNIT/t-validate" ] || skip "t-validate is not built (make units)"
	have_acquire || skip "kerf-acquire is not built"
	acquire --sim --wafers 2 --diameter 100 >acq 2>/dev/null
	acquire --sim --seed 9 --wafers 1 --diameter 100 --die-px 32 --inject alarm@10:42:safety >>acq 2>/dev/null || true
	"$KERF_UNIT/validate-gen" 2000 images >>acq
	dies=$(grep -c '"type":"die"' acq)
	run "$KERF_UNIT/t-validate" lines <acq
	assert_success
	assert_line --index 0 "dies $dies scanned $dies"
	compared_alike "${lines[1]}" "$(wc -l <acq)"
}

@test "kerf-validate usage: --help exits 0, a bad option or policy exits 64" {
	run -0 kerf-validate --help
	[[ "$output" == Usage:* ]]
	run -64 kerf-validate --bogus
	run -64 kerf-validate --on-gap sometimes
	run -64 kerf-validate --max-line 0
	run -0 kerf-validate --version
}

@test "kerf-validate man page is lint-clean and its synopsis matches --help" {
	command -v mandoc >/dev/null || skip "no mandoc"
	man="$BATS_TEST_DIRNAME/../man/kerf-validate.1"
	# Style notes (pages of other programs not installed yet) aside.
	run -0 mandoc -Tlint -Wwarning "$man"
	[ -z "$output" ]
	# Every long option in --help is documented.
	for o in $(kerf-validate --help | grep -o -- '--[a-z-]*' | sort -u); do
		grep -q -- "Fl ${o#--}" "$man" || grep -q -- "${o#--}" "$man" || { echo "missing $o"; return 1; }
	done
}

@test "kerf-validate passes everything kerf-acquire --sim writes" {
	have_acquire || skip "kerf-acquire is not built"
	acquire --sim --wafers 1 >acq 2>acq.err || skip "kerf-acquire --sim failed: $(tail -1 acq.err)"
	run -0 --separate-stderr kerf-validate -r rej <acq
	[ ! -s rej ] || { head -3 rej; return 1; }
	kerf-validate -r /dev/null <acq 2>/dev/null | cmp - acq
	# Another geometry, and a critical alarm that aborts the run.
	acquire --sim --wafers 1 --diameter 200 --pitch 5000x7000 --die-px 32 >acq2 2>/dev/null
	acquire --sim --seed 9 --wafers 1 --inject alarm@10:42:safety >>acq2 2>/dev/null || true
	grep -q '"status":"aborted"' acq2
	run -0 --separate-stderr kerf-validate -r rej2 <acq2
	[ ! -s rej2 ] || { head -3 rej2; return 1; }
	[ "${#lines[@]}" = "$(wc -l <acq2)" ]
}

@test "kerf-validate rejects kerf-acquire's injected garbage line as not_json" {
	have_acquire || skip "kerf-acquire is not built"
	acquire --sim --wafers 1 --inject garbage@20 >acq 2>/dev/null || skip "no --inject garbage"
	run -0 --separate-stderr kerf-validate -r rej <acq
	[ "$(jq -r '[.reason, .line] | @tsv' rej)" = "$(printf 'not_json\t21')" ]
	[ "${#lines[@]}" = $(($(wc -l <acq) - 1)) ]
}

@test "kerf-validate passes kerf-acquire's KLARF imports" {
	have_acquire || skip "kerf-acquire is not built"
	local k n=0
	for k in "$DATA"/klarf/*.klarf "$DATA"/klarf/*.001; do
		[ -e "$k" ] || continue
		acquire --klarf "$k" >imp 2>/dev/null || continue # the bad samples
		rm -f rej
		run -0 --separate-stderr kerf-validate -r rej <imp
		if [ "${k##*/}" = kerf-na.klarf ]; then
			# Its SampleCenterLocation (100000 100000) with DieOrigin 0 0
			# puts dies (0,0) and (1,1) outside the 200 mm wafer: their
			# defects are rightly out of range.
			jq -e 'select(.reason != "out_of_range" or (.msg | test("outside the wafer") | not))' rej &&
				return 1
			continue
		fi
		[ ! -s rej ] || { echo "$k:"; head -3 rej; return 1; }
		[ "${#lines[@]}" = "$(wc -l <imp)" ]
		n=$((n + 1))
	done
	[ "$n" -gt 0 ] || skip "no KLARF samples in tests/data/klarf"
}

# The fuzz targets for kerf-validate (validate, line) run in tests/fuzz.bats.

#!/usr/bin/env bats
# lib/secs.c: the SECS-II codec (SEMI E5) and SML, driven through
# tests/unit/t-secs.c (stdin in, text out) and tests/unit/secs-check.c
# (built-in property checks).  Table fixtures: tests/data/secs/NAME.sml
# with the body's bytes in NAME.hex, and tests/data/secs/decode/NAME.hex
# with what decoding says in NAME.out.

load common

setup() {
	: "${KERF_UNIT:=$BATS_TEST_DIRNAME/../build/release/tests}"
	TSECS="$KERF_UNIT/t-secs"
	CHECK="$KERF_UNIT/secs-check"
	FIX="$DATA/secs"
}

# peak_rss CMD...: the command's peak RSS in KiB (its own status ignored).
peak_rss() {
	/usr/bin/time -f 'rss %M' "$@" 2>&1 >/dev/null | awk '/^rss/ {print $2}'
}

# bounded_decode BASE HOSTILE SLACK CAP [LIMITS]: t-secs decode -b of
# HOSTILE peaks within SLACK KiB of RSS above the decode of BASE (a body
# refused at its first byte, so a sanitizer's overhead cancels out), and
# fails cleanly (status 65, $output set) with its address space capped
# at CAP KiB.
bounded_decode() {
	local base=$1 hostile=$2 slack=$3 cap=$4 b h
	shift 4
	b=$(peak_rss "$TSECS" decode -b "$@" <"$base")
	h=$(peak_rss "$TSECS" decode -b "$@" <"$hostile")
	echo "peak RSS: refused at byte 0 ${b} KiB, hostile claim ${h} KiB"
	[ $((h - b)) -lt "$slack" ]
	run capped "$cap" decode -b "$@" <"$hostile"
	assert_failure 65
}

# capped KIB ARGS...: t-secs ARGS with its address space capped at KIB.
# RSS misses an allocation whose pages stay untouched (calloc of fresh
# mmap memory); a cap on address space does not.  ASan reserves terabytes
# of shadow memory, so the sanitizer build is not capped.
capped() {
	local kib=$1
	shift
	if [ "${SAN:-}" = 1 ] || [[ "$KERF_UNIT" == */build/san/* ]]; then
		"$TSECS" "$@"
	else
		(ulimit -v "$kib" && exec "$TSECS" "$@")
	fi
}

@test "secs encoder writes each table fixture's SML as the expected bytes" {
	local f n=0
	for f in "$FIX"/*.sml; do
		"$TSECS" encode <"$f" | diff -u "${f%.sml}.hex" - || { echo "in $f"; false; }
		n=$((n + 1))
	done
	[ "$n" -ge 25 ]
}

@test "secs decoder reads each table fixture's bytes back, and its SML text encodes to the same bytes" {
	local f
	for f in "$FIX"/*.hex; do
		run "$TSECS" roundtrip <"$f"
		[ "$status" = 0 ] && [ "$output" = ok ] || { echo "$f: $output"; false; }
		"$TSECS" sml <"${f%.hex}.sml" | "$TSECS" encode | diff -u "$f" - || { echo "in $f"; false; }
	done
}

@test "secs decoder reports each malformed body with its own error code and byte offset" {
	local f codes
	for f in "$FIX"/decode/*.hex; do
		"$TSECS" decode <"$f" | diff -u "${f%.hex}.out" - || { echo "in $f"; false; }
	done
	# Every structural fault has a code of its own.
	codes=$(cat "$FIX"/decode/bad-*.out | awk '{print $2}' | sort -u | tr '\n' ' ')
	assert_equal "$codes" "claim element_size format length_bytes trailing truncated "
}

@test "secs decoder takes an empty body (a header-only message) as no item" {
	run "$TSECS" decode </dev/null
	assert_success
	assert_output "ok"
	run "$TSECS" sml <<<'S1F17 W.'
	assert_output "S1F17 W"
	run "$TSECS" encode <<<'S1F17 W'
	assert_success
	assert_output ""
}

@test "secs decoder refuses a list claiming more items than bytes remain, without allocating" {
	run "$TSECS" decode <<<'03 ff ff ff 01 00'
	assert_failure 65
	assert_output "error claim 0: list at byte 0 claims 16777215 items but only 2 bytes follow (2 at least per item)"
	# A decoder that trusted the claim would take 128 MB for the child
	# slots alone.  The item limit is raised out of the way, so that only
	# the claim check stands between the decoder and that.
	printf '\375\001\000' >"$BATS_TEST_TMPDIR/base"
	printf '\003\377\377\377\001\000' >"$BATS_TEST_TMPDIR/claim"
	bounded_decode "$BATS_TEST_TMPDIR/base" "$BATS_TEST_TMPDIR/claim" 2000 65536 64 100000000 16777216
	assert_output --partial "error claim 0:"
}

@test "secs decoder keeps memory small when nested lists claim 4 GB of child slots" {
	# A 16 MiB body: 64 nested lists, each claiming about 8 million items,
	# which each list alone could hold (2 bytes an item); together they
	# claim 64 x 64 MB of child slots.  The item limit is raised out of the
	# way, so only the decoder's count of items still due stops them.
	local f="$BATS_TEST_TMPDIR/nested" base="$BATS_TEST_TMPDIR/base" i
	{
		for i in $(seq 64); do printf '\003\177\377\360'; done
		head -c $((16777216 - 256)) /dev/zero
	} >"$f"
	{ printf '\375'; head -c $((16777216 - 1)) /dev/zero; } >"$base"
	bounded_decode "$base" "$f" 4000 131072 64 100000000 16777216
	assert_output --partial "error claim 4: list at byte 4 claims 8388592 items"
}

@test "secs decoder refuses nesting deeper than the limit with a depth error" {
	# 10,000 nested lists: an error, not a stack overflow.
	{ yes '01 01' | head -n 10000; echo 'a5 01 01'; } >"$BATS_TEST_TMPDIR/deep"
	run "$TSECS" decode <"$BATS_TEST_TMPDIR/deep"
	assert_failure 65
	assert_output "error depth 128: item at byte 128 is nested deeper than 64"
	# Right at the limit is fine.
	{ yes '01 01' | head -n 63; echo 'a5 01 01'; } >"$BATS_TEST_TMPDIR/ok"
	run "$TSECS" decode <"$BATS_TEST_TMPDIR/ok"
	assert_success
	run "$TSECS" decode 3 100 100 <<<'01 01 01 01 01 01 a5 01 01'
	assert_output "error depth 6: item at byte 6 is nested deeper than 3"
}

@test "secs decoder refuses a body over the size limit and more items than the item limit" {
	run "$TSECS" decode 64 100 8 <<<'01 02 41 02 61 62 41 01 63'
	assert_failure 65
	assert_output "error size 0: message of 9 bytes is larger than the limit of 8"
	run "$TSECS" decode 64 2 100 <<<'01 02 41 02 61 62 41 01 63'
	assert_failure 65
	assert_output "error items 0: item at byte 0 makes more than 2 items"
	run "$TSECS" decode 64 3 9 <<<'01 02 41 02 61 62 41 01 63'
	assert_success
	assert_output 'ok <L [2] <A "ab"> <A "c">>'
}

@test "secs decoder accepts lengths in more bytes than needed and re-encodes them in the fewest" {
	run "$TSECS" decode <<<'b3 00 00 04 00 00 00 01'
	assert_output "ok <U4 1>"
	run bash -c "'$TSECS' decode <<<'02 00 01 a7 00 00 01 07' | cut -c4- | '$TSECS' encode"
	assert_output "01 01 a5 01 07"
}

@test "secs encoder uses three length bytes from 65536 bytes on and refuses more than 16777215" {
	local sml="$BATS_TEST_TMPDIR/big.sml"
	{ printf '<A "'; head -c 65536 /dev/zero | tr '\0' x; printf '">'; } >"$sml"
	"$TSECS" encode <"$sml" >"$BATS_TEST_TMPDIR/big.hex"
	run head -c 17 "$BATS_TEST_TMPDIR/big.hex"
	assert_output "43 01 00 00 78 78"
	run "$TSECS" roundtrip <"$BATS_TEST_TMPDIR/big.hex"
	assert_output ok
	run "$CHECK" toolong
	assert_success
	assert_output "ok toolong B item at byte 0 holds 16777216 bytes, more than 16777215"
}

@test "SML text of every item format parses back to the same item" {
	local f
	for f in item-every-format item-empties item-a-escapes item-nested; do
		run "$TSECS" roundtrip <"$FIX/$f.hex"
		assert_output ok
	done
	run "$TSECS" sml <"$FIX/item-every-format.sml"
	assert_output "$(cat "$FIX/item-every-format.sml")"
	run "$TSECS" sml <"$FIX/item-empties.sml"
	assert_output '<L [15] <L [0]> <B> <BOOLEAN> <A ""> <J ""> <I8> <I1> <I2> <I4> <F8> <F4> <U8> <U1> <U2> <U4>>'
}

@test "SML parser accepts lower case names, BOOL, [n] counts, hex numbers and a trailing '.'" {
	run "$TSECS" sml <"$FIX/item-variants.sml"
	assert_output "<L [2] <U4 16 7> <BOOLEAN TRUE FALSE TRUE FALSE 0x02>>"
	run "$TSECS" sml <<<'  <b [3] 0x0a 10 0X0A > . '
	assert_output "<B 0x0A 0x0A 0x0A>"
	run "$TSECS" sml <<<'<Boolean T> .'
	assert_output "<BOOLEAN TRUE>"
	run "$TSECS" sml <<<$'<L\n  <A [4] "LOT7">\n  <I2 -0x10>\n>'
	assert_output '<L [2] <A "LOT7"> <I2 -16>>'
	run "$TSECS" sml <<<'s6f11 w <f4 .5 1.5e3>'
	assert_output "S6F11 W <F4 0.5 1500>"
}

@test "SML parser refuses a [n] count that does not match, naming line and column" {
	run "$TSECS" sml <<<'<L [2] <U1 1>>'
	assert_failure 65
	assert_output "error count 3: line 1, column 4: [2] but the L item has 1"
	run "$TSECS" sml <<<$'<L\n <A [5] "LOT7">>'
	assert_output "error count 7: line 2, column 5: [5] but the A item has 4"
}

@test "SML parser refuses values out of range for their format" {
	local bad
	for bad in '<U1 256>' '<I1 -129>' '<I1 128>' '<U4 -1>' '<U8 18446744073709551616>' \
		'<B 0x100>' '<BOOLEAN 256>' '<A 300>' '<F4 1e39>' '<F8 1e309>' '<I8 -9223372036854775809>'; do
		run "$TSECS" sml <<<"$bad"
		[ "$status" = 65 ] && [[ "$output" == "error range "* ]] || { echo "$bad: $output"; false; }
	done
	run "$TSECS" sml <<<'<L <U2 1 65536>>'
	assert_output "error range 9: line 1, column 10: '65536' is out of range for U2"
}

@test "SML parser refuses malformed text with the position of the fault" {
	run "$TSECS" sml <<<'<X 1>'
	assert_output "error syntax 1: line 1, column 2: unknown format 'X'"
	run "$TSECS" sml <<<'<A "abc>'
	assert_output "error syntax 3: line 1, column 4: string not closed"
	run "$TSECS" sml <<<$'<A "a\tb">'
	assert_output "error syntax 5: line 1, column 6: control character 0x09 in a string: write it as 0x09 outside the quotes"
	run "$TSECS" sml <<<$'<L\n  <U1 1>'
	assert_output "error syntax 0: line 1, column 1: <L not closed"
	run "$TSECS" sml <<<'<U1 1> <U1 2>'
	assert_output "error trailing 7: line 1, column 8: text after the top item"
	run "$TSECS" sml <<<'<U4 1 x>'
	assert_output "error syntax 6: line 1, column 7: 'x' is not a value of a U4 item"
	run "$TSECS" sml <<<'<U4 "1">'
	assert_output "error syntax 4: line 1, column 5: unexpected '\"' in a U4 item"
	run "$TSECS" sml <<<'<L [x]>'
	assert_output "error syntax 3: line 1, column 4: a count is [n], n a number up to 16777215"
	run "$TSECS" sml <<<'U4 1'
	assert_output "error syntax 0: line 1, column 1: expected '<'"
	run "$TSECS" sml <<<'S1 <L>'
	assert_output "error syntax 0: line 1, column 1: expected SnFn, e.g. S1F13"
	run "$TSECS" sml <<<'S1F <L>'
	assert_output "error syntax 0: line 1, column 1: expected SnFn, e.g. S1F13"
	run "$TSECS" sml <<<'S128F1'
	assert_output "error range 0: line 1, column 1: stream above 127 or function above 255"
	run "$TSECS" sml <<<'S1F1 X <L>'
	assert_output "error syntax 5: line 1, column 6: expected W, an item or the end"
}

@test "SML parser refuses nesting deeper than the limit with a depth error, whatever the depth" {
	{ yes '<L' | head -n 10000 | tr '\n' ' '; } >"$BATS_TEST_TMPDIR/deep.sml"
	run "$TSECS" sml <"$BATS_TEST_TMPDIR/deep.sml"
	assert_failure 65
	assert_output "error depth 192: line 1, column 193: item nested deeper than 64"
	run "$TSECS" sml 2 100 100 <<<'<L <L <U1 1>>>'
	assert_output "error depth 6: line 1, column 7: item nested deeper than 2"
	run "$TSECS" sml 64 2 100 <<<'<L <L <U1 1>>>'
	assert_output "error items 6: line 1, column 7: more than 2 items"
	run "$TSECS" sml 64 100 5 <<<'<L <A "abcd">>'
	assert_output "error size 3: line 1, column 4: message would be larger than the limit of 5 bytes"
	run "$TSECS" sml 64 100 8 <<<'<L <A "abcd">>'
	assert_output '<L [1] <A "abcd">>'
}

@test "SML text is one line and shows non-printable A bytes as 0xNN outside the quotes" {
	run "$TSECS" sml <"$FIX/item-a-escapes.sml"
	assert_output '<A "line1" 0x0A "say " 0x22 "hi" 0x22 0x09 0xC2 0xB5 "\n">'
	run "$TSECS" decode <<<'41 06 61 0a 00 22 5c ff'
	assert_output 'ok <A "a" 0x0A 0x00 0x22 "\" 0xFF>'
	[ "${#lines[@]}" = 1 ]
}

@test "SML message form shows stream, function and W-bit before the body" {
	run "$TSECS" sml <"$FIX/s6f11.sml"
	assert_output 'S6F11 W <L [3] <U4 17> <U2 5001> <L [2] <L [2] <U1 1> <L [3] <A "LOT7"> <U1 3> <A "W03">>> <L [2] <U2 300> <L [3] <F8 0.25> <U4 614> <BOOLEAN TRUE>>>>>'
	run "$TSECS" sml <"$FIX/s5f1-cleared-no-wbit.sml"
	assert_output 'S5F1 <L [3] <B 0x04> <U2 1001> <A "Chamber pressure out of range">>'
	run "$TSECS" sml <<<'S0F0'
	assert_output 'S0F0'
}

@test "SML indented mode puts each item on a line of its own and parses back" {
	run "$TSECS" sml -i <"$FIX/s2f41-start.sml"
	assert_output "$(printf '%s\n' 'S2F41 W' '<L [2]' '  <A "START">' '  <L [2]' '    <L [2]' \
		'      <A "LOTID">' '      <A "LOT7">' '    >' '    <L [2]' '      <A "PPID">' \
		'      <A "RECIPE-A">' '    >' '  >' '>')"
	"$TSECS" sml -i <"$FIX/s2f41-start.sml" | "$TSECS" encode | diff -u "$FIX/s2f41-start.hex" -
	run "$TSECS" sml -i <<<'<L <L> <U1 1>>'
	assert_output "$(printf '%s\n' '<L [2]' '  <L [0]>' '  <U1 1>' '>')"
}

@test "SML brief mode writes an item of more than 64 elements as its format and count" {
	local img
	img=$(printf ' %d' $(seq 0 99))
	run "$TSECS" sml -s <<<"S6F11 W <L <U1 1> <B$img> <B$(printf ' %d' $(seq 64))> <A \"$(printf 'x%.0s' $(seq 65))\">>"
	assert_success
	assert_output "S6F11 W <L [4] <U1 1> <B [100] ...> <B$(printf ' 0x%02X' $(seq 64))> <A [65] ...>>"
}

@test "an ID sent as U1, U2, U4, I4 or ASCII digits reads as the same number" {
	local form
	for form in '<U1 42>' '<U2 42>' '<U4 42>' '<U8 42>' '<I1 42>' '<I2 42>' '<I4 42>' '<I8 42>' \
		'<A "42">' '<U4 [1] 0x2A>'; do
		run "$TSECS" get uint 4294967295 <<<"$form"
		[ "$status" = 0 ] && [ "$output" = 42 ] || { echo "$form: $output"; false; }
	done
	run "$TSECS" get int -10 10 <<<'<A "-7">'
	assert_output "-7"
	run "$TSECS" get int -10 10 <<<'<I2 -7>'
	assert_output "-7"
}

@test "reading an ID refuses a negative number, one over the maximum, an array and text that is not digits" {
	run "$TSECS" get uint 4294967295 <<<'<I4 -1>'
	assert_output "error range"
	run "$TSECS" get uint 255 <<<'<U2 256>'
	assert_output "error range"
	run "$TSECS" get uint 99999 <<<'<A "100000">'
	assert_output "error range"
	local bad
	for bad in '<U4 1 2>' '<U4>' '<A "">' '<A "4 2">' '<A "0x2A">' '<A "-1">' '<F4 42>' '<B 42>' '<L <U4 42>>'; do
		run "$TSECS" get uint 4294967295 <<<"$bad"
		[ "$output" = "error type" ] || { echo "$bad: $output"; false; }
	done
}

@test "secs accessors check list bounds and formats and are safe on a missing item" {
	run "$CHECK" accessors
	assert_success
	assert_output "ok accessors"
	run "$TSECS" get child 2 0 1 <<<'<L <U4 17> <U2 5001> <L <L <U1 1> <L <A "LOT7">>>>>'
	assert_output '<L [1] <A "LOT7">>'
	run "$TSECS" get child 2 5 <<<'<L <U4 17> <U2 5001> <L <L <U1 1> <L <A "LOT7">>>>>'
	assert_output 'none'
	run "$TSECS" get byte <<<'<B 0x84>'
	assert_output "132"
	run "$TSECS" get byte <<<'<U1 4>'
	assert_output "error type"
	run "$TSECS" get bool <<<'<BOOLEAN 0x02>'
	assert_output "1"
	run "$TSECS" get str <<<'<A "LOT" 0x00 "7">'
	assert_output "$(printf '5 LOT')"
}

@test "secs builders write the bytes E5 specifies and refuse values that do not fit" {
	run "$CHECK" builders
	assert_success
	assert_output "ok builders"
}

@test "random items survive encode and decode, a loose encoding, and SML both ways" {
	run "$CHECK" random 400 20261121
	assert_success
	assert_output "ok random 400"
}

@test "floats print with few digits and read back to the same bits" {
	run "$CHECK" floats 20000 7
	assert_success
	run "$TSECS" sml <<<'<L <F4 0.1 100 -0 1e-45 3.4028235e38> <F8 0.1 100 -0 5e-324 inf -inf nan>>'
	assert_output "<L [2] <F4 0.1 100 -0 1.4013e-45 3.4028235e+38> <F8 0.1 100 -0 4.94065645841247e-324 inf -inf nan>>"
}

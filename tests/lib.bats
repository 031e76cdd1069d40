#!/usr/bin/env bats
# libkerf's core: the line reader and the envelope helpers every stage
# relies on, driven through small test programs in tests/unit/.

load common

setup() {
	: "${KERF_UNIT:=$BATS_TEST_DIRNAME/../build/release/tests}"
	TLINE="$KERF_UNIT/t-line"
	TEVENT="$KERF_UNIT/t-event"
}

@test "line reader returns each line with its number and byte offset" {
	run "$TLINE" 100 < <(printf 'ab\n\ncdef\n')
	assert_success
	assert_output "$(printf 'ok 1 0 2\nok 2 3 0\nok 3 4 4\neof')"
}

@test "line reader returns a last line without a newline and says so" {
	run "$TLINE" 100 < <(printf 'one\ntwo')
	assert_success
	assert_output "$(printf 'ok 1 0 3\nok 2 4 3 nonl\neof')"
}

@test "line reader gives end of input at once on empty input" {
	run "$TLINE" 100 < /dev/null
	assert_success
	assert_output "eof"
}

@test "line reader reports a line longer than the maximum with its full length and goes on" {
	run "$TLINE" 4 < <(printf 'abcd\nabcde\nxy\n')
	assert_success
	assert_output "$(printf 'ok 1 0 4\nlong 2 5 5 5\nok 3 11 2\neof')"
}

@test "line reader skips a 50 MB line in bounded memory" {
	# The reader keeps at most max + 64 KiB: peak RSS with a 50 MB line
	# must stay close to peak RSS with a 1 KB line (compared in the same
	# build, so a sanitizer's own overhead cancels out).
	rss_for() {
		{ printf 'a\n'; head -c "$1" /dev/zero | tr '\0' x; printf '\nb\n'; } |
			/usr/bin/time -f 'rss %M' "$TLINE" 1000 2>&1 >/dev/null | awk '/^rss/ {print $2}'
	}
	run bash -c "{ printf 'a\n'; head -c 50000000 /dev/zero | tr '\\0' x; printf '\nb\n'; } | '$TLINE' 1000"
	assert_success
	assert_line "long 2 2 50000000 4096"
	assert_line "ok 3 50000003 1"
	small=$(rss_for 1000)
	big=$(rss_for 50000000)
	echo "peak RSS: 1 KB line ${small} KiB, 50 MB line ${big} KiB"
	[ $((big - small)) -lt 8000 ]
}

@test "line reader reports a line holding a raw control byte, with its offset, and never as ok" {
	# A NUL does not cut the line; tab and CR are whitespace outside
	# strings only; an escaped quote does not end a string.
	run "$TLINE" 100 < <(printf 'a\0b\nc\n{"a":\t1}\r\n{"a":"x\ty"}\n{"a":"\\"\x01"}\n{"a":1}\x1f')
	assert_success
	assert_output "$(printf '%s\n' 'control 1 0 3 1' 'ok 2 4 1' 'ok 3 6 9' 'control 4 16 11 7' \
		'control 5 28 11 8' 'control 6 40 8 7 nonl' eof)"
}

@test "event ids are XXH3-64 of run and seq joined by a newline" {
	[ -x "$(command -v xxhsum)" ] || skip "xxhsum not installed"
	expect=$(printf 'lot7\n42' | xxhsum -H3 | awk '{print $NF}')
	run "$TEVENT" id lot7 42
	assert_success
	assert_output "$expect"
}

@test "event_peek finds top-level fields and never one nested or inside a string" {
	line='{"v":1,"note":"\"type\":\"die\"","nested":{"type":"alarm"},"type":"wafer_end","seq":17}'
	run "$TEVENT" peek type <<<"$line"
	assert_output "wafer_end"
	run "$TEVENT" peek seq <<<"$line"
	assert_output "17"
	run "$TEVENT" peek missing <<<"$line"
	assert_output "absent"
	run "$TEVENT" peek type <<<'[1,2]'
	assert_output "absent"
}

@test "event times format as RFC 3339 UTC with microseconds" {
	run "$TEVENT" time 2026-11-21T09:26:26.5Z
	assert_output "2026-11-21T09:26:26.500000Z"
	run "$TEVENT" time 2026-11-21T09:26:26Z
	assert_output "2026-11-21T09:26:26.000000Z"
	run "$TEVENT" time 2026-11-21T09:26:26.123456+01:00
	assert_failure 65
}

@test "base64 round-trips arbitrary bytes and refuses bad input" {
	head -c 1000 /dev/urandom > "$BATS_TEST_TMPDIR/raw"
	"$TEVENT" b64 enc < "$BATS_TEST_TMPDIR/raw" | tr -d '\n' > "$BATS_TEST_TMPDIR/enc"
	cmp <(base64 -w0 "$BATS_TEST_TMPDIR/raw") "$BATS_TEST_TMPDIR/enc"
	"$TEVENT" b64 dec < "$BATS_TEST_TMPDIR/enc" | cmp - "$BATS_TEST_TMPDIR/raw"
	run "$TEVENT" b64 dec <<<'ab$d'
	assert_failure 65
}

@test "reject raw text is valid UTF-8 whatever the input bytes" {
	run "$TEVENT" sanitize 100 < <(printf 'ok \xff\xfe \xc3\xa9 \xed\xa0\x80 end')
	assert_output "$(printf 'ok \xef\xbf\xbd\xef\xbf\xbd \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end|0')"
	run "$TEVENT" sanitize 4 < <(printf 'ab\xc3\xa9cd')
	assert_output "$(printf 'ab\xc3\xa9|1')"
}

# lib/cli.c: the option table every program's options come from (t-cli).

@test "cli: every kind of option parses into its target, and the arguments are left" {
	run --separate-stderr "$KERF_UNIT/t-cli" -f --high -n x -c 3 --ratio 2 --size 1K --wait 1.5 \
		--seq 18446744073709551615 --color green --item a arg1 --item b arg2
	assert_success
	assert_line --index 0 "flag=1 level=7 name=x count=3 ratio=2 size=1024 wait=1500(1.5) seq=18446744073709551615 color=2"
	assert_line --index 1 "item a"
	assert_line --index 2 "item b"
	assert_line --index 3 "arg arg1"
	assert_line --index 4 "arg arg2"
	[ -z "$stderr" ]
}

@test "cli: a value outside its range is a usage error that names the option and the range" {
	for args in "-c 11|--count: '11' is not a number from 1 to 10" \
		"--size 2M|--size: '2M' is not a size from 64 to 1M" \
		"--wait 0|--wait: '0' is not a duration of at least 1ms" \
		"--ratio x|--ratio: 'x' is not a number from 0.5 to 2" \
		"--color pink|--color takes red, green or blue, not 'pink'" \
		"--seq -1|--seq: '-1' is not a number" \
		"--bogus|unrecognized option '--bogus'" \
		"--name|option '--name' needs an argument"; do
		run --separate-stderr "$KERF_UNIT/t-cli" ${args%%|*}
		[ "$status" -eq 64 ] || { echo "${args%%|*}: exit $status"; false; }
		[ -z "$output" ]
		[[ "$stderr" == "t-cli: ${args#*|}"$'\n'* ]] || { echo "${args%%|*}: $stderr"; false; }
	done
}

@test "cli: a callback gets its argument and the caller's context" {
	run "$KERF_UNIT/t-cli" --call it
	assert_success
	assert_line --index 0 "callback call it ctx"
}

@test "cli: --help prints the table once, a fragment included twice once, a hidden option not at all" {
	run --separate-stderr "$KERF_UNIT/t-cli" --help
	assert_success
	assert_output "$(cat <<'HELP'
usage: t-cli [OPTION]... [ARG]...

First:
  -f, --flag        a flag
      --high, --low
                    set the level high (7) or low (1)
      --item X      one more item (repeatable)
Second:
  -n, --name NAME   a name
  -c, --count N     a count, 1..10
      --ratio R     a ratio
      --size SIZE   a size
      --wait DUR    a duration,
                    at least 1ms
      --seq N       a sequence number
      --color C     red, green or blue
      --call ARG    a callback
  -h, --help        this help
  -V, --version     the version
The end.
HELP
)"
}

@test "libkerf's modules depend on each other without a cycle (each file includes what it uses)" {
	run "$BATS_TEST_DIRNAME/../scripts/include-cycles"
	assert_success
	assert_output ""
	[ ! -e "$BATS_TEST_DIRNAME/../lib/kerf.h" ]
}

@test "include-cycles fails on modules that include each other, naming them" {
	mkdir "$BATS_TEST_TMPDIR/lib"
	cd "$BATS_TEST_TMPDIR/lib"
	printf '#include "b.h"\n' > a.c
	printf '#include "c.h"\n' > b.c
	printf '#include "a.h"\n#include "banned.h"\n' > c.c
	printf '#include "a.h"\n' > d.c
	touch a.h b.h c.h d.h banned.h
	run "$BATS_TEST_DIRNAME/../scripts/include-cycles" .
	assert_failure 1
	assert_line --index 0 --partial "cycle"
	assert_line a
	assert_line b
	assert_line c
	refute_line d
	rm c.c
	run "$BATS_TEST_DIRNAME/../scripts/include-cycles" .
	assert_success
}

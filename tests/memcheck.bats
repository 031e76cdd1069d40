#!/usr/bin/env bats
# scripts/memcheck: each kerf program under valgrind's memcheck on a
# small run, no errors and nothing definitely or indirectly lost.
# valgrind cannot run sanitizer builds: this always checks the normal
# build in bin/ (the SAN build has ASan's own leak checker instead).
load common
bats_require_minimum_version 1.5.0

TOP="$BATS_TEST_DIRNAME/.."

setup() {
	cd "$BATS_TEST_TMPDIR"
}

@test "every kerf program passes valgrind's memcheck on a small run" {
	command -v valgrind >/dev/null || skip "valgrind is not installed (scripts/deps installs it)"
	for p in kerf kerf-acquire kerf-validate kerf-detect kerf-persist kerf-project kerf-tool; do
		[ -x "$TOP/bin/$p" ] || skip "bin/$p is not built (make)"
	done
	run "$TOP/scripts/memcheck" -B "$TOP/bin" -o "$BATS_TEST_TMPDIR/mc"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"memcheck: "*" passed, 0 failed"* ]]
	# Every stage was really checked.
	for n in acquire validate detect persist project supervisor; do
		[[ "$output" == *"ok $n"* ]] || { echo "no check '$n'"; false; }
	done
}

@test "scripts/memcheck fails on a program that leaks" {
	command -v valgrind >/dev/null || skip "valgrind is not installed (scripts/deps installs it)"
	command -v cc >/dev/null || skip "no C compiler"
	# A bin/ whose kerf-validate leaks: memcheck must say so, not pass.
	mkdir -p leaky
	for p in kerf kerf-acquire kerf-detect kerf-persist kerf-project kerf-tool; do
		[ -x "$TOP/bin/$p" ] || skip "bin/$p is not built (make)"
		ln -s "$TOP/bin/$p" "leaky/$p"
	done
	printf '#include <stdlib.h>\n#include <stdio.h>\n#include <string.h>\nint main(void) { char b[4096]; size_t n; char *p = 0;\nwhile ((n = fread(b, 1, sizeof b, stdin)) > 0) { p = malloc(n); memcpy(p, b, n); fwrite(b, 1, n, stdout); p = 0; }\nreturn p != 0; }\n' >leak.c
	cc -o leaky/kerf-validate leak.c
	# Only that program's check; the rest of the pipeline runs unchecked.
	run "$TOP/scripts/memcheck" -B leaky -o "$BATS_TEST_TMPDIR/mc" validate
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"memcheck: 0 passed, 1 failed"* ]]
	[[ "$output" == *"FAIL validate: valgrind found errors or leaks"* ]]
	[[ "$output" == *"definitely lost"* ]]
}

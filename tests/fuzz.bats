#!/usr/bin/env bats
# Every libFuzzer target in tests/fuzz/ runs for a few seconds under
# ASan+UBSan (scripts/fuzz builds them with clang): the line reader and
# envelope, each event type's validation, the KLARF reader and writer,
# detect's image decoding and its one-pass die reader against jansson.
# KERF_FUZZ_SECONDS sets the time per target (default 5; 0 skips).
# Skips when clang's libFuzzer is missing (scripts/deps installs clang
# and libclang-rt-14-dev).
load common
bats_require_minimum_version 1.5.0

# Targets that have their own test below; any other is run by the last.
KNOWN=(line validate klarf image secs diescan)

# fuzz TARGET...: run them; a crash, leak, timeout or build failure fails.
fuzz() {
	local secs=${KERF_FUZZ_SECONDS:-5} t
	[ "$secs" -gt 0 ] || skip "KERF_FUZZ_SECONDS=0"
	cd "$BATS_TEST_DIRNAME/.."
	run scripts/fuzz -t "$secs" "$@"
	[ "$status" != 77 ] || skip "clang's libFuzzer is not available"
	echo "$output"
	[ "$status" = 0 ]
	# It really ran: each target reports the inputs it executed.
	for t in "$@"; do
		[[ "$output" =~ $t:\ stat::number_of_executed_units:\ [1-9] ]] ||
			{ echo "no executions reported for '$t'"; false; }
	done
}

@test "fuzz target 'line' (line reader and envelope) runs clean" {
	fuzz line
}

@test "fuzz target 'validate' (each event type's validation) runs clean" {
	fuzz validate
}

@test "fuzz target 'klarf' (KLARF reader and writer round trip) runs clean" {
	fuzz klarf
}

@test "fuzz target 'image' (detect's die image decoding) runs clean" {
	fuzz image
}

@test "fuzz target 'secs' (SECS-II decoding and SML) runs clean" {
	fuzz secs
}

@test "fuzz target 'diescan' (kerf-detect's one-pass die reader against jansson) runs clean" {
	fuzz diescan
}

@test "every other fuzz target in tests/fuzz/ runs clean" {
	local others=() t k found
	cd "$BATS_TEST_DIRNAME/.."
	for t in $(scripts/fuzz -l); do
		found=0
		for k in "${KNOWN[@]}"; do [ "$t" = "$k" ] && found=1; done
		[ "$found" = 1 ] || others+=("$t")
	done
	[ ${#others[@]} -gt 0 ] || skip "every target has its own test above"
	fuzz "${others[@]}"
}

@test "each fuzz target's seeds reproduce without a failure" {
	# The seed corpora (with past crashes kept as regression seeds) run
	# once each, without fuzzing: quick, and names the seed that fails.
	local t
	cd "$BATS_TEST_DIRNAME/.."
	run scripts/fuzz -b
	[ "$status" != 77 ] || skip "clang's libFuzzer is not available"
	[ "$status" = 0 ]
	for t in $(scripts/fuzz -l); do
		[ -d "tests/data/fuzz/$t" ] || { echo "no seeds for '$t' in tests/data/fuzz/$t"; false; }
		run build/fuzz/fuzz-"$t" -runs=0 "tests/data/fuzz/$t"
		[ "$status" = 0 ] || { echo "$output" | tail -20; echo "seeds of '$t' fail"; false; }
	done
}

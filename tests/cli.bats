#!/usr/bin/env bats
# The command-line conventions every kerf program keeps: --help on stdout,
# usage errors on stderr with exit 64, one version, a checked stdout, and
# a man page that documents every option --help lists.

load common

REPO="$BATS_TEST_DIRNAME/.."
PROGRAMS=(kerf kerf-acquire kerf-validate kerf-detect kerf-persist kerf-project kerf-tool)

@test "every program prints --help to stdout and exits 0" {
	for p in "${PROGRAMS[@]}"; do
		run --separate-stderr "$p" --help
		assert_success
		assert_output --partial "$p"
		[ -z "$stderr" ] || { echo "$p wrote to stderr: $stderr"; false; }
	done
}

@test "every program answers an unknown option on stderr with exit 64" {
	for p in "${PROGRAMS[@]}"; do
		run --separate-stderr "$p" --no-such-option
		[ "$status" -eq 64 ] || { echo "$p exited $status"; false; }
		[ -z "$output" ] || { echo "$p wrote to stdout: $output"; false; }
		[[ "$stderr" == *"$p:"* ]] || { echo "$p stderr lacks its name: $stderr"; false; }
	done
}

@test "every program prints the same version" {
	want=$(sed -n 's/^#define KERF_VERSION "\(.*\)"/\1/p' "$REPO/lib/version.h")
	for p in "${PROGRAMS[@]}"; do
		run "$p" --version
		assert_success
		assert_output "$p $want"
	done
}

@test "every program reports a full stdout instead of pretending success" {
	for p in "${PROGRAMS[@]}"; do
		run bash -c "\"$p\" --help > /dev/full"
		[ "$status" -eq 74 ] || { echo "$p --help > /dev/full exited $status"; false; }
	done
}

@test "every man page lints clean and documents every long option of --help" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	for p in "${PROGRAMS[@]}"; do
		page="$REPO/man/$p.1"
		assert_file_exists "$page"
		run mandoc -Tlint -Wwarning "$page"
		[ -z "$output" ] || { echo "$output"; false; }
		text=$(mandoc -Tascii "$page" | col -b)
		for opt in $("$p" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
			[[ "$text" == *"$opt"* ]] || { echo "man/$p.1 does not mention $opt"; false; }
		done
	done
}

#!/usr/bin/env bats
# make install / make uninstall put programs and pages where PREFIX and
# DESTDIR say, and take them away again.  SAN is passed on, so that
# make finds the build under test up to date and builds nothing while
# other test files run its programs.

load common

REPO="$BATS_TEST_DIRNAME/.."

@test "make install puts every program, man page and tool profile under DESTDIR/PREFIX" {
	dest="$BATS_TEST_TMPDIR/root"
	run make -s -C "$REPO" install SAN="${SAN:-}" DESTDIR="$dest" PREFIX=/opt/kerf
	assert_success
	for p in "$REPO"/cmd/*.c; do
		name=$(basename "$p" .c)
		assert_file_executable "$dest/opt/kerf/bin/$name"
	done
	for m in "$REPO"/man/*.[157]; do
		[ -e "$m" ] || continue
		s=${m##*.}
		assert_file_exists "$dest/opt/kerf/share/man/man$s/$(basename "$m")"
	done
	for f in "$REPO"/profiles/*.json; do
		assert_file_exists "$dest/opt/kerf/share/kerf/profiles/$(basename "$f")"
	done
	# The installed programs find the installed profiles by name.
	KERF_PROFILE_PATH= run --separate-stderr "$dest/opt/kerf/bin/kerf-acquire" --check-profile --profile example-defects
	assert_success
	[ "${lines[0]}" -ef "$dest/opt/kerf/share/kerf/profiles/example-defects.json" ]
	run "$dest/opt/kerf/bin/kerf" --version
	assert_success
	assert_output --regexp '^kerf [0-9]+\.[0-9]+\.[0-9]+$'
}

@test "make uninstall removes what make install put there" {
	dest="$BATS_TEST_TMPDIR/root"
	make -s -C "$REPO" install SAN="${SAN:-}" DESTDIR="$dest" PREFIX=/usr >/dev/null
	run make -s -C "$REPO" uninstall SAN="${SAN:-}" DESTDIR="$dest" PREFIX=/usr
	assert_success
	run find "$dest" ! -type d
	assert_output ""
}

#!/usr/bin/env bats
# The documentation cannot drift from the programs: every EXAMPLES block
# of every man page and every shell block of README.md is extracted and
# run against the built programs ($KERF_BIN), kerf-events(5) is checked
# against the events the programs really emit, and the bash completion
# is exercised the way bash calls it.
#
# Extraction rules (also for whoever writes a page):
#   man page  every .Bd -literal ... .Ed block and every .Dl line of
#             .Sh EXAMPLES is one script; "$ " prompts are dropped and
#             \e, \(dq, \(aq, \& and \- are unescaped.  A comment line
#             `.\" setup: CMD` runs CMD, unseen by readers, before the
#             next block (e.g. to start a run that the block then stops);
#             `.\" notest: WHY` right before a block skips it (say why:
#             it needs other hosts, a scheduler...).
#   README    every ```sh fence before "## Performance" is one script;
#             `<!-- setup: CMD -->` works as above and `<!-- notest: WHY -->`
#             right before a fence skips it (say why).
#   Both      a block that runs kerf status, pause, resume or stop without
#             -C and has no setup gets a live run started for it first
#             (see LIVE_RUN), as an operator has one in another terminal.
# Each script runs with bash -e -o pipefail, in order, in one scratch
# directory per document that holds the symbolic links tests, scripts,
# profiles (into the source tree) and bin (to $KERF_BIN), so a page's later
# examples may use what its earlier ones made.  A setup that starts a
# background job writes its pid to .bgpid; it is killed after the block.

load common

REPO="$BATS_TEST_DIRNAME/.."

# extract_man PAGE OUTDIR: OUTDIR/NNN.sh per example block.
extract_man() {
	mkdir -p "$2"
	awk -v out="$2" '
	function unesc(s) {
		gsub(/\\e/, "\001", s); gsub(/\\\(dq/, "\"", s); gsub(/\\\(aq/, "'\''", s)
		gsub(/\\&/, "", s); gsub(/\\-/, "-", s); gsub(/\001/, "\\", s)
		sub(/^\$ /, "", s); return s
	}
	function emit(text,  f) {
		if (!skip) {
			n++; f = sprintf("%s/%03d.sh", out, n)
			printf "%s%s", setup, text > f; close(f)
		}
		setup = ""; skip = 0
	}
	/^\.Sh / { inex = ($0 == ".Sh EXAMPLES"); next }
	!inex { next }
	/^\.\\" setup: / { s = $0; sub(/^\.\\" setup: /, "", s); setup = setup s "\n"; next }
	/^\.\\" notest: / { skip = 1; next }
	/^\.Bd -literal/ { inbd = 1; body = ""; next }
	/^\.Ed/ { if (inbd) emit(body); inbd = 0; next }
	inbd { body = body unesc($0) "\n"; next }
	/^\.Dl / { s = $0; sub(/^\.Dl /, "", s); emit(unesc(s) "\n"); next }
	' "$1"
}

# extract_readme FILE OUTDIR: OUTDIR/NNN.sh per ```sh block.
extract_readme() {
	mkdir -p "$2"
	awk -v out="$2" '
	/^## Performance/ { exit }
	/^<!-- setup: .* -->$/ { s = $0; sub(/^<!-- setup: /, "", s); sub(/ -->$/, "", s); setup = setup s "\n"; next }
	/^<!-- notest: .* -->$/ { skip = 1; next }
	/^```sh$/ { infence = 1; body = ""; next }
	/^```/ && infence {
		infence = 0
		if (!skip) { n++; f = sprintf("%s/%03d.sh", out, n); printf "%s%s", setup, body > f; close(f) }
		skip = 0; setup = ""; next
	}
	infence { body = body $0 "\n"; next }
	' "$1"
}

# A block that controls the latest run the way an operator does from
# another terminal (kerf status, pause, resume or stop without -C) and
# has no setup of its own gets a live run to control: a slow lot started
# in the background, as runs/latest, once it is running (a pause sent
# while it prepares is refused).  A day-long stall after 2000 events
# holds it open however slow the machine (a stop ends the stall).  The
# wait is bounded polling, far above what a loaded machine needs.
LIVE_RUN='kerf run --wafers 25 --acquire-arg=--rate --acquire-arg=200 --acquire-arg=--inject --acquire-arg=stall@2000:86400 --no-project > /dev/null 2>&1 & echo $! > .bgpid
for i in $(seq 1200); do jq -e ".state == \"running\"" runs/latest/status.json > /dev/null 2>&1 && break; sleep 0.1; done'

add_live_run() {
	local b
	for b in "$1"/*.sh; do
		[ -e "$b" ] || continue
		grep -qE '(^|[;&|(] *)(bin/)?kerf (status|pause|resume|stop)( |$)' "$b" || continue
		grep -qE '(bin/)?kerf (status|pause|resume|stop)( [^#]*)? -C' "$b" && continue
		grep -q '\.bgpid' "$b" && continue
		{ printf '%s\n' "$LIVE_RUN"; cat "$b"; } > "$b.tmp" && mv "$b.tmp" "$b"
	done
}

# run_blocks DIR: run every DIR/NNN.sh in order in a scratch directory.
run_blocks() {
	local dir=$1 work="$BATS_TEST_TMPDIR/work" b rc n=0
	mkdir -p "$work"
	ln -s "$REPO/tests" "$work/tests"
	ln -s "$REPO/scripts" "$work/scripts"
	ln -s "$REPO/profiles" "$work/profiles"
	ln -s "$KERF_BIN" "$work/bin"
	for b in "$dir"/*.sh; do
		[ -e "$b" ] || continue
		n=$((n + 1))
		rc=0
		# The timeout only turns a hung example into a failure: far above
		# what any example takes on a slow, loaded machine.
		(cd "$work" && timeout 600 bash -e -o pipefail "$b" > "$work/.out" 2> "$work/.err") || rc=$?
		if [ -f "$work/.bgpid" ]; then
			kill "$(cat "$work/.bgpid")" 2>/dev/null || true
			wait_for pid_gone "$(cat "$work/.bgpid")"
			rm -f "$work/.bgpid"
		fi
		if [ "$rc" -ne 0 ]; then
			echo "example ${b##*/} failed with status $rc:"
			sed 's/^/    /' "$b"
			echo "--- stdout (tail):"; tail -5 "$work/.out"
			echo "--- stderr (tail, no stats):"; grep -v '"msg":"stats"' "$work/.err" | tail -8
			return 1
		fi
	done
	[ "$n" -gt 0 ] || { echo "no examples in $dir"; return 1; }
}

page_examples_run() {
	extract_man "$REPO/man/$1" "$BATS_TEST_TMPDIR/ex"
	add_live_run "$BATS_TEST_TMPDIR/ex"
	run_blocks "$BATS_TEST_TMPDIR/ex"
}

@test "every man page lints clean with mandoc -Tlint -Wwarning" {
	command -v mandoc >/dev/null || skip "mandoc not installed"
	for page in "$REPO"/man/*.[157]; do
		run mandoc -Tlint -Wwarning "$page"
		[ -z "$output" ] || { echo "$output"; false; }
	done
}

@test "the EXAMPLES of kerf(1) run" {
	page_examples_run kerf.1
}

@test "the EXAMPLES of kerf-acquire(1) run" {
	page_examples_run kerf-acquire.1
}

@test "the EXAMPLES of kerf-validate(1) run" {
	page_examples_run kerf-validate.1
}

@test "the EXAMPLES of kerf-detect(1) run" {
	page_examples_run kerf-detect.1
}

@test "the EXAMPLES of kerf-persist(1) run" {
	page_examples_run kerf-persist.1
}

@test "the EXAMPLES of kerf-project(1) run" {
	page_examples_run kerf-project.1
}

@test "the EXAMPLES of kerf-tool(1) run" {
	page_examples_run kerf-tool.1
}

@test "the EXAMPLES of kerf-profile(5) run" {
	page_examples_run kerf-profile.5
}

@test "the EXAMPLES of kerf-events(5) run" {
	page_examples_run kerf-events.5
}

@test "the EXAMPLES of kerf(7) run" {
	page_examples_run kerf.7
}

@test "every shell block of README.md runs" {
	extract_readme "$REPO/README.md" "$BATS_TEST_TMPDIR/ex"
	add_live_run "$BATS_TEST_TMPDIR/ex"
	run_blocks "$BATS_TEST_TMPDIR/ex"
}

# Every top-level member of every event the programs emit is named in
# kerf-events(5), and so is every event type.
@test "kerf-events(5) names every event type and field the programs emit" {
	text=$(mandoc -Tascii "$REPO/man/kerf-events.5" | col -b)
	cd "$BATS_TEST_TMPDIR"
	{
		kerf-acquire --diameter 100 --wafers 1 --inject alarm@20:7:warning \
			--inject alarm@30:9:irrecoverable | kerf-detect
		kerf-acquire --klarf "$DATA"/klarf/amat-complus3t.001 "$DATA"/klarf/jk-simple12.klarf
	} 2>/dev/null | jq -r 'del(.data) | ["type:" + .type] + [keys[]] | .[]' | sort -u > names
	[ "$(wc -l < names)" -gt 40 ]
	while read -r name; do
		grep -qwF -- "$name" <<< "$text" || { echo "kerf-events(5) does not name '$name'"; false; }
	done < <(sed 's/^type://' names)
}

@test "kerf-events(5) names every member of summary.json and status.json" {
	text=$(mandoc -Tascii "$REPO/man/kerf-events.5" "$REPO/man/kerf.1" | col -b)
	# A run that ends on a critical alarm, so that the cause and the
	# alarms are filled in too.
	run kerf run -C "$BATS_TEST_TMPDIR/r" --wafers 1 --no-project \
		--acquire-arg=--diameter --acquire-arg=100 \
		--acquire-arg=--inject --acquire-arg=alarm@20:7:safety
	[ "$status" -eq 3 ]
	cd "$BATS_TEST_TMPDIR/r"
	[ "$(jq '.alarms | length' summary.json)" -eq 1 ]
	for name in $(jq -r '[paths | map(select(type == "string")) | last] | unique | .[]' \
		summary.json status.json) $(jq -r .kind timeline.ndjson | sort -u); do
		case $name in W01|SIMLOT|kerf-*|null) continue ;; esac
		grep -qwF -- "$name" <<< "$text" || { echo "member or kind '$name' is not documented"; false; }
	done
}

@test "kerf(1) documents every member status_doc.h names for status.json, and every member of a results.ndjson record" {
	[ -x "$KERF_UNIT/doc-keys" ] || skip "doc-keys not built (make units)"
	text=$(mandoc -Tascii "$REPO/man/kerf.1" | col -b)
	status_text=$(awk '/^   status.json/,/^   timeline.ndjson/' <<< "$text")
	batch_text=$(awk '/^BATCH DIRECTORY FILES/,/^ENVIRONMENT/' <<< "$text")
	[ -n "$status_text" ] && [ -n "$batch_text" ]
	run "$KERF_UNIT/doc-keys"
	assert_success
	[ "${#lines[@]}" -gt 80 ]
	for line in "${lines[@]}"; do
		read -r doc where key <<< "$line"
		case $doc in
		status.json) grep -qwF -- "$key" <<< "$status_text" ;;
		results.ndjson) grep -qwF -- "$key" <<< "$batch_text" ;;
		*) false ;;
		esac || { echo "kerf(1) does not document the $doc member '$key' (in $where)"; false; }
	done
}

complete_words() {
	# complete_words WORD...: COMPREPLY for the last word, as bash would.
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _kerf; printf "%s\n" "${COMPREPLY[@]}"' \
		_ "$REPO/scripts/kerf.bash-completion" "$@"
}

@test "bash completion offers kerf's subcommands for 'kerf r<TAB>'" {
	run complete_words kerf r
	assert_success
	assert_line run
	assert_line resume
	refute_line status
	if kerf --help | grep -q 'kerf reprocess'; then
		assert_line reprocess
		run complete_words kerf reprocess --
		assert_line --outdir
		assert_line --resume-failed
		assert_line --detect-arg
		refute_line --stage
	fi
}

@test "bash completion offers kerf run's options for 'kerf run --<TAB>'" {
	run complete_words kerf run --
	assert_success
	for o in --wafers --stage --optional --rundir --echo --record; do assert_line "$o"; done
	refute_line --json
	refute_line --abort
	run complete_words kerf -C /tmp stop --
	assert_line --abort
	assert_line --wait
	run complete_words kerf run --echo ""
	assert_output "$(printf 'warn\nall\nnone')"
}

@test "bash completion offers a stage's options for 'kerf-acquire --<TAB>'" {
	for p in kerf-acquire kerf-validate kerf-detect kerf-persist kerf-project kerf-tool; do
		run complete_words "$p" --
		assert_success
		for o in $("$p" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
			assert_line "$o"
		done
	done
	run complete_words kerf-acquire --re
	assert_output "$(printf -- '--ready-timeout\n--recipe\n--reconnect\n--record\n--replay')" 
	run complete_words kerf-validate --on-gap r
	assert_output reject
	run complete_words kerf-tool --listen h
	assert_output hsms:127.0.0.1:
	run complete_words kerf-acquire --listen t
	assert_output tcp:127.0.0.1:
	run complete_words kerf-acquire --listen h
	assert_output hsms:127.0.0.1:
	run complete_words kerf-acquire --connect h
	assert_output hsms:127.0.0.1:
}

@test "kerf(7) lists every failpoint the programs have, with its program, and no other" {
	run --separate-stderr env KERF_FAILPOINT=list kerf
	assert_success
	diff -u <(printf '%s\n' "$output" | cut -f1,2) \
		<(sed -n '/^\.Ss Crash testing with failpoints/,/^\.El/p' "$BATS_TEST_DIRNAME/../man/kerf.7" |
			awk '$1 == ".It" && $2 == "Sy" { print $3 "\t" $6 }')
}

#!/usr/bin/env bats
# Cross-cutting proofs that kerf keeps working, loses nothing and lets
# nothing escape its run directory: a full file system and the file size
# limit (RLIMIT_FSIZE) under kerf-persist and the supervisor; hostile run,
# lot and wafer ids; symbolic links planted in the run directory; a full
# standard output for every program; raw NUL bytes on every stage's input.
#
# The full-disk tests mount a small tmpfs (they need root; they skip when
# mount is refused).
load common
bats_require_minimum_version 1.5.0

setup_file() {
	# A small stream as kerf-persist gets it: 2 wafers, about 250 KB.
	local d=$BATS_FILE_TMPDIR
	kerf-acquire --wafers 2 --die-px 16 2>/dev/null | kerf-validate 2>/dev/null |
		kerf-detect 2>/dev/null >"$d/detected.ndjson"
	kerf-acquire --wafers 1 --pitch 30000 --die-px 16 2>/dev/null >"$d/small.ndjson"
}

setup() {
	cd "$BATS_TEST_TMPDIR"
	S=$BATS_FILE_TMPDIR/detected.ndjson
	SMALL=$BATS_FILE_TMPDIR/small.ndjson
	MNT=
}

teardown() {
	if [ -n "$MNT" ]; then umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true; fi
}

# small_fs SIZE: a tmpfs of SIZE at ./small ($MNT), or skip.
small_fs() {
	MNT=$BATS_TEST_TMPDIR/small
	mkdir -p "$MNT"
	if ! mount -t tmpfs -o size="$1" tmpfs "$MNT" 2>/dev/null; then
		MNT=
		skip "cannot mount a tmpfs here (needs root)"
	fi
}

# The default pipeline, small and quick: kerf run -C DIR [ARGS...]
small_run() {
	local dir=$1
	shift
	kerf run -C "$dir" --wafers 1 --acquire-arg=--pitch --acquire-arg=30000 \
		--acquire-arg=--die-px --acquire-arg=16 "$@" </dev/null
}

# whole DIR: nothing half-written in a run directory: no temporary file
# left, every JSON file parses, every KLARF reads back to its EndOfFile,
# every SVG renders (rsvg-convert, from scripts/deps), and the journal
# verifies.
whole() {
	local d=$1 f tmp
	tmp=$(find "$d" -name '*.tmp*')
	[ -z "$tmp" ] || { echo "temporary files left: $tmp"; return 1; }
	for f in "$d"/*.json; do
		[ -e "$f" ] || continue
		jq empty "$f" || { echo "broken JSON: $f"; return 1; }
	done
	for f in "$d"/klarf/*.klarf; do
		[ -e "$f" ] || continue
		[ "$(tail -n 1 "$f")" = "EndOfFile;" ] || { echo "KLARF without its end: $f"; return 1; }
		kerf-acquire --klarf "$f" >/dev/null 2>&1 || { echo "KLARF does not read: $f"; return 1; }
	done
	for f in "$d"/wafermap/*.svg; do
		[ -e "$f" ] || continue
		rsvg-convert "$f" >/dev/null || { echo "broken SVG: $f"; return 1; }
	done
	if [ -d "$d/journal" ]; then
		kerf-persist --verify -C "$d" >/dev/null || { echo "journal of $d does not verify"; return 1; }
	fi
}

# ---- a full file system, the file size limit ----

@test "kerf-persist on a full file system exits 74 naming the file and the cause, and leaves nothing half-written" {
	small_fs 224k
	run -74 kerf-persist -C "$MNT/r" <"$S"
	# Which file meets the full disk first, a journal segment or the
	# wafer's KLARF, depends on where the batches end.
	[[ "$output" =~ "cannot write '$MNT/r/"(journal/seg-[0-9]+\.ndjson|klarf/[^\']+\.klarf)"': No space left on device" ]]
	whole "$MNT/r"
	# What it passed on before failing is journaled (durable first).
	run kerf-persist --verify -C "$MNT/r"
	[[ "$output" =~ verified:\ 1\ segments,\ [0-9]+\ batches,\ [0-9]+\ events ]]
}

@test "kerf run on a full file system fails, with the stage and the cause in status.json" {
	small_fs 256k
	run -1 kerf run -C "$MNT/r" --wafers 2 --acquire-arg=--die-px --acquire-arg=16 </dev/null
	[ "$(jq -r .state "$MNT/r/status.json")" = failed ]
	[ "$(jq -r .outcome.cause.stage "$MNT/r/status.json")" = kerf-persist ]
	[[ "$(jq -r .outcome.cause.error "$MNT/r/status.json")" == *"No space left on device"* ]]
	# The metrics for monitoring never say it still runs: they say how
	# it ended, whole, or (no room even for them) are not there.
	if [ -e "$MNT/r/metrics.prom" ]; then
		grep -qx 'kerf_run_state{run="r",state="failed"} 1' "$MNT/r/metrics.prom"
		[ "$(tail -n 1 "$MNT/r/metrics.prom")" = "# EOF" ]
	fi
	whole "$MNT/r"
}

@test "kerf-persist past the file size limit (ulimit -f) exits 74 with 'File too large', journal consistent" {
	run -74 bash -c 'ulimit -f 100; exec kerf-persist -C r --batch 50 <"$1"' _ "$S"
	[[ "$output" == *"cannot write 'r/journal/seg-00000001.ndjson': File too large"* ]]
	whole r
	[ "$(stat -c %s r/journal/seg-00000001.ndjson)" -le 102400 ]
}

@test "kerf run under the file size limit fails, with the stage and the cause in status.json" {
	run -1 bash -c 'ulimit -f 100; exec kerf run -C r --wafers 2 --acquire-arg=--die-px --acquire-arg=16 </dev/null'
	[ "$(jq -r .state r/status.json)" = failed ]
	[ "$(jq -r .outcome.cause.stage r/status.json)" = kerf-persist ]
	[[ "$(jq -r .outcome.cause.error r/status.json)" == *"File too large"* ]]
	whole r
}

@test "past a tiny file size limit kerf and its stages report 'File too large' instead of dying of SIGXFSZ" {
	# 4 KiB: even status.json cannot grow; nobody may be killed mid-write.
	run bash -c 'ulimit -f 4; exec kerf run -C r --wafers 2 --acquire-arg=--die-px --acquire-arg=16 </dev/null'
	[ "$status" -eq 1 ] || { echo "exit $status (153 is SIGXFSZ)"; false; }
	[[ "$output" == *"File too large"* ]]
	[[ "$output" == *"run 'r' failed"* ]]
	[ -z "$(find r -name '*.tmp*')" ]
	jq empty r/status.json
	kerf-persist --verify -C r >/dev/null
}

@test "a stage that fails to write its files fails the run even when its consumer is optional" {
	# kerf-project (optional) and kerf-persist both hit the full disk at
	# once: exit 74 from both must not pass for a broken pipe.
	small_fs 256k
	run -1 kerf run -C "$MNT/r" --wafers 2 --acquire-arg=--die-px --acquire-arg=16 </dev/null
	[ "$(jq -r .outcome.exit_code "$MNT/r/status.json")" = 1 ]
	[ "$(jq -r '.stages[] | select(.name == "kerf-persist") | .verdict' "$MNT/r/status.json")" = cause ]
}

# ---- every write checked, the last flush of standard output too ----

@test "every program reports a full standard output as an error, exit 74" {
	kerf-persist -C r <"$S" >persisted.ndjson 2>/dev/null
	kerf-acquire --wafers 1 --pitch 30000 --record rec.ndjson >/dev/null 2>&1
	# full CMD...: CMD with standard output on /dev/full (stdin as given).
	full() {
		run -74 bash -c 'exec "$@" 2>&1 >/dev/full' _ "$@"
		[[ "$output" == *"No space left on device"* ]] || { echo "no cause given by: $*"; echo "$output"; return 1; }
	}
	full kerf-acquire --wafers 1 --pitch 30000
	full kerf-acquire --replay rec.ndjson
	full kerf-acquire --klarf "$DATA/klarf/jk-simple12.klarf"
	full kerf-validate -r rej.ndjson <"$SMALL"
	full kerf-detect --rejects rej.ndjson <"$SMALL"
	full kerf-persist -C r2 <"$S"
	full kerf-persist --verify -C r
	full kerf-project -C r <persisted.ndjson
	full kerf-project -C r --snapshots --interval 100 <persisted.ndjson
	small_run k >/dev/null 2>&1
	full kerf status -C k
	full kerf status -C k --json
}

@test "every program reports a failed write of its other files (rejects, --record, --truth), exit 74" {
	printf 'not json\n' >bad.ndjson
	grep -m1 '"type":"die"' "$SMALL" | jq -c '.xxh3 = "0000000000000000"' >baddie.ndjson
	run -74 kerf-validate -r /dev/full <bad.ndjson
	[[ "$output" == *"cannot write reject record to '/dev/full': No space left on device"* ]]
	run -74 kerf-detect --rejects /dev/full <baddie.ndjson
	[[ "$output" == *"cannot write reject record to '/dev/full': No space left on device"* ]]
	run -74 bash -c 'exec kerf-acquire --wafers 1 --pitch 30000 --record /dev/full 2>&1 >/dev/null'
	[[ "$output" == *"cannot write '/dev/full': No space left on device"* ]]
	run -74 bash -c 'exec kerf-acquire --wafers 1 --pitch 30000 --truth /dev/full 2>&1 >/dev/null'
	[[ "$output" == *"cannot write '/dev/full': No space left on device"* ]]
	# A truth that fills stdio's buffer fails in the middle of the lot, not at the end.
	run -74 bash -c 'exec kerf-acquire --wafers 2 --defect-rate 5 --truth /dev/full 2>&1 >/dev/null'
	[[ "$output" == *"cannot write '/dev/full': No space left on device"* ]]
}

@test "kerf run with a full standard output: the dashboard stage fails and the run says so" {
	run small_run k
	[ "$status" -eq 0 ]
	small_run k2 >/dev/full 2>/dev/null
	[ "$(jq -r .outcome.degraded k2/status.json)" = true ]
	[ "$(jq -r '.outcome.degraded_stages[0]' k2/status.json)" = kerf-project ]
	grep -q 'cannot write standard output: No space left on device' k2/log.ndjson
}

# ---- hostile names ----

HOSTILE=('../../escape' '/tmp/abs' '..' '.' 'a/b' 'sp ace' "q'uo\"te" $'new\nline'
	$'ctl\x01\x1b[31m\x7f' '$(touch pwned)' '`touch pwned2`' ';touch pwned3' '-rf' '*' 'naïve')

@test "hostile run ids stay inside the run directory and break no file" {
	local id i=0
	for id in "${HOSTILE[@]}" "$(head -c 256 /dev/zero | tr '\0' 'x')"; do
		i=$((i + 1))
		mkdir -p "w$i"
		before=$(cd "w$i" && find . | sort)
		run small_run "w$i/runs/r" --run "$id"
		[ "$status" -eq 0 ] || { echo "run id $(printf %q "$id"): exit $status"; echo "$output"; false; }
		# Only the run directory is new.
		after=$(cd "w$i" && find . -path ./runs -prune -o -print | sort)
		[ "$before" = "$after" ] || { echo "files outside for $(printf %q "$id")"; diff <(echo "$before") <(echo "$after"); false; }
		[ "$(jq -r .run "w$i/runs/r/status.json")" = "$id" ]
		[ "$(jq -r '.outcome.exit_code' "w$i/runs/r/status.json")" = 0 ]
		[ ! -s "w$i/runs/r/rejects.ndjson" ] || { echo "rejects for $(printf %q "$id")"; head -2 "w$i/runs/r/rejects.ndjson"; false; }
		whole "w$i/runs/r"
	done
	# Never a shell: the ids that would run commands did not.
	[ -z "$(find "$BATS_TEST_TMPDIR" /tmp "$HOME" -maxdepth 4 -name 'pwned*' 2>/dev/null | head -1)" ]
}

@test "hostile run ids name their default directory inside runs/, one each" {
	local id n
	for id in '../../escape' '/tmp/abs' '..' '.' 'a/b' 'a b' $'a\nb' '$(touch pwned)'; do
		run small_run_default "$id"
	done
	# Every run has its own directory directly under runs/: nothing
	# escaped, and the ids that make the same safe name ("a/b", "a b",
	# $'a\nb') did not share one.
	n=$(find runs -mindepth 1 -maxdepth 1 -type d | wc -l)
	[ "$n" -eq 8 ] || { ls -la runs; false; }
	[ "$(find . -mindepth 1 -maxdepth 1)" = ./runs ]
	[ ! -e ../escape ] && [ ! -e /tmp/abs ] && [ ! -e pwned ]
	for d in runs/*/; do
		[ -L "${d%/}" ] && continue
		whole "${d%/}"
	done
}

small_run_default() {
	kerf run --run "$1" --wafers 1 --acquire-arg=--pitch --acquire-arg=30000 \
		--acquire-arg=--die-px --acquire-arg=16 </dev/null >/dev/null 2>&1
}

@test "ids longer than kerf-validate accepts are refused up front with a clear usage error" {
	local big
	big=$(head -c 10240 /dev/zero | tr '\0' 'x')
	run -64 kerf run -C r --run "$big"
	[[ "$output" == *"--run: the run id must be 1 to 256 bytes"* ]]
	[ ! -e r ]
	run -64 kerf-acquire --run "$big"
	[[ "$output" == *"--run: the run id is longer than 256 bytes"* ]]
	run -64 kerf-acquire --lot "$big"
	[[ "$output" == *"--lot: the lot id must be 1 to 256 bytes"* ]]
}

# pipeline DIR: acquire's stream on stdin through validate, detect,
# persist and project into DIR.
pipeline() {
	kerf-validate -r "$1.rejects" | kerf-detect --rejects "$1.rejects" |
		kerf-persist -C "$1" | kerf-project -C "$1" >/dev/null
}

@test "hostile lot ids make safe KLARF names inside klarf/ and read back unchanged" {
	local lot i=0 k
	for lot in "${HOSTILE[@]}" "$(head -c 256 /dev/zero | tr '\0' 'L')"; do
		i=$((i + 1))
		kerf-acquire --wafers 1 --pitch 30000 --die-px 16 --lot "$lot" 2>/dev/null | pipeline "l$i" 2>/dev/null
		[ ! -s "l$i.rejects" ] || { echo "lot $(printf %q "$lot") rejected"; head -2 "l$i.rejects"; false; }
		run find "l$i" -name '*.klarf'
		[ "${#lines[@]}" -eq 1 ] || { echo "lot $(printf %q "$lot"): ${lines[*]}"; false; }
		k=${lines[0]}
		[[ "$k" == "l$i/klarf/"*"_W01.klarf" ]]
		whole "l$i"
		# The lot inside the file is the lot given (KLARF cannot quote '"'
		# or a line break: those become "'").
		want=$(printf '%s' "$lot" | tr '"\n' "''")
		got=$(kerf-acquire --klarf "$k" 2>/dev/null | jq -r 'select(.type == "run_start") | .lot')
		[ "$got" = "$want" ] || { echo "lot $(printf %q "$lot") read back as $(printf %q "$got")"; false; }
	done
	[ -z "$(find "$BATS_TEST_TMPDIR" -maxdepth 1 -name 'pwned*')" ]
}

@test "hostile wafer ids make safe KLARF and wafer map names inside the run directory" {
	local w i=0
	for w in "${HOSTILE[@]}" "$(head -c 256 /dev/zero | tr '\0' 'W')"; do
		i=$((i + 1))
		jq -c --arg w "$w" 'if .wafer then .wafer = $w else . end' "$SMALL" | pipeline "h$i" 2>/dev/null
		[ ! -s "h$i.rejects" ] || { echo "wafer $(printf %q "$w") rejected"; head -2 "h$i.rejects"; false; }
		[ "$(find "h$i/klarf" -name '*.klarf' | wc -l)" -eq 1 ]
		[ "$(find "h$i/wafermap" -name '*.svg' | wc -l)" -eq 1 ]
		[ "$(find "h$i" -mindepth 1 -maxdepth 1 | wc -l)" -le 6 ]
		[ "$(jq -r '.wafers[0].wafer' "h$i/summary.json")" = "$w" ]
		whole "h$i"
	done
}

@test "two wafers whose ids make the same safe name get a KLARF file and a map each" {
	kerf-acquire --wafers 2 --pitch 30000 --die-px 16 2>/dev/null |
		jq -c 'if .wafer == "W01" then .wafer = "W/1" elif .wafer == "W02" then .wafer = "W 1" else . end' |
		pipeline r 2>/dev/null
	[ "$(ls r/klarf/*.klarf | wc -l)" -eq 2 ]
	[ "$(ls r/wafermap/*.svg | wc -l)" -eq 2 ]
	# Each file holds its own wafer, and summary.json names the right one.
	for k in $(jq -r '.wafers[].klarf' r/summary.json); do
		[ -f "r/$k" ]
	done
	[ "$(jq -r '.wafers | map(.klarf) | unique | length' r/summary.json)" -eq 2 ]
	[ "$(kerf-acquire --klarf r/klarf/*.klarf 2>/dev/null | jq -r 'select(.type == "wafer_start") | .wafer' | sort | tr '\n' ,)" = "W 1,W/1," ]
	whole r
}

# ---- symbolic links planted in the run directory ----

@test "no program follows a symbolic link planted in the run directory" {
	local n
	for n in status.json metrics.prom summary.json rejects.ndjson log.ndjson timeline.ndjson lock index.html \
		acquired.ndjson klarf/SIMLOT_W01.klarf wafermap/W01.svg journal/seg-00000001.ndjson \
		status.json.tmp summary.json.tmp; do
		rm -rf R outside
		mkdir -p R/klarf R/wafermap R/journal
		printf 'untouched\n' >outside
		ln -s "$PWD/outside" "R/$n"
		run small_run R --record
		# The target outside is untouched, whatever the run made of it.
		[ "$(cat outside)" = untouched ] || { echo "$n: the link was followed"; echo "$output"; false; }
		if [ -L "R/$n" ]; then
			# Kept as a link: then the run did not use that file and
			# either refused it with a clear error, or it was optional.
			case $n in
			*.tmp)
				;; # not a name kerf uses ("NAME.tmp.PID" are): never touched
			index.html | klarf/* | wafermap/* | status.json | summary.json)
				echo "$n: left as a link, yet the run needs it"; false ;;
			log.ndjson)
				[[ "$output" == *"cannot open"*"log.ndjson': Too many levels of symbolic links"* ]] ;;
			*)
				[ "$status" -ne 0 ] || { echo "$n: a link kept, yet the run completed"; false; }
				[[ "$output" == *"Too many levels of symbolic links"* ]] ;;
			esac
		else
			# Replaced by a file of its own (an atomic rename).
			[ -f "R/$n" ] || [ "$status" -ne 0 ]
		fi
		[ "$status" -eq 0 ] || [ "$status" -eq 1 ] || [ "$status" -eq 74 ] || { echo "$n: exit $status"; false; }
		if [ "$status" -eq 1 ]; then
			[[ "$(jq -r .outcome.cause.error R/status.json)" == *"Too many levels of symbolic links"* ]]
		fi
	done
}

@test "no program writes through a symbolic link planted for a directory of the run" {
	local n
	for n in klarf wafermap journal; do
		rm -rf R outside
		mkdir -p R outside
		ln -s "$PWD/outside" "R/$n"
		run small_run R
		[ -z "$(ls -A outside)" ] || { echo "$n: wrote through the link: $(ls outside)"; false; }
		if [ "$n" = wafermap ]; then
			# The maps are kerf-project's, an optional stage: degraded.
			[ "$status" -eq 0 ]
			[ "$(jq -r .outcome.degraded R/status.json)" = true ]
		else
			[ "$status" -eq 1 ]
			# kerf-persist refused the link and said why, naming it.
			[ "$(jq -r '.stages[] | select(.name == "kerf-persist") | .exit' R/status.json)" = 74 ]
			jq -n -e --arg p "R/$n" 'any(inputs; .stage == "kerf-persist" and .lvl == "error" and (.msg | contains($p)))' \
				R/log.ndjson >/dev/null
			blamed_persist R "R/$n" || { echo "$n: $output"; jq -c 'select(.kind | test("stage_exit|verdict|cause"))' R/timeline.ndjson; false; }
		fi
	done
}

# blamed_persist DIR PATH: the run in DIR names kerf-persist as its
# cause, with its error about PATH; or else a broken pipe upstream of it
# that nothing downstream explained within its suspect window, as the
# timeline's verdict record shows (kerf(1): "only when no stage
# downstream exits in that time is the broken pipe blamed").  That
# window is the one choice kerf leaves to timing.
blamed_persist() {
	local stage
	stage=$(jq -r .outcome.cause.stage "$1/status.json")
	if [ "$stage" = kerf-persist ]; then
		[[ "$(jq -r .outcome.cause.error "$1/status.json")" == *"$2"* ]]
	else
		[ "$(jq -r --arg s "$stage" 'select(.kind == "verdict" and .stage == $s) | .verdict' "$1/timeline.ndjson")" = cause ]
	fi
}

@test "the simulator's streams pass kerf-validate at any pitch (a grid may start before the wafer's edge)" {
	local d p
	for d in 200 300; do
		for p in 30000 40000 45000; do
			kerf-acquire --wafers 1 --diameter "$d" --pitch "$p" --die-px 8 2>/dev/null >a.ndjson
			run kerf-validate -r rej.ndjson <a.ndjson
			[ "$status" -eq 0 ]
			[ ! -s rej.ndjson ] || { echo "$d mm, pitch $p:"; head -c 300 rej.ndjson; false; }
		done
	done
}

# with_nul FILE LINE...: FILE with a raw NUL byte put after the first
# number of each LINE (`"seq":5,` becomes `"seq":5<NUL>,`), where
# jansson would read past it.
with_nul() {
	local f=$1 script=
	shift
	local l
	for l in "$@"; do script+="${l}s/\"seq\":\([0-9]*\),/\"seq\":\1\x00,/;"; done
	sed "$script" "$f"
}

# no_nul FILE: FILE holds no NUL byte.
no_nul() {
	tr -d '\000' <"$1" | cmp -s - "$1"
}

# reasons FILE: "reason line" of each reject record in FILE.
reasons() {
	jq -r 'select(.reason and .line != null) | "\(.reason) \(.line)"' "$1"
}

@test "kerf-detect rejects lines holding a raw NUL byte with reason not_json and passes no NUL on" {
	# Line 2 is a state event, which detect passes on; line 5 a die.
	with_nul "$SMALL" 2 5 >in
	! no_nul in
	kerf-detect -j 2 --keep-images --rejects rej <in >out 2>err
	no_nul out
	[ "$(reasons rej)" = "$(printf 'not_json 2\nnot_json 5')" ]
	[ "$(jq -r 'select(.line == 2) | .msg' rej)" = "at byte 44: raw control byte 0x00" ]
	# Every other line is there: the other state events, every other die
	# image (--keep-images) with its die_done.
	[ "$(grep -c '"type":"state"' out)" = "$(($(grep -c '"type":"state"' "$SMALL") - 1))" ]
	[ "$(grep -c '"type":"die_done"' out)" = "$(($(grep -c '"type":"die"' "$SMALL") - 1))" ]
}

@test "kerf-detect keeps a too-long line's first bytes, NUL bytes and all, in its reject record" {
	{ head -1 "$SMALL"; printf '{"type":"state","note":"a\0b%02000d"}\n' 0; } >in
	kerf-detect --max-line 1K --rejects rej <in >out 2>err
	[ "$(jq -r '[.reason, .len, .raw_cut] | @tsv' rej)" = "$(printf 'too_long\t2029\ttrue')" ]
	# The NUL is shown as U+FFFD and the bytes after it are the line's.
	[ "$(jq -r '.raw' rej)" = "$(printf '{"type":"state","note":"a\xef\xbf\xbdb%0485d' 0)" ]
}

@test "kerf-persist rejects a line holding a raw NUL byte with reason not_json and journals no NUL" {
	n=$(grep -n '"type":"defect"' "$S" | head -1 | cut -d: -f1)
	with_nul "$S" "$n" >in
	kerf-persist -C R <in >out 2>err
	no_nul out
	cat R/journal/seg-*.ndjson >journal
	no_nul journal
	[ "$(reasons R/rejects.ndjson)" = "not_json $n" ]
	[ "$(($(wc -l <out) + 1))" = "$(wc -l <in)" ]
	kerf-persist --verify -C R
}

@test "kerf-acquire --replay rejects a recorded line holding a raw NUL byte with reason not_json" {
	with_nul "$SMALL" 7 >rec
	kerf-acquire --replay rec >out 2>err
	no_nul out
	[ "$(reasons err)" = "not_json 7" ]
	# The rest is replayed byte for byte.
	sed 7d "$SMALL" | cmp - out
}

#!/usr/bin/env bats
# One wafer account (lib/wafer.h): kerf-detect's wafer_summary events,
# kerf-persist's summary.json and KLARF files, and kerf-project's maps,
# index and summary say the same of every wafer: its dies, defects,
# defective dies, density and late events.
#
# The run is a simulated lot of three wafers stopped in the third
# (kerf-acquire --inject hold@N, then SIGTERM: the stop comes at an exact
# event, no timing), with two rows of the first wafer's dies moved late:
# one right after the first wafer's wafer_end, before the second wafer
# starts, and one after the second wafer started.

load common

setup_file() {
	F="$BATS_FILE_TMPDIR"
	export F
	kerf-acquire --sim --seed 7 --wafers 3 --inject hold@1500 > "$F/acq.ndjson" 2> "$F/acq.err" &
	local pid=$!
	lines_ge() { [ "$(wc -l < "$1")" -ge "$2" ]; }
	wait_for lines_ge "$F/acq.ndjson" 1500 || { kill "$pid"; return 1; }
	kill -TERM "$pid"
	wait "$pid"
	# W01's row 21 right after W01's wafer_end; its row 28 after W02's wafer_start.
	awk '
		/"type":"die",/ && /"wafer":"W01"/ && /"row":21,/ { a[na++] = $0; next }
		/"type":"die",/ && /"wafer":"W01"/ && /"row":28,/ { b[nb++] = $0; next }
		{ print }
		/"type":"wafer_end",/ && /"wafer":"W01"/ { for (i = 0; i < na; i++) print a[i] }
		/"type":"wafer_start",/ && /"wafer":"W02"/ { for (i = 0; i < nb; i++) print b[i] }
	' "$F/acq.ndjson" > "$F/in.ndjson"
	kerf-detect < "$F/in.ndjson" > "$F/detected.ndjson" 2> "$F/det.err"
	R="$F/run"
	kerf-persist -C "$R" < "$F/detected.ndjson" 2> "$F/per.err" |
		kerf-project -C "$R" > "$F/project.out" 2> "$F/proj.err"
}

setup() {
	R="$F/run"
	# The figures computed here from the persisted stream, per wafer:
	# "WAFER DIES DEFECTS DEFECTIVE_DIES DENSITY LATE".  A wafer's own
	# events are those up to its wafer_end (and its one wafer_summary);
	# a die_done or defect after it is late.
	jq -s -r '
		(map(select(.type == "run_start"))[0].pitch_um) as $p
		| reduce .[] as $e ({ended: {}, w: {}};
			if ($e.wafer | type) != "string" or $e.type == "wafer_summary" then .
			elif .ended[$e.wafer] then .w[$e.wafer].late += 1
			elif $e.type == "wafer_end" then .ended[$e.wafer] = true
			elif $e.type == "die_done" then .w[$e.wafer].dies += [[$e.col, $e.row]]
			elif $e.type == "defect" then .w[$e.wafer].n += 1 | .w[$e.wafer].dd += [[$e.col, $e.row]]
			else . end)
		| .w | to_entries[]
		| (.value.dies | unique | length) as $d | (.value.n // 0) as $n
		| "\(.key) \($d) \($n) \(.value.dd // [] | unique | length) \($n / ($d * $p[0] * $p[1] / 1e8)) \(.value.late // 0)"
	' "$F/detected.ndjson" > "$BATS_TEST_TMPDIR/expected"
}

# close A B REL: |A - B| <= REL * |B| (plus a hair for zero).
close() {
	awk -v a="$1" -v b="$2" -v r="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; if (b < 0) b = -b; exit !(d <= r * b + 1e-12) }'
}

@test "the run has late events between a wafer's end and the next start, and a stopped wafer" {
	[ "$(jq -r 'select(.type == "run_end") | .status' "$F/detected.ndjson")" = stopped ]
	jq -c '.wafers[] | [.wafer, .complete, .dies_planned, .dies]' "$R/summary.json" > "$BATS_TEST_TMPDIR/w"
	grep -qx '\["W03",true,616,[0-9]*\]' "$BATS_TEST_TMPDIR/w"
	[ "$(jq '.wafers[2].dies' "$R/summary.json")" -lt 616 ]
	# W01's late events come both before and after W02's wafer_start.
	jq -r '[.type, .wafer // ""] | join(" ")' "$F/detected.ndjson" |
		sed -n '/^wafer_summary W01$/,/^wafer_start W02$/p' > "$BATS_TEST_TMPDIR/between"
	grep -q '^die_done W01$' "$BATS_TEST_TMPDIR/between"
	grep -q '^defect W01$' "$BATS_TEST_TMPDIR/between"
	jq -r '[.type, .wafer // ""] | join(" ")' "$F/detected.ndjson" |
		sed -n '/^wafer_start W02$/,$p' | grep -q '^die_done W01$'
	[ "$(wc -l < "$BATS_TEST_TMPDIR/expected")" -eq 3 ]
	[ "$(awk '$1 == "W01" { print $6 }' "$BATS_TEST_TMPDIR/expected")" -gt 0 ]
}

@test "summary.json counts each wafer's dies, defects, density and late events as the stream does" {
	jq -r '.wafers[] | "\(.wafer) \(.dies) \(.defects) \(.defective_dies) \(.density_cm2) \(.late_events // 0)"' \
		"$R/summary.json" > "$BATS_TEST_TMPDIR/summary"
	while read -r w d n dd dens late; do
		read -r w2 d2 n2 dd2 dens2 late2 <&3
		[ "$w $d $n $dd $late" = "$w2 $d2 $n2 $dd2 $late2" ]
		close "$dens2" "$dens" 1e-9
	done < "$BATS_TEST_TMPDIR/expected" 3< "$BATS_TEST_TMPDIR/summary"
}

@test "kerf-detect's wafer_summary events give each wafer's own dies, defects and density" {
	jq -r 'select(.type == "wafer_summary") | "\(.wafer) \(.dies) \(.defects) \(.defective_dies) \(.density_cm2)"' \
		"$F/detected.ndjson" > "$BATS_TEST_TMPDIR/summaries"
	while read -r w d n dd dens late; do
		read -r w2 d2 n2 dd2 dens2 <&3
		[ "$w $d $n $dd" = "$w2 $d2 $n2 $dd2" ]
		# Rounded to four decimals.
		awk -v a="$dens2" -v b="$dens" 'BEGIN { d = a - b; exit !(d <= 0.00005 && d >= -0.00005) }'
	done < "$BATS_TEST_TMPDIR/expected" 3< "$BATS_TEST_TMPDIR/summaries"
}

@test "each wafer's KLARF holds its own dies and defects, and its SummaryList the same density" {
	while read -r w d n dd dens late; do
		k="$R/$(jq -r --arg w "$w" '.wafers[] | select(.wafer == $w) | .klarf' "$R/summary.json")"
		assert_file_exists "$k"
		grep -q "^SampleTestPlan $d\$" "$k"
		# DefectList rows: the lines from DefectList to its ';'.
		[ "$(sed -n '/^DefectList/,/;$/p' "$k" | grep -c '^ [0-9]')" -eq "$n" ]
		read -r one kn kdens kd kdd < <(sed -n '/^SummaryList/{n;s/;//;p}' "$k")
		[ "$one $kn $kd $kdd" = "1 $n $d $dd" ]
		close "$kdens" "$dens" 1e-6
	done < "$BATS_TEST_TMPDIR/expected"
}

@test "kerf-project's maps, index and summary agree, and count the same late events" {
	while read -r w d n dd dens late; do
		f="$R/wafermap/$w.svg"
		attrs=$(sed -n 's/.*data-defects="\([0-9]*\)" data-defective-dies="\([0-9]*\)" data-dies="\([0-9]*\)" data-density-cm2="\([^"]*\)".*/\1 \2 \3 \4/p' "$f" | head -1)
		read -r sn sdd sd sdens <<< "$attrs"
		[ "$sn $sdd $sd" = "$n $dd $d" ]
		close "$sdens" "$dens" 1e-5
		# The text summary: "wafer W slot S: D dies, N defects on DD dies, DENS /cm2, ..., L late events".
		line=$(grep "^  wafer $w slot" "$F/project.out")
		[[ "$line" == *": $d dies, $n defects on $dd dies, $(printf '%.4g' "$dens") /cm2"* ]]
		sed -n "/<h2>Wafer $w /,/<\/div>/p" "$R/index.html" > "$BATS_TEST_TMPDIR/card"
		grep -q "<th>Defects</th><td>$n</td>" "$BATS_TEST_TMPDIR/card"
		grep -q "<th>Inspected dies</th><td>$d</td>" "$BATS_TEST_TMPDIR/card"
		if [ "$late" -gt 0 ]; then
			[[ "$line" == *", $late late events not on its map" ]]
			grep -q "<th>Late events (not on the map)</th><td>$late</td>" "$BATS_TEST_TMPDIR/card"
		else
			[[ "$line" != *late* ]]
		fi
	done < "$BATS_TEST_TMPDIR/expected"
	# The run's totals count every defect, late ones too.
	grep -q "$(jq -s 'map(select(.type == "defect")) | length' "$F/detected.ndjson") defects" "$F/project.out"
}

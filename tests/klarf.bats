#!/usr/bin/env bats
# KLARF: lib/klarf.c's reader and writer (through tests/unit/klarf-dump.c)
# and kerf-acquire --klarf, against real sample files (tests/data/klarf/).

load common
bats_require_minimum_version 1.5.0

setup() {
	: "${KERF_UNIT:=$BATS_TEST_DIRNAME/../build/release/tests}"
	DUMP="$KERF_UNIT/klarf-dump"
	K="$DATA/klarf"
	T="$BATS_TEST_TMPDIR"
}

@test "klarf reader reads every sample file with the wafers and defects of its own defect list" {
	while IFS=$'\t' read -r f wafers defects first; do
		run "$DUMP" "$K/$f"
		assert_success
		assert_equal "$(grep -c '^wafer ' <<< "$output")" "$wafers"
		assert_equal "$(grep -c '^defect ' <<< "$output")" "$defects"
		[ "$defects" -gt 0 ] || continue
		read -r id xi yi xr yr <<< "$first"
		assert_equal "$(grep -m1 '^defect ' <<< "$output")" \
			"$(grep -m1 "^defect $id die $xi $yi xrel=$xr yrel=$yr " <<< "$output")"
	done < "$K/counts.tsv"
}

@test "klarf reader's count agrees with the SummaryList of the AMAT sample" {
	run "$DUMP" "$K/amat-complus3t.001"
	assert_success
	assert_line "wafer 25 slot 25 plan 4988 defects 16"
	# The file's own summary: TESTNO NDEFECT DEFDENSITY NDIE NDEFDIE.
	run awk '/^SummaryList/ { getline; print $2, $4 }' "$K/amat-complus3t.001"
	assert_output "16 4988"
}

@test "klarf reader resolves columns through DefectRecordSpec in any order" {
	run "$DUMP" "$K/jk-klarf12Example.klarf"
	assert_success
	assert_line "defect 1 die -1 -1 xrel=5500.000 yrel=4400.000 xsize=0.000 ysize=0.000 area=0.000 dsize=0.123 class 0 test 1"
	run "$DUMP" "$K/kerf-na.klarf"
	assert_success
	assert_line "defect 1 die 0 0 xrel=10.250 yrel=20.500 xsize=NA ysize=NA area=NA dsize=NA class 0 test 1"
}

@test "klarf reader ends statements at ';', not at newlines, and skips IMAGELIST cells of any length" {
	run "$DUMP" "$K/jk-klarf12DefectListExample.klarf"
	assert_success
	# Defect 9 spans two lines; 11 and 12 carry seven images each.
	assert_line --partial "defect 9 die 1 12 xrel=4539.866"
	assert_line --partial "defect 10 die 1 12 xrel=4539.866"
	assert_line --partial "defect 13 die 1 12"
	# kerf-na.klarf: a row continues on the next line; NA reads as missing.
	run "$DUMP" "$K/kerf-na.klarf"
	assert_line "defect 2 die 1 1 xrel=11.250 yrel=30.500 xsize=2.000 ysize=NA area=NA dsize=NA class 3 test 1"
}

@test "klarf reader reads nested 1.8 files in nm as um" {
	run "$DUMP" "$K/jk-simple18.klarf"
	assert_success
	assert_line --index 0 "version 1.8 lot aLot.String size 300.000 pitch 5744.150 5410.203 origin 0.000 0.000 center 4952.008 -491.294 classes 4"
	assert_line "wafer FirstWaferId slot 25 plan 9 defects 3"
	assert_line "wafer SecondWaferId slot 3 plan 0 defects 1"
	assert_line "defect 128 die -2 -27 xrel=2782.531 yrel=487.465 xsize=5.039 ysize=3.959 area=0.177 dsize=5.039 class 0 test 2"
	run "$DUMP" "$K/jk-klarfWithImagelist.klarf"
	assert_success
	assert_line "defect 16 die -2 3 xrel=2810.580 yrel=1488.020 xsize=0.700 ysize=1.220 area=0.030 dsize=1.221 class 0 test 1"
}

@test "klarf reader rejects a WaferID without a DefectList, naming the line" {
	run "$DUMP" "$K/jk-bad12.klarf"
	assert_equal "$status" 65
	assert_output --partial "line 36: WaferID 'anotherWafer' has no DefectList"
}

@test "klarf reader rejects a DefectList row that does not fit its spec, naming the line" {
	run "$DUMP" "$K/jk-bad12DefectList.klarf"
	assert_equal "$status" 65
	assert_output --partial "line 29: "
	run "$DUMP" "$K/kerf-shortrow.klarf"
	assert_equal "$status" 65
	assert_output --partial "line 29: DefectList row has 14 values, DefectRecordSpec has 17"
}

@test "klarf reader rejects a truncated file" {
	run "$DUMP" "$K/kerf-truncated.klarf"
	assert_equal "$status" 65
	assert_output --partial "line 30: missing EndOfFile"
	head -c 3000 "$K/jk-simple18.klarf" > "$T/cut18.klarf"
	run "$DUMP" "$T/cut18.klarf"
	assert_equal "$status" 65
	assert_output --regexp 'line [0-9]+: '
}

@test "klarf_write then klarf_read gives back the same defects for every sample" {
	cut -f1 "$K/counts.tsv" | while read -r f; do
		"$DUMP" -w "$K/$f" > "$T/w.klarf"
		"$DUMP" "$K/$f" | sed 1d > "$T/a"
		"$DUMP" "$T/w.klarf" | sed 1d > "$T/b"
		diff -u "$T/a" "$T/b"
		# Writing what was read back is byte-stable.
		"$DUMP" -w "$T/w.klarf" | cmp - "$T/w.klarf"
	done
}

@test "klarf_write writes KLARF 1.2 with every statement in order and DEFDENSITY in defects/cm2" {
	"$DUMP" -w "$K/jk-simple12.klarf" > "$T/w.klarf"
	run awk '{ print $1 }' "$T/w.klarf"
	want="FileVersion FileTimestamp InspectionStationID SampleType ResultTimestamp LotID SampleSize SetupID StepID DeviceID SampleOrientationMarkType OrientationMarkLocation DiePitch DieOrigin WaferID Slot SampleCenterLocation ClassLookup InspectionTest SampleTestPlan AreaPerTest DefectRecordSpec DefectList SummarySpec SummaryList EndOfFile;"
	got=$(grep -E '^[A-Z][A-Za-z]+' -o "$T/w.klarf" | tr '\n' ' ')
	assert_equal "$got" "$(tr -d ';' <<< "$want" | sed 's/$/ /')"
	run grep -x 'FileVersion 1 2;' "$T/w.klarf"
	assert_success
	run grep -x 'DefectRecordSpec 11 DEFECTID XREL YREL XINDEX YINDEX XSIZE YSIZE DEFECTAREA DSIZE CLASSNUMBER TEST ;' "$T/w.klarf"
	assert_success
	# 1 defect on 1 die of 1.11e10 um2 = 111 cm2: 1/111 = 9.009009e-03 per cm2.
	run grep -A1 '^SummaryList' "$T/w.klarf"
	assert_line --index 1 " 1 1 9.009009e-03 1 1;"
}

@test "kerf-acquire --klarf imports every sample with one defect event per row" {
	while IFS=$'\t' read -r f wafers defects first; do
		kerf-acquire --klarf "$K/$f" > "$T/out" 2>/dev/null
		assert_equal "$(grep -c '"type":"defect"' "$T/out")" "$defects"
		assert_equal "$(grep -c '"type":"wafer_start"' "$T/out")" "$wafers"
		assert_equal "$(grep -c '"type":"wafer_end"' "$T/out")" "$wafers"
		assert_equal "$(jq -r .type "$T/out" | sed -n '1p;$p' | tr '\n' ' ')" "run_start run_end "
		# seq increases by one over all of them.
		assert_equal "$(jq -r .seq "$T/out" | awk '$1 != NR { bad = 1 } END { print bad ? "gap" : "ok" }')" ok
	done < "$K/counts.tsv"
}

@test "kerf-acquire --klarf puts each defect in its die and on the wafer in um" {
	kerf-acquire --klarf "$K/amat-complus3t.001" > "$T/out" 2>/dev/null
	# The grid spans the SampleTestPlan's dies (lines 296.. of the file).
	read -r x0 x1 y0 y1 < <(awk 'NR >= 296 && NR < 296 + 4988 { x = $1 + 0; y = $2 + 0
		if (!n || x < a) a = x; if (!n || x > b) b = x; if (!n || y < c) c = y; if (!n || y > d) d = y; n++ }
		END { print a, b, c, d }' "$K/amat-complus3t.001")
	run jq -c 'select(.type == "run_start") | [.source, .lot, .diameter_mm, .pitch_um, .cols, .rows, .index_origin]' "$T/out"
	assert_output "[\"klarf\",\"HJU008\",200,[2489.96,2259.92],$((x1 - x0 + 1)),$((y1 - y0 + 1)),[$x0,$y0]]"
	# Defect 1: die (-35,-9), at (552.64, 1043.08) in it; on the wafer
	# X = XINDEX*pitch + XREL - centre = -35*2489.96 + 552.64 - 2394.8,
	# Y = -9*2259.92 + 1043.08 - 2090.32.
	run jq -c 'select(.type == "defect" and .defect_id == 1) | [.col, .row, .xindex, .yindex, .x_um, .y_um, (.wx_um * 1000 | round), (.wy_um * 1000 | round), .class_num, .class]' "$T/out"
	assert_output "[$((-35 - x0)),$((-9 - y0)),-35,-9,552.64,1043.08,-88990760,-21386520,0,\"Undefined\"]"
	# The grid origin makes die (col,row) = origin + (col,row)*pitch agree with X.
	run jq -s --argjson c $((-35 - x0)) '(.[0].origin_um[0] + $c * .[0].pitch_um[0] + 552.64) * 1000 | round' "$T/out"
	assert_output -- "-88990760"
}

@test "kerf-acquire --klarf gives defects the ids of event_id_defect, the same on every import" {
	kerf-acquire --klarf "$K/jk-simple18.klarf" > "$T/a" 2>/dev/null
	kerf-acquire --klarf "$K/jk-simple18.klarf" > "$T/b" 2>/dev/null
	cmp "$T/a" "$T/b"
	# run \n defect \n wafer \n col \n row \n index, XXH3-64.
	read -r run wafer col row index id < <(jq -r 'select(.type == "defect") | [.run, .wafer, .col, .row, .index, .id] | @tsv' "$T/a" | head -1)
	want=$(printf '%s\ndefect\n%s\n%s\n%s\n%s' "$run" "$wafer" "$col" "$row" "$index" | xxhsum -H3 | awk '{ print $NF }')
	assert_equal "$id" "$want"
}

@test "kerf-acquire --klarf imports several files as one run with unique wafer ids" {
	kerf-acquire --klarf "$K/jk-simple12.klarf" "$K/jk-klarf12Example.klarf" > "$T/out" 2>"$T/err"
	run jq -r 'select(.type == "wafer_start") | .wafer' "$T/out"
	assert_output "$(printf 'aWafer\naWafer-2')"
	assert_equal "$(grep -c '"type":"defect"' "$T/out")" 3
	assert_equal "$(jq -r .id "$T/out" | sort -u | wc -l)" "$(wc -l < "$T/out")"
	grep -q "imported as 'aWafer-2'" "$T/err"
}

@test "kerf-acquire --klarf - reads a KLARF file from stdin" {
	kerf-acquire --klarf - < "$K/jk-simple18.klarf" > "$T/a" 2>/dev/null
	kerf-acquire --klarf "$K/jk-simple18.klarf" > "$T/b" 2>/dev/null
	cmp "$T/a" "$T/b"
}

@test "kerf-acquire --klarf rejects a bad file with exit 65, naming the line, before any event" {
	run --separate-stderr kerf-acquire --klarf "$K/jk-simple12.klarf" "$K/jk-bad12.klarf"
	assert_equal "$status" 65
	assert_output ""
	[[ "$stderr" == *"jk-bad12.klarf': line 36: WaferID 'anotherWafer' has no DefectList"* ]]
	run --separate-stderr kerf-acquire --klarf "$K/jk-bad12DefectList.klarf"
	assert_equal "$status" 65
	[[ "$stderr" == *"jk-bad12DefectList.klarf': line 29: "* ]]
}

#!/usr/bin/env bats
# Tool profiles (lib/profile.c, kerf-profile(5)): the shipped profiles
# load, and a bad profile is refused naming the line or the key at fault.

load common
bats_require_minimum_version 1.5.0

setup() {
	: "${KERF_UNIT:=$BATS_TEST_DIRNAME/../build/release/tests}"
	TP="$KERF_UNIT/t-profile"
	SIM="$BATS_TEST_DIRNAME/../profiles/kerf-sim.json"
	P="$BATS_TEST_TMPDIR/p.json"
}

# bad FILTER MESSAGE: kerf-sim.json changed by the jq FILTER is refused
# (exit 65) with MESSAGE, which names the key at fault.
bad() {
	jq "$1" "$SIM" >"$P"
	run --separate-stderr "$TP" "$P"
	[ "$status" -eq 65 ] || { echo "accepted: $1"; false; }
	[[ "$stderr" == *"$P: $2"* ]] || { echo "for $1: $stderr"; false; }
}

@test "every shipped profile loads" {
	local f
	for f in "$BATS_TEST_DIRNAME"/../profiles/*.json; do
		run --separate-stderr "$TP" "$f"
		assert_success
	done
}

@test "the simulated tool's profile maps its collection events onto kerf's events" {
	run --separate-stderr "$TP" "$SIM"
	assert_success
	assert_line "event 100 run_start 1"
	assert_line "event 120 die 4"
	assert_line "report 4 1 40 50 51 52 53 54"
	assert_line "var 54 image 0"
	assert_line "command start START LOTID=lot RECIPE=recipe WAFERS=wafers"
}

@test "a profile that is not valid JSON is refused with its line and column" {
	sed '5s/,$//' "$SIM" >"$P"
	run --separate-stderr "$TP" "$P"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"$P:6:"* ]]
}

@test "a key given twice in a profile is refused with its line" {
	sed '3a\  "name": "again",' "$SIM" >"$P"
	run --separate-stderr "$TP" "$P"
	[ "$status" -eq 65 ]
	[[ "$stderr" == *"$P:4:"*"duplicate"* ]]
}

@test "a bad profile is refused naming the key at fault" {
	bad '.kerf_profile = 2' 'kerf_profile: must be 1'
	bad '.colour = "red"' "(top): unknown key 'colour'"
	bad 'del(.name)' 'name: a non-empty string is needed'
	bad '.variables["x1"] = "lot"' 'variables.x1: a VID is a number'
	bad '.variables["01"] = "lot"' 'variables.01: a VID is a number from 0 to 4294967295 without leading zeros'
	bad '.reports["04"] = [1]' 'reports.04: an RPTID is a number'
	bad '.variables["70"] = "id"' 'variables.70: the field is a lowercase name'
	bad '.variables["70"] = "Wafer"' 'variables.70: the field is a lowercase name'
	bad '.variables["70"] = {"field": "x", "as": "float"}' 'variables.70: "as" is int, real or string'
	bad '.reports["4"] += [99]' 'reports.4[7]: no variable 99'
	bad '.reports["4"] += [40]' 'reports.4[7]: variable 40 twice in one report'
	bad '.reports["4"] = "1 2"' 'reports.4: not an array of numbers'
	bad '.events["120"].event = "image"' 'events.120: "event" is one of'
	bad '.events["120"].reports = [7]' 'events.120.reports[0]: no report 7'
	bad '.events["120"].state = "paused"' 'events.120: "state" is a string, and only for a state event'
	bad 'del(.events["190"])' 'events: a run_start and a run_end event are needed'
	bad 'del(.commands.start)' 'commands: a start command is needed'
	bad '.commands.halt = {"rcmd": "HALT"}' "commands: unknown operation 'halt'"
	bad '.commands.pause.rcmd = ""' 'commands.pause: "rcmd" is the tool'"'"'s command name'
	bad '.alarms = {"4711": {"category": "fatal"}}' 'alarms.4711: "category" is safety'
	bad '.images = "yes"' 'images: true or false'
}

#!/usr/bin/env bats
# lib/hsms: the HSMS-SS transport, driven through two test programs:
# tests/unit/hsms-node (one endpoint run from options; its events as
# NDJSON on stdout, the library's log records on stderr) and
# tests/unit/hsms-raw (a peer that sends exact bytes from a script and
# prints every frame it receives).  Scripts with a fixed outcome live in
# tests/data/hsms/NAME.script beside NAME.out.
#
# Only 127.0.0.1 and ephemeral ports.  A timer is short only in the tests
# about its expiry; every wait is bounded polling or a bounded read.

load common

setup() {
	if [ -z "${KERF_UNIT:-}" ]; then
		case "$KERF_BIN" in
		*/build/san/bin) KERF_UNIT="$KERF_BIN/../tests" ;;
		*) KERF_UNIT="$BATS_TEST_DIRNAME/../build/release/tests" ;;
		esac
	fi
	NODE="$KERF_UNIT/hsms-node"
	RAW="$KERF_UNIT/hsms-raw"
	T="$BATS_TEST_TMPDIR"
	BG=()
}

teardown() {
	local p
	for p in "${BG[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

is_san() {
	[[ "$KERF_UNIT" == */san/* ]] || [ "${SAN:-}" = 1 ]
}

# bg NAME INPUT CMD...: run CMD in the background with stdin from INPUT,
# stdout in $T/NAME.out, stderr in $T/NAME.err; its pid in PID_NAME.
bg() {
	local name=$1 input=$2
	shift 2
	"$@" <"$input" >"$T/$name.out" 2>"$T/$name.err" 3>&- &
	BG+=("$!")
	printf -v "PID_$name" %s "$!"
}

# finish NAME: wait for the background program NAME to end by itself and
# fail unless it exited 0.
finish() {
	local var="PID_$1" st=0 p keep=()
	wait_for pid_gone "${!var}"
	wait "${!var}" || st=$?
	for p in "${BG[@]}"; do
		[ "$p" = "${!var}" ] || keep+=("$p")
	done
	BG=("${keep[@]}")
	if [ "$st" -ne 0 ]; then
		echo "$1 exited $st"
		cat "$T/$1.err"
		return 1
	fi
}

# stop NAME: SIGTERM the background program NAME; it must exit 0.
stop() {
	local var="PID_$1"
	kill -TERM "${!var}"
	finish "$1"
}

has() {
	grep -q -- "$2" "$1" 2>/dev/null
}

# records FILE FILTER: the JSON lines of FILE that FILTER selects.
records() {
	jq -c -R "fromjson? | select($2)" "$1"
}

has_record() {
	[ -n "$(records "$1" "$2")" ]
}

# at_least N FILE FILTER: FILTER selects N lines of FILE or more.
at_least() {
	[ "$(records "$2" "$3" | wc -l)" -ge "$1" ]
}

# node NAME ARGS...: a passive node on 127.0.0.1:0 in the background;
# sets PORT once it listens.
node() {
	local name=$1
	shift
	bg "$name" /dev/null "$NODE" --passive 127.0.0.1:0 "$@"
	wait_for has "$T/$name.out" '"event":"listening"'
	PORT=$(jq -r 'select(.event == "listening").port' "$T/$name.out")
}

# raw_case NAME NODE-ARGS...: the raw peer runs tests/data/hsms/NAME.script
# against a passive node started with NODE-ARGS; its output must equal
# NAME.out.  The node (stdout node.out, log node.err) keeps running.
raw_case() {
	local name=$1
	shift
	node node "$@"
	"$RAW" "127.0.0.1:$PORT" <"$DATA/hsms/$name.script" >"$T/raw.out" || true
	diff -u "$DATA/hsms/$name.out" "$T/raw.out"
}

# session_rss NAME SCRIPT NODE-ARGS...: one session of a --once node
# against the raw peer running SCRIPT; sets RSS to the node's peak RSS
# in KiB.
# The raw peer's output is in $T/NAME.raw.  Outside the sanitizer build
# the node also runs under a 256 MB address-space limit, where a
# 4 GB allocation cannot succeed.  ASan's quarantine would hold every
# freed log record and count it as peak memory: it is turned off here.
session_rss() {
	local name=$1 script=$2 port
	shift 2
	local limit=(bash -c 'ulimit -v 262144; exec "$0" "$@"')
	is_san && limit=()
	ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=0" bg "$name" /dev/null /usr/bin/time -f %M -o "$T/$name.rss" "${limit[@]}" \
		"$NODE" --passive 127.0.0.1:0 --once "$@"
	wait_for has "$T/$name.out" '"event":"listening"'
	port=$(jq -r 'select(.event == "listening").port' "$T/$name.out")
	"$RAW" "127.0.0.1:$port" <"$script" >"$T/$name.raw" || true
	finish "$name"
	RSS=$(tail -n 1 "$T/$name.rss")
}

SELECT='send 0000000a ffff 0000 0001 00000001
wait 1'

@test "a passive equipment answers Select, Linktest, S1F1 with S1F2 and echoes S5F3, tracing each frame" {
	raw_case select-linktest-data --equipment --device-id 1 --trace
	has_record "$T/node.out" '.event == "trace" and .dir == "in" and .stype == "linktest.req" and .system == 18'
	has_record "$T/node.out" '.event == "trace" and .dir == "out" and .stype == "linktest.rsp" and .system == 18'
	has_record "$T/node.out" '.event == "message" and .stream == 5 and .function == 3 and .wbit and .body == "0100"'
	has_record "$T/node.err" '.hsms == "selected"'
	stop node
}

@test "two nodes select, answer each other's linktests and complete an S1F1 W / S1F2 transaction" {
	export KERF_LOG_LEVEL=debug
	node eq --equipment --device-id 1 --linktest 0.1
	bg host /dev/null "$NODE" --active "127.0.0.1:$PORT" --device-id 1 --linktest 0.1 --send S1F1W
	wait_for has "$T/host.out" '"event":"reply"'
	has_record "$T/host.out" '.event == "reply" and .status == "ok" and .request == "S1F1" and .stream == 1 and .function == 2 and .body == "010241046b6572664103302e31"'
	wait_for at_least 3 "$T/host.err" '.hsms == "linktest_ok"'
	wait_for at_least 3 "$T/eq.err" '.hsms == "linktest_ok"'
	at_least 3 "$T/host.err" '.hsms == "linktest_answered"'
	at_least 3 "$T/eq.err" '.hsms == "linktest_answered"'
	# The host's hsms_stop sends Separate.req.
	stop host
	wait_for has_record "$T/eq.err" '.hsms == "closed" and .cause == "separate"'
	has_record "$T/host.err" '.hsms == "closed" and .cause == "local"'
	stop eq
}

@test "garbage whose length prefix is below 10 closes the link with cause protocol_error" {
	node node --equipment --device-id 1
	run "$RAW" "127.0.0.1:$PORT" <<<$'send 00000003 deadbeef 00\neof'
	assert_success
	assert_output "$(printf 'connected\neof\ndone')"
	has_record "$T/node.err" '.hsms == "closed" and .cause == "protocol_error" and .lvl == "warn"'
	stop node
}

@test "an HTTP request on the HSMS port is refused as frame_too_long" {
	node node --equipment --device-id 1
	# "GET " is a length prefix of 1,195,725,856 bytes.
	run "$RAW" "127.0.0.1:$PORT" <<<$'send 47455420 2f20485454502f312e30 0d0a0d0a\neof'
	assert_success
	assert_output "$(printf 'connected\neof\ndone')"
	has_record "$T/node.err" '.hsms == "frame_too_long" and .length == 1195725856'
	has_record "$T/node.err" '.hsms == "closed" and .cause == "frame_too_long"'
	stop node
}

@test "a 4 GB length prefix is refused before allocating: S9F11 quoting the header, cause frame_too_long, RSS unchanged" {
	printf '%s\n' "$SELECT" >"$T/quiet"
	printf '%s\n' "$SELECT" 'send ffffffff 0001 8101 0000 00000081' 'wait 2' 'eof' >"$T/huge"
	session_rss base "$T/quiet" --equipment --device-id 1
	base=$RSS
	session_rss big "$T/huge" --equipment --device-id 1
	big=$RSS
	diff -u - "$T/big.raw" <<-EOF
	connected
	in ffff 00 00 00 02 00000001
	in 0001 09 0b 00 00 00000001 210a00018101000000000081
	eof
	done
	EOF
	has_record "$T/big.err" '.hsms == "frame_too_long" and .length == 4294967295 and .max == 16777216'
	has_record "$T/big.err" '.hsms == "closed" and .cause == "frame_too_long"'
	echo "peak RSS: quiet session ${base} KiB, 4 GB prefix ${big} KiB"
	[ $((big - base)) -lt 8000 ]
}

@test "a frame cut short by the peer's close is logged as peer_closed in the middle of a frame" {
	node node --device-id 1
	run "$RAW" "127.0.0.1:$PORT" <<<"$SELECT"$'\nsend 0000000a ffff 00'
	assert_success
	wait_for has_record "$T/node.err" '.hsms == "closed"'
	has_record "$T/node.err" '.hsms == "closed" and .cause == "peer_closed" and (.detail | test("middle of a frame \\(7 bytes"))'
	stop node
}

@test "a frame written one byte at a time, 20 ms apart, is accepted while T8 is 10 s" {
	raw_case split --equipment --device-id 1 --t8 10
	! has_record "$T/node.err" '.hsms == "closed"'
	stop node
}

@test "a peer silent in the middle of a frame for longer than T8 is closed with cause t8" {
	node node --device-id 1 --t8 0.3
	run "$RAW" "127.0.0.1:$PORT" <<<"$SELECT"$'\nsend 0000000a ffff 00\neof'
	assert_success
	assert_line --index 2 "eof"
	has_record "$T/node.err" '.hsms == "closed" and .cause == "t8"'
	stop node
}

@test "a host's request left unanswered ends with t3 for the caller and no S9F9" {
	node node --device-id 1 --t3 0.3 --send S1F1W
	printf '%s\n' "$SELECT" 'wait 2' "await $T/go" 'send 0000000a ffff 0000 0005 00000092' 'wait 3' >"$T/script"
	bg raw "$T/script" "$RAW" "127.0.0.1:$PORT"
	wait_for has_record "$T/node.out" '.event == "reply"'
	has_record "$T/node.out" '.event == "reply" and .status == "t3" and .request == "S1F1"'
	has_record "$T/node.err" '.hsms == "t3" and .stream == 1 and .function == 1 and .system == 1'
	# Anything the host sent at T3 would come before this Linktest.rsp.
	touch "$T/go"
	finish raw
	diff -u - "$T/raw.out" <<-EOF
	connected
	in ffff 00 00 00 02 00000001
	in 0001 81 01 00 00 00000001
	in ffff 00 00 00 06 00000092
	done
	EOF
	stop node
}

@test "an equipment's request left unanswered ends with t3 and S9F9 quoting its header" {
	node node --equipment --device-id 1 --t3 0.3 --send S1F1W
	run "$RAW" "127.0.0.1:$PORT" <<<"$SELECT"$'\nwait 3'
	assert_success
	assert_output "$(printf 'connected\nin ffff 00 00 00 02 00000001\nin 0001 81 01 00 00 00000001\nin 0001 09 09 00 00 00000002 210a00018101000000000001\ndone')"
	has_record "$T/node.out" '.event == "reply" and .status == "t3"'
	stop node
}

@test "a Linktest.req left unanswered for T6 closes the link with cause t6" {
	node node --device-id 1 --linktest 0.2 --t6 0.3
	run "$RAW" "127.0.0.1:$PORT" <<<"$SELECT"$'\nwait 2\neof'
	assert_success
	assert_line --index 2 "in ffff 00 00 00 05 00000001"
	assert_line --index 3 "eof"
	has_record "$T/node.err" '.hsms == "closed" and .cause == "t6" and (.detail | test("Linktest"))'
	stop node
}

@test "a passive node closes a connection not selected within T7 with cause t7" {
	node node --device-id 1 --t7 0.3
	run "$RAW" "127.0.0.1:$PORT" <<<'eof'
	assert_success
	assert_output "$(printf 'connected\neof\ndone')"
	has_record "$T/node.err" '.hsms == "closed" and .cause == "t7" and .state == "not_selected"'
	stop node
}

@test "an active node whose peer accepts TCP but never answers Select.req closes after T7" {
	bg raw <(printf 'wait 1\neof\n') "$RAW" --listen 127.0.0.1:0
	wait_for has "$T/raw.out" '^listening '
	port=$(awk '/^listening/ {print $2}' "$T/raw.out")
	run --separate-stderr "$NODE" --active "127.0.0.1:$port" --t7 0.3 --t6 10 --once
	assert_success
	[ "$(records <(printf '%s\n' "$stderr") '.hsms == "closed" and .cause == "t7"' | wc -l)" -eq 1 ]
	finish raw
	diff -u - <(grep -v '^listening' "$T/raw.out") <<-EOF
	connected
	in ffff 00 00 00 01 00000001
	eof
	done
	EOF
}

@test "a storm of 10,000 linktests is answered in full with the memory of a quiet session" {
	printf '%s\n' "$SELECT" >"$T/quiet"
	printf '%s\n' "$SELECT" 'repeat 10000 0000000a ffff 0000 0005 $I' 'wait 10001 60' >"$T/storm"
	session_rss base "$T/quiet" --device-id 1
	base=$RSS
	session_rss storm "$T/storm" --device-id 1
	storm=$RSS
	[ "$(grep -c '^in ffff 00 00 00 06 ' "$T/storm.raw")" -eq 10000 ]
	assert_equal "$(tail -n 2 "$T/storm.raw" | head -n 1)" "in ffff 00 00 00 06 00002710"
	echo "peak RSS: quiet session ${base} KiB, 10,000 linktests ${storm} KiB"
	[ $((storm - base)) -lt 8000 ]
}

@test "a peer that floods linktests and never reads stalls against the bounded output buffer" {
	printf '%s\n' "$SELECT" >"$T/quiet"
	# 28 MB of Linktest.req: answers kept without a bound would be as much.
	printf '%s\n' "$SELECT" 'noread 1000' 'repeat 2000000 0000000a ffff 0000 0005 $I' >"$T/flood"
	session_rss base "$T/quiet" --device-id 1 --max-out 64K
	base=$RSS
	session_rss flood "$T/flood" --device-id 1 --max-out 64K
	flood=$RSS
	assert_equal "$(tail -n 2 "$T/flood.raw" | head -n 1)" "write stalled"
	echo "peak RSS: quiet session ${base} KiB, flood ${flood} KiB"
	[ $((flood - base)) -lt 8000 ]
}

@test "data before Select is refused with Reject.req reason 4 (not selected)" {
	raw_case data-before-select --equipment --device-id 1
	has_record "$T/node.err" '.hsms == "reject_sent" and .reason == 4 and .reason_name == "not_selected" and .system == 33'
	stop node
}

@test "a wrong session id gets S9F1 quoting the header from the equipment" {
	raw_case wrong-session-equipment --equipment --device-id 1
	has_record "$T/node.err" '.hsms == "wrong_session" and .session_id == 2 and .expected == 1'
	has_record "$T/node.err" '.hsms == "s9_sent" and .function == 1'
	stop node
}

@test "a wrong session id is logged and dropped by a host, which sends nothing" {
	raw_case wrong-session-host --device-id 1
	has_record "$T/node.err" '.hsms == "wrong_session" and .session_id == 2 and .expected == 1'
	! has_record "$T/node.err" '.hsms == "s9_sent"'
	! has_record "$T/node.out" '.event == "message"'
	stop node
}

@test "an unknown SType, a PType other than SECS-II and an unasked Linktest.rsp get Reject.req 1, 2 and 3" {
	raw_case unsupported-types --equipment --device-id 1
	[ "$(records "$T/node.err" '.hsms == "reject_sent"' | jq -r .reason | tr '\n' ' ')" = "1 2 3 " ]
	stop node
}

@test "a second Select.req is answered 'already active'; after Deselect data is refused until Select" {
	raw_case select-deselect --equipment --device-id 1
	has_record "$T/node.err" '.hsms == "deselected"'
	stop node
}

@test "an equipment application answers an unknown stream with S9F3 through hsms_send_s9" {
	raw_case unknown-stream --equipment --device-id 1
	has_record "$T/node.err" '.hsms == "s9_sent" and .function == 3 and .about.stream == 99'
	stop node
}

@test "a host application aborts an unknown primary with SxF0 through hsms_reply_abort" {
	raw_case unknown-stream-host --device-id 1
	! has_record "$T/node.err" '.hsms == "s9_sent"'
	stop node
}

@test "Separate.req closes the link without a reply, cause separate" {
	node node --device-id 1
	run "$RAW" "127.0.0.1:$PORT" <<<"$SELECT"$'\nsend 0000000a ffff 0000 0009 00000002\neof'
	assert_success
	assert_output "$(printf 'connected\nin ffff 00 00 00 02 00000001\neof\ndone')"
	has_record "$T/node.err" '.hsms == "closed" and .cause == "separate" and .state == "selected"'
	has_record "$T/node.out" '.event == "state" and .state == "not_connected" and .cause == "separate"'
	stop node
}

@test "an active node retries a refused connect after T5 and gives up after --attempts" {
	port=$("$RAW" --free-port)
	run --separate-stderr "$NODE" --active "127.0.0.1:$port" --t5 0.2 --attempts 2
	assert_failure 69
	log=$(printf '%s\n' "$stderr")
	[ "$(records <(echo "$log") '.hsms == "connecting"' | jq -r .attempt | tr '\n' ' ')" = "1 2 " ]
	has_record <(echo "$log") '.hsms == "connect_failed" and .attempt == 1 and .retry_in_ms == 200 and .error == "Connection refused"'
	has_record <(echo "$log") '.hsms == "connect_failed" and .attempt == 2'
	has_record <(echo "$log") '.hsms == "gave_up" and .attempts == 2 and .lvl == "error"'
}

@test "a passive node refuses a second connection while the first stays selected" {
	node node --device-id 1
	printf '%s\n' "$SELECT" "await $T/go" 'send 0000000a ffff 0000 0005 00000002' 'wait 2' >"$T/first"
	bg first "$T/first" "$RAW" "127.0.0.1:$PORT"
	wait_for has_record "$T/node.err" '.hsms == "selected"'
	run "$RAW" "127.0.0.1:$PORT" <<<'eof'
	assert_success
	assert_output "$(printf 'connected\neof\ndone')"
	has_record "$T/node.err" '.hsms == "refused" and .reason == "already_connected"'
	touch "$T/go"
	finish first
	assert_equal "$(cat "$T/first.out")" "$(printf 'connected\nin ffff 00 00 00 02 00000001\nin ffff 00 00 00 06 00000002\ndone')"
	stop node
}

@test "a control message with a body closes the link with cause protocol_error" {
	node node --device-id 1
	run "$RAW" "127.0.0.1:$PORT" <<<"$SELECT"$'\nsend 0000000c ffff 0000 0005 00000002 0000\neof'
	assert_success
	assert_output "$(printf 'connected\nin ffff 00 00 00 02 00000001\neof\ndone')"
	has_record "$T/node.err" '.hsms == "closed" and .cause == "protocol_error" and (.detail | test("linktest.req with a 2-byte body"))'
	stop node
}

@test "a peer's Reject.req for our request ends its transaction as rejected" {
	node node --device-id 1 --send S1F1W
	run "$RAW" "127.0.0.1:$PORT" <<<"$SELECT"$'\nwait 2\nsend 0000000a 0001 0004 0007 $SYS\nsend 0000000a ffff 0000 0005 00000003\nwait 3'
	assert_success
	assert_line --index 3 "in ffff 00 00 00 06 00000003"
	has_record "$T/node.out" '.event == "reply" and .status == "rejected" and .request == "S1F1"'
	has_record "$T/node.err" '.hsms == "reject_received" and .reason == 4 and .system == 1'
	stop node
}

@test "a reply that matches no open transaction is logged and dropped" {
	node node --device-id 1
	run "$RAW" "127.0.0.1:$PORT" <<<"$SELECT"$'\nsend 0000000c 0001 0102 0000 00000099 0100\nsend 0000000a ffff 0000 0005 00000003\nwait 2'
	assert_success
	assert_output "$(printf 'connected\nin ffff 00 00 00 02 00000001\nin ffff 00 00 00 06 00000003\ndone')"
	has_record "$T/node.err" '.hsms == "unexpected_reply" and .stream == 1 and .function == 2 and .system == 153'
	! has_record "$T/node.out" '.event == "message" or .event == "reply"'
	stop node
}

@test "hsms_send refuses with ENOBUFS once max-out bytes wait to be written" {
	# 64 messages of 1038 bytes fill 64 KiB after the 14-byte Select.rsp.
	node node --device-id 1 --max-out 64K --repeat 1000 --send "S6F11:$(printf '%02048d' 0)"
	run "$RAW" "127.0.0.1:$PORT" <<<"$SELECT"$'\nwait 65'
	assert_success
	[ "$(grep -c '^in 0001 06 0b ' <<<"$output")" -eq 64 ]
	[ "$(records "$T/node.out" '.event == "send_failed" and .error == "No buffer space available"' | wc -l)" -eq 936 ]
	stop node
}

@test "hsms_send refuses a W-bit message with EBUSY while max-open transactions are open" {
	node node --device-id 1 --max-open 3 --repeat 5 --send S1F1W
	run "$RAW" "127.0.0.1:$PORT" <<<"$SELECT"$'\nwait 4'
	assert_success
	[ "$(grep -c '^in 0001 81 01 ' <<<"$output")" -eq 3 ]
	[ "$(records "$T/node.out" '.event == "send_failed" and .error == "Device or resource busy"' | wc -l)" -eq 2 ]
	stop node
}

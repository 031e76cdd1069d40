# tests/tool.bash: what tests/tool.bats and tests/interop.bats share for
# running kerf-tool in the background (load tool after common).  Every
# program started here goes in BG; tool_cleanup, from teardown, ends
# whatever is still running.

# tool_start ARGS...: kerf-tool listening on a free port of 127.0.0.1,
# with a trace; stdout $T/tool.out, stderr $T/tool.err, trace
# $T/trace.ndjson; its port in TOOL_PORT, its pid in TOOL_PID.
tool_start() {
	kerf-tool --listen hsms:127.0.0.1:0 --max-seconds 120 --hsms-trace "$T/trace.ndjson" "$@" \
		> "$T/tool.out" 2> "$T/tool.err" &
	TOOL_PID=$!
	BG+=("$TOOL_PID")
	wait_for test -s "$T/tool.out"
	TOOL_PORT=$(jq -r '.listen | sub(".*:"; "")' "$T/tool.out")
}

# tool_stop: SIGTERM; kerf-tool must exit 0.
tool_stop() {
	local st=0
	kill -TERM "$TOOL_PID"
	wait "$TOOL_PID" || st=$?
	[ "$st" -eq 0 ] || { echo "kerf-tool exited $st"; grep -v '"msg":"stats"' "$T/tool.err" | tail -5; false; }
}

# tool_cleanup: SIGTERM to every program of BG still running.
tool_cleanup() {
	local p
	for p in "${BG[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}

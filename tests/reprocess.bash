# tests/reprocess.bash: what tests/reprocess.bats and
# tests/reprocess-ssh.bats share (load reprocess after common): the
# recorded runs they reprocess, and reading a batch's results.  $O is
# the batch directory.

# recordings DIR: DIR/run1..3.ndjson, made by kerf-acquire (one small
# wafer each, so that every job takes a fraction of a second, and always
# of the current event schema), and DIR/corrupt.ndjson: run2 with one
# flipped base64 character in its die at line 20, so that the pixels no
# longer hash to the recorded xxh3.
recordings() {
	mkdir -p "$1"
	for s in 1 2 3; do
		kerf-acquire --sim --wafers 1 --seed "$s" --diameter 100 --die-px 32 \
			>"$1/run$s.ndjson" 2>/dev/null
	done
	awk 'NR == 20 { i = index($0, "\"data\":\"") + 8; c = substr($0, i, 1)
		$0 = substr($0, 1, i - 1) (c == "A" ? "B" : "A") substr($0, i + 1) } 1' \
		"$1/run2.ndjson" >"$1/corrupt.ndjson"
	! cmp -s "$1/run2.ndjson" "$1/corrupt.ndjson"
}

# result NAME FIELD: FIELD of NAME's last record in results.ndjson.
result() {
	jq -rs --arg n "$1" "map(select(.name == \$n)) | last | .$2" "$O/results.ndjson"
}

# journal DIR: the journal's events with commit records and times stripped.
journal() {
	cat "$1"/journal/seg-*.ndjson | jq -c 'select(has("commit") | not) | del(.t)'
}

# succeeded: assert_success, showing the command's stderr when it fails.
succeeded() { assert_success || { echo "stderr: $stderr"; return 1; }; }

# tests/metrics.bash: what tests/metrics.bats and tests/watch.bats share
# (load metrics after common) to check metrics text: promtool, the real
# parser, and reading one sample.

need_promtool() {
	command -v promtool >/dev/null ||
		skip "promtool not installed (Debian package prometheus; scripts/deps installs it)"
}

# lints_clean FILE: promtool parses FILE and finds no problem (it prints
# lint problems, and exits 3, only when there are some).
lints_clean() {
	run promtool check metrics <"$1"
	[ "$status" -eq 0 ] && [ -z "$output" ] || { echo "promtool on $1: exit $status: $output"; return 1; }
}

# metric NAME LABELS FILE: the value of the sample NAME{LABELS} in FILE.
metric() {
	awk -v s="$1{$2}" '$1 == s { print $2; found = 1 } END { exit !found }' "$3"
}

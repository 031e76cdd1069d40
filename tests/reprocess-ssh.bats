#!/usr/bin/env bats
# kerf reprocess over real ssh: two "hosts", h1 and h2, each an OpenSSH
# sshd of its own on a loopback address (127.0.0.1 and 127.0.0.2), with
# a host key, a login key and a configuration made for the test, and the
# kerf under test on the PATH of its sessions.  GNU parallel reaches them
# with the test's ssh configuration (PARALLEL_SSH: its own key, and
# ServerAliveInterval short enough for a test).  A job that a test must
# catch on h2 is held there by h2's kerf-acquire until the test takes the
# host down: its sshd and every process of its sessions killed (the host
# is gone) or stopped (the host no longer answers).

load common
load reprocess
bats_require_minimum_version 1.5.0

# A hang is a failure, not a stuck suite: far above what any test takes.
BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-600}

SSHD=/usr/sbin/sshd

setup_file() {
	command -v parallel >/dev/null || return 0
	[ -x "$SSHD" ] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || return 0
	local k="$BATS_FILE_TMPDIR/keys"
	mkdir -p "$k"
	ssh-keygen -q -t ed25519 -N '' -C kerf-test-host -f "$k/host"
	ssh-keygen -q -t ed25519 -N '' -C kerf-test-login -f "$k/login"
	recordings "$BATS_FILE_TMPDIR/rec"
}

setup() {
	command -v parallel >/dev/null || skip "GNU parallel not installed (scripts/deps)"
	[ -x "$SSHD" ] || skip "no $SSHD: OpenSSH's server is not installed (scripts/deps installs openssh-server)"
	command -v ssh >/dev/null && command -v ssh-keygen >/dev/null ||
		skip "no ssh or ssh-keygen: OpenSSH's client is not installed"
	K=$BATS_FILE_TMPDIR/keys
	REC=$BATS_FILE_TMPDIR/rec
	T=$BATS_TEST_TMPDIR
	IN=$T/in
	O=$T/out
	mkdir -p "$IN"
	cp "$REC"/run[123].ndjson "$IN"/
	SSH_CONFIG=$T/ssh_config
	: >"$SSH_CONFIG"
	h2_bin "$T/h2bin"
	start_host h1 127.0.0.1 "$KERF_BIN"
	start_host h2 127.0.0.2 "$T/h2bin"
	cat >>"$SSH_CONFIG" <<EOF
Host *
	User $(id -un)
	IdentityFile $K/login
	IdentitiesOnly yes
	StrictHostKeyChecking no
	UserKnownHostsFile /dev/null
	BatchMode yes
	ConnectTimeout 10
	ServerAliveInterval 1
	ServerAliveCountMax 3
	LogLevel ERROR
EOF
	export PARALLEL_SSH="ssh -F $SSH_CONFIG"
	# Both hosts answer before any test begins.
	for h in h1 h2; do
		run ssh -F "$SSH_CONFIG" "$h" 'command -v kerf'
		assert_success
	done
}

teardown() {
	local pid
	for pid in ${KPID:-} $(cat "$T"/h[12].pid 2>/dev/null); do
		kill -9 $(tree "$pid") 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

# tree PID...: PID and all its descendants, parents first.
tree() {
	local p
	for p in "$@"; do
		echo "$p"
		tree $(ps -o pid= --ppid "$p" || true)
	done
}

# h2_bin DIR: what h2's sessions find first on their PATH: a kerf of
# its own (a copy: kerf runs the stages beside its executable) whose
# kerf-acquire notes the recording it got in $T/h2.started and, when the
# test has made $T/h2.gate a fifo, waits on it: until the host goes
# down, since nothing writes to it.
h2_bin() {
	local d=$1 p
	mkdir -p "$d"
	cp "$KERF_BIN/kerf" "$d/kerf"
	for p in kerf-validate kerf-detect kerf-persist kerf-project; do ln -s "$KERF_BIN/$p" "$d/$p"; done
	cat >"$d/kerf-acquire" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>'$T/h2.started'
if [ -p '$T/h2.gate' ]; then read -r go <'$T/h2.gate'; fi
exec '$KERF_BIN/kerf-acquire' "\$@"
EOF
	chmod +x "$d/kerf-acquire"
}

# start_host NAME ADDR BIN: an sshd for NAME on ADDR and a free port,
# its sessions with BIN first on their PATH, and NAME in the ssh config.
# Returns when it listens; skips when sshd cannot run at all here (not
# root), fails when it should and does not.
start_host() {
	local name=$1 addr=$2 bin=$3 conf=$T/$1.sshd_config log=$T/$1.sshd.log port pid try
	[ "$(id -u)" -ne 0 ] || mkdir -p /run/sshd
	for try in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 30000))
		cat >"$conf" <<EOF
ListenAddress $addr:$port
HostKey $K/host
AuthorizedKeysFile $K/login.pub
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
SetEnv PATH=$bin:/usr/bin:/bin LC_ALL=C KERF_LOG=json ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS
EOF
		"$SSHD" -D -e -f "$conf" >"$log" 2>&1 3>&- &
		pid=$!
		wait_for sshd_settled "$pid" "$log"
		if grep -q 'Server listening' "$log"; then
			echo "$pid" >"$T/$name.pid"
			printf 'Host %s\n\tHostName %s\n\tPort %s\n' "$name" "$addr" "$port" >>"$SSH_CONFIG"
			return 0
		fi
		grep -q 'Address already in use' "$log" || break
	done
	if [ "$(id -u)" -ne 0 ]; then
		skip "cannot start sshd as a user other than root: $(tail -n 1 "$log")"
	fi
	echo "sshd for $name did not start:" >&2
	cat "$log" >&2
	return 1
}
sshd_settled() { grep -q 'Server listening' "$2" || pid_gone "$1"; }

# host_down NAME KILL|STOP: NAME's sshd and every process of its
# sessions killed (the host is gone: its connections are closed) or
# stopped (the host no longer answers: its connections stay open).
# Stopped first, so that nothing forks past the list.
host_down() {
	local pid before after
	pid=$(cat "$T/$1.pid")
	after=$(tree "$pid")
	until [ "$after" = "${before:-}" ]; do
		before=$after
		kill -STOP $before
		after=$(tree "$pid")
	done
	[ "$2" = STOP ] && return 0
	kill -KILL $after
	wait "$pid" 2>/dev/null || true
}

# joblog FIELD: a field of each job run in the joblog, in order, one line.
joblog() { tail -n +2 "$O/joblog" | cut -f"$1" | tr '\n' ' '; }
records() { [ "$(wc -l 2>/dev/null <"$O/results.ndjson" || echo 0)" -ge "$1" ]; }
# held: the name of the recorded run h2 is holding.
held() { basename "$(awk '{ print $NF }' "$T/h2.started")" .ndjson; }

@test "a batch over two ssh hosts runs every job on one of them, with the same results as on this machine" {
	run --separate-stderr kerf reprocess -o "$O" --sshlogin 1/h1 --sshlogin 1/h2 --no-project \
		"$IN"/run1.ndjson "$IN"/run2.ndjson "$IN"/run3.ndjson
	succeeded
	assert_line --partial "3 recorded runs: 3 completed, 0 not completed, 0 not run"
	# Two slots, one per host: the first two jobs start at once, one on each.
	[ "$(tail -n +2 "$O/joblog" | cut -f2 | sort -u | tr '\n' ' ')" = "h1 h2 " ]
	[ "$(joblog 7)" = "0 0 0 " ]
	[ "$(wc -l <"$O/results.ndjson")" -eq 3 ]
	# h2's own kerf ran each of h2's jobs.
	[ "$(wc -l <"$T/h2.started")" -eq "$(tail -n +2 "$O/joblog" | cut -f2 | grep -c h2)" ]
	kerf reprocess -o "$T/local" --no-project "$IN"/run1.ndjson "$IN"/run2.ndjson "$IN"/run3.ndjson \
		>/dev/null 2>&1
	for n in run1 run2 run3; do
		[ "$(result $n outcome)" = completed ]
		[ "$(result $n rundir)" = "$(realpath "$O")/$n" ]
		kerf-persist --verify -C "$O/$n"
		diff -u <(journal "$T/local/$n") <(journal "$O/$n")
		[ "$(result $n defects)" = "$(jq -r "select(.name == \"$n\") | .defects" "$T/local/results.ndjson")" ]
	done
}

@test "over ssh a corrupt recorded run fails alone with its reason, and --resume-failed reruns only it" {
	cp "$REC/corrupt.ndjson" "$IN/run2.ndjson"
	run --separate-stderr kerf reprocess -o "$O" --sshlogin 1/h1 --sshlogin 1/h2 --no-project \
		"$IN"/run1.ndjson "$IN"/run2.ndjson "$IN"/run3.ndjson
	assert_failure 1
	[ "$(result run2 outcome)" = failed ]
	[ "$(result run2 stage)" = kerf-validate ]
	[[ "$(result run2 reason)" == "line 20: checksum:"* ]]
	assert_line --regexp '^run2 +failed +1 +kerf-validate '
	assert_line --partial "2 completed, 1 not completed, 0 not run"
	# The joblog has the job's exit status, as on one machine.
	[ "$(tail -n +2 "$O/joblog" | awk -F'\t' '$1 == 2 { print $7 }')" = 1 ]

	cp "$REC/run2.ndjson" "$IN/run2.ndjson"
	run --separate-stderr kerf reprocess -o "$O" --sshlogin 1/h1 --sshlogin 1/h2 --resume-failed
	succeeded
	assert_line --partial "3 recorded runs: 3 completed"
	[ "$(joblog 1 | awk '{ print $4 }')" = 2 ]
	[ "$(tail -n +2 "$O/joblog" | wc -l)" -eq 4 ]
	[ "$(wc -l <"$O/results.ndjson")" -eq 4 ]
	[ "$(result run2 outcome)" = completed ]
	[ "$(jq -s 'map(select(.name == "run1")) | length' "$O/results.ndjson")" -eq 1 ]
}

# lost_batch: start a batch of run1..run3 over h1 and h2 in the
# background (KPID), and return once h2 holds its first job and h1 has
# done the other two: the batch is waiting for h2 alone.
lost_batch() {
	mkfifo "$T/h2.gate"
	kerf reprocess -o "$O" --sshlogin 1/h1 --sshlogin 1/h2 --no-project \
		"$IN"/run1.ndjson "$IN"/run2.ndjson "$IN"/run3.ndjson >"$T/table" 2>"$T/err" 3>&- &
	KPID=$!
	wait_for test -s "$T/h2.started"
	wait_for records 2
	LOST=$(held)
	LOST_SEQ=$(grep -n "^$LOST	" "$O/inputs.tsv" | cut -d: -f1)
}

# ended_lost: the batch started by lost_batch has ended, reporting
# $LOST as lost on h2, with its joblog line and no record.
ended_lost() {
	local rc=0
	wait "$KPID" || rc=$?
	KPID=
	cat "$T/table" "$T/err"
	[ "$rc" -eq 1 ]
	[ "$(tail -n +2 "$O/joblog" | awk -F'\t' -v s="$LOST_SEQ" '$1 == s { print $2, $7 }')" = "h2 255" ]
	[ "$(result "$LOST" outcome)" = null ]
	grep -Eq "^$LOST +lost +255 " "$T/table"
	grep -q "2 completed, 1 not completed, 0 not run" "$T/table"
	grep -q "^$LOST: no record: its job on h2 ended with exit 255 " "$T/table"
}

@test "a host gone mid-batch is reported as such, the batch ends, and --resume-failed reruns its job on another host" {
	lost_batch
	host_down h2 KILL
	ended_lost
	run --separate-stderr kerf reprocess -o "$O" --sshlogin 1/h1 --resume-failed
	succeeded
	assert_line --partial "3 recorded runs: 3 completed, 0 not completed, 0 not run"
	[ "$(tail -n 1 "$O/joblog" | cut -f1,2,7)" = "$LOST_SEQ	h1	0" ]
	[ "$(result "$LOST" outcome)" = completed ]
	[ "$(wc -l <"$O/results.ndjson")" -eq 3 ]
}

@test "a host that stops answering mid-batch is given up on after ssh's ServerAliveInterval and reported" {
	lost_batch
	host_down h2 STOP
	ended_lost
}

#!/usr/bin/env bash
# lan-test.sh: three real exopeer nodes find each other by mDNS on a virtual
# LAN, then each stops on SIGTERM within 2 s.
#
# The LAN lives entirely in network namespaces that this script creates and
# deletes: one namespace holds a bridge (br0, multicast snooping off), and
# three host namespaces are each joined to it by a veth pair, with addresses
# in 10.213.7.0/24. Nothing is created or changed in the host's own network
# namespace (see "The network rule for tests" in the field notes).
#
# Run from the repository root, as root:  bash scripts/lan-test.sh
# Prints "lan-test: PASS (...)" and exits 0 on success, "lan-test: FAIL:
# <reason>" and exits 1 on failure, "lan-test: SKIP: <reason>" and exits 0
# when it cannot run here (not root, no network namespaces).
#
# Tunables (environment): LAN_TEST_DISCOVERY_TIMEOUT (whole seconds, default
# 10), LAN_TEST_STOP_LIMIT (whole seconds, default 2), LAN_TEST_KEEP=1 keeps
# the temp dir (logs, data dirs) for a look afterwards.
#
# Needs bash 4+, coreutils, grep, sed, iproute2 (installed with apt-get if
# missing) and go; no jq or python.
set -euo pipefail

DISCOVERY_TIMEOUT=${LAN_TEST_DISCOVERY_TIMEOUT:-10} # s, from all peer IDs printed
STOP_LIMIT=${LAN_TEST_STOP_LIMIT:-2}                # s, SIGTERM to exit
START_TIMEOUT=30                                    # s, for the nodes to print their peer ID
POLL=0.5                                            # s, between peers polls
PORT=4777
SUBNET=10.213.7 # test-only /24 inside the namespaces

say() { printf 'lan-test: %s\n' "$*"; }
skip() {
	say "SKIP: $*"
	exit 0
}

for v in DISCOVERY_TIMEOUT STOP_LIMIT; do
	if [[ ! ${!v} =~ ^[1-9][0-9]*$ ]]; then
		say "FAIL: LAN_TEST_$v=${!v} is not a whole number of seconds"
		exit 1
	fi
done

# now_us sets NOW to the wall clock in microseconds.
now_us() {
	if [[ -n ${EPOCHREALTIME:-} ]]; then
		NOW=${EPOCHREALTIME//[.,]/}
	else
		NOW=$(date +%s%6N)
	fi
}

# secs formats a duration in microseconds as seconds, e.g. 1.234.
secs() { printf '%d.%03d' $(($1 / 1000000)) $((($1 % 1000000) / 1000)); }

# ---------------------------------------------------------------------------
# Can we run here?

if [[ $(id -u) -ne 0 ]]; then
	skip "not root (network namespaces need root); run as root: sudo bash scripts/lan-test.sh"
fi
if ! command -v ip >/dev/null 2>&1; then
	PATH=$PATH:/usr/sbin:/sbin # root's PATH may lack the sbin dirs
fi
if ! command -v ip >/dev/null 2>&1; then
	say "ip not found; installing iproute2"
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2; } >/dev/null 2>&1 ||
		! command -v ip >/dev/null 2>&1; then
		skip "the ip command is missing and installing iproute2 with apt-get failed"
	fi
fi
for tool in go timeout; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		say "FAIL: $tool not found in PATH"
		exit 1
	fi
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# ---------------------------------------------------------------------------
# State, and the cleanup that runs whatever happens.

suffix="$$-$RANDOM"
NS_BR="exo-br-$suffix"
NAMES=(a b c)
declare -A NS PID DIR ID PEERS_OUT SEEN
for n in "${NAMES[@]}"; do
	NS[$n]="exo-$n-$suffix"
	PID[$n]=""
done
CREATED_NS=()
tmp=""
cleaned=0

# alive PID: the process exists and is not a zombie.
alive() {
	local stat
	[[ -n $1 ]] || return 1
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

# stop_node NAME: SIGTERM, SIGKILL after 3 s, reap.
stop_node() {
	local n=$1 pid=${PID[$1]} i
	[[ -n $pid ]] || return 0
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 30; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			say "node $n (pid $pid) still running 3 s after SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
	PID[$n]=""
}

cleanup() {
	local rc=$? n ns
	((cleaned)) && return 0
	cleaned=1
	trap '' INT TERM # a second Ctrl-C must not cut the clean-up short
	set +e
	for n in "${NAMES[@]}"; do
		stop_node "$n"
	done
	for ((i = ${#CREATED_NS[@]} - 1; i >= 0; i--)); do
		ns=${CREATED_NS[i]}
		ip netns del "$ns" 2>/dev/null || say "warning: could not delete network namespace $ns"
	done
	if [[ -n $tmp && -d $tmp ]]; then
		if [[ ${LAN_TEST_KEEP:-0} == 1 ]]; then
			say "kept $tmp"
		else
			rm -rf "$tmp"
		fi
	fi
	return "$rc"
}
trap cleanup EXIT
trap 'say "FAIL: interrupted by SIGINT"; exit 130' INT
trap 'say "FAIL: interrupted by SIGTERM"; exit 143' TERM

show_diagnostics() {
	local n
	for n in "${NAMES[@]}"; do
		echo "----- node $n (${NS[$n]}, pid ${PID[$n]:-none}, id ${ID[$n]:-unknown}) -----"
		if [[ -n ${DIR[$n]:-} ]]; then
			echo "--- stdout:"
			cat "$tmp/$n.out" 2>/dev/null || true
			echo "--- log, last 40 lines:"
			tail -n 40 "$tmp/$n.log" 2>/dev/null || true
			echo "--- last peers --json:"
			printf '%s\n' "${PEERS_OUT[$n]:-(none)}"
		fi
	done
	if [[ -n ${NS_BR:-} ]]; then
		echo "----- bridge ports ($NS_BR) -----"
		bridge -n "$NS_BR" link show 2>/dev/null || ip -n "$NS_BR" link show 2>/dev/null || true
	fi
}

fail() {
	say "FAIL: $*"
	show_diagnostics
	say "FAIL: $*"
	exit 1
}

# ---------------------------------------------------------------------------
# The virtual LAN.

if ! err=$(ip netns add "$NS_BR" 2>&1); then
	skip "cannot create network namespaces here (ip netns add: ${err:-failed}); needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN"
fi
CREATED_NS+=("$NS_BR")

# step runs one set-up command and stops lan_setup if it fails (set -e does
# not apply inside a function called as an if condition).
step() {
	local err
	if ! err=$("$@" 2>&1); then
		printf '%s: %s\n' "$*" "${err:-failed}"
		return 1
	fi
}

# lan_setup builds the bridge and the three hosts; it returns non-zero, with
# the failing command and its error on stdout, if the kernel refuses.
lan_setup() {
	local i=1 n ns
	step ip -n "$NS_BR" link set lo up || return
	step ip -n "$NS_BR" link add br0 type bridge mcast_snooping 0 stp_state 0 || return
	step ip -n "$NS_BR" link set br0 up || return
	for n in "${NAMES[@]}"; do
		ns=${NS[$n]}
		step ip netns add "$ns" || return
		CREATED_NS+=("$ns")
		step ip -n "$ns" link set lo up || return
		# Created inside the bridge namespace, the far end moved straight into
		# the host namespace: the root namespace never sees either end.
		step ip -n "$NS_BR" link add "veth-$n" type veth peer name eth0 netns "$ns" || return
		step ip -n "$NS_BR" link set "veth-$n" master br0 || return
		step ip -n "$NS_BR" link set "veth-$n" up || return
		step ip -n "$ns" addr add "$SUBNET.$i/24" dev eth0 || return
		step ip -n "$ns" link set eth0 multicast on up || return
		# zeroconf picks the interface per packet; the route is belt and braces
		# for multicast in a namespace that has no default route.
		step ip -n "$ns" route add 224.0.0.0/4 dev eth0 || return
		i=$((i + 1))
	done
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/exopeer-lan-test.XXXXXX")
# Not in $(...): lan_setup must record the namespaces it creates in this shell.
if ! lan_setup >"$tmp/setup.err"; then
	skip "cannot build the virtual LAN (bridge, veth) in network namespaces: $(cat "$tmp/setup.err")"
fi
say "virtual LAN: bridge in $NS_BR; hosts ${NS[a]} ($SUBNET.1), ${NS[b]} ($SUBNET.2), ${NS[c]} ($SUBNET.3)"

# ---------------------------------------------------------------------------
# Build and start the nodes.

bin="$tmp/exopeer"
say "building exopeer"
if ! go build -o "$bin" ./cmd/exopeer; then
	say "FAIL: go build ./cmd/exopeer failed"
	exit 1
fi

for n in "${NAMES[@]}"; do
	DIR[$n]="$tmp/node-$n"
	# ip netns exec execs the binary: $! is the node's own PID.
	ip netns exec "${NS[$n]}" "$bin" run --dir "${DIR[$n]}" --port "$PORT" --log-level debug \
		</dev/null >"$tmp/$n.out" 2>"$tmp/$n.log" &
	PID[$n]=$!
done
say "started nodes a (pid ${PID[a]}), b (pid ${PID[b]}), c (pid ${PID[c]}) with mDNS on, port $PORT"

# Wait for every node to print its peer ID.
now_us
deadline=$((NOW + START_TIMEOUT * 1000000))
while :; do
	ready=0
	for n in "${NAMES[@]}"; do
		if grep -q '^peer ID ' "$tmp/$n.out" 2>/dev/null; then
			ready=$((ready + 1))
		elif ! alive "${PID[$n]}"; then
			fail "node $n exited before printing its peer ID"
		fi
	done
	now_us
	((ready == ${#NAMES[@]})) && break
	((NOW < deadline)) || fail "not every node printed its peer ID within ${START_TIMEOUT}s"
	sleep 0.05
done
t0=$NOW

# The PIDs must be the nodes themselves (ip netns exec execs, it does not
# fork), or the stop times below would measure the wrong process.
for n in "${NAMES[@]}"; do
	exe=$(readlink "/proc/${PID[$n]}/exe" 2>/dev/null) || exe="?"
	[[ $exe == "$bin" ]] || fail "pid ${PID[$n]} of node $n runs $exe, not $bin"
done

# The peer IDs, as the control API gives them (and as printed).
for n in "${NAMES[@]}"; do
	if ! out=$(timeout 10 ip netns exec "${NS[$n]}" "$bin" id --dir "${DIR[$n]}" --json 2>&1); then
		fail "exopeer id --json on node $n failed: $out"
	fi
	ID[$n]=$(printf '%s' "$out" | tr -d '[:space:]' | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
	printed=$(sed -n 's/^peer ID  *//p' "$tmp/$n.out" | head -n 1)
	[[ -n ${ID[$n]} ]] || fail "no id in the output of exopeer id --json on node $n: $out"
	[[ ${ID[$n]} == "$printed" ]] || fail "node $n: exopeer id says ${ID[$n]} but run printed $printed"
	say "node $n: ${ID[$n]}"
done

# ---------------------------------------------------------------------------
# Discovery: each node lists the other two, found by mDNS.

# lists_by_mdns JSON ID: the peers JSON has an entry for ID whose sources
# include "mdns". The JSON is flattened and split into one object per line.
lists_by_mdns() {
	printf '%s' "$1" | tr -d '[:space:]' | sed 's/},{/}\n{/g' |
		grep -F "\"peer\":\"$2\"" | grep -q '"sources":\[[^]]*"mdns"'
}

deadline=$((t0 + DISCOVERY_TIMEOUT * 1000000))
for n in "${NAMES[@]}"; do SEEN[$n]=""; done
while :; do
	done_count=0
	for n in "${NAMES[@]}"; do
		alive "${PID[$n]}" || fail "node $n exited during discovery"
		if [[ -n ${SEEN[$n]} ]]; then
			done_count=$((done_count + 1))
			continue
		fi
		PEERS_OUT[$n]=$(timeout 5 ip netns exec "${NS[$n]}" "$bin" peers --dir "${DIR[$n]}" --json 2>&1) || true
		ok=1
		for m in "${NAMES[@]}"; do
			[[ $m == "$n" ]] && continue
			lists_by_mdns "${PEERS_OUT[$n]}" "${ID[$m]}" || ok=0
		done
		if ((ok)); then
			now_us
			SEEN[$n]=$((NOW - t0))
			done_count=$((done_count + 1))
		fi
	done
	((done_count == ${#NAMES[@]})) && break
	now_us
	if ((NOW >= deadline)); then
		missing=""
		for n in "${NAMES[@]}"; do
			[[ -z ${SEEN[$n]} ]] && missing+=" $n"
		done
		fail "after ${DISCOVERY_TIMEOUT}s, node(s)$missing did not list both other nodes with source mdns"
	fi
	sleep "$POLL"
done
disc_took=0
for n in "${NAMES[@]}"; do
	((SEEN[$n] > disc_took)) && disc_took=${SEEN[$n]}
done
say "discovery: all three nodes list the other two by mDNS $(secs "$disc_took")s after the last peer ID was printed (a $(secs "${SEEN[a]}")s, b $(secs "${SEEN[b]}")s, c $(secs "${SEEN[c]}")s)"
for n in "${NAMES[@]}"; do
	summary=$(printf '%s' "${PEERS_OUT[$n]}" | tr -d '[:space:]' | sed 's/},{/}\n{/g' |
		sed -n 's/.*"peer":"\([^"]*\)","addr":"\([^"]*\)","sources":\[\([^]]*\)\].*/\1 via \2 [\3]/p' | tr -d '"' | tr '\n' ';')
	say "  $n sees: ${summary%;}"
done

# ---------------------------------------------------------------------------
# Stop: each node exits within STOP_LIMIT after SIGTERM, one after the other.

limit_us=$((STOP_LIMIT * 1000000))
stops=""
slow=""
for n in "${NAMES[@]}"; do
	pid=${PID[$n]}
	now_us
	began=$NOW
	kill -TERM "$pid"
	# Poll the process state (a zombie counts as exited), up to 5 s.
	while alive "$pid"; do
		now_us
		((NOW - began < 5000000)) || break
		sleep 0.01
	done
	now_us
	took=$((NOW - began))
	if alive "$pid"; then
		fail "node $n did not exit within 5s of SIGTERM"
	fi
	rc=0
	wait "$pid" || rc=$?
	PID[$n]=""
	stops+=" $n=$(secs "$took")s"
	if ((rc != 0)); then
		fail "node $n exited with status $rc after SIGTERM (took $(secs "$took")s)"
	fi
	if ((took > limit_us)); then
		slow+=" $n ($(secs "$took")s)"
	fi
done
say "stop times after SIGTERM:$stops"
if [[ -n $slow ]]; then
	fail "node(s) took longer than ${STOP_LIMIT}s to stop after SIGTERM:$slow"
fi

say "PASS (mDNS discovery of 3 nodes in $(secs "$disc_took")s; stop times:$stops)"

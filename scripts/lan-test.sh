#!/usr/bin/env bash
# lan-test.sh: three real exopeer nodes find each other by mDNS on a virtual
# LAN; node a creates a cell and invites, b (after one wrong code, which must
# be refused) and c join with the codes a printed, and `exopeer cell members`
# on each shows three members alive; each node appends 5 chain entries and
# all three end with the same 15 in the same order; then a removes c, a and
# b show it gone in key epoch 2 and c shows itself removed, and a's next
# chain entry reaches b but not c; then each node stops on SIGTERM within
# 2 s.
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
# 10), LAN_TEST_CELL_TIMEOUT (whole seconds, default 30: each cell join, and
# each wait for the rosters to agree), LAN_TEST_STOP_LIMIT (whole seconds,
# default 2), LAN_TEST_KEEP=1 keeps the temp dir (logs, data dirs, every cell
# command and its output in cell-cli.log) for a look afterwards.
#
# Needs bash 4+, coreutils, grep, sed, iproute2 (installed with apt-get if
# missing) and go; no jq or python.
set -euo pipefail

DISCOVERY_TIMEOUT=${LAN_TEST_DISCOVERY_TIMEOUT:-10} # s, from all peer IDs printed
CELL_TIMEOUT=${LAN_TEST_CELL_TIMEOUT:-30}           # s, per cell join and roster wait
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

for v in DISCOVERY_TIMEOUT CELL_TIMEOUT STOP_LIMIT; do
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
declare -A NS PID DIR ID PEERS_OUT SEEN CELL_OUT
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
			echo "--- last cell members --json:"
			printf '%s\n' "${CELL_OUT[$n]:-(none)}"
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
# Cell: node a creates a cell and invites; b (after one wrong code) and c
# join with the codes a printed; every node's roster shows three members
# alive. Then a removes c: a and b show it gone in key epoch 2, and c knows
# it was removed.

# cell_cli NODE LIMIT VERB [ARGS...] runs `exopeer cell VERB --dir DIR
# ARGS...` on NODE in its namespace, killed after LIMIT seconds. It sets
# CLI_OUT (stdout), CLI_ERR (stderr), CLI_RC (exit status) and CLI_TOOK
# (microseconds), and appends the call to cell-cli.log. Flags must come
# before the positional argument (Go's flag package stops at the first one).
cell_cli() { exo_cli cell "$@"; }
chain_cli() { exo_cli chain "$@"; }

# exo_cli GROUP NODE LIMIT VERB ARGS...: runs `exopeer GROUP VERB` on a node.
exo_cli() {
	local group=$1 n=$2 limit=$3 verb=$4 began
	shift 4
	now_us
	began=$NOW
	CLI_RC=0
	CLI_OUT=$(timeout "$limit" ip netns exec "${NS[$n]}" "$bin" "$group" "$verb" --dir "${DIR[$n]}" "$@" 2>"$tmp/cli.err") || CLI_RC=$?
	CLI_ERR=$(<"$tmp/cli.err")
	now_us
	CLI_TOOK=$((NOW - began))
	printf '== node %s: %s %s %s -> exit %d in %ss\n-- stdout:\n%s\n-- stderr:\n%s\n' \
		"$n" "$group" "$verb" "$*" "$CLI_RC" "$(secs "$CLI_TOOK")" "$CLI_OUT" "$CLI_ERR" >>"$tmp/cell-cli.log"
}

# who ID: the node letter for a peer ID (the ID itself if unknown).
who() {
	local n
	for n in "${NAMES[@]}"; do
		[[ ${ID[$n]} == "$1" ]] && { printf '%s' "$n"; return; }
	done
	printf '%s' "$1"
}

# cell_parse JSON reads the output of `cell ... --json` (flattened, one
# member object per line; no member value has white space) and sets C_ID,
# C_VERSION, C_EPOCH, C_ADMIN and C_REMOVED (0/1), C_COUNT (members),
# C_PEERS (sorted node letters, e.g. "a b c"), C_ALIVE (members alive),
# C_SELF (the letter of the member marked self) and C_SUMMARY, e.g.
# "v3 e1 a=alive(self) b=alive c=suspect".
cell_parse() {
	local flat p s line m
	flat=$(printf '%s' "$1" | tr -d '[:space:]' | sed 's/},{/}\n{/g')
	C_ID=$(printf '%s\n' "$flat" | sed -n '1s/.*"id":"\([^"]*\)".*/\1/p')
	C_VERSION=$(printf '%s\n' "$flat" | sed -n '1s/.*"version":\([0-9]*\).*/\1/p')
	C_EPOCH=$(printf '%s\n' "$flat" | sed -n '1s/.*"epoch":\([0-9]*\).*/\1/p')
	C_ADMIN=0
	C_REMOVED=0
	[[ $flat == *'"admin":true'* ]] && C_ADMIN=1
	[[ $flat == *'"removed":true'* ]] && C_REMOVED=1
	C_COUNT=0
	C_ALIVE=0
	C_SELF=""
	C_PEERS=""
	C_SUMMARY="v${C_VERSION:-?} e${C_EPOCH:-?}"
	while IFS= read -r line; do
		p=$(printf '%s' "$line" | sed -n 's/.*"peer":"\([^"]*\)".*/\1/p')
		[[ -n $p ]] || continue
		s=$(printf '%s' "$line" | sed -n 's/.*"state":"\([^"]*\)".*/\1/p')
		m=$(who "$p")
		C_COUNT=$((C_COUNT + 1))
		[[ $s == alive ]] && C_ALIVE=$((C_ALIVE + 1))
		C_PEERS+="$m"$'\n'
		C_SUMMARY+=" $m=${s:-?}"
		if [[ $line == *'"self":true'* ]]; then
			C_SELF=$m
			C_SUMMARY+="(self)"
		fi
	done <<<"$flat"
	C_PEERS=$(printf '%s' "$C_PEERS" | sort | tr '\n' ' ')
	C_PEERS=${C_PEERS% }
	((C_REMOVED)) && C_SUMMARY+=" removed"
	return 0
}

code_re='^[0-9]{4}(-[a-z]+){3}$'
declare -A CELL_DONE WHY

# 1. Create, invite, a wrong code, and two joins.
cell_cli a 15 create --member node-a --json lan-test
((CLI_RC == 0)) || fail "node a: exopeer cell create failed (exit $CLI_RC): $CLI_ERR"
CELL_OUT[a]=$CLI_OUT
cell_parse "$CLI_OUT"
[[ -n $C_ID && $C_ADMIN == 1 && $C_VERSION == 1 && $C_EPOCH == 1 && $C_PEERS == a && $C_SELF == a ]] ||
	fail "node a: cell create printed an unexpected view (want admin, version 1, epoch 1, only itself): $CLI_OUT"
cell_id=$C_ID
create_took=$CLI_TOOK
say "cell: node a created cell $cell_id in $(secs "$create_took")s ($C_SUMMARY)"

cell_cli a 15 invite
((CLI_RC == 0)) || fail "node a: exopeer cell invite failed (exit $CLI_RC): $CLI_ERR"
code_a=$CLI_OUT
[[ $code_a =~ $code_re ]] || fail "node a: cell invite printed '$code_a' on stdout, not one code NNNN-word-word-word"
[[ -n $CLI_ERR ]] || fail "node a: cell invite printed no explanation on stderr"
say "cell: invite for node b: $code_a"

# The same nameplate with other words (abandon, ability: list words, so the
# code parses and the failure is the PAKE's).
IFS=- read -r np w1 w2 w3 <<<"$code_a"
wrong=$np
for w in "$w1" "$w2" "$w3"; do
	if [[ $w == abandon ]]; then wrong+=-ability; else wrong+=-abandon; fi
done
cell_cli b 35 join --member node-b --timeout 20s "$wrong"
wrong_took=$CLI_TOOK
((CLI_RC != 0)) || fail "node b: cell join with the wrong code $wrong succeeded: $CLI_OUT"
grep -qi 'wrong code' <<<"$CLI_ERR" ||
	fail "node b: cell join with the wrong code $wrong failed (exit $CLI_RC, $(secs "$wrong_took")s) without saying \"wrong code\": $CLI_ERR"
say "cell: node b: wrong code $wrong refused in $(secs "$wrong_took")s (exit $CLI_RC): $CLI_ERR"

cell_cli b $((CELL_TIMEOUT + 15)) join --member node-b --timeout "${CELL_TIMEOUT}s" --json "$code_a"
((CLI_RC == 0)) || fail "node b: cell join $code_a (after one wrong try) failed (exit $CLI_RC, $(secs "$CLI_TOOK")s): $CLI_ERR"
join_b=$CLI_TOOK
cell_parse "$CLI_OUT"
[[ $C_ID == "$cell_id" && $C_ADMIN == 0 && $C_SELF == b && " $C_PEERS " == *" a "* ]] ||
	fail "node b: cell join printed an unexpected view (want cell $cell_id, not admin, a and itself on it): $CLI_OUT"
say "cell: node b joined in $(secs "$join_b")s ($C_SUMMARY)"

cell_cli a 15 invite --roles chain,store --ttl 5m --json
((CLI_RC == 0)) || fail "node a: exopeer cell invite --json failed (exit $CLI_RC): $CLI_ERR"
code_b=$(printf '%s' "$CLI_OUT" | tr -d '[:space:]' | sed -n 's/.*"code":"\([^"]*\)".*/\1/p')
[[ $code_b =~ $code_re ]] || fail "node a: no code in the output of cell invite --json: $CLI_OUT"
[[ $code_b != "$code_a" ]] || fail "node a: the second invite has the same code as the first: $code_b"
say "cell: invite for node c: $code_b"

cell_cli c $((CELL_TIMEOUT + 15)) join --member node-c --timeout "${CELL_TIMEOUT}s" --json "$code_b"
((CLI_RC == 0)) || fail "node c: cell join $code_b failed (exit $CLI_RC, $(secs "$CLI_TOOK")s): $CLI_ERR"
join_c=$CLI_TOOK
cell_parse "$CLI_OUT"
[[ $C_ID == "$cell_id" && $C_ADMIN == 0 && $C_SELF == c ]] ||
	fail "node c: cell join printed an unexpected view (want cell $cell_id, not admin, itself on it): $CLI_OUT"
say "cell: node c joined in $(secs "$join_c")s ($C_SUMMARY)"

# cell_poll CHECK LABEL: polls `cell members --json` on every node until the
# function CHECK NODE accepts it (CHECK sets WHY[NODE] when it does not), up
# to CELL_TIMEOUT; sets POLL_TOOK to when the last node passed (µs).
cell_poll() {
	local check=$1 label=$2 began deadline n done_count missing
	now_us
	began=$NOW
	deadline=$((NOW + CELL_TIMEOUT * 1000000))
	for n in "${NAMES[@]}"; do CELL_DONE[$n]=""; done
	while :; do
		done_count=0
		for n in "${NAMES[@]}"; do
			alive "${PID[$n]}" || fail "node $n exited while waiting for $label"
			if [[ -n ${CELL_DONE[$n]} ]]; then
				done_count=$((done_count + 1))
				continue
			fi
			cell_cli "$n" 10 members --json
			CELL_OUT[$n]=$CLI_OUT
			if ((CLI_RC != 0)); then
				WHY[$n]="cell members failed (exit $CLI_RC): $CLI_ERR"
				continue
			fi
			cell_parse "$CLI_OUT"
			WHY[$n]=""
			"$check" "$n"
			if [[ -z ${WHY[$n]} ]]; then
				now_us
				CELL_DONE[$n]=$((NOW - began))
				done_count=$((done_count + 1))
			fi
		done
		((done_count == ${#NAMES[@]})) && break
		now_us
		if ((NOW >= deadline)); then
			missing=""
			for n in "${NAMES[@]}"; do
				[[ -z ${CELL_DONE[$n]} ]] && missing+="; node $n: ${WHY[$n]}"
			done
			fail "after ${CELL_TIMEOUT}s, not every node shows $label$missing"
		fi
		sleep "$POLL"
	done
	POLL_TOOK=0
	for n in "${NAMES[@]}"; do
		((CELL_DONE[$n] > POLL_TOOK)) && POLL_TOOK=${CELL_DONE[$n]}
	done
}

# 2. Every node: the same roster, a b c, all alive, itself marked self.
want_full() {
	local n=$1
	if [[ $C_ID != "$cell_id" ]]; then
		WHY[$n]="cell ${C_ID:-none}, want $cell_id"
	elif [[ $C_PEERS != "a b c" || $C_ALIVE != 3 || $C_SELF != "$n" || $C_EPOCH != 1 || $C_REMOVED == 1 ]]; then
		WHY[$n]="roster $C_SUMMARY (want a b c all alive, self $n, epoch 1)"
	else
		FULL_VERSION[$n]=$C_VERSION
		SUMMARY[$n]=$C_SUMMARY
	fi
}
declare -A FULL_VERSION SUMMARY
cell_poll want_full "three members alive"
alive_took=$POLL_TOOK
[[ ${FULL_VERSION[a]} == "${FULL_VERSION[b]}" && ${FULL_VERSION[a]} == "${FULL_VERSION[c]}" ]] ||
	fail "the nodes hold different roster versions: a ${FULL_VERSION[a]}, b ${FULL_VERSION[b]}, c ${FULL_VERSION[c]}"
say "cell: all three nodes list a, b, c alive $(secs "$alive_took")s after c joined (a $(secs "${CELL_DONE[a]}")s, b $(secs "${CELL_DONE[b]}")s, c $(secs "${CELL_DONE[c]}")s)"
for n in "${NAMES[@]}"; do
	say "  $n: ${SUMMARY[$n]}"
done

# 2b. The chain: every node appends 5 entries with `exopeer chain append`;
# every node ends with the same 15 entries in the same order.
# chain_poll WANT LABEL [NODES...]: polls `chain log` on the nodes until each
# holds WANT entries and all hold them in the same order.
chain_poll() {
	local want=$1 label=$2 began n ok
	shift 2
	local nodes=("$@")
	now_us
	began=$NOW
	while :; do
		ok=1
		declare -A ORDER=()
		for n in "${nodes[@]}"; do
			chain_cli "$n" 10 log
			if ((CLI_RC != 0)); then
				ok=0 WHY[$n]="chain log failed (exit $CLI_RC): $CLI_ERR"
				continue
			fi
			local count
			count=$(grep -c . <<<"$CLI_OUT" || true)
			ORDER[$n]=$(cut -d' ' -f1 <<<"$CLI_OUT" | sha256sum | cut -c1-16)
			((count == want)) || { ok=0; WHY[$n]="$count entries, want $want"; }
		done
		if ((ok)); then
			local first=${ORDER[${nodes[0]}]}
			for n in "${nodes[@]}"; do
				[[ ${ORDER[$n]} == "$first" ]] || { ok=0; WHY[$n]="order ${ORDER[$n]}, node ${nodes[0]} has $first"; }
			done
		fi
		((ok)) && break
		now_us
		if ((NOW - began > CELL_TIMEOUT * 1000000)); then
			for n in "${nodes[@]}"; do
				say "  $n: ${WHY[$n]:-ok}"
			done
			fail "chain: not every node reached $label within ${CELL_TIMEOUT}s"
		fi
		sleep 0.1
	done
	now_us
	POLL_TOOK=$((NOW - began))
}
for n in "${NAMES[@]}"; do
	for i in 1 2 3 4 5; do
		chain_cli "$n" 10 append "entry $i of node $n"
		((CLI_RC == 0)) || fail "node $n: chain append failed (exit $CLI_RC): $CLI_ERR"
	done
done
say "chain: 5 appends on each node, the last took $(secs "$CLI_TOOK")s"
chain_poll 15 "15 entries in one order" "${NAMES[@]}"
chain_took=$POLL_TOOK
say "chain: all three nodes hold the same 15 entries in the same order $(secs "$chain_took")s after the last append"

# 3. Node a removes node c: a and b show it gone in epoch 2, c is told.
cell_cli a 15 remove "${ID[c]}"
((CLI_RC == 0)) || fail "node a: cell remove ${ID[c]} (node c) failed (exit $CLI_RC): $CLI_ERR"
remove_took=$CLI_TOOK
say "cell: node a removed node c in $(secs "$remove_took")s"
want_removed() {
	local n=$1
	if [[ $n == c ]]; then
		((C_REMOVED)) || WHY[$n]="not marked removed: $C_SUMMARY"
	elif [[ $C_ID != "$cell_id" ]]; then
		WHY[$n]="cell ${C_ID:-none}, want $cell_id"
	elif [[ $C_PEERS != "a b" || $C_ALIVE != 2 || $C_SELF != "$n" || $C_EPOCH != 2 || $C_REMOVED == 1 ]]; then
		WHY[$n]="roster $C_SUMMARY (want a b alive, self $n, epoch 2)"
	fi
	[[ -n ${WHY[$n]} ]] || SUMMARY[$n]=$C_SUMMARY
}
cell_poll want_removed "node c removed"
gone_took=$POLL_TOOK
say "cell: removal seen everywhere $(secs "$gone_took")s after cell remove returned (a $(secs "${CELL_DONE[a]}")s, b $(secs "${CELL_DONE[b]}")s, c $(secs "${CELL_DONE[c]}")s)"
for n in "${NAMES[@]}"; do
	say "  $n: ${SUMMARY[$n]}"
done

# 3b. After the removal: a's next entry reaches b, and c (removed, no
# longer in the cell) has none of it.
chain_cli a 10 append "after the removal of c"
((CLI_RC == 0)) || fail "node a: chain append after the removal failed (exit $CLI_RC): $CLI_ERR"
chain_poll 16 "16 entries after the removal" a b
after_took=$POLL_TOOK
say "chain: a's entry after the removal reached b in $(secs "$after_took")s"
chain_cli c 10 log
if ((CLI_RC == 0)) && grep -q "after the removal" <<<"$CLI_OUT"; then
	fail "node c, removed, reads an entry written after its removal"
fi

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

say "PASS (mDNS discovery of 3 nodes in $(secs "$disc_took")s; cell: wrong code refused in $(secs "$wrong_took")s, joins b $(secs "$join_b")s c $(secs "$join_c")s, 3 alive on all in $(secs "$alive_took")s, chain of 15 identical on all in $(secs "$chain_took")s, removal of c seen on all in $(secs "$gone_took")s (epoch 2); stop times:$stops)"

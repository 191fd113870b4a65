package doctor

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// want is a finding Diagnose must return: its check, level, and words its
// sentence (and fix) contain.
type want struct {
	check string
	level Level
	says  string
	fix   string
}

func TestDiagnose(t *testing.T) {
	cfg := "/home/a/.local/share/exopeer/config.toml"
	l4777 := []Listen{{Addr: "/ip4/0.0.0.0/tcp/4777", Port: 4777}, {Addr: "/ip4/0.0.0.0/udp/4777/quic-v1", Port: 4777}}
	obs := func(local, observer string, port int) Observation {
		return Observation{Local: local, Observer: observer, External: "203.0.113.7:" + strconv.Itoa(port), Port: port}
	}
	tests := []struct {
		name  string
		facts Facts
		want  []want
		not   []want // findings that must not be there
	}{
		{"no listen address", Facts{ConfigPath: cfg},
			[]want{{CheckListen, Problem, "listens on no address", "network.listen_ips"}}, nil},
		{"listening", Facts{Listen: l4777},
			[]want{{CheckListen, OK, "/ip4/0.0.0.0/udp/4777/quic-v1", ""}}, nil},
		{"port taken", Facts{ConfigPath: cfg, WantPort: 4777, Listen: []Listen{{Addr: "/ip4/0.0.0.0/tcp/39001", Port: 39001}}},
			[]want{{CheckPort, Problem, "Port 4777 is taken by another program, so the node listens on port 39001", "set network.port in " + cfg}}, nil},
		{"port as configured", Facts{WantPort: 4777, Listen: l4777},
			[]want{{CheckPort, OK, "Port 4777", ""}}, []want{{CheckPort, Problem, "", ""}}},
		{"any port asked", Facts{WantPort: -1, Listen: l4777}, nil, []want{{CheckPort, Problem, "", ""}, {CheckPort, OK, "", ""}}},
		{"address unreachable", Facts{ConfigPath: cfg, Listen: l4777, Reachability: "private",
			Addrs: []Addr{{Addr: "/ip4/198.51.100.4/udp/4777/quic-v1", State: "unreachable", Port: 4777}}},
			[]want{{CheckReach, Warn, "/ip4/198.51.100.4/udp/4777/quic-v1 is not reachable", "Forward port 4777"},
				{CheckReach, Warn, "The node is not reachable from the internet", "network.port_mapping = true in " + cfg}}, nil},
		{"address reachable", Facts{Listen: l4777, Reachability: "public",
			Addrs: []Addr{{Addr: "/ip4/198.51.100.4/tcp/4777", State: "reachable", Port: 4777}}},
			[]want{{CheckReach, OK, "/ip4/198.51.100.4/tcp/4777 is reachable", ""}, {CheckReach, OK, "The node is reachable", ""}},
			[]want{{CheckReach, Warn, "", ""}}},
		{"reachability unknown", Facts{Listen: l4777, Reachability: "unknown",
			Addrs: []Addr{{Addr: "/ip4/198.51.100.4/tcp/4777", State: "unknown"}}},
			[]want{{CheckReach, OK, "not been tested", ""}, {CheckReach, OK, "not known yet", ""}}, []want{{CheckReach, Warn, "", ""}}},
		{"nat: one observer tells nothing", Facts{Observations: []Observation{obs("/ip4/10.0.0.2/udp/4777", "192.0.2.1", 4777)}},
			[]want{{CheckNAT, OK, "cannot be told yet: fewer than two of your cell's devices or contacts", ""}}, nil},
		{"nat: same port for all (endpoint-independent)", Facts{Observations: []Observation{
			obs("/ip4/10.0.0.2/udp/4777", "192.0.2.1", 4777), obs("/ip4/10.0.0.2/udp/4777", "192.0.2.2", 4777)}},
			[]want{{CheckNAT, OK, "to port 4777 for all 2 peers", ""}}, []want{{CheckNAT, Warn, "", ""}}},
		{"nat: port per destination (symmetric)", Facts{Observations: []Observation{
			obs("/ip4/10.0.0.2/udp/4777", "192.0.2.1", 61001), obs("/ip4/10.0.0.2/udp/4777", "192.0.2.2", 61077)}},
			[]want{{CheckNAT, Warn, "different port for each peer (2 peers saw ports 61001, 61077)", "Forward"}}, nil},
		{"nat: two local ports are not one mapping", Facts{Observations: []Observation{
			obs("/ip4/10.0.0.2/tcp/50001", "192.0.2.1", 61001), obs("/ip4/10.0.0.2/tcp/50002", "192.0.2.2", 61077)}},
			[]want{{CheckNAT, OK, "cannot be told yet", ""}}, []want{{CheckNAT, Warn, "", ""}}},
		{"nat: one observer seen twice is one", Facts{Observations: []Observation{
			obs("/ip4/10.0.0.2/udp/4777", "192.0.2.1", 61001), obs("/ip4/10.0.0.2/udp/4777", "192.0.2.1", 61077)}},
			[]want{{CheckNAT, OK, "cannot be told yet", ""}}, []want{{CheckNAT, Warn, "", ""}}},
		{"relay in use", Facts{Reachability: "private", Addrs: []Addr{{Addr: "/ip4/198.51.100.9/udp/4777/quic-v1/p2p/R1/p2p-circuit", State: "relay", Relay: "R1"}}},
			[]want{{CheckRelays, OK, "through relay R1", ""}}, []want{{CheckRelays, Warn, "", ""}}},
		{"private and no relay", Facts{Reachability: "private"},
			[]want{{CheckRelays, Warn, "holds no relay reservation", "reachable from the internet"}}, nil},
		{"public, no relay needed", Facts{Reachability: "public"},
			[]want{{CheckRelays, OK, "holds no relay", ""}}, []want{{CheckRelays, Warn, "", ""}}},
		{"relayed connections name their relay", Facts{Conns: []Conn{{Peer: "B", Kind: "member", Relay: "R2"}}},
			[]want{{CheckRelays, OK, "Connections go through relay R2", ""}}, nil},
		{"no peer", Facts{}, []want{{CheckPeers, OK, "No peer is connected", ""}}, nil},
		{"member direct", Facts{Conns: []Conn{{Peer: "B", Kind: "member", Remote: "/ip4/10.0.0.3/udp/4777/quic-v1"}}},
			[]want{{CheckPeers, OK, "Member B is connected directly at /ip4/10.0.0.3/udp/4777/quic-v1 (this node dialled it)", ""}}, nil},
		{"member named", Facts{Conns: []Conn{{Peer: "B", Kind: "member", Name: "laptop", Remote: "/ip4/10.0.0.3/tcp/1"}}, Clocks: []Clock{{Peer: "B", Name: "laptop"}}},
			[]want{{CheckPeers, OK, "Member laptop (B) is connected directly", ""}, {CheckClock, OK, "The clock of laptop (B) agrees", ""}}, nil},
		{"a name that would write to the terminal is quoted", Facts{Conns: []Conn{{Peer: "B", Kind: "contact", Name: "bob\x1b[2J", Relay: "R"}}},
			[]want{{CheckPeers, Warn, `Contact "bob\x1b[2J" (B) is connected through relay R`, ""}}, nil},
		{"direct wins over relayed", Facts{Conns: []Conn{{Peer: "B", Kind: "contact", Relay: "R", Remote: "/p2p/R/p2p-circuit"}, {Peer: "B", Kind: "contact", Remote: "/ip4/198.51.100.3/udp/4777/quic-v1", Inbound: true}}},
			[]want{{CheckPeers, OK, "Contact B is connected directly at /ip4/198.51.100.3/udp/4777/quic-v1 (it dialled this node)", ""}}, []want{{CheckPeers, Warn, "", ""}}},
		{"member relayed, the punch failed", Facts{Conns: []Conn{{Peer: "B", Kind: "member", Relay: "R", Punch: "all retries failed"}}},
			[]want{{CheckPeers, Warn, "Member B is connected through relay R: hole punching has not made a direct connection (yet); the last hole punch failed: all retries failed.", "forward"}}, nil},
		{"member punched", Facts{Conns: []Conn{{Peer: "B", Kind: "member", Relay: "R", Remote: "/p2p/R/p2p-circuit", Punch: "ok"}, {Peer: "B", Kind: "member", Remote: "/ip4/198.51.100.3/udp/4777/quic-v1", Punch: "ok"}}},
			[]want{{CheckPeers, OK, "Member B is connected directly at /ip4/198.51.100.3/udp/4777/quic-v1 (hole punching made it, through the NATs)", ""}}, nil},
		{"member relayed, punching not yet", Facts{Conns: []Conn{{Peer: "B", Kind: "member", Relay: "R"}}},
			[]want{{CheckPeers, Warn, "Member B is connected through relay R: hole punching has not made a direct connection", "forward"}}, nil},
		{"member relayed behind a symmetric NAT", Facts{Conns: []Conn{{Peer: "B", Kind: "member", Relay: "R"}}, Observations: []Observation{
			obs("/ip4/10.0.0.2/udp/4777", "192.0.2.1", 61001), obs("/ip4/10.0.0.2/udp/4777", "192.0.2.2", 61077)}},
			[]want{{CheckPeers, Warn, "maps ports per peer, so hole punching cannot pass it", ""}}, nil},
		{"member relayed, this node public", Facts{Reachability: "public", Conns: []Conn{{Peer: "B", Kind: "member", Relay: "R"}}},
			[]want{{CheckPeers, Warn, "the peer is behind a NAT", ""}}, nil},
		{"limited relay", Facts{Conns: []Conn{{Peer: "B", Kind: "member", Relay: "R", Limited: true}}},
			[]want{{CheckPeers, Problem, "which limits the connection's time and bytes: messages, store reads, chain sync and the cell's gossip run over it", "relay of your own cell"},
				{CheckPeers, Problem, "files (blobs) and the DHT do not use it", ""}},
			[]want{{CheckPeers, Problem, "messages fail", ""}}},
		{"others are counted", Facts{Conns: []Conn{{Peer: "D1", Remote: "/ip4/1.2.3.4/tcp/1"}, {Peer: "D2", Relay: "R"}, {Peer: "D3", Remote: "/ip4/1.2.3.5/tcp/1"}}},
			[]want{{CheckPeers, OK, "3 other peers connected: 2 directly, 1 through a relay", ""}}, []want{{CheckPeers, Warn, "", ""}}},
		{"no clock to compare", Facts{}, []want{{CheckClock, OK, "No cell member", ""}}, nil},
		{"clock agrees", Facts{Clocks: []Clock{{Peer: "B", Skew: 300 * time.Millisecond, RTT: 40 * time.Millisecond}}},
			[]want{{CheckClock, OK, "The clock of B agrees", ""}}, []want{{CheckClock, Warn, "", ""}}},
		{"clock agrees within a loopback's round trip", Facts{Clocks: []Clock{{Peer: "B", Skew: 20 * time.Microsecond, RTT: 300 * time.Microsecond}}},
			[]want{{CheckClock, OK, "agrees with this node's (within 150µs)", ""}}, nil},
		{"clock ahead", Facts{Clocks: []Clock{{Peer: "B", Skew: 5 * time.Second, RTT: 40 * time.Millisecond}}},
			[]want{{CheckClock, Warn, "The clock of B is 5s ahead of", "timedatectl"}}, nil},
		{"clock far behind", Facts{Clocks: []Clock{{Peer: "B", Skew: -3 * time.Minute, RTT: 40 * time.Millisecond}}},
			[]want{{CheckClock, Problem, "3m0s behind", ""}}, nil},
		{"skew within the reading's uncertainty", Facts{Clocks: []Clock{{Peer: "B", Skew: 3 * time.Second, RTT: 4 * time.Second}}},
			[]want{{CheckClock, OK, "agrees", ""}}, []want{{CheckClock, Warn, "", ""}}},
		{"most peers disagree: this clock is wrong", Facts{Clocks: []Clock{
			{Peer: "B", Skew: 5 * time.Second}, {Peer: "C", Skew: 6 * time.Second}, {Peer: "D"}}},
			[]want{{CheckClock, Problem, "2 of 3 peers' clocks disagree", "timedatectl"}}, nil},
		{"one peer disagrees: not this clock", Facts{Clocks: []Clock{{Peer: "B", Skew: 5 * time.Second}, {Peer: "C"}, {Peer: "D"}}},
			nil, []want{{CheckClock, Problem, "", ""}}},
		{"clock unread", Facts{Clocks: []Clock{{Peer: "B", Err: "protocols not supported"}}},
			[]want{{CheckClock, Warn, "Could not read the clock of B: protocols not supported", ""}}, nil},
		{"disk fine", Facts{Disk: Disk{Path: "/d", Free: 50 << 30, Total: 100 << 30}},
			[]want{{CheckDisk, OK, "50.0 GiB free of 100.0 GiB", ""}}, nil},
		{"disk low", Facts{Disk: Disk{Path: "/d", Free: 700 << 20, Total: 100 << 30}},
			[]want{{CheckDisk, Warn, "low on space (700.0 MiB free", "--dir"}}, nil},
		{"disk low by share", Facts{Disk: Disk{Path: "/d", Free: 40 << 30, Total: 1 << 40}},
			[]want{{CheckDisk, Warn, "low on space", ""}}, nil},
		{"disk full", Facts{Disk: Disk{Path: "/d", Free: 10 << 20, Total: 100 << 30}},
			[]want{{CheckDisk, Problem, "nearly full", "Free space"}}, nil},
		{"disk unread", Facts{Disk: Disk{Path: "/d", Err: "no such file"}},
			[]want{{CheckDisk, Problem, "Could not read the free space of /d", ""}}, nil},
		{"files private", Facts{Files: []File{{Path: "/d", Dir: true, Mode: 0o700}, {Path: "/d/node.key", Mode: 0o600}}},
			[]want{{CheckFiles, OK, "/d is private (mode 0700)", ""}, {CheckFiles, OK, "/d/node.key is private", ""}}, []want{{CheckFiles, Problem, "", ""}}},
		{"data dir open to others", Facts{Files: []File{{Path: "/d", Dir: true, Mode: 0o755}}},
			[]want{{CheckFiles, Problem, "/d is open to other users (mode 0755)", "chmod 700 /d"}}, nil},
		{"key readable by group", Facts{Files: []File{{Path: "/d/node.key", Mode: 0o640}}},
			[]want{{CheckFiles, Problem, "/d/node.key is readable to other users (mode 0640)", "chmod 600 /d/node.key"}}, nil},
		{"file unread", Facts{Files: []File{{Path: "/d/api.token", Err: "permission denied"}}},
			[]want{{CheckFiles, Problem, "Could not read /d/api.token", ""}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Diagnose(tc.facts)
			for _, w := range tc.want {
				if !has(got, w) {
					t.Errorf("no finding %+v in:\n%s", w, dump(got))
				}
			}
			for _, w := range tc.not {
				if has(got, w) {
					t.Errorf("finding %+v, want none, in:\n%s", w, dump(got))
				}
			}
			for _, f := range got {
				if (f.Level == OK) != (f.Fix == "") {
					t.Errorf("%s finding %q has fix %q: a fix goes with each warning and problem only", f.Level, f.Say, f.Fix)
				}
			}
		})
	}
}

func has(got []Finding, w want) bool {
	for _, f := range got {
		if f.Check == w.check && f.Level == w.level && strings.Contains(f.Say, w.says) && strings.Contains(f.Fix, w.fix) {
			return true
		}
	}
	return false
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(string(f.Level) + " " + f.Check + ": " + f.Say + " | " + f.Fix + "\n")
	}
	return b.String()
}

// TestPeerFindingsBound: past MaxPeerFindings members, the rest are
// counted, not listed.
func TestPeerFindingsBound(t *testing.T) {
	var f Facts
	for i := range MaxPeerFindings + 10 {
		f.Conns = append(f.Conns, Conn{Peer: "M" + strconv.Itoa(1000+i), Kind: "member", Remote: "/ip4/10.0.0.1/tcp/1"})
	}
	n := 0
	for _, x := range Diagnose(f) {
		if x.Check == CheckPeers && strings.HasPrefix(x.Say, "Member ") {
			n++
		}
	}
	if n != MaxPeerFindings {
		t.Errorf("%d members listed, want %d", n, MaxPeerFindings)
	}
	if !has(Diagnose(f), want{CheckPeers, OK, "10 other peers connected", ""}) {
		t.Errorf("the rest are not counted:\n%s", dump(Diagnose(f)))
	}
}

// TestDiagnoseOrder: findings come check by check in the documented order.
func TestDiagnoseOrder(t *testing.T) {
	f := Facts{Listen: []Listen{{Addr: "/ip4/0.0.0.0/tcp/1", Port: 1}}, WantPort: 1, Reachability: "public",
		Disk: Disk{Path: "/d", Free: 10 << 30, Total: 20 << 30}, Files: []File{{Path: "/d", Dir: true, Mode: 0o700}}}
	order := []string{CheckListen, CheckPort, CheckReach, CheckNAT, CheckRelays, CheckPeers, CheckClock, CheckDisk, CheckFiles}
	i := 0
	for _, x := range Diagnose(f) {
		for i < len(order) && order[i] != x.Check {
			i++
		}
		if i == len(order) {
			t.Fatalf("finding %q out of order:\n%s", x.Check, dump(Diagnose(f)))
		}
	}
}

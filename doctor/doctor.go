package doctor

import (
	"fmt"
	"time"
)

// Level is how bad a Finding is.
type Level string

const (
	// OK: nothing to do.
	OK Level = "ok"
	// Warn: works, but less well than it could (a relayed path, an
	// address not reachable); the fix is optional.
	Warn Level = "warn"
	// Problem: something fails or will fail (a port taken, a full disk,
	// a key others can read); the fix is needed.
	Problem Level = "problem"
)

// The checks, in the order Diagnose reports them.
const (
	CheckListen = "listen" // listen addresses
	CheckPort   = "port"   // the configured port could be bound
	CheckReach  = "reach"  // which addresses peers on the internet reach
	CheckNAT    = "nat"    // the NAT's mapping, as far as it can be told
	CheckRelays = "relays" // relays in use
	CheckPeers  = "peers"  // each peer's path: direct or relayed, and why
	CheckClock  = "clock"  // clock skew against the cell's members
	CheckDisk   = "disk"   // free space on the data dir's disk
	CheckFiles  = "files"  // data dir and key file modes
)

// Finding is one thing the doctor found.
type Finding struct {
	Check string // one of the Check constants
	Level Level
	Say   string // what is so, in a sentence
	Fix   string // what to do; empty when Level is OK
}

// Facts is the snapshot Diagnose judges. The node fills it (Node.Doctor);
// every slice may be empty.
type Facts struct {
	// ConfigPath is the node's config file, named in fixes; empty: "the
	// config file".
	ConfigPath string
	// WantPort is the TCP and QUIC port the config asks for; 0 or less:
	// any port (no port conflict can be).
	WantPort int
	// Listen are the addresses the node listens on.
	Listen []Listen
	// Reachability is the node's overall reachability (public, private,
	// unknown; package peer's Reachability); Addrs each address's state
	// (reachable, unreachable, unknown, local, relay).
	Reachability string
	Addrs        []Addr
	// Observations are the addresses the cell's members and its
	// contacts' devices saw this node's connections come from
	// (identify's observed address), one per observer: any other peer
	// could say anything.
	Observations []Observation
	// Conns are the node's open connections.
	Conns []Conn
	// Clocks are clock readings from peers (the time protocol).
	Clocks []Clock
	// Disk is the data dir's file system; zero Path: not checked.
	Disk Disk
	// Files are the data dir and its secret files, with their modes.
	Files []File
}

// Listen is one listen address of the node.
type Listen struct {
	Addr string // multiaddr
	Port int    // its TCP or UDP port
}

// Addr is one address of the node and AutoNAT v2's verdict on it.
type Addr struct {
	Addr  string
	State string // reachable, unreachable, unknown, local, relay
	Port  int    // its TCP or UDP port; 0 for a relay address
	Relay string // for a relay address, the relay's peer ID
}

// Observation is what one observer saw of one of the node's connections.
type Observation struct {
	// Local is the node's end of the connection, as protocol, IP and
	// port (say /ip4/10.0.0.2/udp/4777).
	Local string
	// Observer tells the observer apart: its peer ID, so that a peer
	// that comes from several addresses (IPv4 and IPv6, several
	// interfaces) is one observer.
	Observer string
	// External is the observed IP and port, and Port that port.
	External string
	Port     int
}

// Conn is one open connection.
type Conn struct {
	Peer string
	// Kind is "member" (of this node's cell), "contact" (a contact's
	// device), or empty (any other peer: the DHT's, say).
	Kind string
	// Name is the member's name on the roster, or the contact's; may be
	// empty.
	Name   string
	Remote string // the remote multiaddr
	// Relay is the relay's peer ID when the connection goes through a
	// circuit relay; empty for a direct one.
	Relay string
	// Limited: the relay limits the connection's time and bytes.
	Limited bool
	// Inbound: the peer dialled.
	Inbound bool
	// Punch is the last hole punch with the peer: "ok" when its rounds
	// made a direct connection, "dialled" when its first step, a plain
	// direct dial, did (no NAT was punched), else the error it ended with;
	// empty when none was tried.
	Punch string
}

// Clock is one clock reading from a peer.
type Clock struct {
	Peer string
	Kind string // as Conn.Kind
	Name string // as Conn.Name
	// Skew is the peer's clock minus this node's, RTT the round trip of
	// the reading (the skew is known to within RTT/2). Err, when not
	// empty, says why there is no reading.
	Skew time.Duration
	RTT  time.Duration
	Err  string
}

// Disk is the space on the data dir's file system.
type Disk struct {
	Path        string
	Free, Total uint64 // bytes
	Err         string // why they could not be read
}

// File is the data dir, or a secret file in it, and its mode.
type File struct {
	Path string
	Dir  bool
	Mode uint32 // permission bits
	Err  string // why it could not be read
}

// Thresholds of the rules.
const (
	// ClockWarn and ClockProblem bound the clock skew (beyond the
	// reading's uncertainty, RTT/2) that is a warning, and a problem: a
	// signed roster or invite carries times that peers check.
	ClockWarn    = 2 * time.Second
	ClockProblem = time.Minute
	// DiskProblem and DiskWarn are the free space under which the disk
	// is a problem, and a warning (or under DiskWarnShare of the disk).
	DiskProblem   = 256 << 20
	DiskWarn      = 1 << 30
	DiskWarnShare = 0.05
	// MaxPeerFindings bounds the peers reported one by one (members and
	// contacts first); the rest are counted in one finding.
	MaxPeerFindings = 32
)

// Diagnose judges f and returns its findings, check by check in the order
// of the Check constants. It is pure: it keeps none of f.
func Diagnose(f Facts) []Finding {
	var out []Finding
	for _, rule := range []func(Facts) []Finding{listen, port, reach, natType, relays, peers, clock, disk, files} {
		out = append(out, rule(f)...)
	}
	return out
}

// config names the config file in fixes.
func (f Facts) config() string {
	if f.ConfigPath == "" {
		return "the config file"
	}
	return f.ConfigPath
}

func ok(check, format string, args ...any) Finding {
	return Finding{Check: check, Level: OK, Say: fmt.Sprintf(format, args...)}
}

// Package netnstest runs real exopeer processes on a virtual LAN built from
// Linux network namespaces, for tests of what only real processes show:
// discovery by multicast DNS, the CLI of a running node, signals and stop
// time.
//
// A LAN is one namespace holding a bridge (multicast snooping off) and one
// namespace per host, joined to the bridge by a veth pair whose ends are
// created inside the bridge namespace and moved straight into the host's:
// the test's own namespace never sees either end, so the nodes' traffic,
// mDNS included, stays inside namespaces the test made. Each host has an
// address in 10.213.7.0/24 and its loopback up.
//
// New skips the test, with the reason, when the process cannot build a LAN
// (not root, not Linux, no ip command, the kernel refuses namespaces), or
// fails it instead when NETNSTEST_REQUIRE=1 (for CI).
// Everything a LAN creates (processes, namespaces, data dirs) is removed by
// t.Cleanup, after a failure or a panic too; namespaces left by a test
// binary that died (a timeout, a kill) are removed by the next New.
//
// The exopeer binary is built once per test binary (Binary), or taken from
// $NETNSTEST_EXOPEER; a test package that uses this one calls Main from its
// TestMain, which also runs the goroutine-leak check. LAN.Start runs
// `exopeer run` on a host and returns a Node with the typed client of its
// control API (the API listens on the loopback of the node's namespace; a
// proxy makes the same address answer in the test's namespace, so that the
// client is the ordinary one, dialled from the data dir); Node.Exopeer runs
// a CLI verb on the node's machine; Node.Stop sends SIGINT and measures the
// stop; LAN.Cut and LAN.Heal pull a host's cable and plug it back.
//
// In CI, NETNSTEST_REQUIRE=1 turns the skips into failures.
package netnstest

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// ErrUnavailable means this process cannot build a virtual LAN here.
var ErrUnavailable = errors.New("netnstest: network namespaces are not available")

const (
	// prefix starts the name of every namespace this package makes, followed
	// by the PID of the test binary, so that stale ones can be found.
	prefix = "exont-"
	// Subnet is the LAN's private subnet: host i (from 0) has address .i+1.
	subnet = "10.213.7."
)

// lanSeq numbers the LANs of this test binary.
var lanSeq atomic.Uint64

// Available says whether this process can build a LAN: nil, or an error
// wrapping ErrUnavailable that says why not and what to do.
func Available() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("%w: they are Linux only (this is %s)", ErrUnavailable, runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root (creating network namespaces needs root); run as root, e.g. sudo go test ./internal/netnstest/", ErrUnavailable)
	}
	if _, err := ipPath(); err != nil {
		return fmt.Errorf("%w: the ip command is missing (install iproute2: apt-get install -y iproute2)", ErrUnavailable)
	}
	return nil
}

// RequireEnv names the environment variable that, set to 1, makes a test
// that cannot build a LAN fail instead of skip: CI sets it, so that the
// real-process tests cannot silently stop running there.
const RequireEnv = "NETNSTEST_REQUIRE"

// unavailable skips t, or fails it if RequireEnv is 1, with the reason.
func unavailable(t testing.TB, why error) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%v (and %s=1)", why, RequireEnv)
	}
	t.Skip(why.Error())
}

// ipPath finds the ip command, in the sbin dirs too (root's PATH may lack
// them).
func ipPath() (string, error) {
	if p, err := exec.LookPath("ip"); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, "ip")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("netnstest: ip not found")
}

// ip runs the ip command with args and returns its error with its output.
func ip(args ...string) error {
	p, err := ipPath()
	if err != nil {
		return err
	}
	out, err := exec.Command(p, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Host is one machine of a LAN: a network namespace with one interface,
// eth0, on the bridge.
type Host struct {
	Name string     // as given to New
	NS   string     // the network namespace's name
	IP   netip.Addr // eth0's address
}

// LAN is a bridge and the hosts on it.
type LAN struct {
	Hosts []*Host

	t      testing.TB
	dir    string   // the data dirs and the nodes' output
	bridge string   // the bridge's namespace
	made   []string // namespaces created, in order
}

// New builds a LAN with one host per name (letters and digits), or skips t
// with the reason when it cannot. Everything it makes is removed when t
// ends.
func New(t testing.TB, names ...string) *LAN {
	t.Helper()
	if err := Available(); err != nil {
		unavailable(t, err)
	}
	for _, n := range names {
		if n == "" || n == "br" || strings.IndexFunc(n, func(r rune) bool {
			return !('a' <= r && r <= 'z' || '0' <= r && r <= '9')
		}) >= 0 || len(n) > 8 {
			t.Fatalf("netnstest: host name %q: want 1 to 8 lowercase letters or digits, not br", n)
		}
	}
	if len(names) == 0 || len(names) > 250 {
		t.Fatalf("netnstest: %d hosts, want 1 to 250", len(names))
	}
	if err := removeStale(); err != nil {
		t.Logf("netnstest: removing stale namespaces: %v", err)
	}
	base := fmt.Sprintf("%s%d-%d-", prefix, os.Getpid(), lanSeq.Add(1))
	l := &LAN{t: t, dir: t.TempDir(), bridge: base + "br"}
	t.Cleanup(l.remove)
	if err := ip("netns", "add", l.bridge); err != nil {
		unavailable(t, fmt.Errorf("%w: cannot create a network namespace (%v); needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN", ErrUnavailable, err))
	}
	l.made = append(l.made, l.bridge)
	if err := l.build(base, names); err != nil {
		unavailable(t, fmt.Errorf("%w: cannot build the virtual LAN (bridge, veth) in network namespaces: %v", ErrUnavailable, err))
	}
	return l
}

// build makes the bridge and the hosts; it stops at the first command the
// kernel refuses.
func (l *LAN) build(base string, names []string) error {
	br := l.bridge
	steps := [][]string{
		{"-n", br, "link", "set", "lo", "up"},
		{"-n", br, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0", "stp_state", "0"},
		{"-n", br, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	for i, name := range names {
		h := &Host{Name: name, NS: base + name, IP: netip.MustParseAddr(subnet + strconv.Itoa(i+1))}
		if err := ip("netns", "add", h.NS); err != nil {
			return err
		}
		l.made = append(l.made, h.NS)
		veth := "veth-" + name
		steps := [][]string{
			{"-n", h.NS, "link", "set", "lo", "up"},
			{"-n", br, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			{"-n", br, "link", "set", veth, "master", "br0"},
			{"-n", br, "link", "set", veth, "up"},
			{"-n", h.NS, "addr", "add", h.IP.String() + "/24", "dev", "eth0"},
			{"-n", h.NS, "link", "set", "eth0", "multicast", "on", "up"},
			// mDNS picks the interface per packet; the route is belt and
			// braces for multicast in a namespace with no default route.
			{"-n", h.NS, "route", "add", "224.0.0.0/4", "dev", "eth0"},
		}
		for _, s := range steps {
			if err := ip(s...); err != nil {
				return err
			}
		}
		l.Hosts = append(l.Hosts, h)
	}
	return nil
}

// Host returns the host named name, or fails the test.
func (l *LAN) Host(name string) *Host {
	l.t.Helper()
	for _, h := range l.Hosts {
		if h.Name == name {
			return h
		}
	}
	l.t.Fatalf("netnstest: no host %q on the LAN", name)
	return nil
}

// Cut takes h off the LAN, as if its cable were pulled: the bridge's end of
// its veth pair goes down, and its packets go nowhere until Heal.
func (l *LAN) Cut(h *Host) error {
	return ip("-n", l.bridge, "link", "set", "veth-"+h.Name, "down")
}

// Heal puts a host that Cut took off back on the LAN.
func (l *LAN) Heal(h *Host) error {
	return ip("-n", l.bridge, "link", "set", "veth-"+h.Name, "up")
}

// remove kills what still runs in the LAN's namespaces and deletes them,
// hosts first, then the bridge's (which takes the veth pairs with it).
func (l *LAN) remove() {
	for i := len(l.made) - 1; i >= 0; i-- {
		if err := deleteNS(l.made[i]); err != nil {
			l.t.Errorf("netnstest: %v", err)
		}
	}
	l.made = nil
}

// deleteNS kills every process in the namespace ns and deletes it.
func deleteNS(ns string) error {
	killAll(ns)
	if err := ip("netns", "del", ns); err != nil {
		if _, serr := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete network namespace %s: %w", ns, err)
	}
	return nil
}

// killAll sends SIGKILL to the processes in the namespace ns and reaps none:
// they are the children of a test binary that is gone, or of this one,
// which waits for its own.
func killAll(ns string) {
	p, err := ipPath()
	if err != nil {
		return
	}
	out, err := exec.Command(p, "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		// Never this process: a thread of it may be in ns for a moment
		// (DialIn), and ip lists a process by any of its threads.
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// netnsDir is where ip keeps the named network namespaces.
const netnsDir = "/run/netns"

// removeStale deletes the namespaces of this package whose test binary is
// no longer running (it was killed, or timed out before its clean-up).
func removeStale() error {
	ents, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		pid, ok := ownerPID(e.Name())
		if !ok || running(pid) {
			continue
		}
		if err := deleteNS(e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ownerPID returns the PID in a namespace name made by this package.
func ownerPID(ns string) (int, bool) {
	rest, ok := strings.CutPrefix(ns, prefix)
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(s)
	return pid, err == nil && pid > 0
}

// running says whether a process pid exists (and is not a zombie). A PID
// that another program took since keeps a stale namespace until that program
// ends: better than removing the namespaces of a test binary running now.
func running(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// Package netnstest runs real exopeer processes on virtual networks built
// from Linux network namespaces, for tests of what only real processes
// show: discovery by multicast DNS, the CLI of a running node, signals and
// stop time, NAT.
//
// A Net is made of segments and hosts. A segment (Net.Segment) is one
// namespace holding a bridge (multicast snooping off) on an IPv4 subnet; a
// host (Net.AddHost) is one namespace joined to its segment's bridge by a
// veth pair whose ends are created inside the bridge's namespace and moved
// straight into the host's: the test's own namespace never sees either
// end, so the nodes' traffic, mDNS included, stays inside namespaces the
// test made. A host has its loopback up, eth0 at its segment's next
// address, and its own libp2p port, Port+i for the i-th host of the Net.
// A home LAN (Net.HomeLAN) is a segment behind a NAT on another segment,
// its uplink: a namespace with one side on each bridge, IP forwarding on
// and an nftables ruleset that masquerades the home's flows out (NATCone:
// the source port kept; NATSymmetric: a random one per flow) and drops
// every flow that starts outside. The home's hosts route through it; a
// segment with no NAT gives its hosts on-link routes only, so no host has
// a route out of the namespaces of its Net. New builds the plain LAN most
// tests use: one segment on 10.213.7.0/24, host i at 10.213.7.(i+1).
//
// NewNet and New skip the test, with the reason, when the process cannot
// build a network (not root, not Linux, no ip command, the kernel refuses
// namespaces), and HomeLAN does when the nft command is missing or the
// kernel refuses its rules; with NETNSTEST_REQUIRE=1 (CI) they fail it
// instead. Everything a Net creates (processes, namespaces, data dirs) is
// removed by t.Cleanup, after a failure or a panic too; namespaces left by
// a test binary that died (a timeout, a kill) are removed by the next
// NewNet.
//
// The exopeer binary is built once per test binary (Binary), or taken from
// $NETNSTEST_EXOPEER; a test package that uses this one calls Main from its
// TestMain, which also runs the goroutine-leak check. Net.Start runs
// `exopeer run` on a host (Net.StartAll on several at once) and returns a
// Node with the typed client of its
// control API (the API listens on the loopback of the node's namespace; a
// proxy makes the same address answer in the test's namespace, so that the
// client is the ordinary one, dialled from the data dir); Node.Exopeer runs
// a CLI verb on the node's machine; Node.Stop sends SIGINT and measures the
// stop; Net.Cut and Net.Heal pull a host's cable and plug it back. Do and
// DialIn run code and open sockets inside a host's namespace.
//
// The tests of a cell across NATs (natcell_test.go) put its relay on the
// "internet" segment and its other members on home LANs behind cone or
// symmetric NATs, and read each member's path to another (direct or
// through the relay) from `exopeer doctor`.
package netnstest

import (
	"bytes"
	"errors"
	"fmt"
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

// ErrUnavailable means this process cannot build a virtual network here.
var ErrUnavailable = errors.New("netnstest: network namespaces are not available")

const (
	// prefix starts the name of every namespace this package makes, followed
	// by the PID of the test binary, so that stale ones can be found.
	prefix = "exont-"
)

// netSeq numbers the networks of this test binary.
var netSeq atomic.Uint64

// Available says whether this process can build a network of namespaces
// (segments and hosts, not NATs: NATAvailable): nil, or an error wrapping
// ErrUnavailable that says why not and what to do.
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

// NATAvailable is Available for a network with NATs (Net.HomeLAN), which
// need the nft command too.
func NATAvailable() error {
	if err := Available(); err != nil {
		return err
	}
	if _, err := toolPath("nft"); err != nil {
		return fmt.Errorf("%w: the nft command is missing, which the NATs of home LANs need (install nftables: apt-get install -y nftables)", ErrUnavailable)
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

// ipPath finds the ip command.
func ipPath() (string, error) { return toolPath("ip") }

// toolDirs are where toolPath looks past $PATH.
var toolDirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"}

// toolPath finds the command name, in the sbin dirs too (root's PATH may
// lack them).
func toolPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range toolDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("netnstest: %s not found", name)
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

// nft loads the nftables ruleset rules into the namespace ns.
func nft(ns, rules string) error {
	ipCmd, err := ipPath()
	if err != nil {
		return err
	}
	nftCmd, err := toolPath("nft")
	if err != nil {
		return err
	}
	cmd := exec.Command(ipCmd, "netns", "exec", ns, nftCmd, "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft -f - in %s: %w: %s", ns, err, bytes.TrimSpace(out))
	}
	return nil
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

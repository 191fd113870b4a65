package netnstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// needNetns skips t when this process cannot build a LAN.
func needNetns(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		unavailable(t, err)
	}
}

func nsExists(ns string) bool {
	_, err := os.Stat(filepath.Join(netnsDir, ns))
	return err == nil
}

// TestLANWiresHostsAndRemovesEverything: two hosts of a LAN reach each other
// over the bridge, the test's own namespace has none of the LAN's
// addresses, and when the test that made it ends, its namespaces are gone.
func TestLANWiresHostsAndRemovesEverything(t *testing.T) {
	needNetns(t)
	var made []string
	t.Run("lan", func(t *testing.T) {
		lan := New(t, "x", "y")
		made = append(made, lan.made...)
		if len(made) != 3 {
			t.Fatalf("namespaces made: %q, want the bridge's and two hosts'", made)
		}
		for _, ns := range made {
			if !nsExists(ns) || !strings.HasPrefix(ns, prefix) {
				t.Errorf("namespace %s: exists %v", ns, nsExists(ns))
			}
		}
		x, y := lan.Host("x"), lan.Host("y")
		if x.IP != netip.MustParseAddr("10.213.7.1") || y.IP != netip.MustParseAddr("10.213.7.2") {
			t.Errorf("addresses x %v, y %v", x.IP, y.IP)
		}
		if x.Port != Port || y.Port != Port+1 {
			t.Errorf("libp2p ports x %d, y %d; want %d, %d", x.Port, y.Port, Port, Port+1)
		}

		var ln net.Listener
		if err := Do(y.NS, func() (err error) {
			ln, err = net.Listen("tcp4", y.IP.String()+":0")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := make(chan string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- err.Error()
				return
			}
			defer c.Close()
			b, _ := io.ReadAll(c)
			got <- string(b)
		}()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		c, err := DialIn(ctx, x.NS, ln.Addr().String())
		if err != nil {
			t.Fatalf("x cannot reach y over the bridge: %v", err)
		}
		if from := c.LocalAddr().(*net.TCPAddr).IP.String(); from != x.IP.String() {
			t.Errorf("x's connection comes from %s, want %s", from, x.IP)
		}
		c.Write([]byte("hello over the bridge"))
		c.Close()
		if s := <-got; s != "hello over the bridge" {
			t.Errorf("y got %q", s)
		}

		// Cut off, y is out of reach; healed, back.
		if err := lan.Cut(y); err != nil {
			t.Fatal(err)
		}
		short, cancelShort := context.WithTimeout(t.Context(), time.Second)
		defer cancelShort()
		if c, err := DialIn(short, x.NS, ln.Addr().String()); err == nil {
			c.Close()
			t.Error("x reached y while y was cut off")
		}
		if err := lan.Heal(y); err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
		}()
		c, err = DialIn(ctx, x.NS, ln.Addr().String())
		if err != nil {
			t.Fatalf("x cannot reach y after the heal: %v", err)
		}
		c.Close()

		// The test's own namespace never sees the LAN.
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			t.Fatal(err)
		}
		lanNet := netip.MustParsePrefix("10.213.7.0/24")
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && lanNet.Contains(p.Addr()) {
				t.Errorf("the test's namespace has the LAN address %v", a)
			}
		}
	})
	for _, ns := range made {
		if nsExists(ns) {
			t.Errorf("namespace %s left after the test that made it", ns)
			_ = deleteNS(ns)
		}
	}
}

// TestNetRemovesNATs: a network with a home LAN makes a namespace per
// bridge, per NAT and per host, the NAT with forwarding on and its rules
// loaded, and they are all gone when the test that made them ends.
func TestNetRemovesNATs(t *testing.T) {
	needNetns(t)
	var made []string
	t.Run("net", func(t *testing.T) {
		n := NewNet(t)
		wan := n.Segment("wan", netip.MustParsePrefix("11.213.9.0/24"))
		home := n.HomeLAN("home", netip.MustParsePrefix("10.213.9.0/24"), wan, NATSymmetric)
		h := n.AddHost(home, "h")
		made = append(made, n.made...)
		want := []string{wan.NS, home.NS, home.NAT.NS, h.NS}
		if !slices.Equal(made, want) {
			t.Fatalf("namespaces made: %q, want %q", made, want)
		}
		if home.Gateway != netip.MustParseAddr("10.213.9.1") || home.NAT.WAN != netip.MustParseAddr("11.213.9.1") || h.IP != netip.MustParseAddr("10.213.9.2") {
			t.Errorf("gateway %v, NAT outside %v, host %v", home.Gateway, home.NAT.WAN, h.IP)
		}
		var fwd []byte
		if err := Do(home.NAT.NS, func() (err error) {
			fwd, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
			return err
		}); err != nil || strings.TrimSpace(string(fwd)) != "1" {
			t.Errorf("the NAT's ip_forward: %q, %v", fwd, err)
		}
		ipCmd, _ := ipPath()
		nftCmd, _ := toolPath("nft") // HomeLAN found them
		out, err := exec.Command(ipCmd, "netns", "exec", home.NAT.NS, nftCmd, "list", "ruleset").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "masquerade fully-random") {
			t.Errorf("the symmetric NAT's ruleset (%v):\n%s", err, out)
		}
	})
	for _, ns := range made {
		if nsExists(ns) {
			t.Errorf("namespace %s left after the test that made it", ns)
			_ = deleteNS(ns)
		}
	}
}

// TestNATAvailableSaysWhatIsMissing: without nft (an ip command but no
// nft on $PATH or in the sbin dirs), NATAvailable says so and what to
// install, while Available, which plain LANs need, is content.
func TestNATAvailableSaysWhatIsMissing(t *testing.T) {
	needNetns(t)
	ipCmd, err := ipPath()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(ipCmd, filepath.Join(dir, "ip")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	saved := toolDirs
	toolDirs = nil
	t.Cleanup(func() { toolDirs = saved })
	if err := Available(); err != nil {
		t.Errorf("Available without nft: %v", err)
	}
	err = NATAvailable()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "nft command is missing") || !strings.Contains(err.Error(), "apt-get install -y nftables") {
		t.Errorf("NATAvailable without nft: %v; want ErrUnavailable saying nft is missing and how to install it", err)
	}
}

// TestStaleNamespacesRemoved: a namespace of this package whose test binary
// is gone is removed by the next LAN; one of a running test binary is not,
// nor one of another program.
func TestStaleNamespacesRemoved(t *testing.T) {
	needNetns(t)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	stale := prefix + itoa(gone.ProcessState.Pid()) + "-1-a"
	live := prefix + itoa(os.Getpid()) + "-999-a"
	other := "exonttest-" + itoa(gone.ProcessState.Pid())
	for _, ns := range []string{stale, live, other} {
		if err := ip("netns", "add", ns); err != nil {
			unavailable(t, fmt.Errorf("%w: cannot create a network namespace: %v", ErrUnavailable, err))
		}
		t.Cleanup(func() { _ = deleteNS(ns) })
	}
	if err := removeStale(); err != nil {
		t.Fatal(err)
	}
	if nsExists(stale) {
		t.Errorf("stale namespace %s not removed", stale)
	}
	if !nsExists(live) {
		t.Errorf("namespace %s of this running test binary removed", live)
	}
	if !nsExists(other) {
		t.Errorf("namespace %s, not this package's, removed", other)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestOwnerPID(t *testing.T) {
	for _, tc := range []struct {
		ns   string
		pid  int
		ours bool
	}{
		{"exont-1234-1-br", 1234, true},
		{"exont-1234-17-a", 1234, true},
		{"exont-0-1-a", 0, false},
		{"exont--1-a", 0, false},
		{"exont-12x-1-a", 0, false},
		{"exont-1234", 0, false},
		{"exo-a-1234-5", 0, false},
		{"", 0, false},
	} {
		pid, ok := ownerPID(tc.ns)
		if ok != tc.ours || ok && pid != tc.pid {
			t.Errorf("ownerPID(%q) = %d, %v; want %d, %v", tc.ns, pid, ok, tc.pid, tc.ours)
		}
	}
}

// TestDoLeavesThreadsHome: after Do, the goroutines of this process are
// all back in its own namespace, even when f fails.
func TestDoLeavesThreadsHome(t *testing.T) {
	needNetns(t)
	lan := New(t, "x")
	home, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for range 20 {
		err := Do(lan.Host("x").NS, func() error { return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("Do returned %v, want f's error", err)
		}
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		ns, err := os.Readlink(filepath.Join("/proc/self/task", e.Name(), "ns/net"))
		if err == nil && ns != home {
			t.Errorf("thread %s is in %s, not the process's %s", e.Name(), ns, home)
		}
	}
	if err := Do("exont-no-such-namespace", func() error { return nil }); err == nil {
		t.Error("Do into a namespace that does not exist succeeded")
	}
}

// TestCleanupAfterPanic runs a test that starts a node and panics, in a
// test binary of its own, and checks that the panic is reported with the
// node's output, and that the node and the namespaces are gone.
func TestCleanupAfterPanic(t *testing.T) {
	if state := os.Getenv("NETNSTEST_PANIC_STATE"); state != "" {
		lan := New(t, "p")
		n := lan.Start(t, lan.Host("p"))
		os.WriteFile(state, []byte(fmt.Sprintf("%d %s", n.cmd.Process.Pid, strings.Join(lan.made, " "))), 0o600)
		panic("deliberate panic after starting a node")
	}
	needNetns(t)
	bin := Binary(t) // the child uses it, and builds none
	state := filepath.Join(t.TempDir(), "state")
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCleanupAfterPanic$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "NETNSTEST_PANIC_STATE="+state, BinaryEnv+"="+bin)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the panicking test passed:\n%s", out)
	}
	for _, want := range []string{"deliberate panic after starting a node", "--- stdout:", "peer ID"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the panicking test's output lacks %q:\n%s", want, out)
		}
	}
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatalf("the child wrote no state: %v\n%s", err, out)
	}
	fields := strings.Fields(string(data))
	pid, err := strconv.Atoi(fields[0])
	if err != nil || len(fields) != 3 {
		t.Fatalf("state %q", data)
	}
	if running(pid) {
		t.Errorf("the node (pid %d) still runs after its test panicked", pid)
	}
	for _, ns := range fields[1:] {
		if nsExists(ns) {
			t.Errorf("namespace %s left after its test panicked", ns)
			_ = deleteNS(ns)
		}
	}
}

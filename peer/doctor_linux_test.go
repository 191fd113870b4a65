package peer

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/doctor"
)

// TestNodeDoctor: a node whose configured port another program holds, in a
// data dir others can enter, is told both, each with its fix; its listen
// addresses and disk are reported.
func TestNodeDoctor(t *testing.T) {
	port := freeLoopbackPort(t)
	taken, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	for _, f := range []string{datadir.KeyFile, datadir.TokenFile} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := loopbackOptions(t, 1)
	off := false
	opts.Network = RealNetwork(datadir.NetworkConfig{Port: port, ListenIPs: []string{"127.0.0.1"}, MDNS: &off}, nil)
	opts.Doctor = DoctorOptions{DataDir: dir, Port: port}
	n := startNode(t, opts)
	got := n.Doctor(t.Context())
	want := []struct {
		check string
		level doctor.Level
		says  string
		fix   string
	}{
		{doctor.CheckListen, doctor.OK, "/ip4/127.0.0.1/udp/", ""},
		{doctor.CheckPort, doctor.Problem, "Port " + strconv.Itoa(port) + " is taken", filepath.Join(dir, datadir.ConfigFile)},
		{doctor.CheckFiles, doctor.Problem, dir + " is open to other users (mode 0755)", "chmod 700 " + dir},
		{doctor.CheckFiles, doctor.OK, filepath.Join(dir, datadir.KeyFile) + " is private (mode 0600)", ""},
		{doctor.CheckDisk, "", "The disk of " + dir, ""}, // any level: the test machine's disk may be low
		{doctor.CheckPeers, doctor.OK, "No peer is connected", ""},
	}
	for _, w := range want {
		found := false
		for _, f := range got {
			found = found || f.Check == w.check && (w.level == "" || f.Level == w.level) && strings.Contains(f.Say, w.says) && strings.Contains(f.Fix, w.fix)
		}
		if !found {
			t.Errorf("no %s finding %s %q (fix %q) in %+v", w.level, w.check, w.says, w.fix, got)
		}
	}
}

// TestNodeDoctorNAT: identify's observations reach the doctor: one QUIC
// listen address that two members of the cell (on 127.0.0.2 and
// 127.0.0.3) saw at two public ports is a NAT that maps per destination; a
// stranger's third port (on 127.0.0.4) does not count. The observations
// are emitted on the host's bus as identify does (a real one on loopback
// observes a private address, which does not count).
func TestNodeDoctorNAT(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	opts := loopbackOptions(t, 1)
	opts.Cell = fastCell
	n := startNode(t, opts)
	if _, err := n.Cell().Create(ctx, "home", "n"); err != nil {
		t.Fatal(err)
	}
	em, err := n.Host().EventBus().Emitter(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	off := false
	var local string
	quicTo := func(id peer.ID, addrs []ma.Multiaddr) {
		t.Helper()
		var quic []ma.Multiaddr
		for _, a := range addrs {
			if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
				quic = append(quic, a)
			}
		}
		if err := n.Host().Connect(ctx, peer.AddrInfo{ID: id, Addrs: quic}); err != nil {
			t.Fatal(err)
		}
	}
	observe := func(id peer.ID, addrs []ma.Multiaddr, port int) {
		t.Helper()
		quicTo(id, addrs)
		var c network.Conn
		for _, x := range n.Host().Network().ConnsToPeer(id) {
			if _, err := x.RemoteMultiaddr().ValueForProtocol(ma.P_QUIC_V1); err == nil {
				c = x
			}
		}
		if c == nil {
			t.Fatalf("no QUIC connection to %s", id)
		}
		local = c.LocalMultiaddr().String()
		if err := em.Emit(event.EvtPeerIdentificationCompleted{
			Peer: id, Conn: c, ObservedAddr: ma.StringCast("/ip4/11.213.0.1/udp/" + strconv.Itoa(port) + "/quic-v1"),
		}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := realHostOn(t, 9, -1, "127.0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	observe(s.ID(), s.Addrs(), 61003)
	eventually(t, 10*time.Second, "the stranger's observation is refused", func() bool {
		_, refused := n.doc.obs.counts()
		return refused == 1
	})
	for i, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		mopts := loopbackOptions(t, byte(2+i))
		mopts.Cell = fastCell
		mopts.Network = RealNetwork(datadir.NetworkConfig{Port: -1, ListenIPs: []string{ip}, MDNS: &off}, nil)
		m := startNode(t, mopts)
		// Connected over QUIC first, so that the join rides on it.
		quicTo(m.ID(), m.Host().Addrs())
		code, _, err := n.Cell().Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Cell().Join(ctx, code.String(), "m"+strconv.Itoa(i)); err != nil {
			t.Fatalf("Join: %v", err)
		}
		eventually(t, 30*time.Second, "the member is on n's roster", func() bool {
			r := n.Cell().Roster()
			return r != nil && r.Has(m.ID())
		})
		observe(m.ID(), m.Host().Addrs(), 61001+i)
	}
	thin, _ := thinWaist(ma.StringCast(local))
	want := "The NAT maps " + thin.String() + " to a different port for each peer (2 peers saw ports 61001, 61002)"
	eventually(t, 10*time.Second, want, func() bool {
		for _, f := range n.Doctor(t.Context()) {
			if f.Check == doctor.CheckNAT && f.Level == doctor.Warn && strings.Contains(f.Say, want) {
				return true
			}
		}
		return false
	})
}

// TestConnFactsRelayed: a connection through a real circuit relay (v2,
// go-libp2p's default limits) is seen as relayed, through that relay, and
// limited, at both ends; a direct one as direct. The hosts are plain
// go-libp2p ones: an exopeer host has no circuit transport yet
// (libp2p.NoListenAddrs in buildHost turns it off).
func TestConnFactsRelayed(t *testing.T) {
	newHost := func(ip string) host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/"+ip+"/tcp/0"), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}
	r, a, b := newHost("127.0.0.2"), newHost("127.0.0.3"), newHost("127.0.0.4")
	svc, err := relay.New(r)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	rInfo := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	if err := b.Connect(t.Context(), rInfo); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(t.Context(), b, rInfo); err != nil {
		t.Fatal(err)
	}
	circuit := ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit")
	var via []ma.Multiaddr
	for _, x := range r.Addrs() {
		via = append(via, x.Encapsulate(circuit))
	}
	if err := a.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: via}); err != nil {
		t.Fatal(err)
	}
	for _, end := range []struct {
		h       host.Host
		other   peer.ID
		inbound bool
	}{{a, b.ID(), false}, {b, a.ID(), true}} {
		conns := end.h.Network().ConnsToPeer(end.other)
		if len(conns) != 1 {
			t.Fatalf("%d connections to %s, want 1", len(conns), end.other)
		}
		got := connFacts(conns[0])
		if got.Peer != end.other.String() || got.Relay != r.ID().String() || !got.Limited || got.Inbound != end.inbound {
			t.Errorf("relayed connection: %+v, want peer %s through %s, limited, inbound %v", got, end.other, r.ID(), end.inbound)
		}
	}
	direct := connFacts(b.Network().ConnsToPeer(r.ID())[0])
	if direct.Relay != "" || direct.Limited || direct.Inbound {
		t.Errorf("direct connection: %+v, want no relay, not limited, outbound", direct)
	}
}

// TestDiskCountsFragments: on Linux statfs counts blocks in fragments
// (f_frsize), not in f_bsize, the best transfer size: a file system whose
// transfer size is 1 MiB and fragment 4 KiB, with 500 blocks free of
// 1000, has 2000 KiB free of 4000 KiB, not 500 MiB of 1000 MiB.
func TestDiskCountsFragments(t *testing.T) {
	st := syscall.Statfs_t{Bsize: 1 << 20, Frsize: 4096, Blocks: 1000, Bavail: 500, Bfree: 600}
	d := diskFrom("/d", &st)
	if d.Free != 500*4096 || d.Total != 1000*4096 {
		t.Errorf("free %d of %d bytes, want %d of %d (in fragments of %d)", d.Free, d.Total, 500*4096, 1000*4096, st.Frsize)
	}
	st.Frsize = 0
	if d := diskFrom("/d", &st); d.Free != 500<<20 {
		t.Errorf("no fragment size: free %d bytes, want %d (in f_bsize)", d.Free, 500<<20)
	}
}

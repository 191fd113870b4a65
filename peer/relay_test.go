package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/datadir"
)

// startRelay starts a relay service on h in mode on with acl, closed
// when the test ends.
func startRelay(ctx context.Context, t *testing.T, h host.Host, acl relayACL) *relayService {
	t.Helper()
	svc, err := newRelayService(h, RelayOn, acl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc
}

// loopbackHost is a real host of the node's (RealNetwork's), listening
// on loopback only, closed when the test ends.
func loopbackHost(t *testing.T, seed byte) host.Host {
	t.Helper()
	off := false
	h, err := newRealHost(seedKey(t, seed), datadir.NetworkConfig{Port: -1, ListenIPs: []string{"127.0.0.1"}, MDNS: &off}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// memberSet is a cell's roster as the relay's ACL reads it, changed by
// the test.
type memberSet struct {
	mu sync.Mutex
	m  map[peer.ID]bool
}

func (s *memberSet) has(id peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

func (s *memberSet) set(id peer.ID, in bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = in
}

const echoProto = protocol.ID("/exopeer/test/echo")

// echo sends data to p over a new stream and returns what p sends back
// (p echoes). ctx bounds it.
func echo(ctx context.Context, h host.Host, p peer.ID, data []byte) ([]byte, error) {
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "test"), p, echoProto)
	if err != nil {
		return nil, err
	}
	defer s.Reset()
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		if err == nil {
			err = s.CloseWrite()
		}
		werr <- err
	}()
	got, rerr := io.ReadAll(s)
	return got, errors.Join(rerr, <-werr)
}

// circuitTo is the address of dest through relay r.
func circuitTo(t *testing.T, r host.Host, dest peer.ID) peer.AddrInfo {
	t.Helper()
	addrs := make([]ma.Multiaddr, 0, len(r.Addrs()))
	for _, a := range r.Addrs() {
		addrs = append(addrs, a.Encapsulate(ma.StringCast(fmt.Sprintf("/p2p/%s/p2p-circuit", r.ID()))))
	}
	return peer.AddrInfo{ID: dest, Addrs: addrs}
}

// TestRelayServesCell: a member R running the relay service (forced on)
// lets member A reserve a slot and member B reach A through R's circuit,
// unlimited: 1 MiB goes both ways over it (go-libp2p's default limits,
// 128 KiB and 2 minutes, cut it: the "default limits" case). A stranger
// is refused a circuit to A (PERMISSION_DENIED), and once A leaves the
// cell its reservation refresh is refused.
func TestRelayServesCell(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	data := make([]byte, 1<<20)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	_, _ = rand.NewChaCha8(key).Read(data)
	for _, tc := range []struct {
		name    string
		res     *relay.Resources // nil: the service's own
		wantCut bool
	}{
		{"cell limits", nil, false},
		{"default limits", &[]relay.Resources{relay.DefaultResources()}[0], true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			hr, ha, hb, hs := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3), loopbackHost(t, 4)
			members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true, hb.ID(): true}}
			acl := relayACL{self: hr.ID(), member: members.has, contactDevice: noContact}
			svc, err := newRelayService(hr, RelayOn, acl, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.res != nil {
				svc.res = *tc.res
			}
			if err := svc.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			ha.SetStreamHandler(echoProto, func(s network.Stream) {
				defer s.Close()
				if _, err := io.Copy(s, s); err != nil {
					s.Reset()
				}
			})
			rinfo := peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}
			if _, err := client.Reserve(ctx, ha, rinfo); err != nil {
				t.Fatalf("member's reservation: %v", err)
			}
			if err := hb.Connect(ctx, circuitTo(t, hr, ha.ID())); err != nil {
				t.Fatalf("member through the relay: %v", err)
			}
			conns := hb.Network().ConnsToPeer(ha.ID())
			if len(conns) != 1 || !isRelayed(conns[0].RemoteMultiaddr()) {
				t.Fatalf("B's connections to A: %v, want one relayed", conns)
			}
			if lim := conns[0].Stat().Limited; lim != tc.wantCut {
				t.Fatalf("relayed connection Limited = %v, want %v", lim, tc.wantCut)
			}
			got, err := echo(ctx, hb, ha.ID(), data)
			if tc.wantCut {
				if err == nil && bytes.Equal(got, data) {
					t.Fatal("1 MiB went both ways through a relay with the default limits")
				}
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("1 MiB both ways through the relay: got %d bytes back, err %v", len(got), err)
			}
			if st := svc.stats(); !st.Running || st.Circuits != 1 || st.Bytes < 2<<20 {
				t.Errorf("relay stats %+v, want running, 1 circuit, at least 2 MiB", st)
			}

			// A stranger: connected to the relay, refused a circuit.
			err = hs.Connect(ctx, circuitTo(t, hr, ha.ID()))
			if err == nil || !strings.Contains(err.Error(), pbv2.Status_PERMISSION_DENIED.String()) {
				t.Fatalf("stranger through the relay: %v, want PERMISSION_DENIED", err)
			}
			refused := svc.stats().Refused[pbv2.Status_PERMISSION_DENIED.String()]
			if refused == 0 {
				t.Errorf("relay stats %+v, want the stranger counted as refused", svc.stats())
			}
			// A leaves the cell: its refresh is refused.
			members.set(ha.ID(), false)
			_, err = client.Reserve(ctx, ha, rinfo)
			var rerr client.ReservationError
			if !errors.As(err, &rerr) || rerr.Status != pbv2.Status_PERMISSION_DENIED {
				t.Fatalf("former member's reservation refresh: %v, want PERMISSION_DENIED", err)
			}
			if st := svc.stats(); st.Refused[pbv2.Status_PERMISSION_DENIED.String()] != refused+1 {
				t.Errorf("relay stats %+v, want the refresh counted as refused", st)
			}
		})
	}
}

// TestRelayServiceFollowsReach: in RelayAuto the service (the hop
// protocol's handler) runs exactly while the reachability last told is
// public, and only once started; RelayOn runs from Start whatever it is
// told, RelayOff never; Close stops it.
func TestRelayServiceFollowsReach(t *testing.T) {
	hop := func(h host.Host) bool { return slices.Contains(h.Mux().Protocols(), protocol.ID(proto.ProtoIDv2Hop)) }
	pub, priv := network.ReachabilityPublic, network.ReachabilityPrivate
	for _, tc := range []struct {
		mode  RelayMode
		steps []network.Reachability
		want  []bool // after Start, then after each step
	}{
		{RelayAuto, []network.Reachability{pub, priv, network.ReachabilityUnknown, pub}, []bool{false, true, false, false, true}},
		{RelayOn, []network.Reachability{priv, pub}, []bool{true, true, true}},
		{RelayOff, []network.Reachability{pub, priv}, []bool{false, false, false}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			h := loopbackHost(t, 1)
			svc, err := newRelayService(h, tc.mode, relayACL{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			svc.reach(pub) // before Start: nothing runs yet
			if hop(h) {
				t.Fatal("relay runs before Start")
			}
			svc.reach(priv)
			if err := svc.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			check := func(i int) {
				t.Helper()
				if got := hop(h); got != tc.want[i] || svc.stats().Running != tc.want[i] {
					t.Fatalf("step %d: relay runs %v (stats %+v), want %v", i, got, svc.stats(), tc.want[i])
				}
			}
			check(0)
			for i, r := range tc.steps {
				svc.reach(r)
				check(i + 1)
			}
			if err := svc.Close(); err != nil {
				t.Fatal(err)
			}
			if hop(h) {
				t.Fatal("relay runs after Close")
			}
			svc.reach(pub)
			if hop(h) {
				t.Fatal("relay runs after Close and public")
			}
		})
	}
	if _, err := newRelayService(nil, "always", relayACL{}, nil); err == nil || !strings.Contains(err.Error(), `"always"`) {
		t.Errorf("mode \"always\": %v, want an error naming it", err)
	}
}

// TestRelayCountsBound: the refusals are counted by status, one key per
// status of the protocol whatever a peer sends: a relay's peers cannot
// grow the map.
func TestRelayCountsBound(t *testing.T) {
	var c relayCounts
	for s := range int32(100_000) {
		c.ConnectionRequestHandled(pbv2.Status(s))
		c.ReservationRequestHandled(pbv2.Status(-s))
	}
	st := c.stats()
	if len(st.Refused) > len(pbv2.Status_name) {
		t.Fatalf("%d refusal keys, want at most %d", len(st.Refused), len(pbv2.Status_name))
	}
	if st.Refused[pbv2.Status_PERMISSION_DENIED.String()] != 1 || st.Refused[pbv2.Status_OK.String()] != 0 {
		t.Errorf("refused %v, want PERMISSION_DENIED once and no OK", st.Refused)
	}
}

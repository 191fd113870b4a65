package discovery

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// idHost is a host.Host that only knows its ID: all New needs for the
// back-off tests. Any other method panics (nil embedded interface).
type idHost struct {
	host.Host
	id peer.ID
}

func (h idHost) ID() peer.ID { return h.id }

// seededID returns the peer ID of an Ed25519 key derived from seed.
func seededID(t testing.TB, seed string) peer.ID {
	t.Helper()
	s := sha256.Sum256([]byte(seed))
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(s[:]))
	if err != nil {
		t.Fatalf("UnmarshalEd25519PrivateKey: %v", err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatalf("IDFromPrivateKey: %v", err)
	}
	return id
}

// backoffService returns a Service, never started, for the back-off tests.
func backoffService(t testing.TB, id peer.ID, minD, maxD time.Duration) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.BackoffMin, cfg.BackoffMax = minD, maxD
	seed := sha256.Sum256([]byte(id)) // the jitter replays for one ID
	cfg.Rand = bytes.NewReader(seed[:])
	s, err := New(idHost{id: id}, cfg, nil, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// backoffs returns n calls of backoff(failures) in a row.
func backoffs(s *Service, failures, n int) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = s.backoff(failures)
	}
	return out
}

func TestBackoffBounds(t *testing.T) {
	const minD, maxD = 100 * time.Millisecond, 10 * time.Second
	s := backoffService(t, seededID(t, "bounds"), minD, maxD)
	tests := []struct {
		name     string
		failures int
		nominal  time.Duration // before jitter
	}{
		{"no failure yet", 0, minD},
		{"first failure", 1, minD},
		{"second failure doubles", 2, 2 * minD},
		{"third failure", 3, 4 * minD},
		{"seventh failure", 7, 64 * minD},
		{"eighth failure reaches the cap", 8, maxD},
		{"far past the cap", 1000, maxD},
		{"huge failure count", int(^uint(0) >> 1), maxD},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := tt.nominal-tt.nominal/4, tt.nominal+tt.nominal/4
			var below, above int
			for _, d := range backoffs(s, tt.failures, 2000) {
				if d < lo || d > hi {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.failures, d, lo, hi)
				}
				if d < tt.nominal {
					below++
				}
				if d > tt.nominal {
					above++
				}
			}
			// ±25% jitter: both sides of the nominal wait are used.
			if below == 0 || above == 0 {
				t.Errorf("backoff(%d): %d of 2000 below and %d above %v, want jitter both ways", tt.failures, below, above, tt.nominal)
			}
		})
	}
}

func TestBackoffGrowsUntilCapped(t *testing.T) {
	const minD, maxD = 50 * time.Millisecond, 3 * time.Second
	s := backoffService(t, seededID(t, "grows"), minD, maxD)
	for n := 1; n < 12; n++ {
		cur, next := backoffs(s, n, 500), backoffs(s, n+1, 500)
		nominal := min(minD<<(n-1), maxD)
		if nominal*2 <= maxD {
			// Uncapped, the nominal wait doubles: the whole jitter range
			// of n+1 failures (≥ 1.5×) lies above that of n (≤ 1.25×).
			if maxOf(cur) >= minOf(next) {
				t.Errorf("failures %d→%d: max %v not below min %v", n, n+1, maxOf(cur), minOf(next))
			}
		}
		if got, limit := maxOf(next), maxD+maxD/4; got > limit {
			t.Errorf("backoff(%d) = %v, above BackoffMax+25%% (%v)", n+1, got, limit)
		}
		if got, floor := minOf(cur), minD-minD/4; got < floor {
			t.Errorf("backoff(%d) = %v, below 75%% of BackoffMin (%v)", n, got, floor)
		}
	}
}

func TestBackoffEqualBounds(t *testing.T) {
	s := backoffService(t, seededID(t, "equal"), time.Second, time.Second)
	for _, n := range []int{0, 1, 2, 50} {
		for _, d := range backoffs(s, n, 200) {
			if d < 750*time.Millisecond || d > 1250*time.Millisecond {
				t.Fatalf("backoff(%d) = %v, want within [750ms, 1.25s]", n, d)
			}
		}
	}
}

// TestBackoffIsSeededFromRand: the jitter comes from Config.Rand (here a
// stream fixed by the peer ID): one stream, one jitter; two streams, two.
func TestBackoffIsSeededFromRand(t *testing.T) {
	seq := func(id peer.ID) []time.Duration {
		s := backoffService(t, id, 10*time.Millisecond, time.Minute)
		var out []time.Duration
		for n := range 20 {
			out = append(out, backoffs(s, n%8, 3)...)
		}
		return out
	}
	a := seededID(t, "peer a")
	if diff := cmp.Diff(seq(a), seq(a)); diff != "" {
		t.Errorf("two services with one random stream jitter differently (-first +second):\n%s", diff)
	}
	if cmp.Equal(seq(a), seq(seededID(t, "peer b"))) {
		t.Error("two random streams gave the same jitter sequence")
	}
}

func minOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func TestWithoutLoopback(t *testing.T) {
	id := peer.ID("some peer")
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"nil", nil, []string{}},
		{"IPv4 loopback dropped", []string{"/ip4/127.0.0.1/tcp/1"}, []string{}},
		{"all of 127/8 dropped", []string{"/ip4/127.9.8.7/udp/1/quic-v1"}, []string{}},
		{"IPv6 loopback dropped", []string{"/ip6/::1/tcp/1"}, []string{}},
		{
			"LAN and public addresses kept, in order",
			[]string{"/ip4/192.168.1.20/tcp/4001", "/ip4/127.0.0.1/tcp/4001", "/ip6/fe80::1/tcp/4001", "/ip4/8.8.8.8/tcp/1"},
			[]string{"/ip4/192.168.1.20/tcp/4001", "/ip6/fe80::1/tcp/4001", "/ip4/8.8.8.8/tcp/1"},
		},
		// Not an IP, so not recognised as loopback: a LAN peer can still
		// hand out an address that resolves to the listener's machine.
		{"DNS name for loopback kept", []string{"/dns4/localhost/tcp/1"}, []string{"/dns4/localhost/tcp/1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := peer.AddrInfo{ID: id}
			for _, s := range tt.in {
				in.Addrs = append(in.Addrs, mustAddr(t, s))
			}
			before := append([]ma.Multiaddr(nil), in.Addrs...)
			got := withoutLoopback(in)
			if got.ID != id {
				t.Errorf("ID = %q, want %q", got.ID, id)
			}
			gotS := []string{}
			for _, a := range got.Addrs {
				gotS = append(gotS, a.String())
			}
			if diff := cmp.Diff(tt.want, gotS); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if !cmp.Equal(before, in.Addrs, cmp.Comparer(func(a, b ma.Multiaddr) bool { return a.Equal(b) })) {
				t.Error("withoutLoopback modified its argument")
			}
		})
	}
}

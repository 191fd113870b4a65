package peer

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestDecodeTime(t *testing.T) {
	at := time.Date(2026, 11, 27, 1, 2, 3, 4, time.UTC)
	got, err := decodeTime(encodeTime(at))
	if err != nil || !got.Equal(at) {
		t.Errorf("decodeTime(encodeTime(%v)) = %v, %v", at, got, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", []byte{1, 2, 3}},
		{"long", append(encodeTime(at), 0)},
		{"zero", make([]byte, 8)},
		{"before 1970", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
	} {
		if _, err := decodeTime(tc.b); !errors.Is(err, ErrTimeAnswer) {
			t.Errorf("%s: decodeTime(%x) err = %v, want ErrTimeAnswer", tc.name, tc.b, err)
		}
	}
}

// FuzzDecodeTime: any bytes decode to a time after 1970 that encodes back
// to them, or to ErrTimeAnswer; never a panic.
func FuzzDecodeTime(f *testing.F) {
	f.Add(encodeTime(time.Unix(1_800_000_000, 5)))
	f.Add([]byte{})
	f.Add(make([]byte, 8))
	f.Add([]byte{0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Add(make([]byte, 9))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeTime(b)
		if err != nil {
			if !errors.Is(err, ErrTimeAnswer) {
				t.Fatalf("err = %v, want ErrTimeAnswer", err)
			}
			return
		}
		if got.UnixNano() <= 0 || string(encodeTime(got)) != string(b) {
			t.Fatalf("decodeTime(%x) = %v, which encodes to %x", b, got, encodeTime(got))
		}
	})
}

// TestTimeBucket: TimeBurst takes at one instant, then TimeRate a second.
func TestTimeBucket(t *testing.T) {
	b := newBucket(TimeRate, TimeBurst)
	at := time.Unix(1_800_000_000, 0)
	n := 0
	for range 3 * TimeBurst {
		if b.take(at) {
			n++
		}
	}
	if n != TimeBurst {
		t.Errorf("%d taken at one instant, want %d", n, TimeBurst)
	}
	n = 0
	for range 3 * TimeBurst {
		if b.take(at.Add(time.Second)) {
			n++
		}
	}
	if n != TimeRate {
		t.Errorf("%d taken a second later, want %d", n, TimeRate)
	}
	if b.take(at) {
		t.Error("a clock going back gave a token")
	}
	n = 0
	for range 3 * TimeBurst {
		if b.take(at.Add(time.Hour)) {
			n++
		}
	}
	if n != TimeBurst {
		t.Errorf("%d taken at once after an hour idle, want at most TimeBurst = %d", n, TimeBurst)
	}
}

// TestTimeProtocol: a node's time, as asked over real streams on
// loopback, is read within the round trip; a peer it does not serve, and
// askers past its bucket, get no answer.
func TestTimeProtocol(t *testing.T) {
	srv, err := realLoopbackHost(t, 1, -1)
	if err != nil {
		t.Fatal(err)
	}
	member, err := realLoopbackHost(t, 2, -1)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := realLoopbackHost(t, 3, -1)
	if err != nil {
		t.Fatal(err)
	}
	ahead := time.Hour
	var mu sync.Mutex
	frozen := time.Time{} // zero: the server's clock runs, an hour ahead
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if !frozen.IsZero() {
			return frozen
		}
		return time.Now().Add(ahead)
	}
	ts := &timeServer{allow: func(p peer.ID) bool { return p == member.ID() }, now: clock, rate: newBucket(TimeRate, TimeBurst)}
	srv.SetStreamHandler(ProtocolTime, ts.serve)
	ai := peer.AddrInfo{ID: srv.ID(), Addrs: srv.Addrs()}
	for _, h := range []interface {
		Connect(context.Context, peer.AddrInfo) error
	}{member, stranger} {
		if err := h.Connect(t.Context(), ai); err != nil {
			t.Fatal(err)
		}
	}
	skew, rtt, err := askTime(t.Context(), member, srv.ID(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if d := (skew - ahead).Abs(); d > rtt/2+time.Millisecond {
		t.Errorf("skew %v, want %v within rtt/2 (rtt %v)", skew, ahead, rtt)
	}
	if _, _, err := askTime(t.Context(), stranger, srv.ID(), time.Now); err == nil {
		t.Error("a stranger read the time")
	}
	// The bound: with the server's clock stopped its bucket refills not
	// at all, and of many asks at once a full bucket's are answered.
	mu.Lock()
	frozen = time.Now()
	mu.Unlock()
	ts = &timeServer{allow: ts.allow, now: clock, rate: newBucket(TimeRate, TimeBurst)}
	srv.SetStreamHandler(ProtocolTime, ts.serve)
	answered := 0
	var wg sync.WaitGroup
	var amu sync.Mutex
	for range TimeBurst + 8 {
		wg.Go(func() {
			if _, _, err := askTime(t.Context(), member, srv.ID(), time.Now); err == nil {
				amu.Lock()
				answered++
				amu.Unlock()
			}
		})
	}
	wg.Wait()
	if answered != TimeBurst {
		t.Errorf("%d asks answered at one instant, want TimeBurst = %d", answered, TimeBurst)
	}
}

// TestObservationsBound: the observations kept are bounded, the oldest
// dropped; and only direct connections observed at public addresses count.
func TestObservationsBound(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	b := newObservations(everyone, func() time.Time { at = at.Add(time.Second); return at }, nil)
	local := ma.StringCast("/ip4/10.0.0.2/udp/4777/quic-v1")
	for i := range MaxObservations + 10 {
		remote := ma.StringCast("/ip4/192.0.2." + strconv.Itoa(i%250+1) + "/udp/" + strconv.Itoa(1000+i) + "/quic-v1")
		b.identified(peer.ID("M"+strconv.Itoa(i)), local, remote, ma.StringCast("/ip4/11.213.0.7/udp/"+strconv.Itoa(61000+i)+"/quic-v1"))
	}
	obs := b.list()
	if len(obs) != MaxObservations {
		t.Fatalf("%d observations kept, want %d", len(obs), MaxObservations)
	}
	for _, o := range obs {
		if o.Observer == peer.ID("M0").String() {
			t.Error("the oldest observation was kept")
		}
		if o.Local != "/ip4/10.0.0.2/udp/4777" {
			t.Errorf("local %q, want the thin waist /ip4/10.0.0.2/udp/4777", o.Local)
		}
	}
	b = newObservations(everyone, time.Now, nil)
	b.identified("M", local, ma.StringCast("/ip4/192.0.2.1/udp/1/quic-v1"), ma.StringCast("/ip4/10.0.0.2/udp/4777/quic-v1"))
	b.identified("M", local, ma.StringCast("/ip4/192.0.2.1/udp/1/quic-v1/p2p/12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK/p2p-circuit"), ma.StringCast("/ip4/11.213.0.7/udp/4777/quic-v1"))
	if obs := b.list(); len(obs) != 0 {
		t.Errorf("kept %v: a private observed address, or one through a relay", obs)
	}
}

// TestObservationsOfStrangers: a stranger's observation is not stored; a
// member's is at once, a contact's device's after the contact check.
func TestObservationsOfStrangers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rule := peerRule{
			member:  func(p peer.ID) bool { return p == "member" },
			contact: func(_ context.Context, p peer.ID) (string, error) { return ownerIf(p, p == "contact") },
		}
		b := newObservations(rule, time.Now, nil)
		b.start()
		defer b.close()
		local := ma.StringCast("/ip4/10.0.0.2/udp/4777/quic-v1")
		for i, p := range []peer.ID{"member", "stranger", "contact"} {
			remote := ma.StringCast("/ip4/192.0.2." + strconv.Itoa(i+1) + "/udp/4001/quic-v1")
			b.identified(p, local, remote, ma.StringCast("/ip4/11.213.0.7/udp/"+strconv.Itoa(61001+i)+"/quic-v1"))
		}
		synctest.Wait()
		var got []string
		for _, o := range b.list() {
			got = append(got, o.Observer)
		}
		want := []string{peer.ID("member").String(), peer.ID("contact").String()}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("observers kept %v, want the member's and the contact's %v", got, want)
		}
		if _, refused := b.counts(); refused != 1 {
			t.Errorf("%d refused, want 1 (the stranger)", refused)
		}
	})
}

// TestObservationsPendingBound: while the contact check is stuck (a thin
// device's store read), observations of peers off the roster wait, at most
// MaxPendingObservations; the rest are dropped, and identify's event loop
// is never held (a send that blocks deadlocks the bubble).
func TestObservationsPendingBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := make(chan struct{})
		rule := peerRule{
			member: func(peer.ID) bool { return false },
			contact: func(ctx context.Context, _ peer.ID) (string, error) {
				select {
				case <-stuck:
				case <-ctx.Done():
					return "", ctx.Err()
				}
				return "", nil
			},
		}
		b := newObservations(rule, time.Now, nil)
		// A check takes up to kindWait; far more peers than that arrive.
		b.start()
		defer b.close()
		local := ma.StringCast("/ip4/10.0.0.2/udp/4777/quic-v1")
		const n = 10 * MaxPendingObservations
		for i := range n {
			remote := ma.StringCast("/ip4/192.0.2." + strconv.Itoa(i%250+1) + "/udp/4001/quic-v1")
			b.identified(peer.ID("s"+strconv.Itoa(i)), local, remote, ma.StringCast("/ip4/11.213.0.7/udp/61001/quic-v1"))
		}
		synctest.Wait()
		if l := len(b.pending); l > MaxPendingObservations {
			t.Errorf("%d observations wait, want at most %d", l, MaxPendingObservations)
		}
		dropped, _ := b.counts()
		if dropped < n-MaxPendingObservations-1 {
			t.Errorf("%d dropped of %d, want at least %d", dropped, n, n-MaxPendingObservations-1)
		}
		close(stuck)
	})
}

// TestAddrParts: the relay, port and thin waist the doctor reads from
// multiaddrs.
func TestAddrParts(t *testing.T) {
	const r = "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"
	for _, tc := range []struct {
		addr, relay, thin string
		port              int
	}{
		{"/ip4/11.213.0.10/udp/4777/quic-v1/p2p/" + r + "/p2p-circuit", r, "/ip4/11.213.0.10/udp/4777", 4777},
		{"/ip4/11.213.0.10/tcp/4000/p2p/" + r + "/p2p-circuit/p2p/12D3KooWCDeFya5w5oTtssYZEHzJgC9wWb2ya3hRevNzumNQj9vn", r, "/ip4/11.213.0.10/tcp/4000", 4000},
		{"/ip4/10.0.0.2/tcp/4777/p2p/" + r, "", "/ip4/10.0.0.2/tcp/4777", 4777},
		{"/ip6/::1/udp/9/quic-v1", "", "/ip6/::1/udp/9", 9},
		{"/dns4/example.org/tcp/1", "", "", 1},
		{"/p2p/" + r + "/p2p-circuit", r, "", 0},
	} {
		a := ma.StringCast(tc.addr)
		if got := relayOf(a); got != tc.relay {
			t.Errorf("relayOf(%s) = %q, want %q", a, got, tc.relay)
		}
		if got := portOf(a); got != tc.port {
			t.Errorf("portOf(%s) = %d, want %d", a, got, tc.port)
		}
		thin, ok := thinWaist(a)
		if got := ""; ok {
			got = thin.String()
			if got != tc.thin {
				t.Errorf("thinWaist(%s) = %s, want %q", a, got, tc.thin)
			}
		} else if tc.thin != "" {
			t.Errorf("thinWaist(%s) = none, want %s", a, tc.thin)
		}
	}
}

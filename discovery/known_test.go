package discovery

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	ma "github.com/multiformats/go-multiaddr"
)

var t0 = time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)

// testPeer returns a peer ID and its key, from seed.
func testPeer(t testing.TB, seed byte) (peer.ID, crypto.PrivKey) {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(bytes.NewReader(bytes.Repeat([]byte{seed}, 64)))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id, priv
}

// signedRecord returns the marshalled signed peer record of priv's peer
// (whose ID is id) with addrs.
func signedRecord(t testing.TB, priv crypto.PrivKey, id peer.ID, addrs ...ma.Multiaddr) []byte {
	t.Helper()
	env, err := record.Seal(&peer.PeerRecord{PeerID: id, Addrs: addrs, Seq: 1}, priv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKnownCodecRoundTrip(t *testing.T) {
	id, priv := testPeer(t, 1)
	a1, a2 := mustAddr(t, "/ip4/198.51.100.7/tcp/4001"), mustAddr(t, "/ip6/2001:db8::1/udp/4001/quic-v1")
	for name, e := range map[string]known{
		"plain":  {Addrs: []ma.Multiaddr{a1, a2}, Seen: t0, Public: true},
		"record": {Record: signedRecord(t, priv, id, a1), Seen: t0.Add(time.Nanosecond)},
		"empty":  {Seen: time.Unix(0, 0)},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := decodeKnown(encodeKnown(e))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Seen.Equal(e.Seen) || got.Public != e.Public || !bytes.Equal(got.Record, e.Record) ||
				!slices.EqualFunc(got.Addrs, e.Addrs, ma.Multiaddr.Equal) {
				t.Fatalf("decoded %+v, want %+v", got, e)
			}
		})
	}
}

func TestDecodeKnownRejects(t *testing.T) {
	a := mustAddr(t, "/ip4/198.51.100.7/tcp/4001")
	good := encodeKnown(known{Addrs: []ma.Multiaddr{a}, Seen: t0, Public: true})
	withAddrs := func(n int, l uint16, body []byte) []byte {
		b := slices.Clone(good[:12])
		b = append(b, byte(n))
		for range n {
			b = binary.BigEndian.AppendUint16(b, l)
			b = append(b, body...)
		}
		return b
	}
	bigRecord := binary.BigEndian.AppendUint16(slices.Clone(good[:10]), MaxKnownRecord+1)
	bigRecord = append(bigRecord, make([]byte, MaxKnownRecord+2)...)
	both := binary.BigEndian.AppendUint16(slices.Clone(good[:10]), 1)
	both = append(both, 0xAA, 1, 0, byte(len(a.Bytes())))
	both = append(both, a.Bytes()...)
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short header":   good[:11],
		"version":        append([]byte{2}, good[1:]...),
		"flags":          append(append(slices.Clone(good[:9]), 2), good[10:]...),
		"no count":       good[:12],
		"trailing":       append(slices.Clone(good), 0),
		"truncated addr": good[:len(good)-1],
		"record too big": bigRecord,
		"record short":   binary.BigEndian.AppendUint16(slices.Clone(good[:10]), 10),
		"too many addrs": withAddrs(MaxKnownAddrs+1, uint16(len(a.Bytes())), a.Bytes()),
		"zero addr":      withAddrs(1, 0, nil),
		"addr too long":  withAddrs(1, MaxKnownAddrLen+1, make([]byte, MaxKnownAddrLen+1)),
		"bad multiaddr":  withAddrs(1, 3, []byte{0xff, 0xff, 0xff}),
		"record+addrs":   both,
	} {
		t.Run(name, func(t *testing.T) {
			if e, err := decodeKnown(b); !errors.Is(err, ErrBadKnown) {
				t.Fatalf("decoded %+v, %v; want ErrBadKnown", e, err)
			}
		})
	}
	if _, err := decodeKnown(withAddrs(MaxKnownAddrs, uint16(len(a.Bytes())), a.Bytes())); err != nil {
		t.Fatalf("MaxKnownAddrs addresses: %v", err)
	}
}

// FuzzDecodeKnown: any input decodes or is refused with ErrBadKnown, never
// a panic; what decodes is within the bounds and survives encoding again.
func FuzzDecodeKnown(f *testing.F) {
	id, priv := testPeer(f, 1)
	a := mustAddr(f, "/ip4/198.51.100.7/tcp/4001")
	f.Add(encodeKnown(known{Addrs: []ma.Multiaddr{a, mustAddr(f, "/ip4/127.0.0.1/udp/1/quic-v1")}, Seen: t0, Public: true}))
	f.Add(encodeKnown(known{Record: signedRecord(f, priv, id, a), Seen: t0}))
	f.Add(encodeKnown(known{Seen: t0}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeKnown(b)
		if err != nil {
			if !errors.Is(err, ErrBadKnown) {
				t.Fatalf("error %v does not wrap ErrBadKnown", err)
			}
			return
		}
		if len(e.Record) > MaxKnownRecord || len(e.Addrs) > MaxKnownAddrs || (len(e.Record) > 0 && len(e.Addrs) > 0) {
			t.Fatalf("decoded out of bounds: record %d bytes, %d addrs", len(e.Record), len(e.Addrs))
		}
		again, err := decodeKnown(encodeKnown(e))
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if !again.Seen.Equal(e.Seen) || again.Public != e.Public || !bytes.Equal(again.Record, e.Record) ||
			!slices.EqualFunc(again.Addrs, e.Addrs, ma.Multiaddr.Equal) {
			t.Fatalf("re-encoded %+v, decoded %+v", e, again)
		}
	})
}

func TestNewKnownBounds(t *testing.T) {
	var addrs []ma.Multiaddr
	for i := range MaxKnownAddrs + 4 {
		addrs = append(addrs, mustAddr(t, fmt.Sprintf("/ip4/10.0.0.%d/tcp/4001", i)))
	}
	dup := append([]ma.Multiaddr{addrs[0]}, addrs...)
	e := newKnown(nil, dup, false, t0)
	if len(e.Addrs) != MaxKnownAddrs || !e.Addrs[0].Equal(addrs[0]) || !e.Addrs[1].Equal(addrs[1]) {
		t.Fatalf("kept %v, want the first %d distinct addresses", e.Addrs, MaxKnownAddrs)
	}
	e = newKnown(make([]byte, MaxKnownRecord+1), addrs[:2], true, t0)
	if e.Record != nil || len(e.Addrs) != 2 {
		t.Fatalf("record over the bound kept (%d bytes), or plain addrs %v lost", len(e.Record), e.Addrs)
	}
	e = newKnown([]byte("rec"), addrs[:2], true, t0)
	if string(e.Record) != "rec" || e.Addrs != nil {
		t.Fatalf("with a record, kept record %q and addrs %v", e.Record, e.Addrs)
	}
	if _, err := decodeKnown(encodeKnown(newKnown(nil, addrs, true, t0))); err != nil {
		t.Fatalf("newKnown's entry does not decode: %v", err)
	}
}

// row is a row of the pure table, public or not as told (the shell
// computes it from the addresses, rowOf).
func row(seen time.Time, public bool, addrs ...ma.Multiaddr) knownRow {
	r := rowOf(known{Seen: seen, Addrs: addrs}, addrs)
	r.public = public
	return r
}

func TestKnownTableDebounce(t *testing.T) {
	id, _ := testPeer(t, 1)
	a, b := mustAddr(t, "/ip4/198.51.100.7/tcp/4001"), mustAddr(t, "/ip4/198.51.100.8/tcp/4001")
	c := mustAddr(t, "/ip4/198.51.100.9/tcp/4001")
	tb := newKnownTable()
	if !tb.due(id, row(t0, true, a, b)) {
		t.Fatal("a new peer is not due")
	}
	tb.put(id, row(t0, true, a, b))
	later := t0.Add(time.Minute)
	for _, tc := range []struct {
		name string
		r    knownRow
		want bool
	}{
		{"same, a minute later", row(later, true, a, b), false},
		{"same, other order", row(later, true, b, a), false},
		{"same, just under the debounce", row(t0.Add(KnownDebounce-time.Nanosecond), true, a, b), false},
		{"same, at the debounce", row(t0.Add(KnownDebounce), true, a, b), true},
		{"moved", row(later, true, c), true},
		{"one address fewer", row(later, true, a), true},
		{"one more address", row(later, true, a, b, c), true},
		{"no longer public", row(later, false, a, b), true},
	} {
		if got := tb.due(id, tc.r); got != tc.want {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestKnownTableBounded(t *testing.T) {
	a := mustAddr(t, "/ip4/198.51.100.7/tcp/4001")
	tb := newKnownTable()
	ids := make([]peer.ID, MaxKnown+2)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprintf("peer-%04d", i))
	}
	// The first peer is seen last of all, so the second is the oldest.
	for i, id := range ids[:MaxKnown] {
		seen := t0.Add(time.Duration(i) * time.Second)
		if i == 0 {
			seen = t0.Add(time.Hour)
		}
		if ev := tb.put(id, row(seen, false, a)); len(ev) > 0 {
			t.Fatalf("evicted %v at %d entries", ev, i+1)
		}
	}
	if ev := tb.put(ids[MaxKnown], row(t0.Add(2*time.Hour), false, a)); !slices.Equal(ev, []peer.ID{ids[1]}) {
		t.Fatalf("evicted %v, want the oldest, %s", ev, ids[1])
	}
	// A newcomer older than everyone is kept; the oldest other goes.
	if ev := tb.put(ids[MaxKnown+1], row(t0.Add(-time.Hour), false, a)); !slices.Equal(ev, []peer.ID{ids[2]}) {
		t.Fatalf("evicted %v, want %s", ev, ids[2])
	}
	if len(tb.rows) != MaxKnown {
		t.Fatalf("%d entries, want %d", len(tb.rows), MaxKnown)
	}
}

func TestKnownTableExpiry(t *testing.T) {
	a := mustAddr(t, "/ip4/198.51.100.7/tcp/4001")
	tb := newKnownTable()
	tb.put("old", row(t0, true, a))
	tb.put("edge", row(t0.Add(time.Second), true, a))
	now := t0.Add(KnownMaxAge + time.Second)
	if got := tb.bootstrap(now, 8); len(got) != 1 || got[0].ID != "edge" {
		t.Fatalf("bootstrap at expiry: %v, want only edge", got)
	}
	if got := tb.expired(now); !slices.Equal(got, []peer.ID{"old"}) {
		t.Fatalf("expired %v, want [old]", got)
	}
	if _, ok := tb.rows["old"]; ok {
		t.Fatal("expired entry still in the table")
	}
}

func TestKnownTableBootstrap(t *testing.T) {
	a := mustAddr(t, "/ip4/198.51.100.7/tcp/4001")
	tb := newKnownTable()
	tb.put("private", row(t0.Add(time.Hour), false, a))
	tb.put("noaddr", row(t0.Add(time.Hour), true))
	for i := range 10 {
		tb.put(peer.ID(fmt.Sprintf("pub-%d", i)), row(t0.Add(time.Duration(i)*time.Minute), true, a))
	}
	got := tb.bootstrap(t0.Add(2*time.Hour), 3)
	var ids []peer.ID
	for _, ai := range got {
		ids = append(ids, ai.ID)
	}
	if want := []peer.ID{"pub-9", "pub-8", "pub-7"}; !slices.Equal(ids, want) {
		t.Fatalf("bootstrap peers %v, want %v (public, newest first)", ids, want)
	}
}

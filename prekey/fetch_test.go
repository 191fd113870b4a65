package prekey

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/ratchet"
)

func encoded(b *ratchet.Bundle) []byte {
	enc, _ := b.MarshalBinary()
	return enc
}

// TestFetchDirect: a connected device's bundle is asked on Protocol and
// is the one it serves, even while the DHT holds an older one.
func TestFetchDirect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 2)
		a, b := tn.start(0, 0, Config{}), tn.start(1, 0, Config{})
		settle()
		tn.recs.set(tn.hosts[0].ID(), nil) // nothing on the DHT: only the direct answer can give it
		tn.connect(1, 0)
		got, err := b.Fetch(t.Context(), tn.hosts[0].ID())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encoded(got), encoded(a.Bundle())) {
			t.Fatal("fetched another bundle than the one served")
		}
		if st := b.Stats(); st.Direct != 1 || st.FromDHT != 0 {
			t.Fatalf("stats %+v, want one direct fetch", st)
		}
		if st := a.Stats(); st.Served != 1 {
			t.Fatalf("served %d", st.Served)
		}
		if b.Cached(tn.hosts[0].ID()) != got {
			t.Fatal("not cached")
		}
	})
}

// TestFetchFromDHT: a device not connected is looked up on the DHT; the
// fetch does not dial it.
func TestFetchFromDHT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 2)
		a, b := tn.start(0, 0, Config{}), tn.start(1, 0, Config{})
		settle()
		got, err := b.Fetch(t.Context(), tn.hosts[0].ID())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encoded(got), encoded(a.Bundle())) {
			t.Fatal("fetched another bundle than the one published")
		}
		if st := b.Stats(); st.Direct != 0 || st.FromDHT != 1 {
			t.Fatalf("stats %+v, want one fetch from the DHT", st)
		}
		if c := tn.hosts[1].Network().Connectedness(tn.hosts[0].ID()); c == network.Connected {
			t.Fatal("the fetch dialled the device")
		}
		if _, err := b.Fetch(t.Context(), tn.hosts[1].ID()); err != nil {
			t.Fatalf("its own bundle: %v", err)
		}
		if _, err := b.Fetch(t.Context(), testID(t, 7)); !errors.Is(err, dht.ErrNotFound) {
			t.Fatalf("a device with no record: %v", err)
		}
	})
}

// TestBystanderRefused: a peer that serves another device's bundle as its
// own, or a DHT record of one device that holds another's bundle, is
// refused with ErrWrongPeer; the bystander's own record is then taken.
func TestBystanderRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 3)
		a, b, c := tn.start(0, 0, Config{}), tn.start(1, 0, Config{}), tn.start(2, 0, Config{})
		settle()
		// c answers with a's bundle.
		theirs := encodeAnswer(encoded(a.Bundle()))
		tn.hosts[2].SetStreamHandler(Protocol, func(st network.Stream) {
			_ = readRequest(st)
			_, _ = st.Write(theirs)
			_ = st.Close()
		})
		own := tn.recs.get(tn.hosts[2].ID())
		tn.recs.set(tn.hosts[2].ID(), encoded(a.Bundle()))
		tn.connect(1, 2)
		if _, err := b.Fetch(t.Context(), tn.hosts[2].ID()); !errors.Is(err, ErrWrongPeer) {
			t.Fatalf("a's bundle as c's, directly and on the DHT: %v; want ErrWrongPeer", err)
		}
		if st := b.Stats(); st.Refused != 2 || st.Direct+st.FromDHT != 0 {
			t.Fatalf("stats %+v, want two refusals", st)
		}
		if b.Cached(tn.hosts[2].ID()) != nil || b.Cached(tn.hosts[0].ID()) != nil {
			t.Fatal("a refused bundle was cached")
		}
		tn.recs.set(tn.hosts[2].ID(), own)
		got, err := b.Fetch(t.Context(), tn.hosts[2].ID())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encoded(got), encoded(c.Bundle())) {
			t.Fatal("not c's own bundle")
		}
	})
}

// TestFetchNeverGoesBack: once a bundle is cached, an older one found
// later (a stale DHT record) does not replace it.
func TestFetchNeverGoesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 2)
		a, b := tn.start(0, 0, Config{}), tn.start(1, 0, Config{})
		settle()
		old := tn.recs.get(tn.hosts[0].ID())
		h := initiate(t, a.Bundle(), "alice")
		if err := respond(a, testSigner(t, 0).Public().(ed25519.PublicKey), h); err != nil {
			t.Fatal(err)
		}
		time.Sleep(DefaultConfig().PublishInterval) // the store of the new bundle, coalesced
		settle()
		newer, err := b.Fetch(t.Context(), tn.hosts[0].ID())
		if err != nil || newer.Sequence != 2 {
			t.Fatalf("fetch: %v", err)
		}
		tn.recs.set(tn.hosts[0].ID(), old)
		got, err := b.Fetch(t.Context(), tn.hosts[0].ID())
		if err != nil {
			t.Fatal(err)
		}
		if got.Sequence != 2 || got != newer {
			t.Fatalf("went back to sequence %d", got.Sequence)
		}
	})
}

// TestCacheBound: the cache holds at most its size, evicting the least
// recently used, and keeps the newer of two bundles of one device.
func TestCacheBound(t *testing.T) {
	c := newCache(3)
	k := testPrekeys(t, "cache", 1)
	now := int64(1_700_000_000) // when k was made
	bundle := func(i int, seq uint64) *ratchet.Bundle {
		b, err := k.Bundle(testSigner(t, i), seq)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ids := make([]peer.ID, 5)
	for i := range ids {
		ids[i] = testID(t, i)
	}
	for i := range 3 {
		c.keep(ids[i], bundle(i, 1), now)
	}
	c.get(ids[0], now) // 0 is now the most recent; 1 the least
	c.keep(ids[3], bundle(3, 1), now)
	c.keep(ids[4], bundle(4, 1), now)
	if c.len() != 3 {
		t.Fatalf("%d held, want 3", c.len())
	}
	for i, want := range []bool{true, false, false, true, true} {
		if got := c.get(ids[i], now) != nil; got != want {
			t.Errorf("device %d held: %v, want %v", i, got, want)
		}
	}
	b5 := bundle(0, 5)
	if got := c.keep(ids[0], b5, now); got != b5 {
		t.Fatal("a newer bundle did not replace the cached one")
	}
	if got := c.keep(ids[0], bundle(0, 4), now); got != b5 {
		t.Fatal("an older bundle replaced the cached one")
	}
	if got := c.keep(ids[0], bundle(0, 5), now); got != b5 {
		t.Fatal("a bundle of the same sequence replaced the cached one")
	}
	// Past b5's signed prekey's grace period, an older bundle replaces
	// it, and get drops it.
	late := now + ratchet.RotationPeriod + ratchet.GracePeriod
	if got := c.keep(ids[0], bundle(0, 4), late-1); got != b5 {
		t.Fatal("an older bundle replaced the cached one a second before its grace period ended")
	}
	if b4 := bundle(0, 4); c.keep(ids[0], b4, late) != b4 {
		t.Fatal("a stale bundle was kept over an older one")
	}
	if c.get(ids[3], late) != nil || c.len() != 2 {
		t.Fatalf("a stale bundle returned or held (%d held)", c.len())
	}
}

// TestServeRefusesBadRequests: a malformed request gets its stream reset
// and no bundle; Close does not wait for a stream still waiting for its
// request, which it resets. (mocknet's streams ignore deadlines; simnet's
// test of the service cuts a silent asker off at Timeout.)
func TestServeRefusesBadRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 2)
		a := tn.start(0, 0, Config{})
		settle()
		tn.connect(1, 0)
		ask := func(req []byte) ([]byte, error) {
			st, err := tn.hosts[1].NewStream(t.Context(), tn.hosts[0].ID(), Protocol)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Write(req); err != nil {
				return nil, err
			}
			_ = st.CloseWrite()
			return io.ReadAll(st)
		}
		if got, err := ask([]byte{1}); err != nil || !bytes.Equal(got, encodeAnswer(encoded(a.Bundle()))) {
			t.Fatalf("a good request: %d bytes, %v", len(got), err)
		}
		for _, req := range [][]byte{{2}, {1, 1}, {0}, {}} {
			if got, err := ask(req); err == nil || len(got) != 0 {
				t.Errorf("request %x: %d bytes, %v; want a reset", req, len(got), err)
			}
		}
		if st := a.Stats(); st.Served != 1 {
			t.Fatalf("served %d, want 1", st.Served)
		}

		st, err := tn.hosts[1].NewStream(t.Context(), tn.hosts[0].ID(), Protocol)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.Write([]byte{1}); err != nil { // and never closes its side
			t.Fatal(err)
		}
		settle()
		start := time.Now()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("Close waited %v for a silent asker", d)
		}
		if _, err := io.ReadAll(st); err == nil {
			t.Fatal("the silent asker's stream was not reset")
		}
		if _, err := a.Fetch(context.Background(), tn.hosts[1].ID()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Fetch after Close: %v", err)
		}
	})
}

// TestFetchDropsStaleBundle: a cached bundle whose signed prekey is past
// its grace period (RotationPeriod + GracePeriod after it was made) is
// neither returned by Cached nor kept over what Fetch finds, even an
// older sequence: here the device was restored from a backup 15 days
// later and rotated at start, to a lower sequence than the one cached.
func TestFetchDropsStaleBundle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 2)
		a, b := tn.start(0, 0, Config{}), tn.start(1, 0, Config{})
		settle()
		id := tn.hosts[0].ID()
		backup, err := tn.dss[0].Get(t.Context(), StateKey)
		if err != nil {
			t.Fatal(err)
		}
		self := testSigner(t, 0).Public().(ed25519.PublicKey)
		for _, label := range []string{"alice", "bob"} {
			if err := respond(a, self, initiate(t, a.Bundle(), label)); err != nil {
				t.Fatal(err)
			}
		}
		tn.connect(1, 0)
		cached, err := b.Fetch(t.Context(), id)
		if err != nil || cached.Sequence != 3 {
			t.Fatalf("fetch: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep((ratchet.RotationPeriod+ratchet.GracePeriod)*time.Second + time.Hour)
		if got := b.Cached(id); got != nil {
			t.Fatalf("Cached returned sequence %d, its signed prekey past its grace period", got.Sequence)
		}
		if err := tn.dss[0].Put(t.Context(), StateKey, backup); err != nil {
			t.Fatal(err)
		}
		a = tn.start(0, 1, Config{})
		settle()
		if got := a.Bundle(); got.Sequence != 2 || got.Signed.ID == cached.Signed.ID {
			t.Fatalf("the restored device's bundle: sequence %d, signed prekey %d", got.Sequence, got.Signed.ID)
		}
		got, err := b.Fetch(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(encoded(got), encoded(a.Bundle())) {
			t.Fatalf("fetched sequence %d (signed prekey %d), not the device's current bundle", got.Sequence, got.Signed.ID)
		}
		if b.Cached(id) != got {
			t.Fatal("the current bundle is not cached")
		}
	})
}

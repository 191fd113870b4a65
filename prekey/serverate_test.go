package prekey

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestFetchLoopBounded: a peer that asks a device for its bundle in a
// loop is answered ServeBurst times, then refused (it reads the DHT
// record instead) until its bucket refills; no ask takes a one-time
// prekey of the device.
func TestFetchLoopBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 2)
		a, b := tn.start(0, 0, Config{}), tn.start(1, 0, Config{})
		settle()
		tn.connect(1, 0)
		oneTime := a.Stats().OneTime
		const asks = 3 * ServeBurst
		for range asks {
			if _, err := b.Fetch(t.Context(), tn.hosts[0].ID()); err != nil {
				t.Fatal(err)
			}
		}
		if st := a.Stats(); st.Served != ServeBurst || st.Throttled != asks-ServeBurst {
			t.Fatalf("after %d asks at once: served %d, throttled %d; want %d and %d", asks, st.Served, st.Throttled, ServeBurst, asks-ServeBurst)
		}
		if st := b.Stats(); st.Direct != ServeBurst || st.FromDHT != asks-ServeBurst {
			t.Fatalf("asker's stats %+v: want %d direct and the rest from the DHT", st, ServeBurst)
		}
		if got := a.Stats().OneTime; got != oneTime {
			t.Fatalf("%d one-time prekeys after %d asks, want %d", got, asks, oneTime)
		}
		time.Sleep(ServeEvery)
		if _, err := b.Fetch(t.Context(), tn.hosts[0].ID()); err != nil {
			t.Fatal(err)
		}
		if st := a.Stats(); st.Served != ServeBurst+1 {
			t.Fatalf("after ServeEvery: served %d, want %d", st.Served, ServeBurst+1)
		}
	})
}

// TestServeRateAskersBounded: the buckets kept are at most the bound; a
// new asker past it is refused until a kept bucket is full again.
func TestServeRateAskersBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newServeRate()
		r.size = 2
		p1, p2, p3 := testID(t, 1), testID(t, 2), testID(t, 3)
		if !r.allow(p1) || !r.allow(p2) {
			t.Fatal("the first two askers refused")
		}
		if r.allow(p3) {
			t.Fatal("a third asker allowed with two buckets kept, none full")
		}
		time.Sleep(ServeEvery)
		if !r.allow(p3) {
			t.Fatal("a third asker refused once the kept buckets are full again")
		}
		if len(r.per) > 2 {
			t.Fatalf("%d buckets kept, the bound is 2", len(r.per))
		}
	})
}

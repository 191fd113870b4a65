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
// new asker past it, while no kept bucket is full again, takes the place
// of the least recently used asker (it was refused, a contact's device
// too, once MaxServeAskers askers were kept), and a full one goes first.
func TestServeRateAskersBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newServeRate()
		r.size = 2
		p1, p2, p3, p4 := testID(t, 1), testID(t, 2), testID(t, 3), testID(t, 4)
		if !r.allow(p1) {
			t.Fatal("the first asker refused")
		}
		time.Sleep(time.Second)
		if !r.allow(p2) {
			t.Fatal("the second asker refused")
		}
		time.Sleep(time.Second)
		if !r.allow(p3) {
			t.Fatal("a third asker refused with two buckets kept, none full: it takes the least recently used one's place")
		}
		if _, ok := r.per[p1]; ok || len(r.per) > 2 {
			t.Fatalf("%d buckets kept (p1 kept: %v), want 2 without p1, the least recently used", len(r.per), ok)
		}
		for range ServeBurst - 1 {
			r.allow(p2) // p2 is used most recently, its bucket near empty
		}
		if r.allow(p2) {
			t.Fatal("p2 past its burst allowed")
		}
		time.Sleep(2 * ServeEvery)
		if !r.allow(p4) {
			t.Fatal("a fourth asker refused")
		}
		if _, ok := r.per[p2]; !ok {
			t.Fatal("p2 (not full) forgotten while p3's bucket was full again")
		}
		if r.allow(p2) && r.per[p2].tokens >= ServeBurst-1 {
			t.Fatal("p2's bucket refilled by a new asker")
		}
	})
}

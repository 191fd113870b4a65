package prekey

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestPublishRetriesSoon: a store on the DHT that fails at start (no
// peer yet) is tried again within seconds, not a minute later; while the
// DHT keeps failing the tries back off.
func TestPublishRetriesSoon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1)
		tn.recs.fail = errors.New("no DHT peer yet")
		s := tn.start(0, 0, Config{})
		settle()
		time.Sleep(time.Second)
		tn.recs.mu.Lock()
		tn.recs.fail = nil
		tn.recs.mu.Unlock()
		time.Sleep(4 * time.Second)
		settle()
		if st := s.Stats(); st.Published != s.Bundle().Sequence {
			t.Fatalf("published %d 5 s after a failed first store, the DHT back after 1 s; want %d", st.Published, s.Bundle().Sequence)
		}
		want := encoded(s.Bundle())
		if got := tn.recs.get(tn.hosts[0].ID()); !bytes.Equal(got, want) {
			t.Fatal("the DHT does not hold the bundle")
		}
	})
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1)
		tn.recs.fail = errors.New("no DHT peer yet")
		tn.start(0, 0, Config{})
		time.Sleep(time.Minute)
		settle()
		// Tries at 0, 2, 6, 14, 30 and 62 s with the first wait of 2 s
		// doubling: 5 within the minute; 31 if it did not back off.
		if puts, _ := tn.recs.counts(); puts < 3 || puts > 7 {
			t.Fatalf("%d stores tried in a minute of a failing DHT, want 3 to 7 (soon, backing off)", puts)
		}
	})
}

// TestPublishCoalesced: initial messages answered one a second for 30 s
// (each Accept a new bundle) make at most one store on the DHT per
// PublishInterval (10 s), never two at once, and the DHT ends up with the
// latest bundle.
func TestPublishCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1)
		self := testSigner(t, 0).Public().(ed25519.PublicKey)
		s := tn.start(0, 0, Config{})
		settle()
		if st := s.Stats(); st.Published != 1 {
			t.Fatalf("published %d at start, want 1", st.Published)
		}
		tn.recs.mu.Lock()
		tn.recs.delay = 3 * time.Second // a slow DHT: changes come while a store is under way
		tn.recs.mu.Unlock()
		first, _ := tn.recs.counts()
		const accepts = 30
		for i := range accepts {
			h := initiate(t, s.Bundle(), fmt.Sprintf("initiator %d", i))
			if err := respond(s, self, h); err != nil {
				t.Fatalf("initial message %d: %v", i, err)
			}
			time.Sleep(time.Second)
			settle()
		}
		puts, most := tn.recs.counts()
		// 30 s of changes, one store per 10 s at most (the first one
		// 10 s after the start's).
		if n := puts - first; n < 1 || n > accepts/10+1 {
			t.Fatalf("%d stores for %d changes in %d s, want 1 to %d", n, accepts, accepts, accepts/10+1)
		}
		if most != 1 {
			t.Fatalf("%d stores under way at once", most)
		}
		time.Sleep(DefaultConfig().PublishInterval + tn.recs.delay)
		settle()
		b := s.Bundle()
		if got := tn.recs.get(tn.hosts[0].ID()); !bytes.Equal(got, encoded(b)) {
			t.Fatalf("the DHT does not hold the latest bundle (sequence %d)", b.Sequence)
		}
		if st := s.Stats(); st.Published != b.Sequence || b.Sequence < accepts+1 {
			t.Fatalf("published %d, bundle %d after %d changes", st.Published, b.Sequence, accepts)
		}
	})
}

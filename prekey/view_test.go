package prekey

import (
	"errors"
	"testing"
	"testing/synctest"

	"github.com/exopeer/exopeer/ratchet"
)

// TestView: View reads the state under the lock and changes nothing: no
// new sequence, nothing stored; it refuses before Start and after Close.
func TestView(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1)
		s := tn.start(0, 0, Config{})
		settle()
		before := s.Stats().Sequence
		seqStored, _ := stored(t, tn.dss[0])
		var ik [32]byte
		if err := s.View(func(k *ratchet.Prekeys) error { ik = k.IdentityPublic(); return nil }); err != nil {
			t.Fatal(err)
		}
		if ik != s.Bundle().Identity {
			t.Fatal("View's state is not the bundle's")
		}
		boom := errors.New("boom")
		if err := s.View(func(*ratchet.Prekeys) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("View returned %v, want fn's error", err)
		}
		if seq, _ := stored(t, tn.dss[0]); s.Stats().Sequence != before || seq != seqStored {
			t.Fatalf("View changed the state: sequence %d → %d, stored %d → %d", before, s.Stats().Sequence, seqStored, seq)
		}
		_ = s.Close()
		if err := s.View(func(*ratchet.Prekeys) error { return nil }); !errors.Is(err, ErrClosed) {
			t.Fatalf("View after Close: %v", err)
		}
	})
}

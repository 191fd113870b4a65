package dht

import (
	"errors"
	"testing"
	"time"
)

// TestSignedRecords: a record signed by a key that is no node's (a blind
// mailbox slot's) is stored with PutSigned by one node and found with
// GetSigned by another, with its sequence number; a higher sequence
// number replaces it; a record that does not validate under its key is
// refused before anything is sent; a key nobody stored is ErrNotFound.
func TestSignedRecords(t *testing.T) {
	bubble(t, func(t *testing.T) {
		cfg := Config{Mode: ModeServer, OpTimeout: 30 * time.Second}
		s := newSimNet(t, 6, cfg, nil)
		defer s.close(t)
		s.waitTables(t, 2)

		slot, _ := newKey(t)
		other, _ := newKey(t)
		key, rec, err := SealRecord(slot, "mailbox", []byte("first"), 1, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.nodes[1].PutSigned(t.Context(), key, rec); err != nil {
			t.Fatal(err)
		}
		got, err := s.nodes[4].GetSigned(t.Context(), key)
		if err != nil || string(got.Value) != "first" || got.Seq != 1 {
			t.Fatalf("GetSigned = %q seq %d, %v", got.Value, got.Seq, err)
		}

		_, rec2, err := SealRecord(slot, "mailbox", []byte("second"), 2, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.nodes[2].PutSigned(t.Context(), key, rec2); err != nil {
			t.Fatal(err)
		}
		got, err = s.nodes[5].GetSigned(t.Context(), key)
		if err != nil || string(got.Value) != "second" || got.Seq != 2 {
			t.Fatalf("GetSigned after seq 2 = %q seq %d, %v", got.Value, got.Seq, err)
		}

		_, forged, err := SealRecord(other, "mailbox", []byte("forged"), 3, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.nodes[3].PutSigned(t.Context(), key, forged); !errors.Is(err, ErrWrongOwner) {
			t.Fatalf("PutSigned of another key's record: %v, want ErrWrongOwner", err)
		}
		otherKey, _, _ := SealRecord(other, "mailbox", []byte("x"), 1, time.Now().Add(time.Hour))
		if _, err := s.nodes[4].GetSigned(t.Context(), otherKey); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetSigned of a key nobody stored: %v, want ErrNotFound", err)
		}
		if _, err := s.nodes[4].GetSigned(t.Context(), "/exo/nonsense"); !errors.Is(err, ErrBadKey) {
			t.Fatalf("GetSigned of a malformed key: %v, want ErrBadKey", err)
		}
	})
}

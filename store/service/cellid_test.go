package service

import (
	"crypto/ed25519"
	"testing"

	"github.com/exopeer/exopeer/cell"
)

// TestCellIDRemembered: cellID gives Roster.ID, for a roster of another
// cell too (it remembers the last cell key, not the last answer), and
// keeps no alias of the roster's key.
func TestCellIDRemembered(t *testing.T) {
	s := &Service{}
	key := func(b byte) ed25519.PublicKey {
		k := make(ed25519.PublicKey, ed25519.PublicKeySize)
		k[0] = b
		return k
	}
	a, b := &cell.Roster{Cell: key(1)}, &cell.Roster{Cell: key(2)}
	for i, ro := range []*cell.Roster{a, a, b, a, b, b} {
		if got, want := s.cellID(ro), ro.ID(); got != want {
			t.Fatalf("call %d: cellID = %s, want %s", i, got, want)
		}
	}
	a.Cell[0] = 3 // a roster value changed in place: the memo must not follow it
	if got, want := s.cellID(b), b.ID(); got != want {
		t.Fatalf("cellID = %s, want %s", got, want)
	}
	if got, want := s.cellID(a), a.ID(); got != want {
		t.Fatalf("cellID after a change = %s, want %s", got, want)
	}
}

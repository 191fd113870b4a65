package service

import (
	"testing"
)

// TestSetReceipts: read receipts are on for a new contact; turned off,
// the contact reads back off, and stays so through another write of it
// (a verification); turned on again, on.
func TestSetReceipts(t *testing.T) {
	ctx := t.Context()
	s := newTestService(t, &view{s: &chainStore{}, at: -1})
	if _, err := s.Add(ctx, card(t, 1, 1, testPeer(t, 2)), "Bob"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Get(ctx, "Bob"); err != nil || c.ReceiptsOff {
		t.Fatalf("new contact: receipts off %v, %v; want on", c.ReceiptsOff, err)
	}
	if c, err := s.SetReceipts(ctx, "Bob", false); err != nil || !c.ReceiptsOff {
		t.Fatalf("SetReceipts off: %v, %v", c.ReceiptsOff, err)
	}
	if _, _, err := s.Verify(ctx, "Bob", true); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Get(ctx, "Bob"); err != nil || !c.ReceiptsOff || !c.Verified {
		t.Fatalf("after a verification: receipts off %v, verified %v, %v; want both", c.ReceiptsOff, c.Verified, err)
	}
	if c, err := s.SetReceipts(ctx, "Bob", true); err != nil || c.ReceiptsOff {
		t.Fatalf("SetReceipts on: %v, %v", c.ReceiptsOff, err)
	}
	if c, err := s.Get(ctx, "Bob"); err != nil || c.ReceiptsOff {
		t.Fatalf("read back: receipts off %v, %v; want on", c.ReceiptsOff, err)
	}
	if _, err := s.SetReceipts(ctx, "Nobody", false); err == nil {
		t.Fatal("SetReceipts of no contact: no error")
	}
}

package mailbox

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/ratchet"
)

// TestLargestFrameFits: the largest initial message's frame (its header,
// PQXDH's largest initial header of 1743 bytes as message's frame_test
// counts it, the ratchet's overhead and the largest envelope) fits one
// entry, so every message can go through a slot.
func TestLargestFrameFits(t *testing.T) {
	if n := message.FrameHeader + 1743 + ratchet.MessageOverhead + message.MaxEnvelope; n > MaxFrame {
		t.Fatalf("the largest frame, %d bytes, does not fit an entry's %d", n, MaxFrame)
	}
}

// TestAppend: entries whose ID the list holds are skipped, the others
// appended in order while they fit; what does not fit is returned, and
// the list given is not changed.
func TestAppend(t *testing.T) {
	held := entries(2, 10)
	more := entries(4, 10)[1:] // IDs 1 (held), 2, 3
	got, left, err := Append(held, more...)
	if err != nil {
		t.Fatal(err)
	}
	if want := entries(4, 10); !cmp.Equal(got, want) || len(left) != 0 {
		t.Fatalf("Append = %v, left %v", got, left)
	}
	if len(held) != 2 {
		t.Fatal("Append changed the list given")
	}
	big := entries(3, MaxFrame/2-60)
	got, left, err = Append(nil, big...)
	if err != nil || len(got) != 2 || !cmp.Equal(left, big[2:]) {
		t.Fatalf("Append past a slot: %d in, %d left, %v", len(got), len(left), err)
	}
	if _, _, err := Append(nil, Frame(message.ID{1}, devA, devB, nil)); !errors.Is(err, ErrFull) {
		t.Fatalf("Append of an empty frame: %v, want ErrFull", err)
	}
	full := entries(MaxEntries, 1)
	got, left, err = Append(full, Frame(message.ID{0xff}, devA, devB, []byte{1}))
	if err != nil || len(got) != MaxEntries || len(left) != 1 {
		t.Fatalf("Append to a full list: %d, %d left, %v", len(got), len(left), err)
	}
}

// TestWithout: the entries taken are dropped, the others kept in order.
func TestWithout(t *testing.T) {
	es := entries(4, 3)
	got := Without(es, func(id message.ID) bool { return id == es[1].ID || id == es[3].ID })
	if want := []Entry{es[0], es[2]}; !cmp.Equal(got, want) {
		t.Fatalf("Without = %v", got)
	}
	if got := Without(es, func(message.ID) bool { return true }); !cmp.Equal(got, []Entry(nil), cmpopts.EquateEmpty()) {
		t.Fatalf("Without all = %v", got)
	}
	if len(es) != 4 || es[1].Frame == nil {
		t.Fatal("Without changed the list given")
	}
}

// TestAppendLeftSkipsHeld: what does not fit is returned for the next
// index without the entries the slot already holds or that came earlier
// in add: otherwise the writer puts them in a second slot and the reader
// gets them twice (it drops the repeat, but the slot's room is spent).
func TestAppendLeftSkipsHeld(t *testing.T) {
	held := entries(1, 10)
	big := Frame(message.ID{0xee}, devA, devB, make([]byte, MaxFrame))
	big.Frame[0] = 1
	next := Frame(message.ID{0xef}, devA, devB, []byte{2})
	_, left, err := Append(held, big, held[0], next, next)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Entry{big, next}; !cmp.Equal(left, want) {
		t.Fatalf("left = %d entries %v, want %v (no held ID, no repeat)", len(left), ids(left), ids(want))
	}
}

func ids(es []Entry) []message.ID {
	out := make([]message.ID, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// TestAckSignature: an ack verifies for its cells and ID only, and only
// with the signature of the device it names.
func TestAckSignature(t *testing.T) {
	id := message.ID{9}
	a := mustAck(id)
	if a.From != device(0xdc) {
		t.Fatalf("the ack names %s, not its signing device", a.From)
	}
	if err := VerifyAck(a, cellKey(2), cellKey(1)); err != nil {
		t.Fatalf("a signed ack does not verify: %v", err)
	}
	other := a
	other.ID = message.ID{8}
	forged := a
	forged.From = devA // signed by ackBy, names another device
	flipped := a
	flipped.Sig = append([]byte{a.Sig[0] ^ 1}, a.Sig[1:]...)
	for name, tt := range map[string]struct {
		e          Entry
		acking, by []byte
	}{
		"cells swapped":  {a, cellKey(1), cellKey(2)},
		"other acking":   {a, cellKey(3), cellKey(1)},
		"other sender":   {a, cellKey(2), cellKey(3)},
		"other ID":       {other, cellKey(2), cellKey(1)},
		"other device":   {forged, cellKey(2), cellKey(1)},
		"bad signature":  {flipped, cellKey(2), cellKey(1)},
		"no signature":   {Entry{Kind: KindAck, ID: id, From: a.From}, cellKey(2), cellKey(1)},
		"a frame":        {entries(1, 1)[0], cellKey(2), cellKey(1)},
		"short cell key": {a, cellKey(2)[:31], cellKey(1)},
	} {
		if err := VerifyAck(tt.e, tt.acking, tt.by); !errors.Is(err, ErrBadAck) {
			t.Errorf("%s: %v, want ErrBadAck", name, err)
		}
	}
	if _, err := Ack(ackBy[:10], cellKey(2), cellKey(1), id); !errors.Is(err, ErrBadAck) {
		t.Errorf("Ack with a short key: %v, want ErrBadAck", err)
	}
	// The largest ack, its device's peer ID of MaxPeerID bytes: 64 fit a
	// slot; an Ed25519 device's acks fit an 8 KiB value.
	big := Entry{Kind: KindAck, From: peer.ID(append([]byte{0x00, MaxPeerID - 2}, make([]byte, MaxPeerID-2)...)), Sig: a.Sig}
	if n, err := big.size(); err != nil || n != MaxAck {
		t.Fatalf("an ack of %d bytes (%v), MaxAck %d", n, err, MaxAck)
	}
	if listHeader+MaxEntries*MaxAck > MaxPlaintext {
		t.Fatalf("%d acks of %d bytes do not fit a slot", MaxEntries, MaxAck)
	}
	n, err := Size(acks(MaxEntries))
	if err != nil || bucket(n) != 8<<10-overhead {
		t.Fatalf("%d acks of Ed25519 devices: %d bytes (%v), not the 8 KiB bucket", MaxEntries, n, err)
	}
}

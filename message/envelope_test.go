package message

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, withList := range []bool{false, true} {
		e := sample(t, withList)
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeEnvelope(b)
		if err != nil {
			t.Fatalf("list %v: %v", withList, err)
		}
		again, err := got.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("list %v: does not encode back to the same bytes (%v)", withList, err)
		}
		if got.ID != e.ID || !got.Cell.Equal(e.Cell) || !got.To.Equal(e.To) || got.Device != e.Device || got.Sent != e.Sent || got.Seq != e.Seq || got.Text != e.Text {
			t.Fatalf("list %v: decoded %+v, want %+v", withList, got, e)
		}
		if (got.Devices != nil) != withList {
			t.Fatalf("list %v: decoded list %v", withList, got.Devices)
		}
	}
}

func TestEnvelopeRefused(t *testing.T) {
	good, err := sample(t, true).Encode()
	if err != nil {
		t.Fatal(err)
	}
	otherCell := sample(t, false)
	otherCell.Devices = signedList(t, 2, 3, 10)
	tests := []struct {
		name string
		e    *Envelope
		err  error
	}{
		{"text too long", func() *Envelope { e := sample(t, false); e.Text = strings.Repeat("a", MaxText+1); return e }(), ErrTooLong},
		{"empty text", func() *Envelope { e := sample(t, false); e.Text = ""; return e }(), ErrBadEnvelope},
		{"text not UTF-8", func() *Envelope { e := sample(t, false); e.Text = "\xff"; return e }(), ErrBadEnvelope},
		{"short cell key", func() *Envelope { e := sample(t, false); e.Cell = e.Cell[:31]; return e }(), ErrBadEnvelope},
		{"no recipient cell", func() *Envelope { e := sample(t, false); e.To = nil; return e }(), ErrBadEnvelope},
		{"no device", func() *Envelope { e := sample(t, false); e.Device = ""; return e }(), ErrBadEnvelope},
		{"negative time", func() *Envelope { e := sample(t, false); e.Sent = -1; return e }(), ErrBadEnvelope},
		{"list of another cell", otherCell, ErrBadEnvelope},
		{"list without the device", func() *Envelope { e := sample(t, false); e.Devices = signedList(t, 1, 3, 11); return e }(), ErrBadEnvelope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.e.Encode(); !errors.Is(err, tt.err) {
				t.Fatalf("Encode: %v, want %v", err, tt.err)
			}
		})
	}
	bad := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"other version", append([]byte{1}, good[1:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"too long", make([]byte, MaxEnvelope+1)},
		{"list flag 2", func() []byte {
			b, _ := sample(t, false).Encode()
			b[len(b)-1] = 2
			return b
		}()},
		{"list signature broken", func() []byte { b := bytes.Clone(good); b[len(b)-1] ^= 1; return b }()},
	}
	for _, tt := range bad {
		t.Run("decode "+tt.name, func(t *testing.T) {
			if _, err := DecodeEnvelope(tt.b); !errors.Is(err, ErrBadEnvelope) && !errors.Is(err, ErrTooLong) {
				t.Fatalf("DecodeEnvelope: %v, want ErrBadEnvelope", err)
			}
		})
	}
}

func TestOrderKeySorts(t *testing.T) {
	a, b := sample(t, false), sample(t, false)
	keys := []string{}
	for _, s := range []struct {
		sent int64
		seq  uint64
	}{{5, 1}, {5, 2}, {6, 0}, {1_000_000_000_000, 3}, {1_790_000_000_123, 4}} {
		a.Sent, a.Seq = s.sent, s.seq
		keys = append(keys, a.OrderKey())
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Fatalf("order key %q not before %q", keys[i-1], keys[i])
		}
	}
	b.Device = deviceID(t, 11)
	if a.OrderKey() == b.OrderKey() {
		t.Fatal("two devices' messages with one time and counter share an order key")
	}
}

func TestEntityIDs(t *testing.T) {
	e := sample(t, false)
	id := EntityOf(e.Cell, e.ID)
	if id != EntityOf(e.Cell, e.ID) {
		t.Fatal("entity ID not deterministic")
	}
	other := e.ID
	other[0] ^= 1
	if id == EntityOf(e.Cell, other) || id == EntityOf(cellKey(2).Public().(ed25519.PublicKey), e.ID) {
		t.Fatal("entity IDs of different messages collide")
	}
	if diff := cmp.Diff("0102030405060708090a0b0c0d0e0f10", e.ID.String()); diff != "" {
		t.Fatal(diff)
	}
	p, err := ParseID(e.ID.String())
	if err != nil || p != e.ID {
		t.Fatalf("ParseID: %v %v", p, err)
	}
	if _, err := ParseID("zz"); !errors.Is(err, ErrBadID) {
		t.Fatalf("ParseID(zz): %v", err)
	}
}

func TestEnvelopeCourier(t *testing.T) {
	e := sample(t, true)
	e.Author = deviceID(t, 11) // another device of the cell wrote it
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != EnvelopeVersionCourier {
		t.Fatalf("version %d, want %d", b[0], EnvelopeVersionCourier)
	}
	got, err := DecodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Author != e.Author || got.Device != e.Device {
		t.Fatalf("author %s device %s, want %s %s", got.Author, got.Device, e.Author, e.Device)
	}
	own := sample(t, false)
	own.Sent, own.Seq = e.Sent, e.Seq
	own.Device = e.Author
	if got.OrderKey() != own.OrderKey() {
		t.Fatalf("courier's order key %q, the author's own %q", got.OrderKey(), own.OrderKey())
	}
	// A device's own message is version 2 and decodes with itself as author.
	plain := sample(t, false)
	plain.Author = plain.Device
	pb, err := plain.Encode()
	if err != nil || pb[0] != EnvelopeVersion {
		t.Fatalf("own message: version %d, %v", pb[0], err)
	}
	if d, err := DecodeEnvelope(pb); err != nil || d.Author != plain.Device {
		t.Fatalf("version 2 decodes with author %q (%v), want the device", d.Author, err)
	}

	// Layout: version, id, cell, to, device (length, bytes), author
	// (length, bytes), then as version 2.
	at := 1 + IDSize + 2*ed25519.PublicKeySize + 1 + len(e.Device)
	bad := []struct {
		name string
		b    []byte
	}{
		{"author is the courier", func() []byte {
			c := bytes.Clone(b[:at+1])
			c = append(c, e.Device...)
			return append(c, b[at+1+len(e.Author):]...)
		}()},
		{"no author", func() []byte {
			c := append(bytes.Clone(b[:at]), 0)
			return append(c, b[at+1+len(e.Author):]...)
		}()},
		{"author not a peer ID", func() []byte { c := bytes.Clone(b); c[at+1] ^= 0xff; return c }()},
		{"author cut short", b[:at+3]},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeEnvelope(tt.b); !errors.Is(err, ErrBadEnvelope) {
				t.Fatalf("DecodeEnvelope: %v, want ErrBadEnvelope", err)
			}
		})
	}
	e.Author = "not a peer ID"
	if _, err := e.Encode(); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("Encode with a bad author: %v", err)
	}
}

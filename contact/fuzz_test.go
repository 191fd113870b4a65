package contact

import (
	"bytes"
	"testing"
)

// FuzzParseCard: any text is a card or a clear error, never a panic; a
// card that parses prints back to a text that parses to the same card.
func FuzzParseCard(f *testing.F) {
	c := &Card{Name: "Alice", Devices: signedList(f, 1, 2, 10, 11)}
	f.Add(c.Text())
	f.Add("exo-card:1:")
	f.Add("exo-card:2:aaaa")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCard(s)
		if err != nil {
			return
		}
		again, err := ParseCard(c.Text())
		if err != nil || !bytes.Equal(again.Encode(), c.Encode()) {
			t.Fatalf("card does not round-trip: %v", err)
		}
	})
}

// FuzzDecodeCard: any bytes are a card or an error; a card that decodes
// encodes to the same bytes (one encoding per card).
func FuzzDecodeCard(f *testing.F) {
	f.Add((&Card{Name: "Bob", Devices: signedList(f, 2, 5, 20)}).Encode())
	f.Add([]byte("EXC1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCard(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Encode(), b) {
			t.Fatal("a card decoded from bytes that are not its encoding")
		}
	})
}

// FuzzDecodeDeviceList: any bytes are a verified list or an error.
func FuzzDecodeDeviceList(f *testing.F) {
	f.Add(signedList(f, 1, 1, 10).Encode())
	f.Add(signedList(f, 1, 9, 10, 11, 12).Encode())
	f.Add(withMailbox(f, signedList(f, 1, 9, 10, 11), 1, 0x42).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeDeviceList(b)
		if err != nil {
			return
		}
		if err := l.Verify(); err != nil {
			t.Fatalf("decoded list does not verify: %v", err)
		}
		if !bytes.Equal(l.Encode(), b) {
			t.Fatal("a list decoded from bytes that are not its encoding")
		}
	})
}

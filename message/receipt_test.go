package message

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the known answers in testdata")

// sampleReceipt returns a receipt of the cell seeded by 2, from its
// device 20, reading the cell seeded by 1 up to its device 10's message.
func sampleReceipt(t testing.TB) *Receipt {
	t.Helper()
	return &Receipt{
		ID:     ID{0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		Cell:   cellKey(2).Public().(ed25519.PublicKey),
		To:     cellKey(1).Public().(ed25519.PublicKey),
		Device: deviceID(t, 20),
		Sent:   1_790_000_000_123,
		Author: deviceID(t, 10),
		Seq:    7,
	}
}

// TestReceiptKnownAnswer: the sample receipt encodes to the bytes in
// testdata/receipt.hex (the layout of doc.go, # Receipts), and they
// decode back to it.
func TestReceiptKnownAnswer(t *testing.T) {
	r := sampleReceipt(t)
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "receipt.hex")
	if *rewrite {
		if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n%x\nwant\n%x", b, want)
	}
	if b[0] != ReceiptVersion || len(b) != 1+16+32+32+1+len(r.Device)+8+1+len(r.Author)+8 {
		t.Fatalf("layout: version %d, %d bytes", b[0], len(b))
	}
	got, err := DecodeReceipt(want)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Fatalf("decoded (-want +got):\n%s", diff)
	}
	if got.UpTo() != sample(t, false).OrderKey() {
		t.Fatalf("UpTo %q, want the envelope's order key %q", got.UpTo(), sample(t, false).OrderKey())
	}
}

// TestReceiptRefused: a receipt that breaks a rule does not encode or
// decode, and an envelope decoder refuses a receipt (and a receipt
// decoder an envelope).
func TestReceiptRefused(t *testing.T) {
	good, err := sampleReceipt(t).Encode()
	if err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(r *Receipt){
		"short cell":      func(r *Receipt) { r.Cell = r.Cell[:31] },
		"short to":        func(r *Receipt) { r.To = nil },
		"negative time":   func(r *Receipt) { r.Sent = -1 },
		"no device":       func(r *Receipt) { r.Device = "" },
		"device not a ID": func(r *Receipt) { r.Device = "xyz" },
		"no author":       func(r *Receipt) { r.Author = "" },
	} {
		t.Run(name, func(t *testing.T) {
			r := sampleReceipt(t)
			mut(r)
			if _, err := r.Encode(); !errors.Is(err, ErrBadReceipt) {
				t.Fatalf("Encode: %v, want ErrBadReceipt", err)
			}
		})
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"version 2":    append([]byte{EnvelopeVersion}, good[1:]...),
		"cut short":    good[:len(good)-1],
		"trailing":     append(bytes.Clone(good), 0),
		"too long":     make([]byte, MaxReceipt+1),
		"device len 0": func() []byte { b := bytes.Clone(good); b[1+16+64] = 0; return b }(),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeReceipt(b); !errors.Is(err, ErrBadReceipt) {
				t.Fatalf("DecodeReceipt: %v, want ErrBadReceipt", err)
			}
		})
	}
	if _, err := DecodeEnvelope(good); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("DecodeEnvelope of a receipt: %v, want ErrBadEnvelope", err)
	}
	if !IsReceipt(good) {
		t.Fatal("IsReceipt of a receipt is false")
	}
	env, err := sample(t, false).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if IsReceipt(env) {
		t.Fatal("IsReceipt of an envelope is true")
	}
	if _, err := DecodeReceipt(env); !errors.Is(err, ErrBadReceipt) {
		t.Fatalf("DecodeReceipt of an envelope: %v, want ErrBadReceipt", err)
	}
}

// TestParseOrderKey: an order key parses into what made it, and only
// its one form parses.
func TestParseOrderKey(t *testing.T) {
	e := sample(t, false)
	sent, author, seq, err := ParseOrderKey(e.OrderKey())
	if err != nil || sent != e.Sent || author != e.Device || seq != e.Seq {
		t.Fatalf("ParseOrderKey: %d %s %d %v", sent, author, seq, err)
	}
	k := e.OrderKey()
	for _, bad := range []string{
		"", "x", strings.ToUpper(k[:16]) + k[16:], "8" + k[1:], k + ".0",
		k[:17] + "Qm" + k[19:], strings.Replace(k, ".", "..", 1),
	} {
		if _, _, _, err := ParseOrderKey(bad); !errors.Is(err, ErrBadOrderKey) {
			t.Errorf("ParseOrderKey(%q): %v, want ErrBadOrderKey", bad, err)
		}
	}
}

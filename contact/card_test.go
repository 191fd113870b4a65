package contact

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCardRoundTrip(t *testing.T) {
	c := &Card{Name: "Alice ☕", Devices: signedList(t, 1, 2, 10, 11)}
	text := c.Text()
	if !strings.HasPrefix(text, "exo-card:1:") {
		t.Fatalf("text %q: want the exo-card:1: prefix", text)
	}
	for name, in := range map[string]string{
		"as printed":         text,
		"upper case":         strings.ToUpper(text),
		"wrapped and padded": "  " + text[:40] + "\n" + text[40:90] + "\r\n\t" + text[90:] + "\n",
	} {
		got, err := ParseCard(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("%s: parsed card differs (-want +got):\n%s", name, diff)
		}
	}
	if !got(t, c).Cell().Equal(c.Devices.Cell) {
		t.Error("Cell is not the device list's key")
	}
}

func got(t *testing.T, c *Card) *Card {
	t.Helper()
	out, err := DecodeCard(c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCardRefused(t *testing.T) {
	good := (&Card{Name: "Bob", Devices: signedList(t, 2, 1, 20)}).Text()
	body := strings.TrimPrefix(good, "exo-card:1:")
	// change one character of the body to another base32 letter
	typo := []byte(body)
	i := len(typo) / 2
	if typo[i] == 'a' {
		typo[i] = 'b'
	} else {
		typo[i] = 'a'
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrCardText},
		{"no prefix", body, ErrCardText},
		{"no version", "exo-card:" + body, ErrCardText},
		{"future version", "exo-card:2:" + body, ErrCardVersion},
		{"one character mistyped", "exo-card:1:" + string(typo), ErrChecksum},
		{"cut short", good[:len(good)-3], ErrChecksum},
		{"not base32", good[:30] + "1" + good[31:], ErrCardText},
		{"only a checksum", "exo-card:1:aaaaaaa", ErrCardText},
		{"too long", "exo-card:1:" + strings.Repeat("a", MaxCardText), ErrCardText},
		{"bad name", (&Card{Name: " spaced", Devices: signedList(t, 2, 1, 20)}).Text(), ErrBadName},
		{"control character in the name", (&Card{Name: "a\x07b", Devices: signedList(t, 2, 1, 20)}).Text(), ErrBadName},
		{"empty name", (&Card{Name: "", Devices: signedList(t, 2, 1, 20)}).Text(), ErrBadName},
		{"bad signature", func() string {
			l := signedList(t, 2, 1, 20)
			l.Sig[0] ^= 1
			return (&Card{Name: "Bob", Devices: l}).Text()
		}(), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCard(tt.in)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDecodeCardRefused(t *testing.T) {
	good := (&Card{Name: "Bob", Devices: signedList(t, 2, 1, 20)}).Encode()
	for name, b := range map[string][]byte{
		"empty":      nil,
		"bad magic":  append([]byte("EXC9"), good[4:]...),
		"long name":  append(appendBytes([]byte(cardMagic), []byte(strings.Repeat("n", MaxNameLen+1))), good[8:]...),
		"over cap":   make([]byte, MaxCardLen+1),
		"trailing":   append(good, 1),
		"truncated":  good[:len(good)-2],
		"no devices": appendBytes([]byte(cardMagic), []byte("Bob")),
	} {
		if _, err := DecodeCard(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

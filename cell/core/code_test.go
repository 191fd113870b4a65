package core

import (
	"bytes"
	"crypto/rand"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCodeWordList(t *testing.T) {
	// CRC-32 of bip-0039/english.txt, as checked by go-bip39.
	if got := crc32.ChecksumIEEE([]byte(codeWordListText)); got != 0xc1dbd296 {
		t.Errorf("word list CRC-32 = %08x, want c1dbd296", got)
	}
	if len(codeWords) != codeWordListSize {
		t.Fatalf("word list has %d words", len(codeWords))
	}
	prefixes := make(map[string]string)
	for _, w := range codeWords {
		if len(w) < 3 || len(w) > 8 || strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") != "" {
			t.Errorf("odd word %q", w)
		}
		p := w[:min(len(w), codePrefixLen)]
		if other, dup := prefixes[p]; dup {
			t.Errorf("%q and %q share the prefix %q", other, w, p)
		}
		prefixes[p] = w
	}
}

// codeOf builds a Code from words, for tables.
func codeOf(t *testing.T, np uint16, words ...string) Code {
	t.Helper()
	c := Code{Nameplate: np}
	for i, w := range words {
		idx, ok := lookupCodeWord(w)
		if !ok || codeWords[idx] != w {
			t.Fatalf("no word %q", w)
		}
		c.Words[i] = idx
	}
	return c
}

func TestParseCodeAccepts(t *testing.T) {
	want := codeOf(t, 4721, "apple", "orbit", "tunnel")
	for _, tc := range []struct {
		name string
		in   string
		want Code
	}{
		{"canonical", "4721-apple-orbit-tunnel", want},
		{"upper case", "4721-APPLE-Orbit-tUNNEL", want},
		{"surrounding space", "  \t4721-apple-orbit-tunnel \n", want},
		{"spaces", "4721 apple orbit tunnel", want},
		{"many spaces and tabs", "4721   apple\t\torbit \t tunnel", want},
		{"mixed separators", "4721 - apple-orbit tunnel", want},
		{"doubled dashes", "4721--apple--orbit--tunnel", want},
		{"four-letter prefixes", "4721-appl-orbi-tunn", want},
		{"longer prefixes", "4721-apple-orbit-tunne", want},
		{"upper-case prefix", "4721 APPL ORBI TUNN", want},
		{"short nameplate", "42-apple-orbit-tunnel", codeOf(t, 42, "apple", "orbit", "tunnel")},
		{"one-digit nameplate", "7 apple orbit tunnel", codeOf(t, 7, "apple", "orbit", "tunnel")},
		{"zero nameplate", "0000-abandon-abandon-abandon", Code{}},
		{"last words", "9999-zoo-zone-zero", codeOf(t, 9999, "zoo", "zone", "zero")},
		{"three-letter words", "0001-act-add-age", codeOf(t, 1, "act", "add", "age")},
		{"four-letter word exact", "0001-able-able-able", codeOf(t, 1, "able", "able", "able")},
		{"prefix of a longer word", "0001-abou-abov-abse", codeOf(t, 1, "about", "above", "absent")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCode(tc.in)
			if err != nil {
				t.Fatalf("ParseCode(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseCode(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestParseCodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name, in, errHas string
	}{
		{"empty", "", "0 parts"},
		{"blank", "  - - ", "0 parts"},
		{"nameplate only", "4721", "1 parts"},
		{"two words", "4721-apple-orbit", "3 parts"},
		{"four words", "4721-apple-orbit-tunnel-zoo", "5 parts"},
		{"no nameplate", "apple-orbit-tunnel-zoo", `nameplate "apple"`},
		{"five digits", "47210-apple-orbit-tunnel", `nameplate "47210"`},
		{"signed nameplate", "+472-apple-orbit-tunnel", `nameplate "+472"`},
		{"hex nameplate", "0x1f-apple-orbit-tunnel", `nameplate "0x1f"`},
		{"non-ASCII digit", "４７２１-apple-orbit-tunnel", "nameplate"},
		{"unknown word", "4721-apple-orbit-tunnex", `unknown word "tunnex" (word 3 of 3)`},
		{"three-letter prefix", "4721-app-orbit-tunnel", `unknown word "app" (word 1 of 3)`},
		{"word too long", "4721-applex-orbit-tunnel", `unknown word "applex"`},
		{"digits in word", "4721-apple-0rbit-tunnel", `unknown word "0rbit"`},
		{"non-ASCII letter", "4721-äpple-orbit-tunnel", `unknown word`},
		{"Kelvin sign", "4721-apple-orbit-\u212aey", `unknown word`},
		{"word first", "apple-4721-orbit-tunnel", "nameplate"},
		{"underscore separators", "4721_apple_orbit_tunnel", "1 parts"},
		{"too long", "4721-apple-orbit-tunnel" + strings.Repeat(" ", 200), "longer than 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseCode(tc.in)
			if !errors.Is(err, ErrBadCode) {
				t.Fatalf("ParseCode(%q) = %v, %v; want ErrBadCode", tc.in, c, err)
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q does not say %q", err, tc.errHas)
			}
		})
	}
}

func TestCodeStringPassword(t *testing.T) {
	c := codeOf(t, 42, "apple", "orbit", "tunnel")
	if got := c.String(); got != "0042-apple-orbit-tunnel" {
		t.Errorf("String = %q", got)
	}
	if got := string(c.Password()); got != "apple orbit tunnel" {
		t.Errorf("Password = %q", got)
	}
	typed, err := ParseCode("  42  APPL orbi-TUNNEL")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(typed.Password(), c.Password()) {
		t.Errorf("Password depends on typing: %q", typed.Password())
	}
	other := c
	other.Nameplate = 43
	if !bytes.Equal(other.Password(), c.Password()) {
		t.Error("Password depends on the nameplate")
	}
}

func TestCodeValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Code
		want bool
	}{
		{"zero", Code{}, true},
		{"max", Code{Nameplate: 9999, Words: [3]uint16{2047, 2047, 2047}}, true},
		{"nameplate 10000", Code{Nameplate: 10000}, false},
		{"word 2048", Code{Words: [3]uint16{0, 2048, 0}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.Valid(); got != tc.want {
				t.Errorf("Valid = %v, want %v", got, tc.want)
			}
			if !tc.want {
				if _, err := ParseCode(tc.c.String()); err == nil {
					t.Errorf("String of an invalid code parses: %q", tc.c.String())
				}
				defer func() {
					if recover() == nil {
						t.Error("Password of an invalid code did not panic")
					}
				}()
				tc.c.Password()
			}
		})
	}
}

func TestNewCodeRoundTrip(t *testing.T) {
	for range 1000 {
		c, err := NewCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Valid() {
			t.Fatalf("NewCode returned invalid %+v", c)
		}
		got, err := ParseCode(c.String())
		if err != nil || got != c {
			t.Fatalf("ParseCode(%q) = %+v, %v; want %+v", c.String(), got, err, c)
		}
		upper, err := ParseCode(strings.ToUpper(strings.ReplaceAll(c.String(), "-", "  ")))
		if err != nil || upper != c {
			t.Fatalf("ParseCode(upper %q) = %+v, %v", c.String(), upper, err)
		}
	}
}

func TestNewCodeSampling(t *testing.T) {
	// 0xffff masks to 16383 >= 10000 and is rejected; 0x270f masks to 9999.
	src := []byte{0xff, 0xff, 0x27, 0x0f, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01}
	c, err := NewCode(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	want := Code{Nameplate: 9999, Words: [3]uint16{2047, 0, 1}}
	if c != want {
		t.Errorf("NewCode = %+v, want %+v", c, want)
	}

	if _, err := NewCode(bytes.NewReader(src[:5])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("NewCode on a short source: %v, want ErrUnexpectedEOF", err)
	}
	if _, err := NewCode(bytes.NewReader(bytes.Repeat([]byte{0xff}, 2*codeRandomTries))); err == nil {
		t.Error("NewCode accepted a source that only yields out-of-range nameplates")
	}
}

func TestNewCodeUniform(t *testing.T) {
	// Each nameplate digit position and each word's low bit should be
	// roughly balanced; a gross bias (e.g. modulo) would show.
	const n = 20000
	var lowNP, lowWord int
	for range n {
		c, err := NewCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if c.Nameplate < 5000 {
			lowNP++
		}
		if c.Words[0] < 1024 {
			lowWord++
		}
	}
	for name, k := range map[string]int{"nameplate < 5000": lowNP, "word < 1024": lowWord} {
		if k < n/2-600 || k > n/2+600 { // ~8.5 standard deviations
			t.Errorf("%s in %d of %d codes", name, k, n)
		}
	}
}

// FuzzParseCode checks that ParseCode never panics, that every failure wraps
// ErrBadCode, and that anything accepted re-encodes to a canonical form that
// parses to the same Code.
func FuzzParseCode(f *testing.F) {
	for _, s := range []string{
		"4721-apple-orbit-tunnel",
		"0042-abandon-ability-able",
		" 7  APPL\torbi-TUNNE ",
		"9999-zoo-zone-zero",
		"4721-app-orbit-tunnel",
		"12345-apple-orbit-tunnel",
		"",
		"----",
		"4721-äpple-orbit-tunnel",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			if !errors.Is(err, ErrBadCode) {
				t.Fatalf("ParseCode(%q) error %v does not wrap ErrBadCode", s, err)
			}
			return
		}
		if !c.Valid() {
			t.Fatalf("ParseCode(%q) = invalid %+v", s, c)
		}
		canon := c.String()
		c2, err := ParseCode(canon)
		if err != nil || c2 != c {
			t.Fatalf("ParseCode(%q) = %+v; its String %q parses to %+v, %v", s, c, canon, c2, err)
		}
		if c2.String() != canon {
			t.Fatalf("String not stable: %q then %q", canon, c2.String())
		}
		if !bytes.Equal(c2.Password(), c.Password()) {
			t.Fatal("Password not stable")
		}
	})
}

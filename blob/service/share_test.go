package service

import (
	"strconv"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/store"
)

// TestChooseOffered: a file a contact offered over the budget is kept
// by no policy, only when pinned by hand.
func TestChooseOffered(t *testing.T) {
	a, off := file(1, "a", 10, 1), file(2, "b", 10, 2)
	off.Offered = true
	for _, pol := range []string{PolicyAll, PolicyBudget} {
		if keep := Choose([]File{a, off}, pol, 1000, nil); !keep[a.ID] || keep[off.ID] {
			t.Errorf("%s keeps %v, want the cell's file and not the offered one", pol, keep)
		}
	}
	if keep := Choose([]File{a, off}, PolicyNone, 0, map[store.EntityID]Override{off.ID: Pinned}); !keep[off.ID] {
		t.Errorf("the offered file pinned by hand is not kept: %v", keep)
	}
}

// TestFreeName: a shared file's name, or the first "base (n).ext" the
// cell's files do not have; past maxNameTries, an error.
func TestFreeName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		taken []string
		want  string
	}{
		{"a.txt", nil, "a.txt"},
		{"a.txt", []string{"a.txt"}, "a (2).txt"},
		{"a.txt", []string{"a.txt", "a (2).txt"}, "a (3).txt"},
		{"notes", []string{"notes"}, "notes (2)"},
		{".profile", []string{".profile"}, ".profile (2)"},
		{"a.tar.gz", []string{"a.tar.gz"}, "a.tar (2).gz"},
	} {
		taken := map[string]bool{}
		for _, n := range tc.taken {
			taken[n] = true
		}
		if got := freeName(tc.name, store.EntityID{}, taken); got != tc.want {
			t.Errorf("freeName(%q, %v) = %q, want %q", tc.name, tc.taken, got, tc.want)
		}
	}
	taken := map[string]bool{"x": true}
	for n := 2; n <= maxNameTries; n++ {
		taken["x ("+strconv.Itoa(n)+")"] = true
	}
	// Past maxNameTries, the entity's tag: never a failure (a receipt
	// that failed would be sent again forever).
	id := store.EntityID{0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xfe}
	if got := freeName("x", id, taken); got != "x (abcdef01)" {
		t.Errorf("freeName with x to x (%d) taken = %q, want %q", maxNameTries, got, "x (abcdef01)")
	}
	taken["x (abcdef01)"] = true
	if got := freeName("x", id, taken); got != "x (abcdef0123456789)" {
		t.Errorf("freeName with the 8-digit tag taken = %q, want the 16-digit one", got)
	}
}

// FuzzDecodeShare: any exo.share document is a share or nothing, never
// a panic; one that decodes names a blob CID and a 32-byte cell key.
func FuzzDecodeShare(f *testing.F) {
	f.Add([]byte(`{"contact":"` + strings.Repeat("ab", 32) + `","root":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","added":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"contact":"ab","root":"x"}`))
	f.Add([]byte(`{"contact":"abcd","root":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"contact":"` + strings.Repeat("ab", 32) + `","root":"QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		root, contact, ok := decodeShare(store.Entity{Traits: []store.Trait{{Type: ShareType, Doc: doc}}})
		if !ok {
			return
		}
		if len(contact) != 64 || !root.Defined() {
			t.Fatalf("decoded %s, %q", root, contact)
		}
	})
}

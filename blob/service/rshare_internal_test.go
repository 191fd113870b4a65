package service

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/store"
)

// TestFreeNameLength: the name made unique for a contact's file whose
// name the cell has is still a file name (at most blob.MaxNameLen bytes
// of UTF-8), however long the name the contact sent (up to
// message.MaxFileName, 255 bytes).
func TestFreeNameLength(t *testing.T) {
	for _, name := range []string{strings.Repeat("a", 255), strings.Repeat("é", 127) + ".", strings.Repeat("b", 250) + ".txt"} {
		got := freeName(name, store.EntityID{1}, map[string]bool{name: true})
		if len(got) > blob.MaxNameLen || !utf8.ValidString(got) || got == name {
			t.Errorf("freeName of a %d-byte name taken = %d bytes %q, want a new name of at most %d bytes of UTF-8", len(name), len(got), got, blob.MaxNameLen)
		}
	}
}

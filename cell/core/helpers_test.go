package core

import (
	"crypto/rand"
	"testing"
)

// testBoxKey returns a fresh box key.
func testBoxKey(t testing.TB) BoxKey {
	t.Helper()
	k, err := NewBoxKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

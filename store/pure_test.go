package store

import (
	"slices"
	"testing"

	"github.com/exopeer/exopeer/internal/purity"
)

// The package is a pure core (doc.go): no I/O, no clock, no goroutines, no
// logging, in its own source and in what it imports (package purity says
// exactly what that means). It decodes JSON documents, so this test binary
// adds encoding/json (data in, data out: no I/O, no clock) to the standard
// packages purity allows; the next step may move that line into purity.
func TestPure(t *testing.T) {
	purity.Allowed = append(slices.Clone(purity.Allowed), "encoding/json")
	purity.Check(t, 4)
}

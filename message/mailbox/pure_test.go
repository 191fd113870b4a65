package mailbox

import (
	"testing"

	"github.com/exopeer/exopeer/internal/purity"
)

// The package is a pure core (doc.go): no I/O, no clock, no goroutines,
// no logging, in its own source and in what it imports (package purity
// says exactly what that means).
func TestPure(t *testing.T) { purity.Check(t, 3) }

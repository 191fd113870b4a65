package core

import (
	"testing"

	"github.com/exopeer/exopeer/internal/purity"
)

// The package is the cell's pure core (doc.go), transitively: package
// purity checks it.
func TestPure(t *testing.T) { purity.Check(t, 8) }

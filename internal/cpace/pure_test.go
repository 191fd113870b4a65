package cpace

import (
	"testing"

	"github.com/exopeer/exopeer/internal/purity"
)

// The package is pure (see its doc), transitively: package purity checks it.
func TestPure(t *testing.T) { purity.Check(t, 1) }

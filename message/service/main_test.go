package service

import (
	"testing"

	"github.com/exopeer/exopeer/internal/leaktest"
)

// TestMain fails the binary if a goroutine outlives the tests: a write
// in a goroutine of its own (goDo), a delivery or a stream Close did not
// wait for.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

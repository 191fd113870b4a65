package server_test

import (
	"testing"

	"github.com/exopeer/exopeer/internal/leaktest"
)

// TestMain fails the run if a goroutine outlives the tests: the server,
// its follow streams and the nodes under it stop everything they started.
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

package service_test

import (
	"testing"

	"github.com/exopeer/exopeer/internal/leaktest"
)

// TestMain fails the binary if a goroutine outlives the tests: the
// follower, relays of remote watches and the index must all stop.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

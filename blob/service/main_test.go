package service_test

import (
	"testing"

	"github.com/exopeer/exopeer/internal/leaktest"
)

// TestMain fails the binary if a goroutine outlives the tests: the
// follower, the background fetches and their sessions must all stop.
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

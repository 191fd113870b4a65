package blobdisk_test

import (
	"testing"

	"github.com/exopeer/exopeer/internal/leaktest"
)

// TestMain fails the run if a goroutine outlives the tests: the syncer
// and the scrub must stop with Close (and with a crash).
func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

package blob

import (
	"testing"

	"github.com/exopeer/exopeer/internal/leaktest"
)

// TestMain fails the run if any goroutine outlives the tests (a Reader's
// prefetcher, an import's pipeline).
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

package prekey

import (
	"testing"

	"github.com/exopeer/exopeer/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

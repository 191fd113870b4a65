package client

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
)

// ones is an endless stream of one byte.
type ones byte

func (o ones) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(o)
	}
	return len(p), nil
}

// TestReadFollowCapsALine: a server on the api address that sends a line
// with no end (a hostile process that took the port, or a broken one)
// gets an error once the line is over maxAnswer bytes, not the client's
// memory. Lines up to the cap are entries.
func TestReadFollowCapsALine(t *testing.T) {
	good := `{"cid":"b","text":"` + strings.Repeat("a", maxAnswer-40) + `"}` + "\n"
	body := io.MultiReader(strings.NewReader(good+good+`{"text":"`), io.LimitReader(ones('a'), maxAnswer+1<<20))
	var entries int
	var last error
	readFollow(context.Background(), body, func(_ api.ChainEntry, err error) bool {
		if err != nil {
			last = err
			return false
		}
		entries++
		return true
	})
	if entries != 2 || last == nil || !strings.Contains(last.Error(), "line over") {
		t.Errorf("%d entries, then %v; want 2, then a line over the cap", entries, last)
	}
}

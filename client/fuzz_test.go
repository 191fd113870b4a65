package client

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
)

// FuzzReadFollow feeds any bytes to the reader of a follow stream: it
// yields entries, then exactly one error, last, and never panics.
func FuzzReadFollow(f *testing.F) {
	for _, s := range []string{
		"{\"cid\":\"b\",\"pos\":\"1.b\",\"seq\":1,\"parents\":[],\"text\":\"hi\"}\n",
		"{\"cid\":\"b\",\"data\":\"/wD+\"}\n{\"error\":{\"type\":\"urn:exopeer:problem:unavailable\",\"status\":503,\"detail\":\"the control API is stopping\"}}\n",
		"{\"error\":\"\"}\n{\"seq\":2}",
		"{\"seq\": -1}\n",
		"{\"text\": 5}\n",
		"not json",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var errs int
		readFollow(context.Background(), bytes.NewReader(body), func(_ api.ChainEntry, err error) bool {
			if errs > 0 {
				t.Fatal("yielded after an error")
			}
			if err != nil {
				errs++
				if err.Error() == "" {
					t.Fatal("an error with no message")
				}
			}
			return true
		})
		if errs != 1 {
			t.Fatalf("%d errors yielded, want 1 (the end of the stream)", errs)
		}
	})
}

// FuzzProblem feeds any body to the decoder of an error answer: it keeps
// the answer's status, says something, and never panics.
func FuzzProblem(f *testing.F) {
	for _, s := range []string{
		`{"type":"urn:exopeer:problem:not-in-cell","title":"node in no cell","status":409,"detail":"chain: this node is in no cell"}`,
		`{"type":"urn:exopeer:problem:bad-cursor","status":200}`,
		`{"error":"old form"}`,
		`{"type": 5}`,
		`<html>bad gateway</html>`,
		``,
	} {
		f.Add(409, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		p := problem(status, body)
		if p.Status != status || p.Error() == "" {
			t.Fatalf("problem(%d, %q) = %+v, %q", status, body, p, p.Error())
		}
		if p.Detail != "" && !strings.HasPrefix(p.Error(), "node says: ") {
			t.Fatalf("Error() = %q", p.Error())
		}
		if k := p.Unwrap(); k != nil && !errors.Is(p, k) {
			t.Fatalf("%v is not its own kind %v", p, k)
		}
	})
}

// FuzzReadWatch feeds any bytes to the reader of a watch stream: it
// yields lines with a page or changes, then exactly one error, last, and
// never panics.
func FuzzReadWatch(f *testing.F) {
	for _, s := range []string{
		"{\"page\":{\"hits\":[{\"entity\":{\"id\":\"00112233445566778899aabbccddeeff\",\"traits\":[]}}],\"next\":\"c\"}}\n",
		"{\"changes\":[{\"kind\":\"added\",\"hit\":{\"entity\":{\"id\":\"a\",\"traits\":[{\"type\":\"exo.note\",\"id\":\"exo.note\",\"doc\":{\"body\":\"x\"}}]}}}]}\n{\"error\":{\"type\":\"urn:exopeer:problem:unavailable\",\"status\":503,\"detail\":\"the control API is stopping\"}}\n",
		"{\"page\":{\"hits\":[]}}\n{}\n",
		"{\"changes\":[]}\n",
		"{\"page\":null,\"error\":\"\"}\n",
		"{\"page\":{\"hits\":5}}\n",
		"not json",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var errs int
		readWatch(context.Background(), bytes.NewReader(body), func(l api.StoreWatchLine, err error) bool {
			if errs > 0 {
				t.Fatal("yielded after an error")
			}
			if err != nil {
				errs++
				if err.Error() == "" {
					t.Fatal("an error with no message")
				}
				return true
			}
			if l.Page == nil && len(l.Changes) == 0 || l.Error != nil {
				t.Fatalf("yielded an empty or error line %+v", l)
			}
			return true
		})
		if errs != 1 {
			t.Fatalf("%d errors yielded, want 1 (the end of the stream)", errs)
		}
	})
}

package server

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/exopeer/exopeer/chain"
)

// FuzzAppendRequest feeds any bytes to the decoder of an append's body:
// it answers payloads within the bounds, or a 400 or 413 problem with a
// title and a detail, and never panics.
func FuzzAppendRequest(f *testing.F) {
	for _, s := range []string{
		`{"text": "hello"}`,
		`{"data": "/wD+"}`,
		`{"entries": [{"text": "a"}, {"data": ""}]}`,
		`{"entries": []}`,
		`{"text": "a", "data": "YQ=="}`,
		`{"text": "a", "entries": [{"text": "b"}]}`,
		`{"txt": "x"}`,
		`{}`,
		`{"data": "not base64"}`,
		`[1, 2]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		payloads, many, p := appendRequest(http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), chainBodyMax))
		if p != nil {
			if (p.status != http.StatusBadRequest && p.status != http.StatusRequestEntityTooLarge) ||
				titles[p.typ] == "" || p.detail == "" || payloads != nil {
				t.Fatalf("problem %+v with %d payloads", p, len(payloads))
			}
			return
		}
		if len(payloads) < 1 || len(payloads) > chainAppendMax || (!many && len(payloads) != 1) {
			t.Fatalf("%d payloads (many %v)", len(payloads), many)
		}
		for i, b := range payloads {
			if b == nil || len(b) > chain.MaxPayload {
				t.Fatalf("payload %d: %d bytes (nil %v)", i, len(b), b == nil)
			}
		}
	})
}

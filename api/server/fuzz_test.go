package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/store"
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

// FuzzPutRequest feeds any bytes to the decoder of a put's body: it
// answers an entity and 1 to store.MaxOps traits, each with a type and a
// JSON document within store.MaxDoc, or a 400 or 413 problem with a
// title and a detail, and never panics.
func FuzzPutRequest(f *testing.F) {
	for _, s := range []string{
		`{"traits": [{"type": "exo.note", "doc": {"body": "hello"}}]}`,
		`{"entity": "00112233445566778899aabbccddeeff", "traits": [{"type": "exo.note", "id": "n", "doc": {"body": "x", "tags": ["a"]}}]}`,
		`{"entity": "nope", "traits": [{"type": "t", "doc": 1}]}`,
		`{"traits": [{"type": "t", "doc": null}, {"type": "u", "id": "u", "doc": [1, 2]}]}`,
		`{"traits": [{"type": "t"}]}`,
		`{"traits": [{"doc": {}}]}`,
		`{"traits": []}`,
		`{"traits": [{"type": "t", "doc": {}, "x": 1}]}`,
		`{}`,
		`[1, 2]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, traits, p := putRequest(http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), storeBodyMax))
		if p != nil {
			if (p.status != http.StatusBadRequest && p.status != http.StatusRequestEntityTooLarge) ||
				titles[p.typ] == "" || p.detail == "" || traits != nil || !e.IsZero() {
				t.Fatalf("problem %+v with %d traits, entity %s", p, len(traits), e)
			}
			return
		}
		if len(traits) < 1 || len(traits) > store.MaxOps {
			t.Fatalf("%d traits", len(traits))
		}
		for i, tr := range traits {
			if tr.Type == "" || tr.Doc == nil || len(tr.Doc) > store.MaxDoc || !json.Valid(tr.Doc) {
				t.Fatalf("trait %d: %+v", i, tr)
			}
		}
	})
}

// FuzzQueryRequest feeds any bytes to the decoder of a query's body (a
// query or a watch): it answers a store.Query within the conditions' cap,
// or a 400 or 413 problem with a title and a detail, and never panics.
func FuzzQueryRequest(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"type": "exo.note", "match": "groceries", "where": [{"field": "tags", "op": "=", "value": "home"}], "order": "modified", "asc": true, "limit": 10}`,
		`{"refersTo": "00112233445566778899aabbccddeeff", "traits": []}`,
		`{"refersTo": "xyz"}`,
		`{"after": "cursor", "desc": true, "traits": ["exo.note"]}`,
		`{"where": [{"field": "n", "op": "~", "value": "1"}]}`,
		`{"limit": -1}`,
		`{"limit": 1e99}`,
		`{"typ": "x"}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		q, p := queryRequest(http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), maxRequestBody))
		if p != nil {
			if (p.status != http.StatusBadRequest && p.status != http.StatusRequestEntityTooLarge) ||
				titles[p.typ] == "" || p.detail == "" {
				t.Fatalf("problem %+v", p)
			}
			return
		}
		if len(q.Where) > store.MaxPredicates {
			t.Fatalf("query %+v", q)
		}
	})
}

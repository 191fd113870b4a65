// Package api is the control API of an exopeer node, as one OpenAPI 3
// document (openapi.yaml, embedded: Spec) and what is generated from it:
// the types of every request and answer, the problem types of the errors,
// and the interface a server implements (ServerInterface, routed by
// HandlerWithOptions on a net/http ServeMux). The server is package
// api/server; the Go client is package client.
//
// A route is added in openapi.yaml, then `go generate ./api/... ./client/...`
// makes its types, its method on ServerInterface and its client method;
// the server implements the method. This package imports no libp2p, so
// that any program can use it.
//
// The JSON forms are the node's since its first release: times are RFC
// 3339, durations are seconds (Duration), bytes are base64, a CID in the
// chain's status is an IPLD link ({"/": "bafy..."}).
package api

import (
	_ "embed"
	"fmt"
	"time"
)

//go:generate go tool oapi-codegen -config oapi-codegen.yaml openapi.yaml

//go:embed openapi.yaml
var spec []byte

// Spec returns the OpenAPI document of the control API, as YAML. The
// caller may not modify it.
func Spec() []byte { return spec }

// Duration marshals as seconds in JSON and prints like time.Duration.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, "%.3f", time.Duration(d).Seconds()), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s float64
	if _, err := fmt.Sscanf(string(b), "%g", &s); err != nil {
		return fmt.Errorf("api: duration %q: %w", b, err)
	}
	*d = Duration(s * float64(time.Second))
	return nil
}

func (d Duration) String() string { return time.Duration(d).Round(time.Second).String() }

// String returns the CID.
func (l Link) String() string { return l.CID }

// Payload returns the entry's payload, whichever way it was sent.
func (e ChainEntry) Payload() []byte {
	if e.Text != nil {
		return []byte(*e.Text)
	}
	return e.Data
}

// ChainText returns the payload of a text entry.
func ChainText(s string) ChainPayload { return ChainPayload{Text: &s} }

// ChainData returns the payload of a binary entry.
func ChainData(b []byte) ChainPayload {
	if b == nil {
		b = []byte{}
	}
	return ChainPayload{Data: b}
}

// Entry returns the entry of a follow line; it is empty when the line
// says why the stream ends (Error).
func (l ChainFollowLine) Entry() ChainEntry {
	return ChainEntry{CID: l.CID, Pos: l.Pos, Index: l.Index, Author: l.Author, Seq: l.Seq,
		Clock: l.Clock, Epoch: l.Epoch, Parents: l.Parents, Text: l.Text, Data: l.Data}
}

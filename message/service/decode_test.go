package service

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/exopeer/exopeer/store"
)

// TestDecodeReceivedIsCreated: a message in shows as Received its
// trait's Created (the store's earliest of the cell's records of it),
// not the last record's document; a message out, or a trait with no
// Created, shows the document's.
func TestDecodeReceivedIsCreated(t *testing.T) {
	first := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	later := first.Add(5 * time.Minute)
	for _, c := range []struct {
		dir     string
		created time.Time
		want    *time.Time
	}{
		{In, first, &first},
		{In, time.Time{}, &later},
		{Out, first, nil},
	} {
		m := Message{ID: "m", Direction: c.dir, State: Delivered}
		if c.dir == In {
			m.Received = &later
		}
		doc, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := decode(store.Entity{Traits: []store.Trait{{Type: Type, ID: Type, Doc: doc, Created: c.created, Modified: later}}})
		if !ok {
			t.Fatalf("%s: does not decode", c.dir)
		}
		switch {
		case c.want == nil && got.Received != nil, c.want != nil && (got.Received == nil || !got.Received.Equal(*c.want)):
			t.Errorf("%s, created %v: Received %v, want %v", c.dir, c.created, got.Received, c.want)
		}
	}
}

package service

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/exopeer/exopeer/message"
)

// TestRecordInKeepsCreated: a message received again, while the store's
// read fails (a device with no index of its own reads a store device's
// over the network), keeps the time it was first recorded (its trait's
// Created). recordIn took a failed read for an absent message and wrote
// the trait with Created now, which the store takes as given: the
// message's first recording time was lost.
func TestRecordInKeepsCreated(t *testing.T) {
	devs := newDevices(t, "alice", "bob")
	alice, bob := devs[0], devs[1]
	ctx := t.Context()
	env := &message.Envelope{Cell: alice.cell.Public().(ed25519.PublicKey), To: bob.cell.Public().(ed25519.PublicKey), Device: alice.h.ID(), Sent: 1, Seq: 1, Text: "hi"}
	env.ID[0] = 1
	m := newMessage(env, env.Cell, In, Delivered)
	first := time.UnixMilli(1_790_000_000_000).UTC()
	if err := bob.svc.recordIn(ctx, m, first); err != nil {
		t.Fatal(err)
	}
	bob.store.mu.Lock()
	bob.store.failGet = errors.New("fake store: the store device is not reachable")
	bob.store.mu.Unlock()
	if err := bob.svc.recordIn(ctx, m, first.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	bob.store.mu.Lock()
	defer bob.store.mu.Unlock()
	for _, tr := range bob.store.ents[m.Entity].Traits {
		if tr.Type == Type && !tr.Created.Equal(first) {
			t.Fatalf("the message's Created is %v after it came again, want %v (first recorded)", tr.Created, first)
		}
	}
}

package service

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestSlots: at most MaxDeliveriesPerDevice deliveries to one device at
// once, the next waits for a release (or its ctx), and another device's
// are counted apart.
func TestSlots(t *testing.T) { bubble(t, testSlots) }

func testSlots(t *testing.T) {
	c := newSessionCache()
	a := c.acquire(peer.ID("device a"))
	defer c.release(a)
	b := c.acquire(peer.ID("device b"))
	defer c.release(b)
	var rels []func()
	for range MaxDeliveriesPerDevice {
		rel, err := a.deliverySlot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		rels = append(rels, rel)
	}
	if rel, err := b.deliverySlot(t.Context()); err != nil {
		t.Fatalf("another device's slot: %v", err)
	} else {
		rel()
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := a.deliverySlot(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("slot %d of a device with its ctx canceled: %v, want context.Canceled", MaxDeliveriesPerDevice+1, err)
	}
	got := make(chan func())
	go func() {
		rel, err := a.deliverySlot(t.Context())
		if err != nil {
			t.Error(err)
		}
		got <- rel
	}()
	synctest.Wait() // the goroutine is blocked, or has its slot
	select {
	case <-got:
		t.Fatalf("slot %d taken with %d held", MaxDeliveriesPerDevice+1, MaxDeliveriesPerDevice)
	default:
	}
	rels[0]()
	rels = append(rels[1:], <-got)
	for _, rel := range rels {
		rel()
	}
}

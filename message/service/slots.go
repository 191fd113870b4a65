package service

import (
	"context"

	"github.com/exopeer/exopeer/message"
)

// MaxDeliveriesPerDevice bounds the deliveries under way at once to one
// remote device: MaxStreamsPerDevice streams of Protocol, each with at
// most message.Window frames in flight. A delivery takes a slot of the
// device's cache entry before its ratchet step and holds it until its
// answer, so that at most this many frames sealed for a device are
// unanswered at once: the receiver, which may open them in any order,
// skips at most this many message keys for them (ratchet.MaxSkip =
// 1000). The others wait for a slot, or their ctx.
const MaxDeliveriesPerDevice = MaxStreamsPerDevice * message.Window

// deliverySlot waits for one of e's MaxDeliveriesPerDevice delivery
// slots, or for ctx: it returns the release, or ctx's error. The caller
// holds e (sessionCache.acquire) until it releases the slot.
func (e *peerEntry) deliverySlot(ctx context.Context) (release func(), err error) {
	select {
	case e.out <- struct{}{}:
		return func() { <-e.out }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

package service

import "context"

// MaxDeliveriesPerDevice bounds the deliveries under way at once to one
// remote device, each a stream of Protocol. A node accepts 16 inbound
// streams of one protocol from one peer by default
// (datadir.ResourceConfig.ProtocolPeerStreams) and resets the others: a
// sender with more messages at once than that saw deliveries fail with a
// reset, and its messages stay sent, not delivered. The others wait for a
// slot of the device's cache entry, or their ctx.
const MaxDeliveriesPerDevice = 12

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

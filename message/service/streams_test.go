package service

import (
	"bufio"
	"testing"

	"github.com/exopeer/exopeer/message"
)

// TestUnlistedPeerHoldsNoStream: a peer on no contact's current device
// list (a stranger, or a device its cell removed) that opens a delivery
// stream and sends nothing is refused at once, before anything is read,
// so it holds no stream open for the read timeout (Config.Timeout). A
// listed device's streams are bounded by the resource manager (peer
// package, TestResourceLimitsPerProtocol: Protocol is among
// ExopeerProtocols, 16 inbound streams per peer by default).
func TestUnlistedPeerHoldsNoStream(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "mallory")
	alice, bob, mallory := devs[0], devs[1], devs[2]
	alice.befriend("Bob", bob)
	ctx := t.Context()
	for _, d := range []*device{mallory} {
		st, err := d.h.NewStream(ctx, alice.h.ID(), Protocol)
		if err != nil {
			t.Fatal(err)
		}
		f, err := readFrame(bufio.NewReader(st))
		_ = st.Reset()
		if err != nil || f.Kind != message.KindRefusal {
			t.Fatalf("%s's silent stream: %+v, %v; want a refusal before anything is sent", d.name, f, err)
		}
	}
}

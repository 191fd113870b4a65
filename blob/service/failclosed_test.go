package service_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// A device that cannot read the contact shares (here its contacts part
// is closed, so the contacts' device lists cannot be read) must not go
// on serving what it served: the share may have been revoked, or the
// device removed, since. It serves no contact share until a read
// succeeds.
func TestContactSharesFailClosed(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 101)
	b := nodetest.CellNode(t, 102)
	var text string
	nodetest.Eventually(t, 30*time.Second, "b's card", func() bool {
		c, err := b.Contacts().Card(ctx, "")
		if err == nil && c.Devices.Version >= 1 {
			text = c.Text()
		}
		return text != ""
	})
	added, err := a.Contacts().Add(ctx, text, "B")
	if err != nil {
		t.Fatal(err)
	}
	f, err := a.Blobs().AddFileReader(ctx, "shared.bin", bytes.NewReader(content(19, 300_000)), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Blobs().ShareWith(ctx, added.Contact.Cell(), f.Cap); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 30*time.Second, "the shared root served to the contact's device", func() bool {
		return a.Blobs().MayRead(b.ID(), f.Cap.Root)
	})
	if err := a.Contacts().Close(); err != nil {
		t.Fatal(err)
	}
	// Any rebuild of the sets (here a share with a peer) reads the
	// contact shares again, and fails.
	if err := a.Blobs().Share(ctx, f.Cap.Root, []peer.ID{strangerID(t)}); err != nil {
		t.Fatal(err)
	}
	if a.Blobs().MayRead(b.ID(), f.Cap.Root) {
		t.Fatal("the contact shares could not be read, and the contact's device is still served")
	}
}

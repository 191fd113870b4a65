package simnet

import (
	"context"
	"testing"
	"time"

	"github.com/exopeer/exopeer/cell"
)

// Helpers that set people up for the message, share and contact tests:
// cells of one or more devices that are contacts of each other. They
// run inside a synctest bubble and fail the test, with the seed, on any
// error.

// newPerson starts a node as cfg and makes it the admin of a new cell
// named name, the device named dev.
func newPerson(t *testing.T, ctx context.Context, n *Net, name, dev string, cfg NodeConfig) *person {
	t.Helper()
	nd := addNode(t, ctx, n, cfg)
	if _, err := nd.Peer().Cell().Create(ctx, name, dev); err != nil {
		t.Fatalf("seed %d: %s creates a cell: %v", n.Seed(), name, err)
	}
	return &person{name: name, devices: []*Node{nd}}
}

// befriend makes a and b contacts of each other: each admin's card,
// once it names every device of its cell and carries the cell's
// mailbox key, is added by the other's
// admin under the cell's name; then it waits until every device of
// each cell lists the other.
func befriend(t *testing.T, ctx context.Context, a, b *person) {
	t.Helper()
	seed := a.devices[0].net.Seed()
	card := func(p *person) string {
		t.Helper()
		var text string
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			c, err := p.devices[0].Peer().Contacts().Card(ctx, "")
			if err != nil || c.Devices.Mailbox == nil {
				return false
			}
			for _, nd := range p.devices {
				if !c.Devices.Has(nd.ID) {
					return false
				}
			}
			text = c.Text()
			return true
		}); !ok {
			t.Fatalf("seed %d: %s has no card naming its %d devices with a mailbox key", seed, p.name, len(p.devices))
		}
		return text
	}
	ca, cb := card(a), card(b)
	if _, err := a.devices[0].Peer().Contacts().Add(ctx, cb, b.name); err != nil {
		t.Fatalf("seed %d: %s adds %s: %v", seed, a.name, b.name, err)
	}
	if _, err := b.devices[0].Peer().Contacts().Add(ctx, ca, a.name); err != nil {
		t.Fatalf("seed %d: %s adds %s: %v", seed, b.name, a.name, err)
	}
	for _, side := range [][2]*person{{a, b}, {b, a}} {
		for _, nd := range side[0].devices {
			if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
				_, err := nd.Peer().Contacts().Get(ctx, side[1].name)
				return err == nil
			}); !ok {
				t.Fatalf("seed %d: node %d of %s does not list %s", seed, nd.Index, side[0].name, side[1].name)
			}
		}
	}
}

// addDevice starts a node as cfg and joins it to p's cell with roles,
// invited by p's admin.
func addDevice(t *testing.T, ctx context.Context, n *Net, p *person, roles cell.Role, cfg NodeConfig) *Node {
	t.Helper()
	nd := addNode(t, ctx, n, cfg)
	join(t, ctx, p.devices[0], nd, roles)
	p.devices = append(p.devices, nd)
	return nd
}

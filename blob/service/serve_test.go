package service_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// dagOf returns the CIDs of every block of the blob on n (which holds it).
func dagOf(t *testing.T, n *p.Node, root cid.Cid) []cid.Cid {
	t.Helper()
	var cs []cid.Cid
	sess := n.Exchange().NewSession(t.Context(), blocks.SessionOptions{})
	defer sess.Close()
	err := blob.Walk(t.Context(), sess, root, func(b blockformat.Block) error {
		cs = append(cs, b.Cid())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// mayRead reports whether every block of cs is served to id by n.
func mayRead(n *p.Node, id peer.ID, cs []cid.Cid) (all, none bool) {
	all, none = true, true
	for _, c := range cs {
		if n.Blobs().MayRead(id, c) {
			none = false
		} else {
			all = false
		}
	}
	return all, none
}

// TestServing: a node serves the blocks of its cell's blobs to the cell's
// current members only, a public blob's to anyone, and a blob shared
// with a peer to that peer; a removed member gets nothing more; a node
// outside the cell fetches a public blob and not a private one.
func TestServing(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 71)
	b := nodetest.Join(t, a, 72, cell.RoleChain, policy(service.PolicyNone))
	out := nodetest.Start(t, nodetest.Options(t, 73, nodetest.AddrInfo(a)))
	nodetest.Eventually(t, 30*time.Second, "the outsider connected to a", func() bool {
		return len(a.Host().Network().ConnsToPeer(out.ID())) > 0
	})

	priv := content(4, 2<<20+1)
	pf, err := a.Blobs().AddFileReader(ctx, "private.bin", bytes.NewReader(priv), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pub := content(5, 1<<20+3)
	pu, err := a.Blobs().AddBlob(ctx, bytes.NewReader(pub), service.AddOptions{Public: true})
	if err != nil {
		t.Fatal(err)
	}
	if !pu.Cap.Public {
		t.Fatalf("a public add gave %v", pu.Cap)
	}
	privDAG, pubDAG := dagOf(t, a, pf.Cap.Root), dagOf(t, a, pu.Cap.Root)
	if len(privDAG) < 3 || len(pubDAG) < 5 {
		t.Fatalf("DAGs of %d and %d blocks: too small to test", len(privDAG), len(pubDAG))
	}
	for _, tc := range []struct {
		name      string
		who       peer.ID
		dag       []cid.Cid
		all, none bool
	}{
		{"member, private", b.ID(), privDAG, true, false},
		{"member, public", b.ID(), pubDAG, true, false},
		{"outsider, private", out.ID(), privDAG, false, true},
		{"outsider, public", out.ID(), pubDAG, true, false},
	} {
		if all, none := mayRead(a, tc.who, tc.dag); all != tc.all || none != tc.none {
			t.Errorf("%s: served all %v, none %v; want %v, %v", tc.name, all, none, tc.all, tc.none)
		}
	}
	// Not blob blocks: the chain's (dag-cbor) are not the service's to serve.
	if a.Blobs().MayRead(b.ID(), cid.NewCidV1(cid.DagCBOR, pf.Cap.Root.Hash())) {
		t.Error("a dag-cbor CID vouched for by the blob service")
	}

	// Over the network: the outsider gets the public blob whole, and
	// nothing of the private one.
	if err := out.Blobs().Fetch(ctx, pu.Cap, nil); err != nil {
		t.Fatalf("outsider fetching a public blob: %v", err)
	}
	checkRange(t, out, pu.Cap, pub, 0, len(pub))
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := out.Blobs().Fetch(short, pf.Cap, nil); err == nil {
		t.Fatal("an outsider fetched a private blob")
	}
	for _, c := range privDAG {
		if has, _ := out.Blocks().Has(ctx, c); has {
			t.Errorf("the outsider holds %s of the private blob", c)
		}
	}
	// Shared with the outsider, it is served to it (and only to it).
	if err := a.Blobs().Share(ctx, pf.Cap.Root, []peer.ID{out.ID()}); err != nil {
		t.Fatal(err)
	}
	if all, _ := mayRead(a, out.ID(), privDAG); !all {
		t.Error("a shared blob not served to the peer it was shared with")
	}
	// The outsider asks a for it: a node asks a non-member for a private
	// blob's blocks only through an Asker that names it (issue 14's share
	// with a contact registers one).
	shared := make(map[cid.Cid]bool, len(privDAG))
	for _, c := range privDAG {
		shared[c] = true
	}
	out.Exchange().Gate().RegisterAsker(blocks.AskerFunc(func(p peer.ID, c cid.Cid) bool { return p == a.ID() && shared[c] }))
	if err := out.Blobs().Fetch(ctx, pf.Cap, nil); err != nil {
		t.Fatalf("fetching a shared blob: %v", err)
	}
	checkRange(t, out, pf.Cap, priv, 12345, 1<<20)

	// A removed member is served nothing more of the private blob.
	if _, err := a.Cell().Remove(ctx, b.ID(), true); err != nil {
		t.Fatal(err)
	}
	if _, none := mayRead(a, b.ID(), privDAG); !none {
		t.Error("a removed member is still served the cell's private blob")
	}
	if all, _ := mayRead(a, b.ID(), pubDAG); !all {
		t.Error("a removed member is not served a public blob, as anyone is")
	}
}

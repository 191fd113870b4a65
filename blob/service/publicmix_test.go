package service_test

import (
	"bytes"
	"testing"
	"time"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// A "public" DAG that someone made to link to the cell's private blob
// (whose CIDs a removed member or a peer it was once shared with knows)
// does not make the private blocks public when a member fetches it: they
// are still served to members only.
func TestPublicDAGLinkingPrivateBlocks(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 81)
	priv := content(6, 1<<20+5)
	pf, err := a.Blobs().AddFileReader(ctx, "private.bin", bytes.NewReader(priv), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	privDAG := dagOf(t, a, pf.Cap.Root)

	// The hostile node: a UnixFS file node whose one child is the private
	// root, as if fetched from its maker.
	nd := new(dag.ProtoNode)
	if err := nd.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: pf.Cap.Root.Prefix().MhType}); err != nil {
		t.Fatal(err)
	}
	fsn := ft.NewFSNode(ft.TFile)
	if err := nd.AddRawLink("", &ipld.Link{Size: uint64(len(priv)), Cid: pf.Cap.Root}); err != nil {
		t.Fatal(err)
	}
	fsn.AddBlockSize(uint64(pf.Size))
	data, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	nd.SetData(data)
	blk, err := blockformat.NewBlockWithCid(nd.RawData(), nd.Cid())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Blocks().Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	hostile := blob.Capability{Root: blk.Cid(), Public: true}
	_ = a.Blobs().Fetch(ctx, hostile, nil) // whatever it ends with

	stranger := strangerID(t)
	for _, c := range privDAG {
		if a.Blobs().MayRead(stranger, c) {
			t.Fatalf("block %s of the private blob served to anyone once a public DAG linked to it", c)
		}
	}
}

// A public blob read through a node (its blocks served to anyone as they
// arrive) and then collected is no longer in the node's public set: the
// set stays bounded by what the node holds, however many public blobs a
// user reads.
func TestPublicSetShrinksAfterGC(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 83)
	out := nodetest.Start(t, nodetest.Options(t, 84, nodetest.AddrInfo(a)))
	nodetest.Eventually(t, 30*time.Second, "the outsider connected to a", func() bool {
		return len(a.Host().Network().ConnsToPeer(out.ID())) > 0
	})
	pub := content(7, 1<<20+9)
	pu, err := a.Blobs().AddBlob(ctx, bytes.NewReader(pub), service.AddOptions{Public: true})
	if err != nil {
		t.Fatal(err)
	}
	pubDAG := dagOf(t, a, pu.Cap.Root)
	checkRange(t, out, pu.Cap, pub, 0, len(pub))
	stranger := strangerID(t)
	if all, _ := mayRead(out, stranger, pubDAG); !all {
		t.Fatal("a public blob read through the outsider not served on by it")
	}
	if _, err := out.Blobs().GC(ctx); err != nil {
		t.Fatal(err)
	}
	if got := usage(t, out); got != 0 {
		t.Fatalf("after a collection the outsider holds %d bytes", got)
	}
	if _, none := mayRead(out, stranger, pubDAG); !none {
		t.Error("blocks collected still in the public set")
	}
}

// strangerID is a fresh peer ID, of no node.
func strangerID(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

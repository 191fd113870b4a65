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
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// A shared DAG that someone else made (a contact's file, received and
// shared on) may link to the cell's private blob, whose CIDs a removed
// member or a peer it was once shared with knows. Sharing it must not
// serve the private blocks to the peer it is shared with: the public set
// leaves the private DAGs out (TestPublicDAGLinkingPrivateBlocks), the
// shared set must too.
func TestSharedDAGLinkingPrivateBlocks(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 91)
	priv := content(16, 1<<20+5)
	pf, err := a.Blobs().AddFileReader(ctx, "private.bin", bytes.NewReader(priv), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	privDAG := dagOf(t, a, pf.Cap.Root)

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
	other := strangerID(t)
	if err := a.Blobs().Share(ctx, blk.Cid(), []peer.ID{other}); err != nil {
		t.Fatal(err)
	}
	if !a.Blobs().MayRead(other, blk.Cid()) {
		t.Fatalf("the shared root is not served to the peer it is shared with")
	}
	for _, c := range privDAG {
		if a.Blobs().MayRead(other, c) {
			t.Fatalf("block %s of the private blob served to a peer a DAG linking to it was shared with", c)
		}
	}
}

// A device that holds a shared blob only in part when the share is
// recorded (the file was added on another device of the cell, or is
// still being fetched) serves the rest once it holds it: the shared set
// is "the blocks of the DAG the node holds", and what the node holds
// grows. Here the device holds nothing of the blob when it is shared,
// then fetches it whole: its leaves must be served.
func TestSharedSetGrowsWithFetch(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 93)
	b := nodetest.Join(t, a, 94, cell.RoleChain|cell.RoleStore, policy(service.PolicyNone))
	data := content(17, 3<<20+77)
	f, err := a.Blobs().AddFileReader(ctx, "shared.bin", bytes.NewReader(data), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	all := dagOf(t, a, f.Cap.Root)
	waitFile(t, b, f.ID.String(), nil)
	other := strangerID(t)
	if err := b.Blobs().Share(ctx, f.Cap.Root, []peer.ID{other}); err != nil {
		t.Fatal(err)
	}
	if err := b.Blobs().Fetch(ctx, blob.Capability{Root: f.Cap.Root, Key: f.Cap.Key}, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		if has, err := b.Blocks().Has(ctx, c); err != nil || !has {
			t.Fatalf("b does not hold %s after the fetch (%v)", c, err)
		}
	}
	for _, c := range all {
		if !b.Blobs().MayRead(other, c) {
			t.Fatalf("b holds block %s of the shared blob and does not serve it to the peer it is shared with", c)
		}
	}
}

// A contact that shares many files of one name (within MaxSharedFiles)
// gets each recorded: past maxNameTries (100) of "x", "x (2)", ...,
// Received failed for good, and message/service leaves a message whose
// file is not recorded unacknowledged, so the contact's courier sends it
// again forever (the failure is not ErrTooManyFiles, the only one taken).
func TestReceivedManyOfOneName(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 95)
	from := make([]byte, 32)
	from[0] = 7
	for i := range 120 {
		h, err := mh.Sum([]byte{byte(i), byte(i >> 8)}, mh.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		c := blob.Capability{Root: cid.NewCidV1(cid.Raw, h), Public: true}
		if _, err := a.Blobs().Received(ctx, from, c, "x.txt", "", 1); err != nil {
			t.Fatalf("file %d named x.txt: %v", i+1, err)
		}
	}
}

// A contact's message announces its file's size, and the share budget
// (Config.ShareBudget) is counted in the sizes announced: a contact that
// announces 0 bytes for a file of any size has it fetched by the policy,
// past the budget. Here Bob's budget for a contact's files is 1 MiB and
// the contact announces 0 bytes for a 3 MiB blob (held by another device
// of the cell, so the fetch needs no contact): once its true size is
// known (its root read), it should be left offered, not fetched whole.
func TestShareBudgetTrustsAnnouncedSize(t *testing.T) {
	ctx := t.Context()
	a := nodetest.CellNode(t, 97)
	data := content(18, 3<<20+99)
	f, err := a.Blobs().AddFileReader(ctx, "big.bin", bytes.NewReader(data), service.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Blobs().RemoveFile(ctx, f.ID.String()); err != nil { // blocks kept until a collection
		t.Fatal(err)
	}
	b := nodetest.Join(t, a, 98, cell.RoleChain|cell.RoleStore, func(o *p.Options) { o.Files.ShareBudget = 1 << 20 })
	from := make([]byte, 32)
	from[0] = 9
	rf, err := b.Blobs().Received(ctx, from, f.Cap, "big.bin", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		g, err := b.Blobs().File(ctx, rf.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		if g.Held >= int64(len(data)) {
			t.Fatalf("a contact's file of %d bytes announced as 0 fetched whole past a share budget of %d bytes", len(data), 1<<20)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

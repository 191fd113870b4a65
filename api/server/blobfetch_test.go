package server_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// TestBlobFetchOverTheAPI: a member of the cell fetches a blob another
// added, through its control API: NDJSON progress that names the peer
// that sent the blocks, a last line done, then the bytes, read locally.
func TestBlobFetchOverTheAPI(t *testing.T) {
	adminDir, admin, _ := nodetest.Serve(t)
	ac, err := client.Dial(adminDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := ac.CellCreate(ctx, api.CellCreateRequest{Name: "home", Member: "laptop"}); err != nil {
		t.Fatal(err)
	}
	inv, err := ac.CellInvite(ctx, api.CellInviteRequest{Roles: "chain,store"})
	if err != nil {
		t.Fatal(err)
	}
	phoneDir, _, _ := nodetest.Serve(t, func(o *p.Options) {
		priv, err := crypto.UnmarshalEd25519PrivateKey(nodetest.Key(11))
		if err != nil {
			t.Fatal(err)
		}
		o.Key = priv
		o.DHT.Bootstrap = append(o.DHT.Bootstrap, nodetest.AddrInfo(admin))
		o.Discovery.Bootstrap = append(o.Discovery.Bootstrap, nodetest.AddrInfo(admin))
	})
	pc, err := client.Dial(phoneDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.CellJoin(ctx, api.CellJoinRequest{Code: inv.Code, Member: "phone", Timeout: api.Duration(time.Minute)}); err != nil {
		t.Fatalf("CellJoin: %v", err)
	}

	data := testBytes(t, 3<<20+777)
	b, err := ac.BlobAdd(ctx, bytes.NewReader(data), int64(len(data)), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lines []api.FetchLine
	last, err := pc.BlobFetch(ctx, b.Cap, func(l api.FetchLine) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("BlobFetch: %v", err)
	}
	from := last.Peers[admin.ID().String()]
	if !last.Done || last.TotalBlocks == 0 || last.Blocks != last.TotalBlocks || last.Bytes != last.TotalBytes ||
		from.Blocks == 0 || from.Bytes == 0 || from.Bytes > last.Bytes {
		t.Errorf("the fetch's last line: %+v", last)
	}
	for i := 1; i < len(lines); i++ {
		if lines[i].Bytes < lines[i-1].Bytes {
			t.Errorf("progress went back: %+v after %+v", lines[i], lines[i-1])
		}
	}
	ct, err := pc.BlobContent(ctx, b.Cap, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(ct)
	ct.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("content on the phone: %d bytes, %v", len(got), err)
	}
	// Fetched again: nothing comes from a peer.
	again, err := pc.BlobFetch(ctx, b.Cap, nil)
	if err != nil || !again.Done || again.Peers[admin.ID().String()].Blocks != 0 {
		t.Errorf("a second fetch: %+v, %v", again, err)
	}
}

package service_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/internal/nodetest"
	p "github.com/exopeer/exopeer/peer"
)

// content returns n bytes drawn from seed: the same bytes each run.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeFile writes data to a new file name in a temporary dir.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// policy sets a node's pin policy.
func policy(pol string) func(*p.Options) {
	return func(o *p.Options) { o.Files.Policy = pol }
}

// waitFile waits until n lists the file id, and returns it.
func waitFile(t testing.TB, n *p.Node, nameOrID string, ok func(service.File) bool) service.File {
	t.Helper()
	var f service.File
	nodetest.Eventually(t, 60*time.Second, "the file "+nameOrID+" on "+n.ID().String(), func() bool {
		var err error
		f, err = n.Blobs().File(context.Background(), nameOrID)
		return err == nil && (ok == nil || ok(f))
	})
	return f
}

// readAt reads n bytes at off of the blob c through node n.
func readAt(t testing.TB, n *p.Node, c blob.Capability, off int64, size int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	r, err := n.Blobs().Open(ctx, c)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	buf := make([]byte, size)
	if _, err := r.ReadAt(buf, off); err != nil {
		t.Fatalf("ReadAt(%d, %d): %v", off, size, err)
	}
	return buf
}

// checkRange reads a range of c through n and compares it with data.
func checkRange(t testing.TB, n *p.Node, c blob.Capability, data []byte, off int64, size int) {
	t.Helper()
	if got := readAt(t, n, c, off, size); !bytes.Equal(got, data[off:off+int64(size)]) {
		t.Fatalf("bytes %d to %d differ from what was added", off, off+int64(size))
	}
}

// reasons returns the reasons root is pinned for on n, sorted.
func reasons(t testing.TB, n *p.Node, root interface{ String() string }) []string {
	t.Helper()
	ps, err := n.Pins().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ps {
		if x.Root.String() == root.String() {
			rs := slices.Clone(x.Reasons)
			slices.Sort(rs)
			return rs
		}
	}
	return nil
}

// usage returns n's blob block usage.
func usage(t testing.TB, n *p.Node) int64 {
	t.Helper()
	u, err := n.Blocks().Usage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return u.Bytes
}

// mustPub returns the libp2p public key of an Ed25519 private key.
func mustPub(t testing.TB, k ed25519.PrivateKey) crypto.PubKey {
	t.Helper()
	pub, err := crypto.UnmarshalEd25519PublicKey(k.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

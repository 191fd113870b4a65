package server_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// BenchmarkBlobOverTheAPI measures a 64 MiB blob through the control API
// on a node whose store holds it: an upload (POST /v1/blobs: sealed,
// stored, pinned, with its progress stream) and a whole read (GET
// .../content: fetched from the local store, opened, decrypted, served).
func BenchmarkBlobOverTheAPI(b *testing.B) {
	dir, _, _ := nodetest.Serve(b)
	c, err := client.Dial(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	data := make([]byte, 64<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	added, err := c.BlobAdd(ctx, bytes.NewReader(data), int64(len(data)), false, nil)
	if err != nil {
		b.Fatal(err)
	}
	cap := added.Cap
	b.Run("add", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := c.BlobAdd(ctx, bytes.NewReader(data), int64(len(data)), false, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("content", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			ct, err := c.BlobContent(ctx, cap, 0, -1)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, ct)
			ct.Close()
			if err != nil || n != int64(len(data)) {
				b.Fatalf("read %d bytes: %v", n, err)
			}
		}
	})
}

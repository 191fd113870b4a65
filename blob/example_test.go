package blob_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/exopeer/exopeer/blob"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// mapBlocks is the smallest BlockGetter and BlockPutter: a map.
type mapBlocks struct {
	mu sync.Mutex
	m  map[cid.Cid]blockformat.Block
}

func (s *mapBlocks) PutMany(_ context.Context, bs []blockformat.Block) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range bs {
		s.m[b.Cid()] = b
	}
	return nil
}

func (s *mapBlocks) GetBlocks(_ context.Context, cs []cid.Cid) ([]blockformat.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]blockformat.Block, len(cs))
	for i, c := range cs {
		b, ok := s.m[c]
		if !ok {
			return nil, fmt.Errorf("no block %s", c)
		}
		out[i] = b
	}
	return out, nil
}

// Import a file as a sealed blob, pass its capability on as text, and read
// a range of it back.
func Example() {
	ctx := context.Background()
	store := &mapBlocks{m: map[cid.Cid]blockformat.Block{}}
	key := blob.Key{1, 2, 3} // usually random (nil Key) or derived from the cell's secret
	im, err := blob.Import(ctx, strings.NewReader("hello, encrypted world"), store, blob.ImportOptions{Key: &key})
	if err != nil {
		panic(err)
	}
	fmt.Println(im.Size, "bytes in", im.Blocks, "block")

	c, err := blob.ParseCapability(im.Cap.String())
	if err != nil {
		panic(err)
	}
	r, err := blob.Open(ctx, store, c, blob.ReaderOptions{})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	if _, err := r.Seek(7, io.SeekStart); err != nil {
		panic(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", rest)
	// Output:
	// 22 bytes in 1 block
	// encrypted world
}

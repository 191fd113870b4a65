package replica

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"

	"github.com/exopeer/exopeer/chain"
)

// TestReadRequestAllocatesAsBytesArrive announces the largest request and
// sends three bytes of it: reading it allocates a few KiB, not the
// megabyte and more announced.
func TestReadRequestAllocatesAsBytesArrive(t *testing.T) {
	in := append(binary.AppendUvarint(nil, uint64(chain.MaxRequest)), 1, 2, 3)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 16
	for range runs {
		if _, err := readRequest(bufio.NewReader(bytes.NewReader(in))); !errors.Is(err, chain.ErrMalformed) {
			t.Fatalf("cut-short request: %v, want ErrMalformed", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 16<<10 {
		t.Errorf("%d bytes allocated per read of a %d-byte request cut after 3 bytes", per, chain.MaxRequest)
	}
	if _, err := readRequest(bufio.NewReader(bytes.NewReader(binary.AppendUvarint(nil, uint64(chain.MaxRequest)+1)))); !errors.Is(err, chain.ErrFrameTooLarge) {
		t.Errorf("request over the limit: %v, want ErrFrameTooLarge", err)
	}
}

// FuzzReadRequest reads a length-prefixed sync request: a request or an
// error, never a panic.
func FuzzReadRequest(f *testing.F) {
	f.Add(binary.AppendUvarint(nil, uint64(chain.MaxRequest)))
	f.Add(append(binary.AppendUvarint(nil, 4), "EXCQ"...))
	f.Add(func() []byte {
		q := chain.EncodeRequest(chain.Request{Len: 3})
		return append(binary.AppendUvarint(nil, uint64(len(q))), q...)
	}())
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := readRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		if _, err := chain.DecodeRequest(chain.EncodeRequest(q)); err != nil {
			t.Fatalf("a request read does not re-encode: %v", err)
		}
	})
}

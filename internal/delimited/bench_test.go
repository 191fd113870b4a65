package delimited

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// BenchmarkReader1MiB hands over 1 MiB messages (a bitswap block's) read
// from memory, as a library reading them whole would take them.
func BenchmarkReader1MiB(b *testing.B) {
	const size = 1 << 20
	msg := binary.AppendUvarint(nil, size)
	msg = append(msg, make([]byte, size)...)
	out := make([]byte, len(msg))
	b.SetBytes(size)
	for b.Loop() {
		r := newReader(bytes.NewReader(msg), 4<<20, func() {})
		if _, err := io.ReadFull(r, out); err != nil {
			b.Fatal(err)
		}
	}
}

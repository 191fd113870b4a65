package growbuf

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// BenchmarkReadFull reads whole messages of several sizes, against the
// allocate-up-front io.ReadFull it replaces: the price of growing.
func BenchmarkReadFull(b *testing.B) {
	for _, n := range []int{100, 4 << 10, 64 << 10, 1 << 20} {
		data := make([]byte, n)
		r := bytes.NewReader(data)
		b.Run(fmt.Sprintf("growbuf/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(data)
				if _, err := ReadFull(r, n, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("upfront/%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(data)
				if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

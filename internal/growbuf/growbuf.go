// Package growbuf reads a message whose length a peer announced into a
// buffer that grows only as the message's bytes arrive.
//
// A length prefix costs a peer a few bytes; allocating the length it
// announces before the bytes come would let a few bytes from anyone hold
// megabytes of a node's memory for as long as the stream stays open.
// ReadFull allocates First bytes before the first byte arrives, and then
// at most as many more as have arrived (it doubles the buffer when the
// buffer is full), so a message costs at most about twice its received
// bytes plus First, and a large one is copied O(log n) times.
package growbuf

import (
	"errors"
	"io"
)

// First is the buffer allocated before any byte of the message has
// arrived.
const First = 4 << 10

// ErrNegative is a negative length, a caller's mistake.
var ErrNegative = errors.New("growbuf: negative length")

// ReadFull reads exactly n bytes from r and returns them. It reuses buf's
// storage when buf is large enough, and otherwise grows a new buffer as
// the bytes arrive. Like io.ReadFull, it returns io.EOF only if no byte was
// read, io.ErrUnexpectedEOF if r ended in the middle, and otherwise r's
// error; on error the returned slice holds the bytes read so far. It
// blocks as r does and is safe for concurrent use on distinct readers.
func ReadFull(r io.Reader, n int, buf []byte) ([]byte, error) {
	if n < 0 {
		return nil, ErrNegative
	}
	buf = buf[:0]
	if cap(buf) < min(n, First) {
		buf = make([]byte, 0, min(n, First))
	}
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grow := min(max(len(buf), First), n-len(buf))
			nb := make([]byte, len(buf), len(buf)+grow)
			copy(nb, buf)
			buf = nb
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if len(buf) == n {
				break
			}
			if errors.Is(err, io.EOF) && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}

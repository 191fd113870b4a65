// Package delimited holds back the varint-delimited messages of libraries
// that allocate a message's announced length before its bytes arrive
// (go-msgio's readers, used by kad-dht and bitswap, allocate up to 4 MiB
// from a few bytes of length prefix).
//
// Gate wraps an inbound stream: its Read hands over nothing of a message
// until the whole message has arrived, into pieces allocated only as the
// bytes came (the bound of package growbuf, without its copies), and
// resets the stream at a message longer than its limit. A peer that announces large messages and sends nothing
// then costs a few KiB per stream, not the length it announced.
package delimited

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	pool "github.com/libp2p/go-buffer-pool"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/internal/growbuf"
)

// Errors of a gated stream.
var (
	ErrTooLarge  = errors.New("delimited: message too large")
	ErrMalformed = errors.New("delimited: malformed length prefix")
)

// Host is a host whose stream handlers receive gated streams. The
// library that registers its handlers on it reads each inbound message
// only once it has arrived whole.
type Host struct {
	host.Host
	limit int
}

// GateHost wraps h: streams handed to the handlers set through the result
// are gated with limit (see Gate). Everything else is h's.
func GateHost(h host.Host, limit int) *Host { return &Host{Host: h, limit: limit} }

// SetStreamHandler sets handler for pid on the wrapped host, gating each
// stream first.
func (h *Host) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(Gate(s, h.limit)) })
}

// SetStreamHandlerMatch is SetStreamHandler for the protocols m accepts.
func (h *Host) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, func(s network.Stream) { handler(Gate(s, h.limit)) })
}

// Gate returns s with a Read that delivers each varint-delimited message
// (prefix and body, unchanged) only once all of it has arrived, and that
// resets s at a message over limit bytes. Writes and the rest are s's.
// Like a stream's, its Read is for one goroutine at a time.
func Gate(s network.Stream, limit int) network.Stream {
	return &stream{Stream: s, r: newReader(s, limit, func() { _ = s.Reset() })}
}

type stream struct {
	network.Stream
	r *reader
}

func (s *stream) Read(p []byte) (int, error) { return s.r.Read(p) }

// reader is Gate's Read over any io.Reader, the pure part.
type reader struct {
	src   io.Reader
	br    *bufio.Reader // made at the first Read
	limit int
	reset func()
	head  []byte   // the pending message's length prefix, not yet read
	body  [][]byte // and its body, in the pieces it was read into
	bufs  [][]byte // the pieces of body, whole, to return to the pool
	err   error
}

func newReader(src io.Reader, limit int, reset func()) *reader {
	return &reader{src: src, limit: limit, reset: reset}
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(r.head) == 0 && len(r.body) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.err = r.next(); r.err != nil {
			return 0, r.err
		}
	}
	n := copy(p, r.head)
	r.head = r.head[n:]
	for n < len(p) && len(r.body) > 0 {
		m := copy(p[n:], r.body[0])
		n += m
		if r.body[0] = r.body[0][m:]; len(r.body[0]) == 0 {
			r.body[0] = nil // handed over: back to the pool
			r.body = r.body[1:]
			pool.Put(r.bufs[0])
			r.bufs[0] = nil
			r.bufs = r.bufs[1:]
		}
	}
	if len(r.body) == 0 {
		r.body, r.bufs = nil, nil
	}
	return n, nil
}

// next reads the next whole message into head and body.
func (r *reader) next() error {
	if r.br == nil {
		r.br = bufio.NewReaderSize(r.src, 512)
	}
	var head [binary.MaxVarintLen64]byte
	var n uint64
	for i := 0; ; i++ {
		if i == len(head) {
			r.reset()
			return fmt.Errorf("%w: longer than %d bytes", ErrMalformed, len(head))
		}
		c, err := r.br.ReadByte()
		if err != nil {
			if err == io.EOF && i > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		head[i] = c
		if i == len(head)-1 && c > 1 {
			r.reset()
			return fmt.Errorf("%w: over 64 bits", ErrMalformed)
		}
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.head = head[: i+1 : i+1]
			break
		}
	}
	if n > uint64(r.limit) {
		r.head = nil
		r.reset()
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, r.limit)
	}
	body, err := readPieces(r.br, int(n))
	if err != nil {
		r.head = nil
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	r.body = body
	r.bufs = append(r.bufs[:0], body...)
	return nil
}

// readPieces reads exactly n bytes from src into pieces, each taken only
// once the bytes before it have arrived, and as large as they are (at
// least growbuf.First): the memory bound of growbuf.ReadFull (about twice
// the bytes received, plus First) without its copying of the bytes into
// each larger buffer. The pieces come from libp2p's buffer pool (Read
// returns each once handed over): a fetch reads a GiB through here, and
// fresh pieces were a GiB of garbage to allocate, zero and collect.
func readPieces(src io.Reader, n int) ([][]byte, error) {
	var pieces [][]byte
	for got := 0; got < n; {
		p := pool.Get(min(n-got, max(growbuf.First, got)))
		m, err := io.ReadFull(src, p)
		got += m
		if m > 0 {
			pieces = append(pieces, p[:m])
		}
		if err != nil {
			for _, p := range pieces {
				pool.Put(p)
			}
			if err == io.EOF && got > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return pieces, nil
}

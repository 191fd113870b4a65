package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/blob"
)

// contentChunk is what a wholeReads reads of a blob at once: the
// plaintext of one leaf of a sealed blob (16 segments), about four of a
// public one.
const contentChunk = blob.LeafSize / blob.SealedSegmentSize * blob.SegmentSize

// wholeReads serves http.ServeContent, which reads 32 KiB at a time, from
// a blob's Reader in reads of whole leaves: each Read of a blob.Reader
// gets its leaves from the store (verified) and opens their segments, so
// thirty-two reads of a leaf would do that thirty-two times. Reads go
// through the Reader's Read, in order, so that its prefetch of the next
// leaves runs; a Seek moves it only when the next read needs it.
type wholeReads struct {
	r    *blob.Reader
	size int64
	buf  []byte // the plaintext at [at, at+len(buf))
	at   int64
	off  int64 // the position of the next Read
	rpos int64 // the position of r
}

func newWholeReads(r *blob.Reader) *wholeReads {
	return &wholeReads{r: r, size: r.Size()}
}

func (w *wholeReads) Read(p []byte) (int, error) {
	if w.off >= w.size {
		return 0, io.EOF
	}
	if w.off < w.at || w.off >= w.at+int64(len(w.buf)) {
		start := w.off - w.off%contentChunk
		if w.buf == nil {
			w.buf = make([]byte, contentChunk)
		}
		w.buf = w.buf[:min(int64(contentChunk), w.size-start)]
		if w.rpos != start {
			if _, err := w.r.Seek(start, io.SeekStart); err != nil {
				return 0, err
			}
			w.rpos = start
		}
		n, err := io.ReadFull(w.r, w.buf)
		w.rpos += int64(n)
		if err != nil {
			w.buf = w.buf[:0]
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				err = fmt.Errorf("blob: %d bytes at %d, of %d: %w", n, start, w.size, io.ErrUnexpectedEOF)
			}
			return 0, err
		}
		w.at = start
	}
	n := copy(p, w.buf[w.off-w.at:])
	w.off += int64(n)
	return n, nil
}

func (w *wholeReads) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += w.off
	case io.SeekEnd:
		offset += w.size
	default:
		return 0, errors.New("blob: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("blob: seek before the start")
	}
	w.off = offset
	return offset, nil
}

// contentErrors is the ResponseWriter http.ServeContent writes to: the
// error answers it writes itself (416 for a range past the end, 412 for a
// precondition that fails, 500 for a seek that fails), in plain text or
// with no body, it turns into problems, keeping their headers
// (Content-Range: bytes */SIZE). finish writes the problem once
// ServeContent has returned.
type contentErrors struct {
	http.ResponseWriter
	status int    // the error status ServeContent wrote; 0 if none
	text   []byte // what it wrote after it, up to maxContentErrorText
}

const maxContentErrorText = 1 << 10

func (c *contentErrors) WriteHeader(status int) {
	if status < http.StatusBadRequest {
		c.ResponseWriter.WriteHeader(status)
		return
	}
	c.status = status
}

func (c *contentErrors) Write(p []byte) (int, error) {
	if c.status == 0 {
		return c.ResponseWriter.Write(p)
	}
	c.text = append(c.text, p[:min(len(p), maxContentErrorText-len(c.text))]...)
	return len(p), nil
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (c *contentErrors) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// finish answers the error ServeContent wrote, if it wrote one, as a
// problem.
func (c *contentErrors) finish() {
	if c.status == 0 {
		return
	}
	typ := api.ProblemInternal
	switch c.status {
	case http.StatusRequestedRangeNotSatisfiable:
		typ = api.ProblemRangeNotSatisfiable
	case http.StatusPreconditionFailed:
		typ = api.ProblemPreconditionFailed
	}
	// The answer is a problem, not the file's content.
	c.Header().Del("Content-Disposition")
	detail := strings.TrimSpace(string(c.text))
	if detail == "" {
		detail = strings.ToLower(http.StatusText(c.status))
	}
	writeProblem(c.ResponseWriter, c.status, typ, detail)
}

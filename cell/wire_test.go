package cell

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/exopeer/exopeer/cell/core"
)

func frameOf(n int) []byte {
	return binary.AppendUvarint(nil, uint64(n))
}

// TestReadFrameCaps: a frame at a reader's cap is read; one byte more is
// refused from its length alone, before any byte of it arrives.
func TestReadFrameCaps(t *testing.T) {
	for _, limit := range []int{core.MaxHelloFrame, core.MaxReplyFrame, core.MaxConfirmFrame, core.MaxWelcomeFrame, core.MaxPushFrame, core.MaxAnswerFrame} {
		body := bytes.Repeat([]byte{7}, limit)
		got, err := readFrame(bufio.NewReader(bytes.NewReader(append(frameOf(limit), body...))), limit)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("frame of %d bytes at its cap: %d bytes, %v", limit, len(got), err)
		}
		_, err = readFrame(bufio.NewReader(bytes.NewReader(frameOf(limit+1))), limit)
		if !errors.Is(err, core.ErrBadMessage) {
			t.Errorf("frame of %d bytes over a cap of %d: %v, want core.ErrBadMessage", limit+1, limit, err)
		}
	}
	_, err := readFrame(bufio.NewReader(bytes.NewReader(frameOf(core.MaxHelloFrame+1))), core.MaxHelloFrame)
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized hello: %v", err)
	}
}

// failingReader fails every read with err, as a stream whose deadline
// passed or that was reset.
type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// TestReadFrameLengthErrors: a stream that fails while a frame's length
// arrives fails the read with its own error, not as a malformed message
// (a join attempt that timed out was logged as one); a length that
// overflows is one.
func TestReadFrameLengthErrors(t *testing.T) {
	for _, sent := range [][]byte{nil, {0x80}} {
		r := bufio.NewReader(io.MultiReader(bytes.NewReader(sent), failingReader{os.ErrDeadlineExceeded}))
		_, err := readFrame(r, core.MaxFrame)
		if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, core.ErrBadMessage) {
			t.Errorf("stream timed out after %d bytes of the length: %v, want its deadline error and no core.ErrBadMessage", len(sent), err)
		}
	}
	_, err := readFrame(bufio.NewReader(bytes.NewReader(bytes.Repeat([]byte{0xff}, 11))), core.MaxFrame)
	if !errors.Is(err, core.ErrBadMessage) {
		t.Errorf("length that overflows: %v, want core.ErrBadMessage", err)
	}
}

// TestReadFrameAllocatesAsBytesArrive announces the largest frame and
// sends three bytes of it: reading it allocates a few KiB, not the
// megabyte announced.
func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	in := append(frameOf(core.MaxFrame), 1, 2, 3)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 16
	for range runs {
		if _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), core.MaxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut-short frame: %v, want io.ErrUnexpectedEOF", err)
		}
	}
	runtime.ReadMemStats(&after)
	// A bufio.Reader (4 KiB), the first 4 KiB of the frame, and change.
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 16<<10 {
		t.Errorf("%d bytes allocated per read of a %d-byte frame cut after 3 bytes", per, core.MaxFrame)
	}
}

// FuzzReadFrame reads a frame under each reader's cap: it returns a frame
// of 1 to limit bytes or an error, and never panics.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{3, 1, 2, 3}, uint8(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, uint8(3))
	f.Add([]byte{0x80, 0x80, 0x40}, uint8(3))
	f.Add(append([]byte{core.MaxHelloFrame}, make([]byte, core.MaxHelloFrame)...), uint8(0))
	limits := []int{core.MaxHelloFrame, core.MaxReplyFrame, core.MaxConfirmFrame, core.MaxWelcomeFrame, core.MaxPushFrame, core.MaxAnswerFrame}
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		limit := limits[int(which)%len(limits)]
		got, err := readFrame(bufio.NewReader(bytes.NewReader(b)), limit)
		if err == nil && (len(got) == 0 || len(got) > limit) {
			t.Fatalf("frame of %d bytes accepted under a cap of %d", len(got), limit)
		}
	})
}

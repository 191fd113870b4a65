package delimited

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/exopeer/exopeer/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func msgs(bodies ...[]byte) []byte {
	var b []byte
	for _, m := range bodies {
		b = binary.AppendUvarint(b, uint64(len(m)))
		b = append(b, m...)
	}
	return b
}

func TestReaderPassesMessages(t *testing.T) {
	in := msgs([]byte("hello"), nil, bytes.Repeat([]byte{9}, 70_000), []byte("x"))
	for name, src := range map[string]io.Reader{
		"whole":    bytes.NewReader(in),
		"one byte": iotest.OneByteReader(bytes.NewReader(in)),
		"half":     iotest.HalfReader(bytes.NewReader(in)),
	} {
		resets := 0
		got, err := io.ReadAll(iotest.OneByteReader(newReader(src, 1<<20, func() { resets++ })))
		if err != nil || !bytes.Equal(got, in) || resets != 0 {
			t.Errorf("%s: %d of %d bytes, %v, %d resets", name, len(got), len(in), err, resets)
		}
	}
}

func TestReaderRefuses(t *testing.T) {
	tests := []struct {
		name      string
		in        []byte
		wantErr   error
		wantReset bool
		wantOut   []byte
	}{
		{"over the limit", msgs(make([]byte, 101)), ErrTooLarge, true, nil},
		{"after a good one", msgs([]byte("ok"), make([]byte, 101)), ErrTooLarge, true, msgs([]byte("ok"))},
		{"varint over 64 bits", bytes.Repeat([]byte{0xff}, 11), ErrMalformed, true, nil},
		{"cut in the prefix", []byte{0x80}, io.ErrUnexpectedEOF, false, nil},
		{"cut in the body", msgs([]byte("hello"))[:4], io.ErrUnexpectedEOF, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resets := 0
			r := newReader(bytes.NewReader(tt.in), 100, func() { resets++ })
			var out []byte
			buf := make([]byte, 7)
			var err error
			for err == nil {
				var n int
				n, err = r.Read(buf)
				out = append(out, buf[:n]...)
			}
			if !errors.Is(err, tt.wantErr) || (resets > 0) != tt.wantReset || !bytes.Equal(out, tt.wantOut) {
				t.Errorf("read %x, %v, %d resets; want %x, %v, reset %v", out, err, resets, tt.wantOut, tt.wantErr, tt.wantReset)
			}
		})
	}
}

// TestReaderHoldsBackUntilArrived announces 4 MiB and sends three bytes:
// nothing is handed over, and a few KiB are allocated, not 4 MiB.
func TestReaderHoldsBackUntilArrived(t *testing.T) {
	in := append(binary.AppendUvarint(nil, 4<<20), 1, 2, 3)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 16
	for range runs {
		n, err := newReader(bytes.NewReader(in), 4<<20, func() {}).Read(make([]byte, 64))
		if n != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Read = %d, %v; want 0, io.ErrUnexpectedEOF", n, err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 16<<10 {
		t.Errorf("%d bytes allocated per 4 MiB message cut after 3 bytes", per)
	}
}

// FuzzReader: what the reader hands over is a prefix of its input made of
// whole messages, all of it when no error came.
func FuzzReader(f *testing.F) {
	f.Add(msgs([]byte("hello"), nil, []byte("x")), uint16(100))
	f.Add(binary.AppendUvarint(nil, 4<<20), uint16(0))
	f.Add(bytes.Repeat([]byte{0xff}, 11), uint16(1))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		got, err := io.ReadAll(newReader(iotest.HalfReader(bytes.NewReader(in)), int(limit), func() {}))
		if !bytes.HasPrefix(in, got) {
			t.Fatalf("handed over %x, not a prefix of %x", got, in)
		}
		if err == nil && !bytes.Equal(got, in) {
			t.Fatalf("no error but %d of %d bytes", len(got), len(in))
		}
		// What was handed over is whole messages under the limit.
		rest := got
		for len(rest) > 0 {
			n, k := binary.Uvarint(rest)
			if k <= 0 || n > uint64(limit) || uint64(len(rest)-k) < n {
				t.Fatalf("handed over a partial or oversized message: %x", rest)
			}
			rest = rest[k+int(n):]
		}
	})
}

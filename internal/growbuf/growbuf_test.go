package growbuf

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/exopeer/exopeer/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// watch is a reader that fails the test when ReadFull asks it to fill more
// than First bytes beyond what it has already handed over: the buffer
// must not run ahead of the bytes.
type watch struct {
	t    *testing.T
	r    io.Reader
	got  int
	most int // the largest cap ReadFull offered, minus the bytes received
}

func (w *watch) Read(p []byte) (int, error) {
	if ahead := cap(p); ahead > w.got+First {
		w.t.Errorf("after %d bytes, asked to fill %d", w.got, ahead)
	}
	w.most = max(w.most, cap(p))
	n, err := w.r.Read(p)
	w.got += n
	return n, err
}

func TestReadFull(t *testing.T) {
	msg := bytes.Repeat([]byte("0123456789abcdef"), 50_000) // 800,000 bytes
	tests := []struct {
		name    string
		data    []byte
		n       int
		want    []byte
		wantErr error
	}{
		{"empty", nil, 0, []byte{}, nil},
		{"small", []byte("hello"), 5, []byte("hello"), nil},
		{"large", msg, len(msg), msg, nil},
		{"stops at n", msg, 70_000, msg[:70_000], nil},
		{"nothing then EOF", nil, 10, []byte{}, io.EOF},
		{"cut short", []byte("hel"), 5, []byte("hel"), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{bytes.NewReader(tt.data), iotest.OneByteReader(bytes.NewReader(tt.data)), iotest.DataErrReader(bytes.NewReader(tt.data))} {
				got, err := ReadFull(&watch{t: t, r: r}, tt.n, nil)
				if !errors.Is(err, tt.wantErr) || !bytes.Equal(got, tt.want) {
					t.Errorf("ReadFull = %d bytes, %v; want %d bytes, %v", len(got), err, len(tt.want), tt.wantErr)
				}
			}
		})
	}
}

// TestNoAllocationAhead announces a gigabyte and sends three bytes: the
// buffer stays at First.
func TestNoAllocationAhead(t *testing.T) {
	w := &watch{t: t, r: bytes.NewReader([]byte("abc"))}
	got, err := ReadFull(w, 1<<30, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(got) != "abc" || cap(got) > First {
		t.Errorf("ReadFull = %q (cap %d), %v", got, cap(got), err)
	}
	data, r := []byte("abc"), bytes.NewReader(nil)
	allocs := testing.AllocsPerRun(10, func() {
		r.Reset(data)
		_, _ = ReadFull(r, 1<<30, nil)
	})
	if allocs > 1 {
		t.Errorf("%v allocations for 3 bytes", allocs)
	}
}

func TestReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 100)
	got, err := ReadFull(bytes.NewReader([]byte("hello")), 5, buf)
	if err != nil || &got[0] != &buf[:1][0] {
		t.Errorf("ReadFull did not reuse a large enough buffer: %v", err)
	}
	if _, err := ReadFull(bytes.NewReader(nil), -1, nil); !errors.Is(err, ErrNegative) {
		t.Errorf("negative length: %v", err)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader([]byte("ab")), iotest.ErrReader(boom))
	got, err := ReadFull(r, 10, nil)
	if !errors.Is(err, boom) || string(got) != "ab" {
		t.Errorf("ReadFull = %q, %v; want \"ab\", boom", got, err)
	}
}

// FuzzReadFull reads n bytes from data and checks the result against
// io.ReadFull.
func FuzzReadFull(f *testing.F) {
	f.Add([]byte("hello"), uint32(5))
	f.Add([]byte("hel"), uint32(1<<20))
	f.Add(bytes.Repeat([]byte{7}, 70_000), uint32(66_000))
	f.Fuzz(func(t *testing.T, data []byte, n uint32) {
		n %= 1 << 22
		got, err := ReadFull(iotest.HalfReader(bytes.NewReader(data)), int(n), nil)
		want := make([]byte, min(int(n), len(data)))
		_, werr := io.ReadFull(bytes.NewReader(data), want)
		switch {
		case n > uint32(len(data)) && len(data) == 0:
			werr = io.EOF
		case n > uint32(len(data)):
			werr = io.ErrUnexpectedEOF
		}
		if !bytes.Equal(got, want) || !errors.Is(err, werr) && !(err == nil && werr == nil) {
			t.Fatalf("ReadFull(%d of %d bytes) = %d bytes, %v; io.ReadFull: %v", n, len(data), len(got), err, werr)
		}
		if cap(got) > 2*len(got)+First {
			t.Fatalf("%d bytes in a buffer of %d", len(got), cap(got))
		}
	})
}

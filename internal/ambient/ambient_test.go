package ambient

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func draw(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b := make([]byte, 64)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFork: a seeded source forks into streams fixed by the source and the
// purpose, one per purpose; the system's source forks into itself.
func TestFork(t *testing.T) {
	seed := make([]byte, 64)
	for i := range seed {
		seed[i] = byte(i)
	}
	fork := func(src []byte, purpose string) io.Reader {
		t.Helper()
		r, err := Fork(bytes.NewReader(src), purpose)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, again := draw(t, fork(seed, "cell")), draw(t, fork(seed, "cell"))
	if !bytes.Equal(a, again) {
		t.Errorf("one source and purpose gave two streams:\n%x\n%x", a, again)
	}
	if b := draw(t, fork(seed, "chain")); bytes.Equal(a, b) {
		t.Errorf("purposes cell and chain gave one stream %x", a)
	}
	if c := draw(t, fork(bytes.Repeat([]byte{8}, 64), "cell")); bytes.Equal(a, c) {
		t.Errorf("two sources gave one stream %x", a)
	}
	// Successive forks of one source differ: each reads its own key.
	src := bytes.NewReader(seed)
	f1, err1 := Fork(src, "x")
	f2, err2 := Fork(src, "x")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if bytes.Equal(draw(t, f1), draw(t, f2)) {
		t.Error("two forks of one source, one after the other, gave one stream")
	}
	for _, r := range []io.Reader{nil, Rand} {
		if f, err := Fork(r, "x"); err != nil || f != Rand {
			t.Errorf("Fork(%v) = %v, %v, want Rand", r, f, err)
		}
	}
}

func TestForkSourceFails(t *testing.T) {
	boom := errors.New("boom")
	if _, err := Fork(iotest.ErrReader(boom), "cell"); !errors.Is(err, ErrFork) || !errors.Is(err, boom) {
		t.Errorf("Fork of a failing source: %v, want ErrFork and the cause", err)
	}
	if _, err := Fork(bytes.NewReader(make([]byte, 31)), "cell"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Fork of a 31-byte source: %v, want io.ErrUnexpectedEOF", err)
	}
}

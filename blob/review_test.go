package blob

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"testing"
)

// changingFile is a file whose content changes after the first full read
// of it (a file edited while `files add` hashes, then seals it).
type changingFile struct {
	before, after []byte
	reads         atomic.Int64 // bytes read so far
}

func (f *changingFile) ReadAt(p []byte, off int64) (int, error) {
	src := f.before
	if f.reads.Load() >= int64(len(f.before)) {
		src = f.after
	}
	if off >= int64(len(src)) {
		return 0, io.EOF
	}
	n := copy(p, src[off:])
	f.reads.Add(int64(n))
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestImportFileChangedBetweenPasses: a derived key is the content's; a
// file that changes between the hash pass and the sealing pass must not
// be sealed under the key of the content it no longer holds (the same key
// and nonces over another plaintext: GCM's keystream and its hash key
// leak once the original is added too).
func TestImportFileChangedBetweenPasses(t *testing.T) {
	secret := []byte("the cell's blob secret")
	before := randomBytes(7, 3*hashChunk+5)
	after := bytes.Clone(before)
	after[hashChunk+3] ^= 1
	f := &changingFile{before: before, after: after}
	im, err := ImportFile(t.Context(), f, int64(len(before)), newMemBlocks(), ImportOptions{Secret: secret})
	if err == nil {
		h, _ := HashContent(t.Context(), bytes.NewReader(before), int64(len(before)))
		if im.Cap.Key == DeriveKey(secret, h) {
			t.Fatal("a file changed between the passes was sealed under the key of its former content")
		}
	} else if !errors.Is(err, ErrChanged) {
		t.Fatalf("import of a changing file: %v, want ErrChanged", err)
	}
	// The same, shrunk between the passes.
	f = &changingFile{before: before, after: before[:2*hashChunk]}
	if _, err := ImportFile(t.Context(), f, int64(len(before)), newMemBlocks(), ImportOptions{Secret: secret}); !errors.Is(err, ErrChanged) {
		t.Fatalf("import of a file shrunk between the passes: %v, want ErrChanged", err)
	}
}

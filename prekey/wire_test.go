package prekey

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/ratchet"
)

func TestReadRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"request", []byte{1}, true},
		{"empty", nil, false},
		{"other version", []byte{2}, false},
		{"version 0", []byte{0}, false},
		{"longer", []byte{1, 0}, false},
		{"much longer", bytes.Repeat([]byte{1}, 100), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := readRequest(bytes.NewReader(tc.in))
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrProtocol) {
				t.Fatalf("got %v, want ErrProtocol", err)
			}
		})
	}
	// A request written by writeRequest is read back; a stream error is
	// the stream's, not the protocol's.
	var buf bytes.Buffer
	if err := writeRequest(&buf); err != nil || buf.Len() != RequestSize {
		t.Fatalf("writeRequest: %v, %d bytes", err, buf.Len())
	}
	if err := readRequest(&buf); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := readRequest(iotest.ErrReader(boom)); !errors.Is(err, boom) || errors.Is(err, ErrProtocol) {
		t.Fatalf("a failing stream: %v", err)
	}
}

func TestReadAnswer(t *testing.T) {
	bundle := bytes.Repeat([]byte{7}, ratchet.MaxBundleSize)
	header := func(v byte, n int) []byte {
		return binary.BigEndian.AppendUint16([]byte{v}, uint16(n))
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte // nil: refused with ErrProtocol
	}{
		{"largest", encodeAnswer(bundle), bundle},
		{"one byte", encodeAnswer([]byte{9}), []byte{9}},
		{"empty stream", nil, nil},
		{"header cut", []byte{1, 0}, nil},
		{"other version", append(header(2, 1), 9), nil},
		{"length 0", header(1, 0), nil},
		{"length over the largest bundle", append(header(1, ratchet.MaxBundleSize+1), bundle...), nil},
		{"length 65535", header(1, 65535), nil},
		{"bundle cut", append(header(1, 10), 1, 2, 3), nil},
		{"bytes after", append(encodeAnswer([]byte{9}), 0), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAnswer(bytes.NewReader(tc.in))
			if tc.want == nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("got %d bytes, %v; want ErrProtocol", len(got), err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %d bytes, %v; want %d bytes", len(got), err, len(tc.want))
			}
		})
	}
	// One byte at a time, as a stream may deliver it.
	got, err := readAnswer(iotest.OneByteReader(bytes.NewReader(encodeAnswer(bundle))))
	if err != nil || !bytes.Equal(got, bundle) {
		t.Fatalf("one byte at a time: %d bytes, %v", len(got), err)
	}
	boom := errors.New("boom")
	if _, err := readAnswer(io.MultiReader(bytes.NewReader(header(1, 5)), iotest.ErrReader(boom))); !errors.Is(err, boom) {
		t.Fatalf("a failing stream: %v", err)
	}
}

// TestBundleFitsRecord: the largest bundle fits a DHT record's value and
// an answer's length field.
func TestBundleFitsRecord(t *testing.T) {
	if ratchet.MaxBundleSize > dht.MaxValueSize {
		t.Fatalf("a bundle of %d bytes does not fit a DHT record's %d", ratchet.MaxBundleSize, dht.MaxValueSize)
	}
	if ratchet.MaxBundleSize > 65535 {
		t.Fatalf("a bundle of %d bytes does not fit the answer's 2-byte length", ratchet.MaxBundleSize)
	}
}

// FuzzReadRequest: any bytes are a request or ErrProtocol, never a panic;
// only the one-byte request is taken.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Add([]byte{1, 1})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := readRequest(bytes.NewReader(b))
		if ok := bytes.Equal(b, []byte{wireVersion}); ok != (err == nil) {
			t.Fatalf("%x: %v", b, err)
		}
		if err != nil && !errors.Is(err, ErrProtocol) {
			t.Fatalf("%x: %v is not ErrProtocol", b, err)
		}
	})
}

// FuzzReadAnswer: any bytes are an answer or ErrProtocol, never a panic;
// what is taken is at most ratchet.MaxBundleSize bytes and encodes back to
// exactly its input; a bundle in it goes through ratchet's verification
// without a panic.
func FuzzReadAnswer(f *testing.F) {
	f.Add(encodeAnswer([]byte{9}))
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{1, 0xff, 0xff})
	f.Add(append(encodeAnswer([]byte{1, 2}), 3))
	f.Add(encodeAnswer(testBundleBytes(f)))
	id := testID(f, 0)
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := readAnswer(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("%v is not ErrProtocol", err)
			}
			return
		}
		if len(got) == 0 || len(got) > ratchet.MaxBundleSize {
			t.Fatalf("took %d bytes", len(got))
		}
		if !bytes.Equal(encodeAnswer(got), in) {
			t.Fatal("what was taken does not encode back to its input")
		}
		if _, err := verify(id, got); err != nil && !errors.Is(err, ratchet.ErrBadBundle) && !errors.Is(err, ErrWrongPeer) {
			t.Fatalf("verify: %v", err)
		}
	})
}

// FuzzDecodeState: any stored value decodes, and then encodes back the
// same, or is ErrCorruptState naming the key; never a panic.
func FuzzDecodeState(f *testing.F) {
	f.Add(testStateBytes(f))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, in []byte) {
		seq, keys, err := decodeState(in)
		if err != nil {
			if !errors.Is(err, ErrCorruptState) || !bytes.Contains([]byte(err.Error()), []byte(StateKey.String())) {
				t.Fatalf("%v: not ErrCorruptState naming %s", err, StateKey)
			}
			return
		}
		if wire := encodeState(seq, keys); !bytes.Equal(wire, in) {
			// Only a version 1 replay guard inside the keys encodes to
			// other bytes, as version 2 (ratchet's FuzzPrekeys); that
			// encoding must be stable.
			seq2, keys2, err := decodeState(wire)
			if err != nil || seq2 != seq || !bytes.Equal(encodeState(seq2, keys2), wire) {
				t.Fatalf("a decoded state encodes to other bytes, which do not decode and encode back the same (%v)", err)
			}
		}
	})
}

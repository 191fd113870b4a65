package mailbox

import (
	"bytes"
	"testing"
)

// FuzzDecodeEntries: any bytes are an entry list or an error, never a
// panic; a list that decodes encodes to the same bytes (one encoding per
// list, padding included).
func FuzzDecodeEntries(f *testing.F) {
	for _, in := range [][]Entry{nil, entries(1, 1), entries(3, 40), append(entries(2, 3), acks(3)...)} {
		b, err := EncodeEntries(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{listVersion, MaxEntries})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := DecodeEntries(b)
		if err != nil {
			return
		}
		again, err := EncodeEntries(es)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("entry list does not encode back to its bytes: %v", err)
		}
	})
}

// FuzzOpen: any value and sequence number open to entries or fail, never
// panic; what opens is what was sealed (the seeds), and anything else
// fails with ErrOpen exactly, since only the pair can seal.
func FuzzOpen(f *testing.F) {
	a, b := newCell(f, 1), newCell(f, 2)
	s := slot(f, pair(f, a, b), a, b, 7, 0)
	sealed := map[string]uint64{}
	for i, in := range [][]Entry{nil, entries(2, 30), entries(1, 2000), append(acks(2), entries(1, 9)...)} {
		v, err := s.Seal(in, uint64(i+1), bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 24)))
		if err != nil {
			f.Fatal(err)
		}
		sealed[string(v)] = uint64(i + 1)
		f.Add(v, uint64(i+1))
	}
	f.Add([]byte{}, uint64(0))
	f.Fuzz(func(t *testing.T, v []byte, seq uint64) {
		es, err := s.Open(v, seq)
		if want, ok := sealed[string(v)]; ok && want == seq {
			if err != nil {
				t.Fatalf("a sealed value does not open: %v", err)
			}
			if _, err := EncodeEntries(es); err != nil {
				t.Fatalf("opened entries do not encode: %v", err)
			}
			return
		}
		if err != ErrOpen {
			t.Fatalf("a value not sealed by the pair: %v, want ErrOpen", err)
		}
	})
}

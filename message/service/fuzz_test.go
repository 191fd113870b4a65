package service

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord: any stored bytes are a record (perhaps with corrupt
// sessions dropped) or errCorruptRecord, never a panic; a record that
// decodes whole encodes back to its bytes.
func FuzzDecodeRecord(f *testing.F) {
	r := peerRecord{listSent: 3}
	r.push(stored{id: [8]byte{1}, sess: newSession(f, 1), header: []byte{7, 7}})
	r.push(stored{id: [8]byte{2}, sess: newSession(f, 2)})
	b, err := r.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{sessionsVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // layout 1
	f.Fuzz(func(t *testing.T, b []byte) {
		r, bad, err := decodeRecord(b)
		if err != nil || bad > 0 {
			return
		}
		again, err := r.encode()
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != sessionsVersion {
			// Layout 1 is written in the current layout, which reads
			// back as the same record.
			r2, _, err := decodeRecord(again)
			if err != nil {
				t.Fatal(err)
			}
			b = again
			if again, err = r2.encode(); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(again, b) {
			t.Fatal("a decoded record does not encode back to its bytes")
		}
	})
}

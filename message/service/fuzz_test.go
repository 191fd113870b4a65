package service

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzDecodeRecord: any stored bytes are a record (perhaps with corrupt
// sessions dropped) or errCorruptRecord, never a panic; a record that
// decodes whole encodes back to its bytes.
func FuzzDecodeRecord(f *testing.F) {
	r := peerRecord{listSent: 3}
	r.push(stored{id: [8]byte{1}, run: [8]byte{3}, sess: newSession(f, 1), header: []byte{7, 7}})
	r.push(stored{id: [8]byte{2}, run: [8]byte{5, 1}, sess: newSession(f, 2)})
	b, err := r.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{sessionsVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{sessionsVersion, 0, 0, 0, 0, 0, 0, 0, 9, listKeyedFlag, 0})
	f.Add([]byte{sessionsVersion1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(encodeLayout1(f, r)) // the earlier layout: no flags, no runs
	f.Fuzz(func(t *testing.T, b []byte) {
		r, bad, err := decodeRecord(b)
		if err != nil || bad > 0 {
			return
		}
		again, err := r.encode()
		if err != nil {
			t.Fatal(err)
		}
		if b[0] == sessionsVersion1 {
			// Written again in the current layout (flags 0, each
			// session of the zero run), which reads back as the same
			// record.
			if r.listKeyed || slices.ContainsFunc(r.sessions, func(st stored) bool { return st.run != [8]byte{} }) {
				t.Fatal("a record of layout 1 read with a flag or a run")
			}
			if r, _, err = decodeRecord(again); err != nil {
				t.Fatal(err)
			}
			b = again
			if again, err = r.encode(); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(again, b) {
			t.Fatal("a decoded record does not encode back to its bytes")
		}
	})
}

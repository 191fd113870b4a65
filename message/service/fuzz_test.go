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
	f.Add([]byte{sessionsVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{sessionsVersion, 0, 0, 0, 0, 0, 0, 0, 9, listKeyedFlag, 0})
	f.Add(append(append([]byte{sessionsVersion1}, b[1:9]...), b[10:]...)) // the earlier layout: no flags
	f.Fuzz(func(t *testing.T, b []byte) {
		r, bad, err := decodeRecord(b)
		if err != nil || bad > 0 {
			return
		}
		want := b
		if b[0] == sessionsVersion1 { // written again in the current layout, flags 0
			want = append(append([]byte{sessionsVersion}, b[1:9]...), append([]byte{0}, b[9:]...)...)
		}
		again, err := r.encode()
		if err != nil || !bytes.Equal(again, want) {
			t.Fatalf("a decoded record does not encode back to its bytes: %v", err)
		}
	})
}

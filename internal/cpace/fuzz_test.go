package cpace

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzFinish feeds arbitrary peer messages to Finish: it must never panic,
// and must either fail with ErrInvalidMessage or return a full-size ISK.
func FuzzFinish(f *testing.F) {
	v := loadVectors(f)
	f.Add([]byte(v.Yb), []byte(v.ADb))
	f.Add([]byte(v.Ya), []byte(nil))
	f.Add([]byte(v.Invalid.YI1), []byte("x"))
	f.Add(make([]byte, 32), []byte(nil))
	f.Add(bytes.Repeat([]byte{0xff}, 32), []byte(nil))
	f.Add([]byte{}, []byte(nil))
	f.Add(make([]byte, 33), []byte(nil))
	f.Fuzz(func(t *testing.T, msg, ad []byte) {
		s, _, err := Start(Initiator, v.PRS, v.CI, v.SID, v.ADa, scalarReader(v.YaScalar))
		if err != nil {
			t.Fatal(err)
		}
		isk, err := s.Finish(msg, ad)
		if cerr := CheckMessage(msg); (cerr == nil) != (err == nil) {
			t.Fatalf("CheckMessage(%x) = %v, but Finish: %v", msg, cerr, err)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) || isk != nil {
				t.Fatalf("Finish(%x) = %x, %v", msg, isk, err)
			}
			return
		}
		if len(isk) != ISKSize {
			t.Fatalf("ISK has %d bytes", len(isk))
		}
		if len(msg) != MessageSize {
			t.Fatalf("accepted a %d-byte message", len(msg))
		}
	})
}

package message

import (
	"bytes"
	"testing"
)

// FuzzDecodeEnvelope: any bytes are an envelope or an error, never a
// panic; an envelope that decodes encodes to the same bytes (one
// encoding per envelope).
func FuzzDecodeEnvelope(f *testing.F) {
	for _, withList := range []bool{false, true} {
		b, err := sample(f, withList).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	courier := sample(f, true)
	courier.Author = deviceID(f, 11)
	b, err := courier.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	courier.File = sampleFile()
	if b, err = courier.Encode(); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	withFile := sample(f, false)
	withFile.File = sampleFile()
	if b, err = withFile.Encode(); err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{EnvelopeVersion})
	f.Add([]byte{EnvelopeVersionCourier})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b)
		if err != nil {
			return
		}
		again, err := e.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("envelope does not encode back to its bytes: %v", err)
		}
	})
}

// FuzzDecodeFrame: any bytes are a frame or an error; a frame that
// decodes encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	for _, fr := range []Frame{Ack(ID{1}), Refusal(), Busy(), {Kind: KindSession, Body: []byte("x")}} {
		b, err := fr.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := DecodeFrame(b)
		if err != nil {
			return
		}
		again, err := fr.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("frame does not encode back to its bytes: %v", err)
		}
	})
}

// FuzzDecodeReceipt: any bytes are a receipt or an error, never a
// panic; a receipt that decodes encodes to the same bytes.
func FuzzDecodeReceipt(f *testing.F) {
	b, err := sampleReceipt(f).Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{ReceiptVersion})
	f.Add(append([]byte{EnvelopeVersion}, b[1:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReceipt(b)
		if err != nil {
			return
		}
		again, err := r.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("receipt does not encode back to its bytes: %v", err)
		}
		if !IsReceipt(b) {
			t.Fatal("a receipt that IsReceipt does not know")
		}
	})
}

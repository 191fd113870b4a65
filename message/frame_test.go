package message

import (
	"bytes"
	"errors"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	id := ID{9: 9}
	frames := []Frame{
		{Kind: KindInitial, Body: bytes.Repeat([]byte{1}, 300)},
		{Kind: KindSession, Body: bytes.Repeat([]byte{2}, 100)},
		Ack(id),
		Refusal(),
		Busy(),
	}
	for i, want := range frames {
		b, err := want.Encode()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		got, err := DecodeFrame(b)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.Kind != want.Kind || !bytes.Equal(got.Body, want.Body) {
			t.Fatalf("frame %d: %+v, want %+v", i, got, want)
		}
	}
	if got, ok := frames[2].AckID(); !ok || got != id {
		t.Fatalf("AckID: %v %v", got, ok)
	}
	if _, ok := frames[3].AckID(); ok {
		t.Fatal("a refusal names a message")
	}
}

func TestFrameRefused(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
	}{
		{"other version", append([]byte{2, KindAck, 0, 0, 0, 16}, make([]byte, 16)...)},
		{"unknown kind", []byte{1, 9, 0, 0, 0, 0}},
		{"kind past busy", []byte{1, KindBusy + 1, 0, 0, 0, 0}},
		{"busy with detail", []byte{1, KindBusy, 0, 0, 0, 1, 'x'}},
		{"kind zero", []byte{1, 0, 0, 0, 0, 0}},
		{"too long", []byte{1, KindSession, 0, 0x10, 0, 1}},
		{"ack of 15 bytes", append([]byte{1, KindAck, 0, 0, 0, 15}, make([]byte, 15)...)},
		{"refusal with detail", []byte{1, KindRefusal, 0, 0, 0, 1, 'x'}},
		{"empty session message", []byte{1, KindSession, 0, 0, 0, 0}},
		{"empty initial message", []byte{1, KindInitial, 0, 0, 0, 0}},
		{"truncated body", []byte{1, KindSession, 0, 0, 0, 9, 1}},
		{"trailing byte", []byte{1, KindRefusal, 0, 0, 0, 0, 0}},
		{"truncated header", []byte{1, KindSession, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeFrame(tt.b); !errors.Is(err, ErrBadFrame) {
				t.Fatalf("DecodeFrame: %v, want ErrBadFrame", err)
			}
		})
	}
	if _, err := (Frame{Kind: KindSession, Body: make([]byte, MaxFrameBody+1)}).Encode(); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("Encode of a body too long: %v", err)
	}
	// The largest initial message fits: PQXDH's header, the ratchet's
	// overhead and the largest envelope.
	if 1743+85+MaxEnvelope > MaxFrameBody {
		t.Fatalf("MaxFrameBody %d is under the largest initial message %d", MaxFrameBody, 1743+85+MaxEnvelope)
	}
}

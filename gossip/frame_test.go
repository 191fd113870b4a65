package gossip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadPacket(t *testing.T) {
	tag := testTag(1)
	good := appendPacket(nil, tag, []byte("ping"))
	withLen := func(n uint32) []byte {
		b := appendHeader(nil, tag)
		return binary.BigEndian.AppendUint32(b, n)
	}
	for _, tt := range []struct {
		name    string
		in      []byte
		want    []byte
		wantErr error
	}{
		{"packet", good, []byte("ping"), nil},
		{"trailing bytes left unread", append(bytes.Clone(good), "more"...), []byte("ping"), nil},
		{"largest", appendPacket(nil, tag, make([]byte, MaxPacketSize)), make([]byte, MaxPacketSize), nil},
		{"other version", append([]byte{0xE2}, good[1:]...), nil, ErrBadHeader},
		{"other cell", appendPacket(nil, testTag(2), []byte("ping")), nil, ErrBadHeader},
		{"empty packet", withLen(0), nil, ErrBadHeader},
		{"too large", withLen(MaxPacketSize + 1), nil, ErrPacketTooLarge},
		{"huge length", withLen(1<<32 - 1), nil, ErrPacketTooLarge},
		{"no header", nil, nil, io.EOF},
		{"short header", good[:5], nil, io.ErrUnexpectedEOF},
		{"short length", good[:headerSize+2], nil, io.ErrUnexpectedEOF},
		{"short payload", good[:len(good)-1], nil, io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readPacket(bytes.NewReader(tt.in), tag)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("readPacket error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("payload (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzReadPacket: arbitrary bytes on a packet stream never panic the
// reader; a packet it accepts is within bounds and re-encodes to the bytes
// it consumed.
func FuzzReadPacket(f *testing.F) {
	tag := testTag(1)
	f.Add(appendPacket(nil, tag, []byte("ping")))
	f.Add(appendPacket(nil, tag, bytes.Repeat([]byte{1}, 1000)))
	f.Add(appendHeader(nil, tag))
	f.Add([]byte{headerVersion})
	f.Add(binary.BigEndian.AppendUint32(appendHeader(nil, tag), MaxPacketSize+1))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		p, err := readPacket(r, tag)
		if err != nil {
			if p != nil {
				t.Fatal("payload returned with an error")
			}
			return
		}
		if len(p) == 0 || len(p) > MaxPacketSize {
			t.Fatalf("accepted a payload of %d bytes", len(p))
		}
		consumed := b[:len(b)-r.Len()]
		if again := appendPacket(nil, tag, p); !bytes.Equal(again, consumed) {
			t.Fatalf("re-encoded %x, consumed %x", again, consumed)
		}
		// The stream header alone, as the stream protocol reads it.
		if err := readHeader(bytes.NewReader(b), tag); err != nil {
			t.Fatalf("readHeader refused the header of an accepted packet: %v", err)
		}
	})
}

// FuzzDecodeBroadcast: arbitrary user messages never panic the envelope
// decoder; what it accepts re-encodes to the same bytes.
func FuzzDecodeBroadcast(f *testing.F) {
	f.Add(appendBroadcast(nil, [broadcastIDSize]byte{1}, []byte("heads")))
	f.Add([]byte{broadcastVersion})
	f.Add(appendBroadcast(nil, [broadcastIDSize]byte{}, make([]byte, maxTopicMessage+1)))
	f.Add(append([]byte{1}, make([]byte, broadcastIDSize+5)...)) // version 1, before topics
	f.Fuzz(func(t *testing.T, b []byte) {
		id, payload, err := decodeBroadcast(b)
		if err != nil {
			if !errors.Is(err, errBadBroadcast) {
				t.Fatalf("error %v is not errBadBroadcast", err)
			}
			return
		}
		if len(payload) == 0 || len(payload) > maxTopicMessage {
			t.Fatalf("accepted a payload of %d bytes", len(payload))
		}
		if again := appendBroadcast(nil, id, payload); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, want %x", again, b)
		}
	})
}

// TestReadPacketAllocatesAsBytesArrive announces the largest packet and
// sends three bytes of it: reading it allocates a few KiB, not the 64 KiB
// announced.
func TestReadPacketAllocatesAsBytesArrive(t *testing.T) {
	in := append(binary.BigEndian.AppendUint32(appendHeader(nil, testTag(1)), MaxPacketSize), 1, 2, 3)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 16
	for range runs {
		if _, err := readPacket(bytes.NewReader(in), testTag(1)); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut-short packet: %v, want io.ErrUnexpectedEOF", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 16<<10 {
		t.Errorf("%d bytes allocated per read of a %d-byte packet cut after 3 bytes", per, MaxPacketSize)
	}
}

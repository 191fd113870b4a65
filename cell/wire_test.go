package cell

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// TestFrameCapsAreTheRealSizes checks each reader's cap against the
// largest message of its kind actually encoded, so that a cap is neither
// looser than the message nor too tight for it.
func TestFrameCapsAreTheRealSizes(t *testing.T) {
	isk := bytes.Repeat([]byte{1}, 64)
	sealed, err := sealWith(rand.Reader, isk, labelRequest, joinRequest{Name: strings.Repeat("n", MaxNameLen)}.encode())
	if err != nil {
		t.Fatal(err)
	}
	roster, err := sealWith(rand.Reader, isk, labelWelcome, make([]byte, 1000))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want int
	}{
		{"hello", len(hello{}.encode()), maxHelloFrame},
		{"reply", len(reply{Status: statusOK}.encode()), maxReplyFrame},
		{"sealed request", len(sealed), maxSealedRequest},
		{"confirm", len(confirm{Sealed: sealed}.encode()), maxConfirmFrame},
		{"welcome of a 1000-byte roster", len(welcome{Status: statusOK, Sealed: roster}.encode()), maxWelcomeFrame - MaxRosterLen + 1000},
		{"push of a 1000-byte roster", len(rosterMsg{Type: msgPush, Roster: make([]byte, 1000)}.encode()), maxPushFrame - MaxRosterLen + 1000},
		{"answer with a 1000-byte roster", len(rosterMsg{Type: msgRoster, Roster: make([]byte, 1000)}.encode()), maxAnswerFrame - MaxRosterLen + 1000},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %d bytes, cap %d", tt.name, tt.got, tt.want)
		}
	}
	if pull := len(rosterMsg{Type: msgPull}.encode()); pull > maxPushFrame {
		t.Errorf("pull of %d bytes over the push cap", pull)
	}
	if _, err := decodeConfirm(confirm{Sealed: sealed}.encode()); err != nil {
		t.Errorf("largest confirm refused: %v", err)
	}
}

func frameOf(n int) []byte {
	return binary.AppendUvarint(nil, uint64(n))
}

// TestReadFrameCaps: a frame at a reader's cap is read; one byte more is
// refused from its length alone, before any byte of it arrives.
func TestReadFrameCaps(t *testing.T) {
	for _, limit := range []int{maxHelloFrame, maxReplyFrame, maxConfirmFrame, maxWelcomeFrame, maxPushFrame, maxAnswerFrame} {
		body := bytes.Repeat([]byte{7}, limit)
		got, err := readFrame(bufio.NewReader(bytes.NewReader(append(frameOf(limit), body...))), limit)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("frame of %d bytes at its cap: %d bytes, %v", limit, len(got), err)
		}
		_, err = readFrame(bufio.NewReader(bytes.NewReader(frameOf(limit+1))), limit)
		if !errors.Is(err, ErrBadMessage) {
			t.Errorf("frame of %d bytes over a cap of %d: %v, want ErrBadMessage", limit+1, limit, err)
		}
	}
	_, err := readFrame(bufio.NewReader(bytes.NewReader(frameOf(maxHelloFrame+1))), maxHelloFrame)
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized hello: %v", err)
	}
}

// TestReadFrameAllocatesAsBytesArrive announces the largest frame and
// sends three bytes of it: reading it allocates a few KiB, not the
// megabyte announced.
func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	in := append(frameOf(maxFrame), 1, 2, 3)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 16
	for range runs {
		if _, err := readFrame(bufio.NewReader(bytes.NewReader(in)), maxFrame); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut-short frame: %v, want io.ErrUnexpectedEOF", err)
		}
	}
	runtime.ReadMemStats(&after)
	// A bufio.Reader (4 KiB), the first 4 KiB of the frame, and change.
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 16<<10 {
		t.Errorf("%d bytes allocated per read of a %d-byte frame cut after 3 bytes", per, maxFrame)
	}
}

package core

import (
	"bytes"
	"crypto/rand"
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
		{"hello", len(hello{}.encode()), MaxHelloFrame},
		{"reply", len(reply{Status: StatusOK}.encode()), MaxReplyFrame},
		{"sealed request", len(sealed), maxSealedRequest},
		{"confirm", len(confirm{Sealed: sealed}.encode()), MaxConfirmFrame},
		{"welcome of a 1000-byte roster", len(welcome{Status: StatusOK, Sealed: roster}.encode()), MaxWelcomeFrame - MaxRosterLen + 1000},
		{"push of a 1000-byte roster", len(RosterMsg{Type: MsgPush, Roster: make([]byte, 1000)}.Encode()), MaxPushFrame - MaxRosterLen + 1000},
		{"answer with a 1000-byte roster", len(RosterMsg{Type: MsgRoster, Roster: make([]byte, 1000)}.Encode()), MaxAnswerFrame - MaxRosterLen + 1000},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %d bytes, cap %d", tt.name, tt.got, tt.want)
		}
	}
	if pull := len(RosterMsg{Type: MsgPull}.Encode()); pull > MaxPushFrame {
		t.Errorf("pull of %d bytes over the push cap", pull)
	}
	if _, err := decodeConfirm(confirm{Sealed: sealed}.encode()); err != nil {
		t.Errorf("largest confirm refused: %v", err)
	}
}

package cell

import (
	"bufio"
	"crypto/rand"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell/core"
)

// Hooks for the external tests in this directory (package cell_test), which
// speak the protocols by hand over a simulated network.

func WriteFrame(w io.Writer, b []byte) error    { return writeFrame(w, b) }
func ReadFrame(r *bufio.Reader) ([]byte, error) { return readFrame(r, core.MaxFrame) }
func PushFrame(roster []byte) []byte {
	return core.RosterMsg{Type: core.MsgPush, Roster: roster}.Encode()
}

// StartJoin begins a join run as joiner with code c towards admin, as the
// join protocol does, and returns the hello frame and a function that makes
// the confirm frame from the admin's reply.
func StartJoin(t testing.TB, c Code, admin, joiner peer.ID) (helloFrame []byte, confirmFor func(reply []byte) []byte) {
	t.Helper()
	box, err := core.NewBoxKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	run, hello, err := core.NewJoinerRun(c, admin, joiner, box.Public(), "recorded", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return hello, func(reply []byte) []byte {
		conf, err := run.Reply(reply)
		if err != nil {
			t.Fatalf("reply %x: %v", reply, err)
		}
		return conf
	}
}

// ReplyErr returns the error a reply frame stands for.
func ReplyErr(b []byte) error { return core.AnswerErr(b) }

// WelcomeErr returns the error a welcome frame stands for.
func WelcomeErr(b []byte) error { return core.AnswerErr(b) }

// RosterAnswerRefused reports whether a roster-protocol answer refuses.
func RosterAnswerRefused(b []byte) bool {
	m, err := core.DecodeRosterMsg(b)
	return err == nil && m.Type == core.MsgRoster && m.Status == core.StatusRefused
}

// OpenInvite reports whether s serves an open invite under nameplate.
func OpenInvite(s *Service, nameplate uint16) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.admin.Invites[nameplate]
	return ok
}

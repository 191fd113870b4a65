package cell

import (
	"bufio"
	"crypto/rand"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/cpace"
)

// Hooks for the external tests in this directory (package cell_test), which
// speak the protocols by hand over a simulated network.

func WriteFrame(w io.Writer, b []byte) error    { return writeFrame(w, b) }
func ReadFrame(r *bufio.Reader) ([]byte, error) { return readFrame(r, maxFrame) }
func PushFrame(roster []byte) []byte            { return rosterMsg{Type: msgPush, Roster: roster}.encode() }

// StartJoin begins a join run as joiner with code c towards admin, as the
// join protocol does, and returns the hello frame and a function that makes
// the confirm frame from the admin's reply.
func StartJoin(t testing.TB, c Code, admin, joiner peer.ID) (helloFrame []byte, confirmFor func(reply []byte) []byte) {
	t.Helper()
	h := hello{Version: joinVersion, Nameplate: c.Nameplate}
	rand.Read(h.Sid[:])
	st, ya, err := cpace.Start(cpace.Initiator, c.Password(), joinCI(admin, joiner), h.Sid[:], nil, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h.Y = [pointLen]byte(ya)
	return h.encode(), func(reply []byte) []byte {
		r, err := decodeReply(reply)
		if err != nil || r.Status != statusOK {
			t.Fatalf("reply %x: status %d, %v", reply, r.Status, err)
		}
		isk, err := st.Finish(r.Y[:], nil)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := sealWith(rand.Reader, isk, labelRequest, joinRequest{Name: "recorded", BoxKey: mustBoxKey().Public()}.encode())
		if err != nil {
			t.Fatal(err)
		}
		return confirm{Tag: [tagLen]byte(cpace.ConfirmTag(isk, h.Sid[:], ya, nil)), Sealed: sealed}.encode()
	}
}

// ReplyErr returns the error a reply frame stands for.
func ReplyErr(b []byte) error {
	r, err := decodeReply(b)
	if err != nil {
		return err
	}
	return statusErr(r.Status)
}

// WelcomeErr returns the error a welcome frame stands for.
func WelcomeErr(b []byte) error {
	w, err := decodeWelcome(b)
	if err != nil {
		return err
	}
	return statusErr(w.Status)
}

// RosterAnswerRefused reports whether a roster-protocol answer refuses.
func RosterAnswerRefused(b []byte) bool {
	m, err := decodeRosterMsg(b)
	return err == nil && m.Type == msgRoster && m.Status == statusRefused
}

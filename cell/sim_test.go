package cell_test

import (
	"bufio"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/simnet"
)

// TestReplayedAndTamperedMessages speaks the protocols by hand on a
// simulated network: a replayed hello is refused without being counted, a
// replayed confirmation is refused as a wrong code, a tampered
// roster push is refused, and the node goes on.
func TestReplayedAndTamperedMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := simnet.New(simnet.Config{Seed: 9})
		defer func() {
			if err := n.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			time.Sleep(time.Minute)
		}()
		admin, err := n.AddNode(ctx, simnet.NodeConfig{})
		if err != nil {
			t.Fatal(err)
		}
		attacker, err := n.AddNode(ctx, simnet.NodeConfig{Bootstrap: []*simnet.Node{admin}})
		if err != nil {
			t.Fatal(err)
		}
		ac := admin.Peer().Cell()
		if _, err := ac.Create(ctx, "home", "admin"); err != nil {
			t.Fatal(err)
		}
		h := attacker.Peer().Host()
		open := func(p protocol.ID) (network.Stream, *bufio.Reader) {
			t.Helper()
			s, err := h.NewStream(ctx, admin.ID, p)
			if err != nil {
				t.Fatalf("stream: %v", err)
			}
			return s, bufio.NewReader(s)
		}
		roundTrip := func(s network.Stream, rd *bufio.Reader, frame []byte) []byte {
			t.Helper()
			if err := cell.WriteFrame(s, frame); err != nil {
				t.Fatalf("write: %v", err)
			}
			b, err := cell.ReadFrame(rd)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			return b
		}

		code, _, err := ac.Invite(cell.InviteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Run 1, with the right code, recorded and abandoned after the
		// admin's reply.
		hello, confirmFor := cell.StartJoin(t, code, admin.ID, attacker.ID)
		s1, rd1 := open(cell.ProtocolJoin)
		confirm := confirmFor(roundTrip(s1, rd1, hello))
		_ = s1.Reset()
		// Run 2 replays run 1's hello: refused at once, and not counted,
		// since a replayed CPace message tests no new guess.
		s2, rd2 := open(cell.ProtocolJoin)
		if err := cell.ReplyErr(roundTrip(s2, rd2, hello)); !errors.Is(err, cell.ErrBadMessage) {
			t.Errorf("replayed hello: %v, want ErrBadMessage", err)
		}
		s2.Close()
		// Run 3 sends a fresh hello, then run 1's confirm: the admin
		// answered with a fresh CPace message, so the old confirmation
		// does not verify.
		hello3, _ := cell.StartJoin(t, code, admin.ID, attacker.ID)
		s3, rd3 := open(cell.ProtocolJoin)
		roundTrip(s3, rd3, hello3)
		if err := cell.WelcomeErr(roundTrip(s3, rd3, confirm)); !errors.Is(err, cell.ErrWrongCode) {
			t.Errorf("replayed confirm: %v, want ErrWrongCode", err)
		}
		s3.Close()
		// Runs 1 and 3 were counted: this peer has one attempt left, and
		// the right code, used properly, still works.
		hello, confirmFor = cell.StartJoin(t, code, admin.ID, attacker.ID)
		s6, rd6 := open(cell.ProtocolJoin)
		if err := cell.WelcomeErr(roundTrip(s6, rd6, confirmFor(roundTrip(s6, rd6, hello)))); err != nil {
			t.Errorf("proper run after a replay: %v", err)
		}
		s6.Close()
		r := ac.Roster()
		if r.Version != 2 || !r.Has(attacker.ID) {
			t.Fatalf("roster version %d, has joiner %v; want 2, true", r.Version, r.Has(attacker.ID))
		}

		// A tampered roster push is refused.
		bad := r.Encode()
		bad[len(bad)/2] ^= 1
		s4, rd4 := open(cell.ProtocolRoster)
		if !cell.RosterAnswerRefused(roundTrip(s4, rd4, cell.PushFrame(bad))) {
			t.Error("tampered roster push not refused")
		}
		s4.Close()
		// Garbage resets the stream; the node goes on.
		s5, rd5 := open(cell.ProtocolRoster)
		_ = cell.WriteFrame(s5, []byte{0xee, 1, 2})
		if _, err := cell.ReadFrame(rd5); err == nil {
			t.Error("garbage got an answer")
		}
		s5.Close()
		if v := ac.Roster().Version; v != r.Version {
			t.Errorf("admin roster version %d after bad pushes, want %d", v, r.Version)
		}
		if _, _, err := ac.Invite(cell.InviteOptions{}); err != nil {
			t.Errorf("admin after bad input: %v", err)
		}
	})
}

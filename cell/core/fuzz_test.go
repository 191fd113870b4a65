package core

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// fuzzPeer is the peer ID of a fixed key.
func fuzzPeer(t testing.TB, i uint64) peer.ID {
	seed := binary.BigEndian.AppendUint64(make([]byte, ed25519.SeedSize-8), i)
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// FuzzJoinMachines feeds arbitrary frames to both sides of the join
// protocol's machines, as a peer may send them: the admin's Hello and
// Confirm, the joiner's Reply and Welcome. They never panic, a run that
// ends says so (Done) with a frame or a reason, only a confirm that
// proves the code asks for admission, and the joiner's errors say whose
// they are.
func FuzzJoinMachines(f *testing.F) {
	code := Code{Nameplate: 4721, Words: [3]uint16{5, 6, 7}}
	f.Add(hello{Version: joinVersion, Nameplate: code.Nameplate}.encode(), confirm{Sealed: []byte("x")}.encode(),
		reply{Status: StatusOK}.encode(), welcome{Status: StatusOK, Sealed: []byte("x")}.encode())
	f.Add([]byte{msgHello}, []byte{msgConfirm}, reply{Status: StatusWrongCode}.encode(), welcome{Status: StatusRefused}.encode())
	f.Add([]byte{}, []byte{}, []byte{}, []byte{})
	admin, joiner := fuzzPeer(f, 1), fuzzPeer(f, 2)
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, helloFrame, confirmFrame, replyFrame, welcomeFrame []byte) {
		rng := rand.NewChaCha8([32]byte{'f'})
		a := NewAdmin(admin, Limits{PerPeer: 3, Total: 20})
		a.Invites[code.Nameplate] = NewInvite(code, RoleChain, now.Add(time.Hour))
		run, step := a.Hello(joiner, helloFrame, now, rng)
		if step.Done != (step.Err != nil) || (step.Done && step.Send == nil) {
			t.Fatalf("hello step %+v", step)
		}
		if !step.Done {
			step = a.Confirm(run, confirmFrame)
			if step.Admit {
				t.Fatal("a fuzzed confirm proved the code")
			}
			if !step.Done || step.Err == nil {
				t.Fatalf("confirm step %+v", step)
			}
		}
		box, err := NewBoxKey(rng)
		if err != nil {
			t.Fatal(err)
		}
		j, _, err := NewJoinerRun(code, admin, joiner, box.Public(), "fuzz", rng)
		if err != nil {
			t.Fatal(err)
		}
		conf, err := j.Reply(replyFrame)
		if err != nil {
			var final *FinalError
			if !IsAnswer(err) && !errors.Is(err, ErrWrongCode) && !errors.As(err, &final) {
				t.Fatalf("reply: error %v is neither an answer nor a wrong code", err)
			}
			return
		}
		if len(conf) == 0 {
			t.Fatal("no confirm")
		}
		if _, err := j.Welcome(welcomeFrame); err == nil {
			t.Fatal("a fuzzed welcome was taken")
		}
	})
}

package contact

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seeded is a deterministic random source for CPace's scalars.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return rand.NewChaCha8(s)
}

func code(t testing.TB, np uint16, words ...uint16) Code {
	t.Helper()
	c := Code{Nameplate: np}
	copy(c.Words[:], words)
	return c
}

// exchange runs the invite exchange between an acceptor that typed typed
// and an inviter holding code, and returns each side's result.
func exchange(t *testing.T, typed, held Code, acceptorCard, inviterCard *Card) (gotByInviter, gotByAcceptor *Card, err error) {
	t.Helper()
	inviter, acceptor := device(t, 50), device(t, 51)
	a, hello, err := NewAcceptRun(typed, inviter, acceptor, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	np, err := ReadHello(hello)
	if err != nil || np != typed.Nameplate {
		t.Fatalf("ReadHello = %d, %v", np, err)
	}
	r, reply, err := NewInviteRun(held, inviter, acceptor, hello, seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := a.Reply(reply, acceptorCard)
	if err != nil {
		return nil, nil, err
	}
	theirs, final, err := r.Confirm(proof, inviterCard)
	if err != nil {
		return nil, nil, err
	}
	mine, err := a.Final(final)
	return theirs, mine, err
}

func TestInviteExchange(t *testing.T) {
	alice := &Card{Name: "Alice", Devices: signedList(t, 1, 3, 10, 50)}
	bob := &Card{Name: "Bob", Devices: signedList(t, 2, 1, 51)}
	c := code(t, 4721, 5, 600, 2047)
	byInviter, byAcceptor, err := exchange(t, c, c, bob, alice)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bob, byInviter); diff != "" {
		t.Errorf("the inviter got (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(alice, byAcceptor); diff != "" {
		t.Errorf("the acceptor got (-want +got):\n%s", diff)
	}
}

// TestInviteCardOfAnotherDevice: a card is taken only from a device on
// its own device list, so a code typed in does not tie this cell to a
// cell the peer is no device of: the inviter refuses an acceptor's card
// that does not name the acceptor, the acceptor an inviter's card that
// does not name the inviter (ErrNotOnCard).
func TestInviteCardOfAnotherDevice(t *testing.T) {
	c := code(t, 4721, 5, 600, 2047)
	alice := &Card{Name: "Alice", Devices: signedList(t, 1, 3, 50)}
	bob := &Card{Name: "Bob", Devices: signedList(t, 2, 1, 51)}
	notBob := &Card{Name: "Bob", Devices: signedList(t, 2, 1, 20)}
	notAlice := &Card{Name: "Alice", Devices: signedList(t, 1, 3, 10)}
	if _, _, err := exchange(t, c, c, notBob, alice); !errors.Is(err, ErrNotOnCard) {
		t.Errorf("the acceptor is not on its card: %v, want ErrNotOnCard", err)
	}
	if _, _, err := exchange(t, c, c, bob, notAlice); !errors.Is(err, ErrNotOnCard) {
		t.Errorf("the inviter is not on its card: %v, want ErrNotOnCard", err)
	}
}

func TestInviteWrongCode(t *testing.T) {
	alice := &Card{Name: "Alice", Devices: signedList(t, 1, 3, 50)}
	bob := &Card{Name: "Bob", Devices: signedList(t, 2, 1, 51)}
	held := code(t, 4721, 5, 600, 2047)
	typo := code(t, 4721, 5, 601, 2047)
	if _, _, err := exchange(t, typo, held, bob, alice); !errors.Is(err, ErrWrongCode) {
		t.Fatalf("a mistyped code: %v, want ErrWrongCode", err)
	}
	// An acceptor that sends a proof it cannot make (it did not hold the
	// code): the inviter refuses it and counts the attempt.
	inviter, acceptor := device(t, 50), device(t, 51)
	_, hello, err := NewAcceptRun(typo, inviter, acceptor, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := NewInviteRun(held, inviter, acceptor, hello, seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	forged := append(make([]byte, 64), make([]byte, 40)...)
	if _, _, err := r.Confirm(forged, alice); !errors.Is(err, ErrWrongCode) {
		t.Errorf("a forged proof: %v, want ErrWrongCode", err)
	}
	if _, _, err := r.Confirm(forged, alice); !errors.Is(err, ErrUsed) {
		t.Errorf("a second confirm: %v, want ErrUsed", err)
	}
}

func TestInviteRefusals(t *testing.T) {
	alice := &Card{Name: "Alice", Devices: signedList(t, 1, 3, 50)}
	bob := &Card{Name: "Bob", Devices: signedList(t, 2, 1, 51)}
	c := code(t, 7, 1, 2, 3)
	inviter, acceptor := device(t, 50), device(t, 51)
	a, hello, err := NewAcceptRun(c, inviter, acceptor, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reply(NoInviteReply(), bob); !errors.Is(err, ErrNoInvite) {
		t.Errorf("no invite: %v", err)
	}
	if _, _, err := NewInviteRun(code(t, 8, 1, 2, 3), inviter, acceptor, hello, seeded(2)); !errors.Is(err, ErrBadMessage) {
		t.Errorf("a hello for another nameplate: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty": nil, "short": hello[:10], "long": append(bytes.Clone(hello), 0), "magic": append([]byte("EXI9"), hello[4:]...),
	} {
		if _, err := ReadHello(b); !errors.Is(err, ErrBadMessage) {
			t.Errorf("hello %s: %v", name, err)
		}
	}
	// A tampered final message does not open.
	a, hello, _ = NewAcceptRun(c, inviter, acceptor, seeded(1))
	r, reply, err := NewInviteRun(c, inviter, acceptor, hello, seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := a.Reply(reply, bob)
	if err != nil {
		t.Fatal(err)
	}
	_, final, err := r.Confirm(proof, alice)
	if err != nil {
		t.Fatal(err)
	}
	final[3] ^= 1
	if _, err := a.Final(final); !errors.Is(err, ErrBadMessage) {
		t.Errorf("a tampered final message: %v", err)
	}
	// The run is bound to the two peers: a reply made for another
	// acceptor does not verify.
	a2, _, _ := NewAcceptRun(c, inviter, device(t, 52), seeded(1))
	if _, err := a2.Reply(reply, bob); !errors.Is(err, ErrWrongCode) {
		t.Errorf("a reply for another acceptor: %v, want ErrWrongCode", err)
	}
}

// FuzzInviteMessages: whatever a peer sends at each step is refused or
// read, never a panic.
func FuzzInviteMessages(f *testing.F) {
	c := Code{Nameplate: 12, Words: [3]uint16{1, 2, 3}}
	inviter, acceptor := device(f, 50), device(f, 51)
	_, hello, _ := NewAcceptRun(c, inviter, acceptor, seeded(1))
	_, reply, _ := NewInviteRun(c, inviter, acceptor, hello, seeded(2))
	f.Add(hello, reply, []byte{1})
	f.Add([]byte{}, []byte{1}, make([]byte, 80))
	mine := &Card{Name: "M", Devices: signedList(f, 1, 1, 10)}
	f.Fuzz(func(t *testing.T, h, rep, conf []byte) {
		_, _ = ReadHello(h)
		if r, _, err := NewInviteRun(c, inviter, acceptor, h, seeded(3)); err == nil {
			_, _, _ = r.Confirm(conf, mine)
		}
		a, _, _ := NewAcceptRun(c, inviter, acceptor, seeded(1))
		if _, err := a.Reply(rep, mine); err == nil {
			_, _ = a.Final(conf)
		}
	})
}

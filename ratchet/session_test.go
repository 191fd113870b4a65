package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// seeded is a deterministic reader of the given seed: the injected
// randomness of the tests.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

// newPair makes an initiator (Alice) and a responder (Bob) that share a
// Secret and AD drawn from rng, as a handshake would leave them.
func newPair(t testing.TB, rng io.Reader) (alice, bob *Session) {
	t.Helper()
	var s Secret
	var ad [13 + 64]byte
	copy(ad[:], "exopeer-ad-v1")
	for _, b := range [][]byte{s.Root[:], s.HeaderA[:], s.HeaderB[:], ad[13:]} {
		if _, err := io.ReadFull(rng, b); err != nil {
			t.Fatal(err)
		}
	}
	bobKey, err := readKey(rng)
	if err != nil {
		t.Fatal(err)
	}
	if alice, err = NewInitiator(&Exopeer, rng, s, ad[:], bobKey.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if bob, err = NewResponder(&Exopeer, s, ad[:], bobKey); err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// conv is a conversation under test: named parties, messages by label.
type conv struct {
	t    *testing.T
	rng  io.Reader
	seed uint64
	p    map[string]*Session
	msgs map[string][]byte
}

func newConv(t *testing.T, seed uint64) *conv {
	rng := seeded(seed)
	a, b := newPair(t, rng)
	return &conv{t: t, rng: rng, seed: seed, p: map[string]*Session{"a": a, "b": b}, msgs: map[string][]byte{}}
}

// send has party from encrypt the plaintext label as message label.
func (c *conv) send(from string, labels ...string) {
	c.t.Helper()
	for _, l := range labels {
		m, err := c.p[from].Encrypt(c.rng, []byte(l))
		if err != nil {
			c.t.Fatalf("seed %d: %s sends %s: %v", c.seed, from, l, err)
		}
		c.msgs[l] = m
	}
}

// open has party to decrypt messages by label; each must open.
func (c *conv) open(to string, labels ...string) {
	c.t.Helper()
	for _, l := range labels {
		pt, err := c.p[to].Decrypt(c.msgs[l])
		if err != nil || string(pt) != l {
			c.t.Fatalf("seed %d: %s opens %s: %q, %v", c.seed, to, l, pt, err)
		}
	}
}

// refuse has party to decrypt messages by label; each must be refused,
// with the session unchanged.
func (c *conv) refuse(to string, labels ...string) {
	c.t.Helper()
	for _, l := range labels {
		refused(c.t, c.p[to], c.msgs[l], fmt.Sprintf("seed %d: %s, message %s", c.seed, to, l))
	}
}

// refused checks that s refuses m with ErrRefused and stays the same,
// byte for byte.
func refused(t testing.TB, s *Session, m []byte, what string) {
	t.Helper()
	before := sessionBytes(t, s)
	pt, err := s.Decrypt(m)
	if !errors.Is(err, ErrRefused) || err != ErrRefused || pt != nil {
		t.Fatalf("%s: Decrypt = %q, %v; want nil, ErrRefused", what, pt, err)
	}
	if after := sessionBytes(t, s); !bytes.Equal(before, after) {
		t.Fatalf("%s: a refused message changed the session", what)
	}
}

func sessionBytes(t testing.TB, s *Session) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func restore(t testing.TB, b []byte) *Session {
	t.Helper()
	var s Session
	if err := s.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestResponderSendsAfterItsFirstMessageIn(t *testing.T) {
	c := newConv(t, 1)
	if _, err := c.p["b"].Encrypt(c.rng, []byte("x")); !errors.Is(err, ErrCannotSend) {
		t.Fatalf("a responder's first Encrypt: %v, want ErrCannotSend", err)
	}
	c.send("a", "a1")
	c.open("b", "a1")
	c.send("b", "b1")
	c.open("a", "b1")
}

// DH steps on both sides, with runs of messages each way.
func TestConversationInOrder(t *testing.T) {
	c := newConv(t, 2)
	for round := range 6 {
		for _, from := range []string{"a", "b"} {
			to := map[string]string{"a": "b", "b": "a"}[from]
			var ls []string
			for i := range round + 1 {
				ls = append(ls, fmt.Sprintf("%s%d.%d", from, round, i))
			}
			c.send(from, ls...)
			c.open(to, ls...)
		}
	}
}

// Messages out of order, lost, duplicated and replayed, across DH steps.
func TestConversationOutOfOrder(t *testing.T) {
	c := newConv(t, 3)
	c.send("a", "a1", "a2", "a3", "a4", "a5")
	c.open("b", "a3", "a1")
	c.refuse("b", "a3", "a1") // duplicates: their keys are used
	c.open("b", "a5")
	c.send("b", "b1", "b2")
	c.open("a", "b2") // a DH step on a's side, b1 skipped
	c.send("a", "a6")
	c.open("b", "a6") // a DH step on b's side, with a2 and a4 still skipped
	c.open("b", "a4")
	c.open("a", "b1")
	c.send("b", "b3")
	c.send("a", "a7") // a's chain still answers b's older key
	c.open("b", "a7")
	c.open("a", "b3")
	c.open("b", "a2") // from two chains back
	c.refuse("b", "a1", "a2", "a3", "a4", "a5", "a6", "a7")
	c.refuse("a", "b1", "b2", "b3")
	c.refuse("a", "a7") // a's own message
	// a2 of the first chain never got here: lost; the conversation goes on.
	c.send("b", "b4")
	c.open("a", "b4")
}

// A chain of 3,000 messages, each opened, and one with gaps.
func TestLongChain(t *testing.T) {
	c := newConv(t, 4)
	lost := 0
	for i := range 3001 {
		l := fmt.Sprint("a", i)
		c.send("a", l)
		if i%7 == 3 {
			lost++
		} else {
			c.open("b", l)
		}
	}
	if n := len(c.p["b"].skipped); n != lost {
		t.Fatalf("b keeps %d skipped keys, want %d", n, lost)
	}
	c.open("b", "a3", "a2992")
}

// A header may skip MaxSkip keys of one chain, not one more; on a DH step
// the previous chain's PN is bounded the same way.
func TestSkipBoundPerChain(t *testing.T) {
	c := newConv(t, 5)
	var ls []string
	for i := range MaxSkip + 2 {
		ls = append(ls, fmt.Sprint("a", i))
	}
	c.send("a", ls...)
	c.refuse("b", ls[MaxSkip+1]) // N = 1001 with Nr = 0
	c.open("b", ls[MaxSkip])     // N = 1000: 1000 keys skipped
	c.open("b", ls[0], ls[MaxSkip-1])

	c = newConv(t, 6)
	c.send("a", "first")
	c.open("b", "first")
	c.send("b", "b1")
	c.open("a", "b1")
	ls = ls[:0]
	for i := range MaxSkip + 1 {
		ls = append(ls, fmt.Sprint("a", i))
	}
	c.send("a", ls...) // PN of the next chain will be 1001; b has Nr = 0
	c.send("b", "b2")
	c.open("a", "b2")
	c.send("a", "next")
	c.refuse("b", "next")
	c.open("b", ls[0]) // Nr = 1: PN 1001 is now within the bound
	c.open("b", "next", ls[MaxSkip])
}

// Skipped keys are bounded in total across chains, the oldest dropped
// first.
func TestSkipBoundTotal(t *testing.T) {
	c := newConv(t, 7)
	chain := func(k, n int) (ls []string) {
		for i := range n {
			ls = append(ls, fmt.Sprintf("c%d.%d", k, i))
		}
		c.send("a", ls...)
		c.open("b", ls[n-1]) // the first n-1 skipped
		c.send("b", fmt.Sprint("r", k))
		c.open("a", fmt.Sprint("r", k))
		return ls
	}
	c1 := chain(1, MaxSkip+1)
	c2 := chain(2, MaxSkip+1)
	if n := len(c.p["b"].skipped); n != 2*MaxSkip {
		t.Fatalf("b keeps %d skipped keys, want %d", n, 2*MaxSkip)
	}
	c3 := chain(3, 101) // 100 more: the 100 oldest (c1.0 to c1.99) dropped
	if n := len(c.p["b"].skipped); n != MaxSkippedKeys {
		t.Fatalf("b keeps %d skipped keys, want %d", n, MaxSkippedKeys)
	}
	c.refuse("b", c1[0], c1[99])
	c.open("b", c1[100], c1[MaxSkip-1], c2[0], c3[0], c3[99])
}

// A failed Decrypt leaves the session byte for byte as it was, and the
// right message still opens after it; every byte of a message matters.
func TestTamperedRefused(t *testing.T) {
	c := newConv(t, 8)
	c.send("a", "a1")
	c.open("b", "a1")
	c.send("b", "b1", "b2")
	c.open("a", "b1")
	c.send("b", "b3") // same chain: fast path
	c.send("a", "a2") // a DH step for b
	for _, l := range []string{"b3", "a2"} {
		to := map[string]string{"a2": "b", "b3": "a"}[l]
		m := c.msgs[l]
		for i := range m {
			for _, bit := range []byte{0x01, 0x80} {
				x := bytes.Clone(m)
				x[i] ^= bit
				refused(t, c.p[to], x, fmt.Sprintf("%s with byte %d ^ %#x", l, i, bit))
			}
		}
		for _, x := range [][]byte{nil, m[:1], m[:MessageOverhead-1], m[:len(m)-1], append(bytes.Clone(m), 0)} {
			refused(t, c.p[to], x, fmt.Sprintf("%s cut or extended to %d bytes", l, len(x)))
		}
		c.open(to, l)
	}
	c.open("a", "b2") // a skipped key, tampered first
	c.send("b", "b4")
	x := bytes.Clone(c.msgs["b4"])
	x[len(x)-1] ^= 1
	refused(t, c.p["a"], x, "b4 with its tag changed")
}

// Forward secrecy: once a message is opened, neither the session nor a
// copy of its state taken later can open it again.
func TestForwardSecrecy(t *testing.T) {
	c := newConv(t, 9)
	c.send("a", "a1", "a2", "a3")
	c.open("b", "a1", "a3")
	c.send("b", "b1")
	c.open("a", "b1")
	c.send("a", "a4")
	c.open("b", "a4", "a2")
	snap := restore(t, sessionBytes(t, c.p["b"]))
	for _, l := range []string{"a1", "a2", "a3", "a4"} {
		refused(t, c.p["b"], c.msgs[l], "b, "+l+" again")
		refused(t, snap, c.msgs[l], "a later copy of b, "+l)
	}
}

// Post-compromise security: a copy of b's state opens what a sends until
// both sides have taken a DH step with keys the copy does not know.
func TestPostCompromise(t *testing.T) {
	c := newConv(t, 10)
	c.send("a", "a1")
	c.open("b", "a1")
	c.send("b", "b1")
	c.open("a", "b1")
	stolen := restore(t, sessionBytes(t, c.p["b"]))
	c.send("a", "a2") // a's step, with b's key the thief holds
	if pt, err := stolen.Decrypt(c.msgs["a2"]); err != nil || string(pt) != "a2" {
		t.Fatalf("the stolen state does not open a2 (%q, %v): the test shows nothing", pt, err)
	}
	// The thief takes its own sending step, with randomness of its own, as
	// b does next: it then holds all that b's state would, but b's new key.
	if _, err := stolen.Encrypt(seeded(c.seed+1000), []byte("thief")); err != nil {
		t.Fatal(err)
	}
	c.open("b", "a2")
	c.send("b", "b2") // b's step: a new key from b's randomness
	c.open("a", "b2")
	c.send("a", "a3", "a4")
	c.open("b", "a3")
	for _, l := range []string{"a3", "a4"} {
		if pt, err := stolen.Decrypt(c.msgs[l]); err == nil {
			t.Fatalf("the stolen state opens %s (%q) after both sides stepped", l, pt)
		}
	}
}

// Header encryption hides the counters and the ratchet key: only the
// version byte is in the clear.
func TestHeaderHidesCounters(t *testing.T) {
	c := newConv(t, 11)
	c.send("a", "a0")
	var prev []byte
	for i := range 50 {
		l := fmt.Sprint("m", i)
		c.send("a", l)
		m := c.msgs[l]
		pub := c.p["a"].dhs.pub[:]
		if bytes.Contains(m, pub) || bytes.Contains(m, pub[:8]) {
			t.Fatalf("message %d shows the sender's ratchet key", i)
		}
		var n [8]byte // PN = 0, N = i+1, as they would be in the clear
		n[7] = byte(i + 1)
		if bytes.Contains(m[1:headerEnd], n[:]) {
			t.Fatalf("message %d shows its counters", i)
		}
		if prev != nil {
			same := 0
			for j := 1; j < headerEnd; j++ {
				if m[j] == prev[j] {
					same++
				}
			}
			if same > 8 { // 68/256 expected of random bytes; 36 in the clear
				t.Fatalf("messages %d and %d share %d header bytes", i-1, i, same)
			}
		}
		prev = m
	}
}

// A stored and restored session goes on with the conversation, skipped
// keys included.
func TestRestoredSessionContinues(t *testing.T) {
	c := newConv(t, 12)
	c.send("a", "a1", "a2", "a3")
	c.open("b", "a3")
	for _, who := range []string{"a", "b"} {
		b := sessionBytes(t, c.p[who])
		c.p[who] = restore(t, b)
		if again := sessionBytes(t, c.p[who]); !bytes.Equal(b, again) {
			t.Fatalf("%s: restored and stored again, the bytes differ", who)
		}
	}
	c.send("b", "b1")
	c.open("a", "b1")
	c.open("b", "a1")
	c.p["b"] = restore(t, sessionBytes(t, c.p["b"]))
	c.open("b", "a2")
	c.send("a", "a4")
	c.open("b", "a4")
}

func TestUnmarshalRefusesCorrupt(t *testing.T) {
	c := newConv(t, 13)
	c.send("a", "a1", "a2")
	c.open("b", "a2")
	good := sessionBytes(t, c.p["b"])
	for i := range len(good) - 1 {
		var s Session
		if err := s.UnmarshalBinary(good[:i]); !errors.Is(err, ErrCorruptSession) {
			t.Fatalf("a session cut to %d bytes: %v", i, err)
		}
	}
	for name, mutate := range map[string]func([]byte){
		"version":    func(b []byte) { b[0] = 2 },
		"flags":      func(b []byte) { b[1] |= 0x80 },
		"unset HKs":  func(b []byte) { b[1] &^= flagHKs },
		"HKr no CKr": func(b []byte) { b[1] &^= flagCKr },
	} {
		b := bytes.Clone(good)
		mutate(b)
		var s Session
		if err := s.UnmarshalBinary(b); !errors.Is(err, ErrCorruptSession) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if err := c.p["b"].UnmarshalBinary(append(bytes.Clone(good), 0)); !errors.Is(err, ErrCorruptSession) {
		t.Fatalf("a trailing byte: %v", err)
	}
	if !bytes.Equal(sessionBytes(t, c.p["b"]), good) {
		t.Fatal("a failed UnmarshalBinary changed the session")
	}
}

// A Session not made by a constructor refuses; it does not panic.
func TestZeroSession(t *testing.T) {
	var s Session
	if _, err := s.Encrypt(seeded(14), []byte("x")); !errors.Is(err, ErrCannotSend) {
		t.Fatalf("Encrypt: %v", err)
	}
	// A message whose header is sealed under the zero key, the zero
	// session's NHKr.
	m := make([]byte, MessageOverhead)
	m[0] = MessageVersion
	m = sealHeader(newGCM(make([]byte, 32)), m[:sealedAt], &header{}, new([headerLen]byte))
	m = append(m, make([]byte, gcmTag)...)
	if _, err := s.Decrypt(m); err != ErrRefused {
		t.Fatalf("Decrypt: %v", err)
	}
	if _, err := s.MarshalBinary(); err == nil {
		t.Fatal("MarshalBinary of a zero Session")
	}
}

// A second new ratchet key before the session has sent is refused, as
// the specification's DHRatchetHE (which would have drawn the session's
// next key already) refuses it. The peer here is a's state made to step
// twice in a row, with a key b's state has not answered.
func TestSecondStepBeforeSendingRefused(t *testing.T) {
	c := newConv(t, 15)
	forged := restore(t, sessionBytes(t, c.p["a"]))
	c.send("a", "a1")
	c.open("b", "a1")
	// forged sends under a's next header key (b's NHKr now) with a new key
	// against b's first ratchet key.
	forged.hks, forged.hksG = forged.nhks, nil
	forged.cks, forged.hasCKs = [32]byte{}, false
	m, err := forged.Encrypt(c.rng, []byte("forged"))
	if err != nil {
		t.Fatal(err)
	}
	refused(t, c.p["b"], m, "a second step before b sent")
	c.send("b", "b1")
	c.open("a", "b1")
}

// Decrypt tries each distinct stored header key once, not each entry.
func TestSkippedHeaderKeysDistinct(t *testing.T) {
	c := newConv(t, 16)
	c.send("a", "a1", "a2", "a3")
	c.open("b", "a3")
	c.send("b", "b1")
	c.open("a", "b1")
	c.send("a", "a4", "a5", "a6")
	c.open("b", "a6")
	c.send("b", "b2")
	c.open("a", "b2")
	c.send("a", "a7", "a8")
	c.open("b", "a8") // b keeps a1, a2 | a4, a5 | a7: three chains
	b := c.p["b"]
	var got [][32]byte
	for hk := range b.skippedHeaderKeys(nil) {
		got = append(got, *hk)
	}
	if len(got) != 3 || len(b.skipped) != 5 || got[0] == got[1] || got[1] == got[2] ||
		got[0] != b.skipped[0].hk || got[1] != b.skipped[2].hk || got[2] != b.hkr {
		t.Fatalf("header keys %x of %d stored keys", got, len(b.skipped))
	}
	got = got[:0]
	for hk := range b.skippedHeaderKeys(&b.hkr) {
		got = append(got, *hk)
	}
	if len(got) != 2 {
		t.Fatalf("%d header keys without HKr, want 2", len(got))
	}
	c.open("b", "a5", "a1", "a7", "a2", "a4")
}

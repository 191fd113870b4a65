package ratchet

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzConversation is a conversation that leaves b with skipped keys of
// two chains, and the messages of it b can still open (the fuzz seeds).
func fuzzConversation(t testing.TB) (a, b *Session, open [][]byte) {
	rng := seeded(30)
	a, b = newPair(t, rng)
	send := func(s *Session, pt string) []byte {
		m, err := s.Encrypt(rng, []byte(pt))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a1, a2, a3 := send(a, "a1"), send(a, "a2"), send(a, "a3")
	if _, err := b.Decrypt(a3); err != nil {
		t.Fatal(err)
	}
	b1 := send(b, "b1")
	if _, err := a.Decrypt(b1); err != nil {
		t.Fatal(err)
	}
	a4, a5, a6 := send(a, "a4"), send(a, "a5"), send(a, "a6")
	if _, err := b.Decrypt(a5); err != nil {
		t.Fatal(err)
	}
	b2 := send(b, "b2")
	if _, err := a.Decrypt(b2); err != nil {
		t.Fatal(err)
	}
	a7 := send(a, "a7")
	return a, b, [][]byte{a1, a2, a4, a6, a7, a3, a5}
}

// Decrypt of any bytes: no panic; ErrRefused and the session unchanged,
// or a plaintext.
func FuzzDecrypt(f *testing.F) {
	_, b, msgs := fuzzConversation(f)
	for _, m := range msgs {
		f.Add(m)
	}
	f.Add([]byte{})
	f.Add([]byte{MessageVersion})
	f.Add(make([]byte, MessageOverhead))
	start := sessionBytes(f, b)
	f.Fuzz(func(t *testing.T, m []byte) {
		s := restore(t, start)
		pt, err := s.Decrypt(m)
		after := sessionBytes(t, s)
		if err != nil {
			if err != ErrRefused || pt != nil {
				t.Fatalf("Decrypt = %q, %v; want nil, ErrRefused", pt, err)
			}
			if !bytes.Equal(start, after) {
				t.Fatal("a refused message changed the session")
			}
			return
		}
		if bytes.Equal(start, after) {
			t.Fatal("an opened message left the session as it was (it could open again)")
		}
		if _, err := s.Decrypt(m); err != ErrRefused {
			t.Fatalf("a message opened twice: %v", err)
		}
	})
}

// UnmarshalBinary of any bytes: no panic; a wrapped ErrCorruptSession, or
// a session that stores back to the same bytes and can be used.
func FuzzUnmarshalSession(f *testing.F) {
	a, b, msgs := fuzzConversation(f)
	f.Add(sessionBytes(f, a))
	f.Add(sessionBytes(f, b))
	fresh, _ := newPair(f, seeded(31))
	f.Add(sessionBytes(f, fresh))
	f.Add([]byte{SessionVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s Session
		if err := s.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorruptSession) {
				t.Fatalf("UnmarshalBinary: %v, not ErrCorruptSession", err)
			}
			return
		}
		if again := sessionBytes(t, &s); !bytes.Equal(data, again) {
			t.Fatalf("stored again, the session is not the same bytes:\n%x\n%x", data, again)
		}
		for _, m := range msgs {
			if _, err := s.Decrypt(m); err != nil && err != ErrRefused {
				t.Fatalf("Decrypt: %v", err)
			}
		}
		// Encrypt may refuse a stored state (a peer key of low order, say);
		// it must not panic.
		_, _ = s.Encrypt(seeded(32), []byte("x"))
	})
}

package service

import (
	"bytes"
	"crypto/ecdh"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/exopeer/exopeer/ratchet"
)

// newSession returns a sending session for the tests of the stored form.
func newSession(t testing.TB, seed byte) *ratchet.Session {
	t.Helper()
	key := bytes.Repeat([]byte{seed}, 32)
	priv, err := ecdh.X25519().NewPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var sec ratchet.Secret
	s, err := ratchet.NewInitiator(&ratchet.Exopeer, bytes.NewReader(bytes.Repeat([]byte{seed + 1}, 64)), sec, []byte("ad"), priv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// encodeLayout1 returns r in the stored layout of version 1: no flags
// byte, no run in the sessions (doc.go, Stored state).
func encodeLayout1(t testing.TB, r peerRecord) []byte {
	t.Helper()
	b := []byte{sessionsVersion1}
	b = binary.BigEndian.AppendUint64(b, r.listSent)
	b = append(b, byte(len(r.sessions)))
	for _, st := range r.sessions {
		enc, err := st.sess.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, st.id[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(st.header)))
		b = append(b, st.header...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
		b = append(b, enc...)
	}
	return b
}

// A record round-trips, its sessions' runs too; a corrupt session
// inside is dropped (counted), the others kept; a corrupt frame is
// refused whole; more than MaxSessions are refused, and unknown flags.
func TestStoredSessions(t *testing.T) {
	r := peerRecord{listSent: 7}
	for i := range 3 {
		r.push(stored{id: [8]byte{byte(i)}, run: [8]byte{1, byte(i)}, sess: newSession(t, byte(10*i+1)), header: []byte{byte(i)}[:i%2]})
	}
	b, err := r.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, bad, err := decodeRecord(b)
	if err != nil || bad != 0 || got.listSent != 7 || len(got.sessions) != 3 {
		t.Fatalf("decode: %+v, %d bad, %v", got, bad, err)
	}
	for i := range got.sessions {
		if got.sessions[i].id != r.sessions[i].id || got.sessions[i].run != r.sessions[i].run || !bytes.Equal(got.sessions[i].header, r.sessions[i].header) {
			t.Fatalf("session %d: id %v run %v header %v, want %v %v %v", i, got.sessions[i].id, got.sessions[i].run, got.sessions[i].header, r.sessions[i].id, r.sessions[i].run, r.sessions[i].header)
		}
	}
	again, _ := got.encode()
	if !bytes.Equal(again, b) {
		t.Fatal("a decoded record does not encode back to its bytes")
	}
	// The newest session's own bytes, broken: it is dropped, the others
	// kept.
	broken := bytes.Clone(b)
	at := 11 + 8 + 8 + 2 + len(r.sessions[0].header) + 4 // its version byte
	broken[at] = 0xee
	got, bad, err = decodeRecord(broken)
	if err != nil || bad != 1 || len(got.sessions) != 2 || got.sessions[0].id != r.sessions[1].id {
		t.Fatalf("with a corrupt session: %d sessions, %d bad, %v", len(got.sessions), bad, err)
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"other version":  append([]byte{3}, b[1:]...),
		"truncated":      b[:len(b)-1],
		"trailing":       append(bytes.Clone(b), 0),
		"too many":       append(append(bytes.Clone(b[:10]), MaxSessions+1), b[11:]...),
		"unknown flag":   append(append(bytes.Clone(b[:9]), 2), b[10:]...),
		"length too big": append(append(bytes.Clone(b[:at-4]), 0xff, 0xff, 0xff, 0xff), b[at:]...),
	} {
		if _, _, err := decodeRecord(b); !errors.Is(err, errCorruptRecord) {
			t.Errorf("%s: %v, want errCorruptRecord", name, err)
		}
	}
	// push keeps at most MaxSessions, the newest first.
	for i := range MaxSessions + 2 {
		r.push(stored{id: [8]byte{0xf0 + byte(i)}, sess: newSession(t, 100+byte(i))})
	}
	if len(r.sessions) != MaxSessions || r.sessions[0].id[0] != 0xf0+MaxSessions+1 {
		t.Fatalf("after pushes: %d sessions, newest %v", len(r.sessions), r.sessions[0].id)
	}
	r.front(2)
	if r.sessions[0].id[0] != 0xf0+MaxSessions-1 {
		t.Fatalf("front(2): newest %v", r.sessions[0].id)
	}
}

package ratchet

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

const stepsFile = "testdata/ratchet-steps.txt"

// ratchetSteps runs ten steps of a conversation with fixed keys, each
// message answering the other side's (so every step after the first is
// a DH step on both sides), and writes every input and every key.
func ratchetSteps(t *testing.T) []byte {
	const seed = 1301
	rng := seeded(seed)
	var w bytes.Buffer
	line := func(name string, b []byte) { fmt.Fprintf(&w, "%s %s\n", name, hex.EncodeToString(b)) }
	fmt.Fprintf(&w, "# Ten steps of exopeer's Double Ratchet with header encryption (ratchet/doc.go,\n")
	fmt.Fprintf(&w, "# \"Double Ratchet\"), Params Exopeer. Frozen: written once by\n")
	fmt.Fprintf(&w, "# go test ./ratchet/ -run TestRatchetStepVectors -update (keys from a ChaCha8 reader of seed %d),\n", seed)
	fmt.Fprintf(&w, "# checked by default. Keys are after the step; the sender's new ratchet private\n")
	fmt.Fprintf(&w, "# key is the 32 bytes read for it; the header nonce is message[1:13].\n")
	var s Secret
	ad := append([]byte("exopeer-ad-v1"), make([]byte, 64)...)
	for _, b := range [][]byte{s.Root[:], s.HeaderA[:], s.HeaderB[:], ad[13:]} {
		if _, err := io.ReadFull(rng, b); err != nil {
			t.Fatal(err)
		}
	}
	bobKey, err := readKey(rng)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := NewInitiator(&Exopeer, rng, s, ad, bobKey.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	bob, err := NewResponder(&Exopeer, s, ad, bobKey)
	if err != nil {
		t.Fatal(err)
	}
	line("SK", s.Root[:])
	line("shared_hka", s.HeaderA[:])
	line("shared_nhkb", s.HeaderB[:])
	line("AD", ad)
	line("b.ratchet.private", bobKey.Bytes())
	line("a.ratchet.private", alice.dhs.priv[:])
	line("a.RK", alice.rk[:])
	line("a.CKs", alice.cks[:])
	line("a.NHKs", alice.nhks[:])
	from, to, names := alice, bob, [2]string{"a", "b"}
	for step := 1; step <= 10; step++ {
		pt := []byte(fmt.Sprintf("step %d from %s", step, names[0]))
		fmt.Fprintf(&w, "\nstep %d %s->%s\n", step, names[0], names[1])
		line("plaintext", pt)
		m, err := from.Encrypt(rng, pt)
		if err != nil {
			t.Fatal(err)
		}
		f := names[0] + "."
		line(f+"ratchet.private", from.dhs.priv[:])
		line(f+"ratchet.public", from.dhs.pub[:])
		line(f+"RK", from.rk[:])
		line(f+"CKs", from.cks[:])
		line(f+"HKs", from.hks[:])
		line(f+"NHKs", from.nhks[:])
		line("message", m)
		got, err := to.Decrypt(m)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("step %d: %q, %v", step, got, err)
		}
		r := names[1] + "."
		line(r+"RK", to.rk[:])
		line(r+"CKr", to.ckr[:])
		line(r+"HKr", to.hkr[:])
		line(r+"NHKr", to.nhkr[:])
		from, to, names = to, from, [2]string{names[1], names[0]}
	}
	return w.Bytes()
}

// Ten ratchet steps with fixed keys give the frozen values.
func TestRatchetStepVectors(t *testing.T) {
	got := ratchetSteps(t)
	if *update {
		if err := os.MkdirAll(filepath.Dir(stepsFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(stepsFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(stepsFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := range min(len(gl), len(wl)) {
			if !bytes.Equal(gl[i], wl[i]) {
				t.Fatalf("%s, line %d:\n got %s\nwant %s", stepsFile, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: %d lines, want %d", stepsFile, len(gl), len(wl))
	}
}

package ratchet

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInteropPython runs testdata/interop.py, a second implementation
// written from doc.go alone (in Python, with the cryptography package).
// Against the frozen vectors: X3DH's and PQXDH's DHs, Secret, AD, initial
// header and bundle (PQXDH from the recorded ML-KEM shared secret), and
// the ten ratchet steps, every message opened and, from the recorded
// randomness, sealed again to the same bytes. Against a transcript this
// test writes (interopTranscript): messages out of order, lost, replayed
// and tampered with, DH steps on both sides, each message sealed to the
// same bytes and each stored session encoded to the same bytes. It proves
// that doc.go is enough to interoperate; it is skipped where python3 or
// its cryptography package is missing.
func TestInteropPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: the doc-only implementation cannot run")
	}
	if out, err := exec.Command(py, "-c", "import cryptography").CombinedOutput(); err != nil {
		t.Skipf("python3 has no cryptography package: %v: %s", err, out)
	}
	tr := filepath.Join(t.TempDir(), "transcript.txt")
	if err := os.WriteFile(tr, interopTranscript(t), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "testdata/interop.py", "testdata", tr).CombinedOutput()
	if err != nil {
		t.Fatalf("interop.py: %v\n%s", err, failed(string(out)))
	}
	if !strings.Contains(string(out), "all passed") {
		t.Fatalf("interop.py did not finish:\n%s", out)
	}
}

// failed keeps the lines of interop.py's output that are not "ok".
func failed(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "ok ") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// recorder keeps what is read through it.
type recorder struct {
	r   io.Reader
	got []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.got = append(r.got, p[:n]...)
	return n, err
}

// interopTranscript is a conversation for interop.py, one event a line:
// the Secret, AD and both first ratchet keys; "send P LABEL RAND MSG"
// (party P sealed the plaintext LABEL reading RAND, giving MSG); "open P
// LABEL" (P opened message LABEL); "refuse P HEX" (P refused the message
// HEX, changing nothing); "state P HEX" (P's MarshalBinary).
func interopTranscript(t *testing.T) []byte {
	rng := seeded(1399)
	var w bytes.Buffer
	line := func(f string, a ...any) { fmt.Fprintf(&w, f+"\n", a...) }
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
	rec := &recorder{r: rng}
	alice, err := NewInitiator(&Exopeer, rec, s, ad, bobKey.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	bob, err := NewResponder(&Exopeer, s, ad, bobKey)
	if err != nil {
		t.Fatal(err)
	}
	line("SK %x", s.Root)
	line("shared_hka %x", s.HeaderA)
	line("shared_nhkb %x", s.HeaderB)
	line("AD %x", ad)
	line("a.ratchet.private %x", rec.got)
	line("b.ratchet.private %x", bobKey.Bytes())
	p := map[string]*Session{"a": alice, "b": bob}
	msgs := map[string][]byte{}
	state := func(who string) { line("state %s %x", who, sessionBytes(t, p[who])) }
	send := func(who string, labels ...string) {
		for _, l := range labels {
			rec.got = nil
			m, err := p[who].Encrypt(rec, []byte(l))
			if err != nil {
				t.Fatal(err)
			}
			msgs[l] = m
			line("send %s %s %x %x", who, l, rec.got, m)
		}
		state(who)
	}
	open := func(who string, labels ...string) {
		for _, l := range labels {
			if pt, err := p[who].Decrypt(msgs[l]); err != nil || string(pt) != l {
				t.Fatalf("%s opens %s: %q, %v", who, l, pt, err)
			}
			line("open %s %s", who, l)
			state(who)
		}
	}
	refuse := func(who string, m []byte) {
		refused(t, p[who], m, who)
		line("refuse %s %x", who, m)
	}
	state("a")
	state("b")
	send("a", "a0", "a1", "a2", "a3")
	open("b", "a2", "a0") // a0 and a1 skipped, a0 from the stored keys
	refuse("b", msgs["a2"])
	send("b", "b0", "b1") // b's sending half of the step
	open("a", "b1")       // a steps, b0 skipped
	send("a", "a4", "a5") // a's sending half; PN = 4
	open("b", "a5")       // b steps: a3 (PN) and a4 skipped
	open("b", "a1", "a3", "a4")
	open("a", "b0") // a key of a's current receiving chain, stored
	tampered := bytes.Clone(msgs["a5"])
	tampered[len(tampered)-1] ^= 1
	refuse("b", tampered)
	refuse("b", msgs["a4"])
	send("b", "b2")
	send("a", "a6") // a has not received b2: still its chain of a4, a5
	open("a", "b2")
	open("b", "a6")
	send("a", "a7")
	send("b", "b3")
	open("b", "a7")
	open("a", "b3")
	return w.Bytes()
}

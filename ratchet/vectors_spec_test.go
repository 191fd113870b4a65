package ratchet

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"encoding/binary"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// specParty is one side as the specification's section 4 writes it,
// with DHRatchetHE taking both halves of a step at once.
type specParty struct {
	dhs                  *ecdh.PrivateKey
	dhr                  []byte
	rk, cks, ckr         [32]byte
	ns, nr, pn           uint32
	hks, hkr, nhks, nhkr [32]byte
	recvRK               [32]byte // RK between the two halves of the last step
}

// The frozen steps follow from doc.go's text alone: an implementation
// of the specification's section 4 as written there (the second half of
// each DH step taken on receipt, with the key the party sends with next),
// over kdf.go's functions and crypto/cipher, makes every message of
// testdata/ratchet-steps.txt byte for byte, and the keys recorded.
func TestStepVectorsFromSpec(t *testing.T) {
	top, steps := readSteps(t)
	x := ecdh.X25519()
	priv := func(b []byte) *ecdh.PrivateKey {
		k, err := x.NewPrivateKey(b)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	dh := func(k *ecdh.PrivateKey, pub []byte) []byte {
		p, err := x.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out, err := k.ECDH(p)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	ad := top["AD"]
	b := &specParty{dhs: priv(top["b.ratchet.private"]), rk: [32]byte(top["SK"]),
		nhks: [32]byte(top["shared_nhkb"]), nhkr: [32]byte(top["shared_hka"])}
	a := &specParty{dhs: priv(top["a.ratchet.private"]), dhr: b.dhs.PublicKey().Bytes(),
		hks: [32]byte(top["shared_hka"]), nhkr: [32]byte(top["shared_nhkb"])}
	sk := [32]byte(top["SK"])
	a.rk, a.cks, a.nhks = kdfRK(Exopeer.Root, &sk, dh(a.dhs, a.dhr))

	parties := map[string]*specParty{"a": a, "b": b}
	for i, st := range steps {
		from, to := parties[st.from], parties[st.to]
		m := st.v["message"]
		// RatchetEncryptHE.
		hdr := append(bytes.Clone(from.dhs.PublicKey().Bytes()), 0, 0, 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint32(hdr[32:], from.pn)
		binary.BigEndian.PutUint32(hdr[36:], from.ns)
		var mk [32]byte
		from.cks, mk = kdfCK(&from.cks)
		from.ns++
		want := append([]byte{0x01}, m[1:13]...)
		want = newGCM(from.hks[:]).Seal(want, m[1:13], hdr, []byte{0x01})
		k := messageKeys(Exopeer.Message, &mk, 44)
		want = newGCM(k[:32]).Seal(want, k[32:44], st.v["plaintext"], append(bytes.Clone(ad), want...))
		if !bytes.Equal(want, m) {
			t.Fatalf("step %d: the message is not the specification's:\n got %x\nwant %x", i+1, m, want)
		}
		check(t, i+1, st.v, st.from+".RK", from.rk)
		check(t, i+1, st.v, st.from+".CKs", from.cks)
		check(t, i+1, st.v, st.from+".HKs", from.hks)
		check(t, i+1, st.v, st.from+".NHKs", from.nhks)
		// RatchetDecryptHE, in order, with one new key each step: a DH step.
		plain, err := newGCM(to.nhkr[:]).Open(nil, m[1:13], m[13:69], m[:1])
		if err != nil {
			t.Fatalf("step %d: the header does not open under NHKr", i+1)
		}
		if binary.BigEndian.Uint32(plain[36:]) != 0 || !bytes.Equal(plain[:32], from.dhs.PublicKey().Bytes()) {
			t.Fatalf("step %d: header %x", i+1, plain)
		}
		to.pn, to.ns, to.nr = to.ns, 0, 0
		to.hks, to.hkr, to.dhr = to.nhks, to.nhkr, plain[:32]
		to.rk, to.ckr, to.nhkr = kdfRK(Exopeer.Root, &to.rk, dh(to.dhs, to.dhr))
		to.recvRK = to.rk
		if i+1 < len(steps) { // GENERATE_DH: the key it sends the next step with
			to.dhs = priv(steps[i+1].v[st.to+".ratchet.private"])
			to.rk, to.cks, to.nhks = kdfRK(Exopeer.Root, &to.rk, dh(to.dhs, to.dhr))
		}
		to.ckr, mk = kdfCK(&to.ckr)
		to.nr++
		k = messageKeys(Exopeer.Message, &mk, 44)
		if pt, err := newGCM(k[:32]).Open(nil, k[32:44], m[69:], append(bytes.Clone(ad), m[:69]...)); err != nil || !bytes.Equal(pt, st.v["plaintext"]) {
			t.Fatalf("step %d: the body does not open: %v", i+1, err)
		}
		check(t, i+1, st.v, st.to+".RK", to.recvRK)
		check(t, i+1, st.v, st.to+".CKr", to.ckr)
		check(t, i+1, st.v, st.to+".HKr", to.hkr)
		check(t, i+1, st.v, st.to+".NHKr", to.nhkr)
	}
	if len(steps) != 10 {
		t.Fatalf("%d steps, want 10", len(steps))
	}
}

func check(t *testing.T, step int, v map[string][]byte, name string, got [32]byte) {
	t.Helper()
	if !bytes.Equal(v[name], got[:]) {
		t.Fatalf("step %d: %s is %x, the specification's %x", step, name, v[name], got)
	}
}

type stepValues struct {
	from, to string
	v        map[string][]byte
}

// readSteps parses testdata/ratchet-steps.txt: "name hex" lines, before
// the first "step N from->to" line and after each.
func readSteps(t *testing.T) (map[string][]byte, []stepValues) {
	f, err := os.Open(stepsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	top := map[string][]byte{}
	var steps []stepValues
	cur := top
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, val, _ := strings.Cut(l, " ")
		if name == "step" {
			_, dir, _ := strings.Cut(val, " ")
			from, to, _ := strings.Cut(dir, "->")
			steps = append(steps, stepValues{from: from, to: to, v: map[string][]byte{}})
			cur = steps[len(steps)-1].v
			continue
		}
		b, err := hex.DecodeString(val)
		if err != nil {
			t.Fatalf("%s: %s: %v", stepsFile, name, err)
		}
		cur[name] = b
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return top, steps
}

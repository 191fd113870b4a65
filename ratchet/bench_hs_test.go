package ratchet

import (
	"testing"
)

// The handshakes' speed (issue 13, item 8): go test -run '^$' -bench
// 'X3DH|PQXDH|VerifyBundle' -benchmem -cpu 1 ./ratchet/. An initiator's
// handshake includes verifying the bundle's five signatures (and, for
// PQXDH, an ML-KEM-1024 encapsulation, as a shell would make it); a
// responder's includes parsing the header and the replay guard, full.

func benchInitiator(b *testing.B, pq bool) {
	a, r := newHSDevice(b, "a", 0, hsNow), newHSDevice(b, "b", MaxOneTimePrekeys, hsNow)
	bundle := r.bundle(b, 1)
	rand := hsRand(b, "initiator")
	for b.Loop() {
		var enc *Encapsulation
		if pq {
			enc = testEncapsulate(b, rand, bundle)
		}
		if _, _, _, err := InitiateSecret(&Exopeer, rand, a.signer, a.keys, bundle, enc); err != nil {
			b.Fatal(err)
		}
	}
}

// benchResponder answers 2*ReplayCapacity initial messages in turn: each
// comes back once the guard forgot it, so the guard stays full.
func benchResponder(b *testing.B, pq bool) {
	a, r := newHSDevice(b, "a", 0, hsNow), newHSDevice(b, "b", 0, hsNow)
	bundle := r.bundle(b, 1)
	rand := hsRand(b, "initiator")
	headers := make([][]byte, 2*ReplayCapacity)
	for i := range headers {
		var enc *Encapsulation
		if pq {
			enc = testEncapsulate(b, rand, bundle)
		}
		_, _, h, err := InitiateSecret(&Exopeer, rand, a.signer, a.keys, bundle, enc)
		if err != nil {
			b.Fatal(err)
		}
		headers[i] = hsMarshal(b, h)
	}
	i := 0
	for b.Loop() {
		h, _, err := ParseInitialHeader(headers[i%len(headers)])
		if err != nil {
			b.Fatal(err)
		}
		if _, _, _, err := RespondSecret(&Exopeer, r.pub(), r.keys, h, hsNow); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkX3DHInitiator(b *testing.B)  { benchInitiator(b, false) }
func BenchmarkX3DHResponder(b *testing.B)  { benchResponder(b, false) }
func BenchmarkPQXDHInitiator(b *testing.B) { benchInitiator(b, true) }
func BenchmarkPQXDHResponder(b *testing.B) { benchResponder(b, true) }

// BenchmarkVerifyBundle is the decoding and the five signatures of a
// bundle with MaxOneTimePrekeys one-time prekeys, the initiator's first
// step.
func BenchmarkVerifyBundle(b *testing.B) {
	r := newHSDevice(b, "b", MaxOneTimePrekeys, hsNow)
	wire := hsMarshal(b, r.bundle(b, 1))
	for b.Loop() {
		if _, err := VerifyBundle(wire); err != nil {
			b.Fatal(err)
		}
	}
}

package ratchet

import (
	"bytes"
	"testing"
)

// TestMessageAEADIsMessageKeys: messageAEAD is messageKeys with n = 44,
// cut into the key (32 bytes) and the nonce (12).
func TestMessageAEADIsMessageKeys(t *testing.T) {
	for i := range 8 {
		var mk [32]byte
		for j := range mk {
			mk[j] = byte(i*31 + j)
		}
		want := messageKeys(Exopeer.Message, &mk, 44)
		key, nonce := messageAEAD(Exopeer.Message, &mk)
		if !bytes.Equal(key[:], want[:32]) || !bytes.Equal(nonce[:], want[32:]) {
			t.Fatalf("mk %x: messageAEAD = %x %x, want %x", mk, key, nonce, want)
		}
	}
}

// TestKDFsAllocateNothing: the chain steps and message keys of every
// message allocate nothing (issue 13's goal is at most 25 allocations per
// message, all included).
func TestKDFsAllocateNothing(t *testing.T) {
	var ck, rk [32]byte
	dh := make([]byte, 32)
	for name, f := range map[string]func(){
		"kdfCK":       func() { ck, _ = kdfCK(&ck) },
		"kdfRK":       func() { rk, _, _ = kdfRK(Exopeer.Root, &rk, dh) },
		"messageAEAD": func() { messageAEAD(Exopeer.Message, &ck) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}

func BenchmarkKDFMessageAEAD(b *testing.B) {
	var mk [32]byte
	b.ReportAllocs()
	for b.Loop() {
		messageAEAD(Exopeer.Message, &mk)
	}
}

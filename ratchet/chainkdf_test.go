package ratchet

import (
	"bytes"
	"strings"
	"testing"
)

// chainStep and bodyKeys are kdfCK and messageKeys(info, mk, 44).
func TestChainKDFsAgree(t *testing.T) {
	rng := seeded(20)
	for i := range 300 {
		var k [32]byte
		rng.Read(k[:])
		n1, m1 := kdfCK(&k)
		n2, m2 := chainStep(&k)
		if n1 != n2 || m1 != m2 {
			t.Fatalf("seed 20, case %d: chainStep differs from kdfCK", i)
		}
		info := strings.Repeat("x", i%(maxInfo+1))
		if i%2 == 0 {
			info = Exopeer.Message
		}
		want := messageKeys(info, &k, 44)
		key, nonce := bodyKeys(info, &k)
		if !bytes.Equal(want[:32], key[:]) || !bytes.Equal(want[32:], nonce[:]) {
			t.Fatalf("seed 20, case %d: bodyKeys differs from messageKeys (info of %d bytes)", i, len(info))
		}
	}
}

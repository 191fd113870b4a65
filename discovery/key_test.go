package discovery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// rendezvousVectors are frozen known answers for RendezvousKey. They were
// computed once outside this package, with Python 3's hmac and hashlib:
//
//	d = hmac.new(secret, b"exopeer rendezvous v1" + struct.pack(">Q", epoch), hashlib.sha256).digest()
//	"b" + base32(bytes([0x01, 0x55, 0x12, 0x20]) + d).lower().rstrip("=")
//
// that is HMAC-SHA256(secret, "exopeer rendezvous v1" || uint64 BE epoch)
// as a CIDv1 (0x01), raw codec (0x55), sha2-256 multihash (0x12, 32 bytes),
// in multibase base32 ("b"). Go's crypto/hmac gave the same bytes.
var rendezvousVectors = []struct {
	name   string
	secret string
	epoch  uint64
	digest string // hex of the HMAC
	cid    string
}{
	{
		name:   "epoch 0",
		secret: "exopeer test secret",
		epoch:  0,
		digest: "6c9975f81cb300441eddbcc1046c0b531a8621e5cc9a449df92b82d5bdef055c",
		cid:    "bafkreidmtf27qhftabcb5xn4yecgyc2tdkdcdzomtjcj36jlqlk333yflq",
	},
	{
		name:   "epoch 493000",
		secret: "exopeer test secret",
		epoch:  493000,
		digest: "2c7be0424306e540558cf1d85432e59319995c97ce59e2a64cade181ae550b92",
		cid:    "bafkreibmppqeeqyg4vafldhr3bkdfzmtdgmvzf6olhrkmtfn4ga24vilsi",
	},
}

func TestRendezvousKeyKnownAnswers(t *testing.T) {
	for _, v := range rendezvousVectors {
		t.Run(v.name, func(t *testing.T) {
			got := RendezvousKey([]byte(v.secret), v.epoch)
			if got.String() != v.cid {
				t.Errorf("RendezvousKey(%q, %d) = %s, want %s", v.secret, v.epoch, got, v.cid)
			}
			dec, err := mh.Decode(got.Hash())
			if err != nil {
				t.Fatalf("decoding multihash: %v", err)
			}
			if dec.Code != mh.SHA2_256 || got.Prefix().Codec != cid.Raw || got.Version() != 1 {
				t.Errorf("key %s: version %d, codec %#x, hash %#x; want 1, raw, sha2-256",
					got, got.Version(), got.Prefix().Codec, dec.Code)
			}
			if hex.EncodeToString(dec.Digest) != v.digest {
				t.Errorf("digest = %x, want %s", dec.Digest, v.digest)
			}
			// Independent computation, without go-cid or go-multihash.
			if ind := independentKey([]byte(v.secret), v.epoch); ind != v.cid {
				t.Errorf("independent computation = %s, want %s (the frozen vector is wrong)", ind, v.cid)
			}
		})
	}
}

// independentKey computes a rendezvous key with crypto/hmac and the CID
// byte layout written out by hand.
func independentKey(secret []byte, epoch uint64) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("exopeer rendezvous v1"))
	m.Write(binary.BigEndian.AppendUint64(nil, epoch))
	raw := append([]byte{0x01, 0x55, 0x12, 0x20}, m.Sum(nil)...)
	return "b" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
}

func TestRendezvousKeyMatchesIndependentComputation(t *testing.T) {
	secrets := [][]byte{nil, {}, []byte("a"), make([]byte, 200), []byte("another secret")}
	epochs := []uint64{0, 1, 255, 256, 1 << 32, math.MaxUint64}
	for _, s := range secrets {
		for _, e := range epochs {
			if got, want := RendezvousKey(s, e).String(), independentKey(s, e); got != want {
				t.Errorf("RendezvousKey(%q, %d) = %s, want %s", s, e, got, want)
			}
		}
	}
}

func TestRendezvousKeyIsDeterministicAndSeparates(t *testing.T) {
	a, b := []byte("secret a"), []byte("secret b")
	if !RendezvousKey(a, 7).Equals(RendezvousKey([]byte("secret a"), 7)) {
		t.Error("the same secret and epoch gave different keys")
	}
	seen := make(map[string]string)
	for _, s := range [][]byte{a, b} {
		for e := range uint64(50) {
			k := RendezvousKey(s, e).KeyString()
			name := fmt.Sprintf("%s/epoch %d", s, e)
			if prev, ok := seen[k]; ok {
				t.Errorf("%s and %s share a key", prev, name)
			}
			seen[k] = name
		}
	}
}

func TestEpoch(t *testing.T) {
	base := time.Unix(0, 0)
	tests := []struct {
		name string
		t    time.Time
		d    time.Duration
		want uint64
	}{
		{"unix epoch", base, time.Hour, 0},
		{"last nanosecond of the first epoch", base.Add(time.Hour - 1), time.Hour, 0},
		{"first nanosecond of the second epoch", base.Add(time.Hour), time.Hour, 1},
		{"middle of an epoch", base.Add(10*time.Hour + 30*time.Minute), time.Hour, 10},
		{"a known date", time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), time.Hour, 492324},
		{"time zone does not matter", time.Date(2026, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600)), time.Hour, 492324},
		{"one-day epochs", time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC), 24 * time.Hour, 20513},
		{"nanosecond epochs", base.Add(12345), 1, 12345},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Epoch(tt.t, tt.d); got != tt.want {
				t.Errorf("Epoch(%v, %v) = %d, want %d", tt.t, tt.d, got, tt.want)
			}
		})
	}
}

func TestEpochAdvancesOncePerPeriod(t *testing.T) {
	d := 200 * time.Millisecond
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e0 := Epoch(start, d)
	for i := range 10 {
		at := start.Add(time.Duration(i) * d)
		if got := Epoch(at, d); got != e0+uint64(i) {
			t.Errorf("Epoch(start+%d·d) = %d, want %d", i, got, e0+uint64(i))
		}
		if got := Epoch(at.Add(d-1), d); got != e0+uint64(i) {
			t.Errorf("Epoch(start+%d·d+d-1ns) = %d, want %d", i, got, e0+uint64(i))
		}
	}
}

// FuzzRendezvousKey checks RendezvousKey against the independent
// computation for any secret and epoch.
func FuzzRendezvousKey(f *testing.F) {
	for _, v := range rendezvousVectors {
		f.Add([]byte(v.secret), v.epoch)
	}
	f.Add([]byte{}, uint64(math.MaxUint64))
	f.Fuzz(func(t *testing.T, secret []byte, epoch uint64) {
		if got, want := RendezvousKey(secret, epoch).String(), independentKey(secret, epoch); got != want {
			t.Errorf("RendezvousKey(%x, %d) = %s, want %s", secret, epoch, got, want)
		}
	})
}

func ExampleRendezvousKey() {
	secret := []byte("exopeer test secret")
	epoch := Epoch(time.Unix(0, 0), time.Hour) // epoch 0
	fmt.Println(RendezvousKey(secret, epoch))
	// Output: bafkreidmtf27qhftabcb5xn4yecgyc2tdkdcdzomtjcj36jlqlk333yflq
}

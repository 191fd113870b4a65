package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// katFile is testdata/vectors.json, made by testdata/vectors.py with an
// independent implementation (pyca/cryptography); see that script.
type katFile struct {
	Key        string `json:"key"`
	PayloadKey string `json:"payloadKey"`
	DirKey     string `json:"dirKey"`
	DirSeal    string `json:"dirSealOfExopeer"`
	Derived    struct {
		Size        int    `json:"size"`
		Secret      string `json:"secret"`
		ContentHash string `json:"contentHash"`
		Key         string `json:"key"`
	} `json:"derived"`
	Vectors []struct {
		Size           int    `json:"size"`
		CiphertextSize int    `json:"ciphertextSize"`
		SHA256         string `json:"ciphertextSHA256"`
		Head           string `json:"head"`
		Tail           string `json:"tail"`
		Ciphertext     string `json:"ciphertext"`
	} `json:"vectors"`
}

func katPlaintext(n int) []byte {
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(j % 251)
	}
	return p
}

func TestKnownAnswers(t *testing.T) {
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var kf katFile
	if err := json.Unmarshal(raw, &kf); err != nil {
		t.Fatal(err)
	}
	var k Key
	kb, _ := hex.DecodeString(kf.Key)
	copy(k[:], kb)
	if len(kf.Vectors) != 6 {
		t.Fatalf("%d vectors, want 6", len(kf.Vectors))
	}
	for _, v := range kf.Vectors {
		pt := katPlaintext(v.Size)
		ct := seal(k, infoPayload, pt)
		if len(ct) != v.CiphertextSize || int64(len(ct)) != CiphertextSize(int64(v.Size)) {
			t.Fatalf("size %d: ciphertext %d bytes, want %d", v.Size, len(ct), v.CiphertextSize)
		}
		sum := sha256.Sum256(ct)
		if hex.EncodeToString(sum[:]) != v.SHA256 || hex.EncodeToString(ct[:min(32, len(ct))]) != v.Head ||
			hex.EncodeToString(ct[max(0, len(ct)-32):]) != v.Tail {
			t.Fatalf("size %d: ciphertext differs from the vector", v.Size)
		}
		if v.Ciphertext != "" && hex.EncodeToString(ct) != v.Ciphertext {
			t.Fatalf("size %d: ciphertext %x, want %s", v.Size, ct, v.Ciphertext)
		}
		got, err := open(k, infoPayload, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("size %d: open: %v", v.Size, err)
		}
		if n, err := PlaintextSize(int64(len(ct))); err != nil || n != int64(v.Size) {
			t.Fatalf("PlaintextSize(%d) = %d, %v; want %d", len(ct), n, err, v.Size)
		}
	}
	if d := seal(k, infoDir, []byte("exopeer")); hex.EncodeToString(d) != kf.DirSeal {
		t.Fatalf("dir seal %x, want %s", d, kf.DirSeal)
	}
	d := kf.Derived
	h, err := HashContent(t.Context(), bytes.NewReader(katPlaintext(d.Size)), int64(d.Size))
	if err != nil || hex.EncodeToString(h[:]) != d.ContentHash {
		t.Fatalf("content hash %x, %v; want %s", h, err, d.ContentHash)
	}
	if dk := DeriveKey([]byte(d.Secret), h); hex.EncodeToString(dk[:]) != d.Key {
		t.Fatalf("derived key %x, want %s", dk, d.Key)
	}
}

func TestSizes(t *testing.T) {
	for _, tc := range []struct {
		c    int64
		size int64
		bad  bool
	}{
		{0, 0, true}, {15, 0, true}, {16, 0, false}, {17, 1, false},
		{65536, 65520, false}, {65536 + 15, 0, true}, {65536 + 16, 65520, false},
		{65536 + 17, 65521, false}, {LeafSize, 16 * SegmentSize, false},
	} {
		got, err := PlaintextSize(tc.c)
		if tc.bad {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("PlaintextSize(%d) = %d, %v; want ErrMalformed", tc.c, got, err)
			}
			continue
		}
		if err != nil || got != tc.size {
			t.Errorf("PlaintextSize(%d) = %d, %v; want %d", tc.c, got, err, tc.size)
		}
		// 65552 bytes would be a full segment and an empty final one: a
		// length the arithmetic allows but that sealing never makes.
		if c := CiphertextSize(got); c != tc.c && tc.c != 65536+16 {
			t.Errorf("CiphertextSize(%d) = %d, want %d", got, c, tc.c)
		}
	}
	for s := int64(0); s < 3*SegmentSize+40; s += 7 {
		c := CiphertextSize(s)
		if p, err := PlaintextSize(c); err != nil || p != s {
			t.Fatalf("round trip of %d: %d, %v", s, p, err)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	var k, other Key
	k[0] = 1
	other[0] = 2
	pt := katPlaintext(2*SegmentSize + 100)
	ct := seal(k, infoPayload, pt)
	cases := []struct {
		name string
		ct   []byte
		key  Key
		info string
		want error
	}{
		{"wrong key", ct, other, infoPayload, ErrWrongKey},
		{"wrong info", ct, k, infoDir, ErrWrongKey},
		{"truncated at a segment", ct[:2*SealedSegmentSize], k, infoPayload, ErrWrongKey},
		{"truncated inside a tag", ct[:2*SealedSegmentSize+10], k, infoPayload, ErrMalformed},
		{"swapped segments", append(append(append([]byte{}, ct[SealedSegmentSize:2*SealedSegmentSize]...), ct[:SealedSegmentSize]...), ct[2*SealedSegmentSize:]...), k, infoPayload, ErrWrongKey},
		{"flipped bit", func() []byte { c := bytes.Clone(ct); c[70000] ^= 1; return c }(), k, infoPayload, ErrWrongKey},
		{"empty", nil, k, infoPayload, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := open(tc.key, tc.info, tc.ct); !errors.Is(err, tc.want) {
				t.Fatalf("open: %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzOpenSegments feeds arbitrary ciphertexts to the segment decoder: it
// must refuse each with ErrMalformed or ErrWrongKey, never panic, and
// accept exactly what seal made.
func FuzzOpenSegments(f *testing.F) {
	var k Key
	for i := range k {
		k[i] = byte(i)
	}
	f.Add(seal(k, infoPayload, nil), false)
	f.Add(seal(k, infoPayload, []byte("hello")), false)
	f.Add(seal(k, infoPayload, katPlaintext(SegmentSize+3)), false)
	f.Add([]byte("junk that is not a stream"), false)
	f.Add([]byte("seal me"), true)
	f.Fuzz(func(t *testing.T, data []byte, sealIt bool) {
		if sealIt {
			ct := seal(k, infoPayload, data)
			got, err := open(k, infoPayload, ct)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("round trip: %v", err)
			}
			return
		}
		got, err := open(k, infoPayload, data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrWrongKey) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrWrongKey", err)
			}
			return
		}
		if !bytes.Equal(seal(k, infoPayload, got), data) {
			t.Fatal("opened a ciphertext that sealing the plaintext does not give")
		}
	})
}

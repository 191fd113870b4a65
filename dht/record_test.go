package dht

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newKey(t testing.TB) (crypto.PrivKey, peer.ID) {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, id
}

func seal(t testing.TB, priv crypto.PrivKey, name string, value []byte, seq uint64, expiry time.Time) (string, []byte) {
	t.Helper()
	key, enc, err := sealEnvelope(priv, name, value, seq, expiry)
	if err != nil {
		t.Fatal(err)
	}
	return key, enc
}

func TestRecordKey(t *testing.T) {
	_, id := newKey(t)
	key := RecordKey(id, "a/b")
	if want := "/exo/" + id.String() + "/a/b"; key != want {
		t.Fatalf("RecordKey = %q, want %q", key, want)
	}
	owner, name, err := parseKey(key)
	if err != nil || owner != id || name != "a/b" {
		t.Fatalf("parseKey = %v, %q, %v", owner, name, err)
	}
}

func TestOpenEnvelope(t *testing.T) {
	priv, id := newKey(t)
	otherPriv, otherID := newKey(t)
	secpPriv, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpID, _ := peer.IDFromPrivateKey(secpPriv)
	secpPub, _ := crypto.MarshalPublicKey(secpPriv.GetPublic())

	exp := t0.Add(time.Hour)
	key, good := seal(t, priv, "bundle", []byte("hello"), 7, exp)
	_, otherRec := seal(t, otherPriv, "bundle", []byte("hello"), 7, exp)

	tamper := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 1
		return b
	}
	e, err := decodeEnvelope(good)
	if err != nil {
		t.Fatal(err)
	}
	valueAt := 1 + 2 + len(e.PubKey) + 4
	withLen := func(field int, n uint32) []byte { // rewrites a length field
		b := bytes.Clone(good)
		switch field {
		case 0:
			binary.BigEndian.PutUint16(b[1:], uint16(n))
		case 1:
			binary.BigEndian.PutUint32(b[3+len(e.PubKey):], n)
		}
		return b
	}
	forged := func() []byte { // a secp256k1 owner, correctly signed
		e := envelope{PubKey: secpPub, Value: []byte("x"), Seq: 1, Expiry: exp.UnixNano()}
		e.Sig, _ = secpPriv.Sign(signedBytes(RecordKey(secpID, "bundle"), e.Value, e.Seq, e.Expiry))
		return e.encode()
	}()
	far := t0.Add(MaxRecordTTL + 2*maxClockSkew)
	_, farRec := seal(t, priv, "bundle", []byte("hello"), 7, far)
	big := (&envelope{PubKey: e.PubKey, Value: make([]byte, MaxValueSize+1), Sig: e.Sig}).encode()

	tests := []struct {
		name string
		key  string
		rec  []byte
		now  time.Time
		want error
	}{
		{"valid", key, good, t0, nil},
		{"valid just before expiry", key, good, exp.Add(-1), nil},
		{"tampered value", key, tamper(good, valueAt), t0, ErrBadSignature},
		{"tampered seq", key, tamper(good, len(good)-2-64-9), t0, ErrBadSignature},
		{"tampered signature", key, tamper(good, len(good)-1), t0, ErrBadSignature},
		{"other name", RecordKey(id, "other"), good, t0, ErrBadSignature},
		{"wrong owner in key", RecordKey(otherID, "bundle"), good, t0, ErrWrongOwner},
		{"record of another owner", key, otherRec, t0, ErrWrongOwner},
		{"expired", key, good, exp, ErrExpired},
		{"expiry too far ahead", key, farRec, t0, ErrTooFarAhead},
		{"not ed25519", RecordKey(secpID, "bundle"), forged, t0, ErrBadRecord},
		{"oversize value", key, big, t0, ErrBadRecord},
		{"oversize key length", key, withLen(0, maxPubKeyLen+1), t0, ErrBadRecord},
		{"value length past end", key, withLen(1, 1000), t0, ErrBadRecord},
		{"truncated", key, good[:len(good)-1], t0, ErrBadRecord},
		{"trailing byte", key, append(bytes.Clone(good), 0), t0, ErrBadRecord},
		{"bad version", key, tamper(good, 0), t0, ErrBadRecord},
		{"empty", key, nil, t0, ErrBadRecord},
		{"garbage", key, []byte("not a record at all, just some bytes"), t0, ErrBadRecord},
		{"key without namespace", "/pk/" + id.String() + "/bundle", good, t0, ErrBadKey},
		{"key without name", "/exo/" + id.String(), good, t0, ErrBadKey},
		{"key with empty name", "/exo/" + id.String() + "/", good, t0, ErrBadName},
		{"key with bad peer ID", "/exo/QmNotAPeer/bundle", good, t0, ErrBadKey},
		{"key with long name", RecordKey(id, strings.Repeat("n", MaxNameLen+1)), good, t0, ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := openEnvelope(tt.key, tt.rec, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("openEnvelope: got %v, want %v", err, tt.want)
			}
			v := NewValidator(func() time.Time { return tt.now })
			if got := v.Validate(tt.key, tt.rec); (got == nil) != (err == nil) {
				t.Fatalf("Validate = %v, openEnvelope = %v", got, err)
			}
		})
	}
}

func TestSealEnvelopeRejects(t *testing.T) {
	priv, _ := newKey(t)
	secp, _, _ := crypto.GenerateSecp256k1Key(rand.Reader)
	tests := []struct {
		name  string
		priv  crypto.PrivKey
		rname string
		value []byte
		want  error
	}{
		{"oversize value", priv, "n", make([]byte, MaxValueSize+1), ErrTooLarge},
		{"empty name", priv, "", nil, ErrBadName},
		{"invalid utf-8 name", priv, "\xff", nil, ErrBadName},
		{"not ed25519", secp, "n", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := sealEnvelope(tt.priv, tt.rname, tt.value, 1, t0)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("sealEnvelope: got %v, want %v", err, tt.want)
			}
		})
	}
	if _, _, err := sealEnvelope(priv, "n", make([]byte, MaxValueSize), 1, t0); err != nil {
		t.Fatalf("value of MaxValueSize: %v", err)
	}
}

func TestSelect(t *testing.T) {
	priv, id := newKey(t)
	other, _ := newKey(t)
	key := RecordKey(id, "n")
	rec := func(p crypto.PrivKey, seq uint64, exp time.Duration) []byte {
		_, b := seal(t, p, "n", []byte("v"), seq, t0.Add(exp))
		return b
	}
	s1e1, s1e2, s2e1 := rec(priv, 1, time.Hour), rec(priv, 1, 2*time.Hour), rec(priv, 2, time.Hour)
	foreign := rec(other, 9, 9*time.Hour)
	tests := []struct {
		name   string
		values [][]byte
		want   int
		err    bool
	}{
		{"one", [][]byte{s1e1}, 0, false},
		{"higher seq wins", [][]byte{s1e2, s2e1}, 1, false},
		{"higher seq wins reversed", [][]byte{s2e1, s1e2}, 0, false},
		{"same seq later expiry wins", [][]byte{s1e1, s1e2}, 1, false},
		{"garbage ignored", [][]byte{[]byte("junk"), s1e1}, 1, false},
		{"other owner ignored", [][]byte{foreign, s1e1}, 1, false},
		{"identical picks first", [][]byte{s2e1, s2e1}, 0, false},
		{"nothing valid", [][]byte{[]byte("junk"), foreign}, 0, true},
		{"empty", nil, 0, true},
	}
	v := NewValidator(func() time.Time { return t0 })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Select(key, tt.values)
			if (err != nil) != tt.err || (err == nil && got != tt.want) {
				t.Fatalf("Select = %d, %v; want %d, err %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	priv, id := newKey(f)
	for i, v := range []string{"", "v", strings.Repeat("x", 1000)} {
		_, b := seal(f, priv, "n", []byte(v), uint64(i), t0.Add(time.Hour))
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{envelopeVersion, 0xff, 0xff})
	key := RecordKey(id, "n")
	v := NewValidator(func() time.Time { return t0 })
	f.Fuzz(func(t *testing.T, data []byte) {
		// Arbitrary bytes: never panic, and whatever decodes is canonical.
		if e, err := decodeEnvelope(data); err == nil {
			if !bytes.Equal(e.encode(), data) {
				t.Fatalf("decode/encode is not the identity for %x", data)
			}
		}
		_ = v.Validate(key, data)
		_, _ = v.Select(key, [][]byte{data})

		// Valid records made from the input round-trip.
		value := data[:min(len(data), MaxValueSize)]
		seq := uint64(len(data)) * 0x9e3779b97f4a7c15
		k, enc, err := sealEnvelope(priv, "n", value, seq, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		e, err := openEnvelope(k, enc, t0)
		if err != nil {
			t.Fatalf("open a valid record: %v", err)
		}
		if !bytes.Equal(e.Value, value) || e.Seq != seq || e.Expiry != t0.Add(time.Minute).UnixNano() {
			t.Fatalf("round trip changed the record")
		}
	})
}

// TestSealRecordOtherKey: a record sealed by SealRecord with a key that is
// not the node's (a mailbox slot's throwaway identity) is accepted by the
// Validator under its own key, and OpenRecord gives back its fields; under
// the key of any other owner, or any other name, it is refused.
func TestSealRecordOtherKey(t *testing.T) {
	priv, id := newKey(t)
	_, otherID := newKey(t)
	exp := t0.Add(time.Hour)
	key, rec, err := SealRecord(priv, "m", []byte("sealed value"), 42, exp)
	if err != nil {
		t.Fatal(err)
	}
	if key != RecordKey(id, "m") {
		t.Fatalf("key %q, want %q", key, RecordKey(id, "m"))
	}
	v := NewValidator(func() time.Time { return t0 })
	if err := v.Validate(key, rec); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r, err := OpenRecord(key, rec, t0)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Value) != "sealed value" || r.Seq != 42 || !r.Expiry.Equal(exp) {
		t.Fatalf("OpenRecord = %q seq %d expiry %v", r.Value, r.Seq, r.Expiry)
	}
	if err := v.Validate(RecordKey(otherID, "m"), rec); !errors.Is(err, ErrWrongOwner) {
		t.Fatalf("under another owner: %v, want ErrWrongOwner", err)
	}
	if err := v.Validate(RecordKey(id, "n"), rec); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("under another name: %v, want ErrBadSignature", err)
	}
	if _, err := OpenRecord(key, rec, exp); !errors.Is(err, ErrExpired) {
		t.Fatalf("OpenRecord expired: %v, want ErrExpired", err)
	}
	if _, _, err := SealRecord(priv, "m", make([]byte, MaxValueSize+1), 1, exp); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize value: %v, want ErrTooLarge", err)
	}
}

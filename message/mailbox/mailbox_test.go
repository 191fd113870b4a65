package mailbox

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/libp2p/go-libp2p/core/crypto"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/message"
)

// TestPairSymmetric: both cells compute the same pair secret and the same
// slots; a third cell, with either cell's public keys, computes another.
func TestPairSymmetric(t *testing.T) {
	a, b, c := newCell(t, 1), newCell(t, 2), newCell(t, 3)
	ab, ba := pair(t, a, b), pair(t, b, a)
	if ab != ba {
		t.Fatalf("the two sides differ: %x, %x", ab, ba)
	}
	if ab == pair(t, c, b) || ab == pair(t, a, c) || ab == pair(t, c, a) {
		t.Fatal("a third cell computes the pair's secret")
	}
	if x, y := slot(t, ab, a, b, 7, 0), slot(t, ba, a, b, 7, 0); x.Peer() != y.Peer() || x.RecordKey() != y.RecordKey() || x.aead != y.aead {
		t.Fatal("the two sides derive different slots")
	}
}

// TestSlotsUnrelated: another pair, epoch, index or direction gives a slot
// with another owner, record key and AEAD key.
func TestSlotsUnrelated(t *testing.T) {
	a, b, c := newCell(t, 1), newCell(t, 2), newCell(t, 3)
	ab, ac := pair(t, a, b), pair(t, a, c)
	slots := map[string]Slot{
		"a→b 7/0": slot(t, ab, a, b, 7, 0),
		"b→a 7/0": slot(t, ab, b, a, 7, 0),
		"a→b 8/0": slot(t, ab, a, b, 8, 0),
		"a→b 7/1": slot(t, ab, a, b, 7, 1),
		"a→c 7/0": slot(t, ac, a, c, 7, 0),
	}
	owners, keys, aeads := map[string]string{}, map[string]string{}, map[[32]byte]string{}
	for name, s := range slots {
		for m, seen := range map[string]map[string]string{"owner": owners, "record key": keys} {
			v := string(s.Peer())
			if m == "record key" {
				v = s.RecordKey()
			}
			if other, ok := seen[v]; ok {
				t.Fatalf("%s and %s share a %s", name, other, m)
			}
			seen[v] = name
		}
		if other, ok := aeads[s.aead]; ok {
			t.Fatalf("%s and %s share an AEAD key", name, other)
		}
		aeads[s.aead] = name
	}
}

// TestRecordKeyIsDHTs: the slot's record key is the dht package's for its
// owner, and a record signed with the slot's key passes the Validator
// under that key only: a third cell's slot identity, or any other key,
// cannot write it.
func TestRecordKeyIsDHTs(t *testing.T) {
	a, b, c := newCell(t, 1), newCell(t, 2), newCell(t, 3)
	s := slot(t, pair(t, a, b), a, b, 7, 0)
	if want := dht.RecordKey(s.Peer(), RecordName); s.RecordKey() != want {
		t.Fatalf("record key %q, want %q", s.RecordKey(), want)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	v := dht.NewValidator(func() time.Time { return now })
	value, err := s.Seal(entries(2, 10), 1, seeded(t))
	if err != nil {
		t.Fatal(err)
	}
	key, rec, err := dht.SealRecord(s.Owner(), RecordName, value, 1, now.Add(Retention))
	if err != nil || key != s.RecordKey() {
		t.Fatalf("SealRecord: %q, %v", key, err)
	}
	if err := v.Validate(s.RecordKey(), rec); err != nil {
		t.Fatalf("the slot's own record: %v", err)
	}
	third := slot(t, pair(t, c, b), c, b, 7, 0)
	other, _, err := crypto.GenerateEd25519Key(seeded(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, priv := range map[string]crypto.PrivKey{"third cell's slot": third.Owner(), "other key": other} {
		_, forged, err := dht.SealRecord(priv, RecordName, value, 2, now.Add(Retention))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Validate(s.RecordKey(), forged); !errors.Is(err, dht.ErrWrongOwner) {
			t.Errorf("%s: %v, want dht.ErrWrongOwner", name, err)
		}
	}
}

// TestSealOpen: what the sender seals the recipient opens, with the frames
// and IDs as they were, in order; an emptied slot opens as no entries.
func TestSealOpen(t *testing.T) {
	a, b := newCell(t, 1), newCell(t, 2)
	w, r := slot(t, pair(t, a, b), a, b, 7, 0), slot(t, pair(t, b, a), a, b, 7, 0)
	for _, in := range [][]Entry{nil, entries(1, 1), entries(3, 500), entries(MaxEntries, 100), entries(1, MaxFrame)} {
		v, err := w.Seal(in, 9, seeded(t))
		if err != nil {
			t.Fatalf("Seal %d entries: %v", len(in), err)
		}
		got, err := r.Open(v, 9)
		if err != nil {
			t.Fatalf("Open %d entries: %v", len(in), err)
		}
		if !cmp.Equal(got, in, cmpopts.EquateEmpty()) {
			t.Fatalf("%d entries: got %v", len(in), got)
		}
	}
}

// TestPadding: the value's length is one of the buckets, the smallest that
// holds the entries, whatever their number within it.
func TestPadding(t *testing.T) {
	s := slot(t, pair(t, newCell(t, 1), newCell(t, 2)), newCell(t, 1), newCell(t, 2), 7, 0)
	tests := []struct {
		name string
		in   []Entry
		want int
	}{
		{"empty", nil, 1 << 10},
		{"one byte", entries(1, 1), 1 << 10},
		{"five small", entries(5, 20), 1 << 10},
		{"eight acks", acks(8), 1 << 10},
		{"just past 1 KiB", entries(1, 1024-overhead-listHeader-header+1), 2 << 10},
		{"8 KiB", entries(2, 3900), 8 << 10},
		{"past 8 KiB", entries(2, 4100), 16 << 10},
		{"full", entries(1, MaxFrame), 16 << 10},
	}
	for _, tt := range tests {
		v, err := s.Seal(tt.in, 1, seeded(t))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if len(v) != tt.want {
			t.Errorf("%s: value of %d bytes, want %d", tt.name, len(v), tt.want)
		}
	}
}

// TestOpenRefuses: a tampered value, another seq, another slot, a
// truncated or oversize value: all one opaque ErrOpen.
func TestOpenRefuses(t *testing.T) {
	a, b := newCell(t, 1), newCell(t, 2)
	p := pair(t, a, b)
	s := slot(t, p, a, b, 7, 0)
	v, err := s.Seal(entries(2, 30), 5, seeded(t))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(v)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name  string
		slot  Slot
		value []byte
		seq   uint64
	}{
		{"tampered nonce", s, flip(0), 5},
		{"tampered ciphertext", s, flip(100), 5},
		{"tampered tag", s, flip(len(v) - 1), 5},
		{"another seq", s, v, 6},
		{"the other direction", slot(t, p, b, a, 7, 0), v, 5},
		{"another epoch", slot(t, p, a, b, 8, 0), v, 5},
		{"another index", slot(t, p, a, b, 7, 1), v, 5},
		{"a third cell", slot(t, pair(t, newCell(t, 3), b), a, b, 7, 0), v, 5},
		{"truncated", s, v[:len(v)-1], 5},
		{"empty", s, nil, 5},
		{"oversize", s, make([]byte, MaxValue+1), 5},
	}
	for _, tt := range tests {
		if _, err := tt.slot.Open(tt.value, tt.seq); err != ErrOpen {
			t.Errorf("%s: %v, want exactly ErrOpen", tt.name, err)
		}
	}
}

// TestBounds: too many entries, too many bytes, an empty or oversize
// frame, a duplicate ID, and decoded lists that claim more than they hold
// are refused.
func TestBounds(t *testing.T) {
	s := slot(t, pair(t, newCell(t, 1), newCell(t, 2)), newCell(t, 1), newCell(t, 2), 7, 0)
	dup := entries(2, 5)
	dup[1].ID = dup[0].ID
	for name, tt := range map[string]struct {
		in   []Entry
		want error
	}{
		"too many":      {entries(MaxEntries+1, 1), ErrFull},
		"too large":     {entries(2, MaxFrame/2+1), ErrFull},
		"frame over":    {entries(1, MaxFrame+1), ErrFull},
		"empty frame":   {entries(1, 0), ErrFull},
		"duplicate ID":  {dup, ErrMalformed},
		"ack and frame": {[]Entry{{Kind: KindAck, ID: message.ID{1}, From: devA, Sig: bytes.Repeat([]byte{1}, 64), Frame: []byte{1}}}, ErrMalformed},
		"ack and to":    {[]Entry{{Kind: KindAck, ID: message.ID{1}, From: devA, To: devB, Sig: bytes.Repeat([]byte{1}, 64)}}, ErrMalformed},
		"ack no sig":    {[]Entry{{Kind: KindAck, ID: message.ID{1}, From: devA}}, ErrMalformed},
		"ack short sig": {[]Entry{{Kind: KindAck, ID: message.ID{1}, From: devA, Sig: make([]byte, 63)}}, ErrMalformed},
		"ack no device": {[]Entry{{Kind: KindAck, ID: message.ID{1}, Sig: bytes.Repeat([]byte{1}, 64)}}, ErrMalformed},
		"frame and sig": {[]Entry{{Kind: KindFrame, ID: message.ID{1}, From: devA, To: devB, Frame: []byte{1}, Sig: bytes.Repeat([]byte{1}, 64)}}, ErrMalformed},
		"no kind":       {[]Entry{{ID: message.ID{1}, From: devA, To: devB, Frame: []byte{1}}}, ErrMalformed},
		"no from":       {[]Entry{Frame(message.ID{1}, "", devB, []byte{1})}, ErrMalformed},
		"bad to":        {[]Entry{Frame(message.ID{1}, devA, "nope", []byte{1})}, ErrMalformed},
		"ack and ID":    {[]Entry{entries(1, 1)[0], mustAck(entries(1, 1)[0].ID)}, ErrMalformed},
	} {
		if _, err := s.Seal(tt.in, 1, seeded(t)); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", name, err, tt.want)
		}
	}
	if _, err := s.Seal(entries(1, 5), 1, bytes.NewReader(make([]byte, 23))); err == nil {
		t.Error("Seal with a nonce source of 23 bytes: no error")
	}
	good, err := EncodeEntries(entries(2, 5))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	from := listHeader + 1 + message.IDSize // offsets in the first entry
	to := from + 1 + len(devA)
	flen := to + 1 + len(devB)
	for name, b := range map[string][]byte{
		"count over max":   edit(func(b []byte) []byte { b[1] = MaxEntries + 1; return b }),
		"count past end":   edit(func(b []byte) []byte { b[1] = MaxEntries; return b }),
		"length past end":  edit(func(b []byte) []byte { b[flen] = 0xff; return b }),
		"zero length":      edit(func(b []byte) []byte { b[flen], b[flen+1] = 0, 0; return b }),
		"version":          edit(func(b []byte) []byte { b[0] = 1; return b }),
		"unknown kind":     edit(func(b []byte) []byte { b[2] = 3; return b }),
		"ack kind":         edit(func(b []byte) []byte { b[2] = byte(KindAck); return b }),
		"empty from":       edit(func(b []byte) []byte { b[from] = 0; return b }),
		"from past end":    edit(func(b []byte) []byte { b[from] = 0xff; return b }),
		"from over max":    edit(func(b []byte) []byte { b[from] = MaxPeerID + 1; return b }),
		"from not an ID":   edit(func(b []byte) []byte { b[from+2] = 0xff; return b }),
		"to not an ID":     edit(func(b []byte) []byte { b[to+2] = 0xff; return b }),
		"nonzero padding":  edit(func(b []byte) []byte { b[len(b)-1] = 1; return b }),
		"not a bucket":     good[:len(good)-1],
		"too large bucket": append(bytes.Clone(good), make([]byte, (2<<10)-(1<<10))...),
		"empty":            nil,
	} {
		if _, err := DecodeEntries(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

// TestPairSecretRefuses: malformed keys, one cell twice, and a low-order
// public key (whose exchange gives zero) are refused.
func TestPairSecretRefuses(t *testing.T) {
	a, b := newCell(t, 1), newCell(t, 2)
	zero, err := ecdh.X25519().NewPublicKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdh.P256().GenerateKey(seeded(t))
	if err != nil {
		t.Skip("P-256 keys need the system's randomness") // never on Go 1.26: GenerateKey ignores rand
	}
	for name, f := range map[string]func() (Pair, error){
		"same cell":       func() (Pair, error) { return PairSecret(a.box, a.pub, a.pub, b.box.PublicKey()) },
		"short cell key":  func() (Pair, error) { return PairSecret(a.box, a.pub[:31], b.pub, b.box.PublicKey()) },
		"low-order key":   func() (Pair, error) { return PairSecret(a.box, a.pub, b.pub, zero) },
		"nil key":         func() (Pair, error) { return PairSecret(nil, a.pub, b.pub, b.box.PublicKey()) },
		"another curve":   func() (Pair, error) { return PairSecret(a.box, a.pub, b.pub, p256.PublicKey()) },
		"nil public key":  func() (Pair, error) { return PairSecret(a.box, a.pub, b.pub, nil) },
		"long their cell": func() (Pair, error) { return PairSecret(a.box, a.pub, append(b.pub, 0), b.box.PublicKey()) },
	} {
		if _, err := f(); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: %v, want ErrBadKey", name, err)
		}
	}
	for name, f := range map[string]func() (Slot, error){
		"same cell":   func() (Slot, error) { return NewSlot(Pair{}, a.pub, a.pub, 1, 0) },
		"short key":   func() (Slot, error) { return NewSlot(Pair{}, a.pub[:5], b.pub, 1, 0) },
		"index over":  func() (Slot, error) { return NewSlot(Pair{}, a.pub, b.pub, 1, SlotsPerEpoch) },
		"index under": func() (Slot, error) { return NewSlot(Pair{}, a.pub, b.pub, 1, -1) },
		"nil to":      func() (Slot, error) { return NewSlot(Pair{}, a.pub, nil, 1, 0) },
		"empty from":  func() (Slot, error) { return NewSlot(Pair{}, ed25519.PublicKey{}, b.pub, 1, 0) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("NewSlot %s: no error", name)
		}
	}
}

// TestEpoch: Unix days, ReadEpochs covers the last Retention, and the
// package's bounds are the DHT's.
func TestEpoch(t *testing.T) {
	day := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	d := uint64(day.Unix() / 86400)
	if Epoch(day) != d || Epoch(day.Add(-time.Nanosecond)) != d-1 || Epoch(day.Add(EpochLength-time.Nanosecond)) != d {
		t.Fatalf("Epoch around a day's start: %d %d", Epoch(day), Epoch(day.Add(-1)))
	}
	if Epoch(time.Unix(-5, 0)) != 0 {
		t.Fatal("an epoch before 1970")
	}
	first, last := ReadEpochs(day.Add(time.Hour))
	if first != d-7 || last != d {
		t.Fatalf("ReadEpochs = %d, %d, want %d, %d", first, last, d-7, d)
	}
	if Retention != dht.MaxRecordTTL || MaxValue != dht.MaxValueSize || len(RecordName) > dht.MaxNameLen {
		t.Fatal("the mailbox's bounds are not the DHT's")
	}
}

// TestZeroSlot: a Slot not made by NewSlot (its zero value, say after an
// ignored error) has an all-zero value key that anyone can compute and no
// owner: Seal and Open refuse it instead of sealing under that key.
func TestZeroSlot(t *testing.T) {
	var s Slot
	if v, err := s.Seal(entries(1, 5), 1, seeded(t)); !errors.Is(err, ErrBadSlot) {
		t.Fatalf("Seal with the zero Slot: %d bytes, %v; want ErrBadSlot", len(v), err)
	}
	// Anyone can seal a value the zero Slot would open.
	pt, err := EncodeEntries(entries(1, 5))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	v := aead.Seal(nonce, nonce, pt, s.ad(1))
	if _, err := s.Open(v, 1); !errors.Is(err, ErrBadSlot) {
		t.Fatalf("Open with the zero Slot: %v, want ErrBadSlot", err)
	}
}

// TestReadEveryIndexOldestEpoch: in the oldest epoch a reader looks at,
// index 0 written at the day's start has expired while index 1, written
// at its end, is still valid: a reader that stopped at the first slot not
// found would skip index 1. In the later epochs, index 0 outlives index 1.
func TestReadEveryIndexOldestEpoch(t *testing.T) {
	day := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	w0, w1 := day.Add(time.Minute), day.Add(EpochLength-time.Minute) // index 0, then 1
	now := w0.Add(Retention + time.Hour)                             // index 0 expired, index 1 not
	if !now.After(w0.Add(Retention)) || !now.Before(w1.Add(Retention)) {
		t.Fatal("the scenario is wrong")
	}
	first, last := ReadEpochs(now)
	if Epoch(w0) != first {
		t.Fatalf("the slots' epoch %d is not the oldest read, %d", Epoch(w0), first)
	}
	if !ReadEveryIndex(first, now) {
		t.Fatal("the oldest epoch: a reader stops at expired index 0 and skips live index 1")
	}
	for e := first + 1; e <= last; e++ {
		if ReadEveryIndex(e, now) {
			t.Fatalf("epoch %d: every index read, though no slot of it has expired", e)
		}
	}
}

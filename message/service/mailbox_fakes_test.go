package service

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/message/mailbox"
)

// fakeDHT holds signed records in memory as kad-dht servers do: a put
// is validated (dht.OpenRecord), a record of a lower sequence number than
// the one held is ignored, and so is one of the same (the first write at
// a sequence number wins: two writers at one lose one write); a record is
// not found once expired or dropAfter (when set) after its put.
type fakeDHT struct {
	mu        sync.Mutex
	now       func() time.Time
	recs      map[string]fakeRec
	gets      int
	puts      int
	keyGets   map[string]int // lookups by key
	dropAfter time.Duration
	// noPeers makes every lookup fail as with no peer in the table.
	noPeers bool
	// raw holds records given as they are, unchecked (a DHT node's
	// answer that does not verify).
	raw map[string][]byte
	// beforePut, if set, runs before each put (the lock not held).
	beforePut func(key string, seq uint64)
}

type fakeRec struct {
	raw []byte
	seq uint64
	at  time.Time
}

func newFakeDHT() *fakeDHT {
	return &fakeDHT{now: time.Now, recs: map[string]fakeRec{}, raw: map[string][]byte{}, keyGets: map[string]int{}}
}

func (f *fakeDHT) PutSigned(_ context.Context, key string, raw []byte) error {
	r, err := dht.OpenRecord(key, raw, f.now())
	if err != nil {
		return err
	}
	f.mu.Lock()
	hook := f.beforePut
	f.mu.Unlock()
	if hook != nil {
		hook(key, r.Seq)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	if old, ok := f.recs[key]; ok && old.seq >= r.Seq && f.liveLocked(old) {
		if old.seq == r.Seq && bytes.Equal(old.raw, raw) {
			old.at = f.now() // the same record again: kept longer
			f.recs[key] = old
		}
		return nil
	}
	f.recs[key] = fakeRec{raw: bytes.Clone(raw), seq: r.Seq, at: f.now()}
	return nil
}

func (f *fakeDHT) liveLocked(r fakeRec) bool {
	return f.dropAfter <= 0 || f.now().Sub(r.at) < f.dropAfter
}

func (f *fakeDHT) GetSigned(_ context.Context, key string) (dht.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	f.keyGets[key]++
	if f.noPeers {
		return dht.Record{}, dht.ErrNoPeers
	}
	if raw, ok := f.raw[key]; ok {
		return dht.OpenRecord(key, raw, f.now())
	}
	old, ok := f.recs[key]
	if !ok || !f.liveLocked(old) {
		return dht.Record{}, dht.ErrNotFound
	}
	r, err := dht.OpenRecord(key, old.raw, f.now())
	if errors.Is(err, dht.ErrExpired) {
		return dht.Record{}, dht.ErrNotFound
	}
	if err != nil {
		return dht.Record{}, err
	}
	r.Value = bytes.Clone(r.Value)
	return r, nil
}

// counts returns the lookups and puts so far.
func (f *fakeDHT) counts() (gets, puts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets, f.puts
}

// getsOf returns the lookups of key so far.
func (f *fakeDHT) getsOf(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keyGets[key]
}

// fakeKeys is a cell's mailbox keys: key, the current (epoch 1, which
// a list carried since the Unix epoch), and those of the epochs a test
// adds (newEpoch).
type fakeKeys struct {
	key *ecdh.PrivateKey
	mu  *sync.Mutex
	ks  *[]contactservice.MailboxKey // oldest first, after key's
}

func (k fakeKeys) MailboxKeys(context.Context) ([]contactservice.MailboxKey, error) {
	out := []contactservice.MailboxKey{{Epoch: 1, Private: k.key, Current: true, Since: time.Unix(1, 0)}}
	if k.mu == nil {
		return out, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, n := range *k.ks {
		out[len(out)-1].Current, out[len(out)-1].Until = false, n.Since
		out = append(out, n)
	}
	return out, nil
}

// withMailbox gives d's cell a mailbox key (its list, version 3, names
// it) and the blind mailboxes on m.
func withMailbox(t *testing.T, m *fakeDHT, ds ...*device) {
	t.Helper()
	for _, d := range ds {
		seed := bytes.Repeat([]byte{d.cell.Seed()[0] ^ 0x3c}, 32)
		k, err := ecdh.X25519().NewPrivateKey(seed)
		if err != nil {
			t.Fatal(err)
		}
		l := contact.NewDeviceList(d.list.Cell, d.list.Version+1, d.list.Devices)
		l.Mailbox = k.PublicKey().Bytes()
		if err := l.Sign(d.cell); err != nil {
			t.Fatal(err)
		}
		d.list, d.cons.own, d.mdht, d.mkeys = l, l, m, fakeKeys{key: k, mu: new(sync.Mutex), ks: new([]contactservice.MailboxKey)}
	}
}

// slotOf returns the slot from a's cell to b's of the current epoch at
// index i, as a's cell derives it.
func slotOf(t *testing.T, a, b *device, i int) mailbox.Slot {
	t.Helper()
	return slotAt(t, a, b, mailbox.Epoch(time.Now()), i)
}

// slotAt is slotOf of epoch.
func slotAt(t *testing.T, a, b *device, epoch uint64, i int) mailbox.Slot {
	t.Helper()
	theirs, err := b.list.MailboxKey()
	if err != nil {
		t.Fatal(err)
	}
	p, err := mailbox.PairSecret(a.mkeys.(fakeKeys).key, a.cell.Public().(ed25519.PublicKey), b.cell.Public().(ed25519.PublicKey), theirs)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mailbox.NewSlot(p, a.cell.Public().(ed25519.PublicKey), b.cell.Public().(ed25519.PublicKey), epoch, i)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// slotEntries returns what slot holds in m (nil if not found).
func slotEntries(t *testing.T, m *fakeDHT, s mailbox.Slot) []mailbox.Entry {
	t.Helper()
	r, err := m.GetSigned(t.Context(), s.RecordKey())
	if errors.Is(err, dht.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.Open(r.Value, r.Seq)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// kinds counts the frames and acks of es.
func kinds(es []mailbox.Entry) (frames, acks int) {
	for _, e := range es {
		if e.Kind == mailbox.KindFrame {
			frames++
		} else {
			acks++
		}
	}
	return frames, acks
}

// putEntries puts es in slot at seq, as a writer of the pair would.
func putEntries(t *testing.T, m *fakeDHT, s mailbox.Slot, es []mailbox.Entry, seq uint64) {
	t.Helper()
	v, err := s.Seal(es, seq, bytes.NewReader(make([]byte, 24)))
	if err != nil {
		t.Fatal(err)
	}
	putValue(t, m, s, v, seq)
}

// putValue puts value in slot's record at seq, signed by the slot's key.
func putValue(t *testing.T, m *fakeDHT, s mailbox.Slot, value []byte, seq uint64) {
	t.Helper()
	key, rec, err := dht.SealRecord(s.Owner(), mailbox.RecordName, value, seq, time.Now().Add(mailbox.Retention))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.PutSigned(t.Context(), key, rec); err != nil {
		t.Fatal(err)
	}
}

// ids returns the message IDs of es.
func entryIDs(es []mailbox.Entry) []message.ID {
	var out []message.ID
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// ackOf returns the ack entry that device d of the acknowledging cell
// signs for the message id that device from's cell sent.
func ackOf(t *testing.T, d, from *device, id message.ID) mailbox.Entry {
	t.Helper()
	raw, err := d.key.Raw()
	if err != nil {
		t.Fatal(err)
	}
	e, err := mailbox.Ack(ed25519.PrivateKey(raw), d.list.Cell, from.list.Cell, id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

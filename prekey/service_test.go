package prekey

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/ipfs/go-datastore"

	"github.com/exopeer/exopeer/ratchet"
)

// initiate is the initial header of an initiator, fixed by label, to
// bundle b: X3DH, with the one-time prekey InitiateSecret picks.
func initiate(t *testing.T, b *ratchet.Bundle, label string) *ratchet.InitialHeader {
	t.Helper()
	var seed [32]byte
	if _, err := testRand(t, label+"/key").Read(seed[:]); err != nil {
		t.Fatal(err)
	}
	_, _, h, err := ratchet.InitiateSecret(&ratchet.Exopeer, testRand(t, label+"/ephemeral"),
		ed25519.NewKeyFromSeed(seed[:]), testPrekeys(t, label, 0), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// respond answers h through s.Accept, as the messaging service does.
func respond(s *Service, self ed25519.PublicKey, h *ratchet.InitialHeader) error {
	return s.Accept(context.Background(), func(k *ratchet.Prekeys, now int64) error {
		_, _, _, err := ratchet.RespondSecret(&ratchet.Exopeer, self, k, h, now)
		return err
	})
}

func hasOneTime(b *ratchet.Bundle, id uint32) bool {
	return slices.ContainsFunc(b.OneTime, func(o ratchet.OneTimePrekey) bool { return o.ID == id })
}

func stored(t *testing.T, d ds.Datastore) (uint64, *ratchet.Prekeys) {
	t.Helper()
	seq, keys, found, err := loadState(t.Context(), d)
	if err != nil || !found {
		t.Fatalf("stored state: %v, found %v", err, found)
	}
	return seq, keys
}

// TestFirstStart: the first start makes the state with OneTime one-time
// prekeys, stores it before anything is published, and publishes its
// bundle (sequence 1) on the DHT; a restart keeps it, byte for byte.
func TestFirstStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1)
		tn.recs.fail = errors.New("no DHT yet") // the first stores fail: the loop tries again
		s := tn.start(0, 0, Config{})
		settle()
		seq, keys := stored(t, tn.dss[0])
		if seq != 1 || keys.OneTimeCount() != DefaultOneTime {
			t.Fatalf("stored: sequence %d, %d one-time prekeys; want 1, %d", seq, keys.OneTimeCount(), DefaultOneTime)
		}
		b := s.Bundle()
		if b.Sequence != 1 || len(b.OneTime) != DefaultOneTime {
			t.Fatalf("bundle: sequence %d, %d one-time prekeys", b.Sequence, len(b.OneTime))
		}
		if st := s.Stats(); st.Published != 0 {
			t.Fatalf("published %d while the DHT failed", st.Published)
		}
		tn.recs.mu.Lock()
		tn.recs.fail = nil
		tn.recs.mu.Unlock()
		time.Sleep(DefaultConfig().RetryInterval)
		settle()
		want, _ := b.MarshalBinary()
		if got := tn.recs.get(tn.hosts[0].ID()); !bytes.Equal(got, want) {
			t.Fatalf("the DHT holds %d bytes, not the bundle", len(got))
		}
		if st := s.Stats(); st.Published != 1 {
			t.Fatalf("published %d, want 1", st.Published)
		}

		before, _ := tn.dss[0].Get(t.Context(), StateKey)
		s = tn.start(0, 1, Config{})
		settle()
		after, _ := tn.dss[0].Get(t.Context(), StateKey)
		if !bytes.Equal(before, after) {
			t.Fatal("a restart changed the stored state")
		}
		again, _ := s.Bundle().MarshalBinary()
		if !bytes.Equal(again, want) {
			t.Fatal("a restart signed another bundle")
		}
	})
}

// TestCorruptState: a stored state that does not decode stops Start with
// ErrCorruptState naming the key, and is left as it was.
func TestCorruptState(t *testing.T) {
	good := testStateBytes(t)
	for _, tc := range []struct {
		name string
		v    []byte
	}{
		{"empty", []byte{}},
		{"other version", append([]byte{9}, good[1:]...)},
		{"sequence 0", append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, good[9:]...)},
		{"cut", good[:len(good)-1]},
		{"longer", append(bytes.Clone(good), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tn := newTestNet(t, 1)
				if err := tn.dss[0].Put(t.Context(), StateKey, tc.v); err != nil {
					t.Fatal(err)
				}
				s, err := tn.build(0, 0, Config{})
				if err != nil {
					t.Fatal(err)
				}
				err = s.Start(t.Context())
				if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), StateKey.String()) {
					t.Fatalf("Start: %v; want ErrCorruptState naming %s", err, StateKey)
				}
				if got, _ := tn.dss[0].Get(t.Context(), StateKey); !bytes.Equal(got, tc.v) {
					t.Fatal("the corrupt state was replaced")
				}
				if tn.recs.puts != 0 {
					t.Fatal("a bundle was published")
				}
			})
		})
	}
}

// TestAcceptSurvivesRestart: a one-time prekey consumed through Accept is
// gone from the stored state, the bundle served and, after a restart,
// from the bundle; the same initial header is refused after the restart
// (its prekey is gone), and so is a last-resort header accepted before
// it (the replay guard is stored).
func TestAcceptSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1)
		self := testSigner(t, 0).Public().(ed25519.PublicKey)
		s := tn.start(0, 0, Config{})
		settle()
		h := initiate(t, s.Bundle(), "alice")
		if h.Kind != ratchet.PrekeyOneTime {
			t.Fatalf("kind %d, want one-time", h.Kind)
		}
		if err := respond(s, self, h); err != nil {
			t.Fatal(err)
		}
		// Before Accept returned, the state was stored.
		seq, keys := stored(t, tn.dss[0])
		if seq != 2 || keys.OneTimeCount() != DefaultOneTime-1 {
			t.Fatalf("stored: sequence %d, %d one-time prekeys", seq, keys.OneTimeCount())
		}
		if b := s.Bundle(); b.Sequence != 2 || hasOneTime(b, h.PrekeyID) {
			t.Fatalf("bundle served: sequence %d, still has prekey %d: %v", b.Sequence, h.PrekeyID, hasOneTime(b, h.PrekeyID))
		}
		if err := respond(s, self, h); !errors.Is(err, ratchet.ErrRefused) {
			t.Fatalf("replay before the restart: %v", err)
		}
		// A handshake on the last-resort prekey, which is never consumed:
		// only the replay guard refuses its replay.
		fresh := initiate(t, s.Bundle(), "bob")
		fresh.Kind, fresh.PrekeyID = ratchet.PrekeyLastResort, s.Bundle().LastResort.ID
		if err := respond(s, self, fresh); err != nil {
			t.Fatalf("a new ephemeral key on the last-resort prekey: %v", err)
		}
		if err := respond(s, self, fresh); !errors.Is(err, ratchet.ErrRefused) {
			t.Fatalf("its replay: %v", err)
		}

		s = tn.start(0, 1, Config{})
		settle()
		if b := s.Bundle(); b.Sequence != 3 || hasOneTime(b, h.PrekeyID) {
			t.Fatalf("after the restart: sequence %d, prekey %d back: %v", b.Sequence, h.PrekeyID, hasOneTime(b, h.PrekeyID))
		}
		if err := respond(s, self, h); !errors.Is(err, ratchet.ErrRefused) {
			t.Fatalf("replay after the restart: %v", err)
		}
		if err := respond(s, self, fresh); !errors.Is(err, ratchet.ErrRefused) {
			t.Fatalf("replay on the last-resort prekey after the restart: %v", err)
		}
	})
}

// failingStore fails every Put while fail is set.
type failingStore struct {
	ds.Batching
	fail bool
}

func (f *failingStore) Put(ctx context.Context, k ds.Key, v []byte) error {
	if f.fail {
		return errors.New("disk full")
	}
	return f.Batching.Put(ctx, k, v)
}

// TestAcceptFailureChangesNothing: when fn fails after changing the state,
// or the store fails, the state (stored, in memory, and the bundle) is as
// it was, and the error is Accept's.
func TestAcceptFailureChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1)
		fs := &failingStore{Batching: tn.dss[0]}
		tn.dss[0] = fs
		self := testSigner(t, 0).Public().(ed25519.PublicKey)
		s := tn.start(0, 0, Config{})
		settle()
		before, _ := fs.Get(t.Context(), StateKey)
		bundle, _ := s.Bundle().MarshalBinary()
		h := initiate(t, s.Bundle(), "alice")
		boom := errors.New("boom")
		err := s.Accept(t.Context(), func(k *ratchet.Prekeys, now int64) error {
			if _, _, _, err := ratchet.RespondSecret(&ratchet.Exopeer, self, k, h, now); err != nil {
				t.Fatal(err)
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Accept: %v", err)
		}
		fs.fail = true
		if err := respond(s, self, h); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Accept with a failing store: %v", err)
		}
		fs.fail = false
		after, _ := fs.Get(t.Context(), StateKey)
		now, _ := s.Bundle().MarshalBinary()
		if !bytes.Equal(before, after) || !bytes.Equal(bundle, now) {
			t.Fatal("a failed Accept changed the state")
		}
		// Nothing was consumed: the header is still answered.
		if err := respond(s, self, h); err != nil {
			t.Fatalf("the header after failed Accepts: %v", err)
		}
	})
}

// TestReplenish: once fewer than LowWater one-time prekeys are left, the
// loop makes new ones up to OneTime, stores them, then republishes with
// a higher sequence number.
func TestReplenish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1)
		self := testSigner(t, 0).Public().(ed25519.PublicKey)
		s := tn.start(0, 0, Config{OneTime: 8, LowWater: 6})
		settle()
		var used []uint32
		for i := 0; len(used) < 3; i++ {
			h := initiate(t, s.Bundle(), "initiator "+string(rune('a'+i)))
			if err := respond(s, self, h); err != nil {
				t.Fatal(err)
			}
			used = append(used, h.PrekeyID)
			settle()
			if n := s.Bundle().OneTime; len(used) < 3 && len(n) != 8-len(used) {
				t.Fatalf("%d used, %d left: replenished above the low-water mark", len(used), len(n))
			}
		}
		settle()
		b := s.Bundle()
		if len(b.OneTime) != 8 {
			t.Fatalf("%d one-time prekeys after replenishment, want 8", len(b.OneTime))
		}
		for _, id := range used {
			if hasOneTime(b, id) {
				t.Fatalf("used prekey %d is back", id)
			}
		}
		seq, keys := stored(t, tn.dss[0])
		if seq != b.Sequence || keys.OneTimeCount() != 8 {
			t.Fatalf("stored sequence %d with %d prekeys; bundle %d", seq, keys.OneTimeCount(), b.Sequence)
		}
		if b.Sequence != 5 { // 1, three Accepts, one replenishment
			t.Fatalf("sequence %d, want 5", b.Sequence)
		}
		time.Sleep(DefaultConfig().PublishInterval) // the stores of the changes, coalesced
		settle()
		want, _ := b.MarshalBinary()
		if got := tn.recs.get(tn.hosts[0].ID()); !bytes.Equal(got, want) {
			t.Fatal("the DHT does not hold the replenished bundle")
		}
		if st := s.Stats(); st.Published != b.Sequence {
			t.Fatalf("published %d, want %d", st.Published, b.Sequence)
		}
	})
}

// TestRotation: after 7 virtual days the loop rotates the signed prekey,
// stores it and republishes a bundle with a new signed prekey and a
// higher sequence number; the previous signed prekey still answers.
func TestRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t, 1)
		self := testSigner(t, 0).Public().(ed25519.PublicKey)
		s := tn.start(0, 0, Config{OneTime: 4, LowWater: 1})
		settle()
		first := s.Bundle()
		old := initiate(t, first, "before")
		time.Sleep(ratchet.RotationPeriod*time.Second - time.Second)
		settle()
		if s.Bundle().Signed.ID != first.Signed.ID {
			t.Fatal("rotated before 7 days")
		}
		time.Sleep(time.Second)
		settle()
		b := s.Bundle()
		if b.Signed.ID == first.Signed.ID || b.Signed.Key == first.Signed.Key || b.Sequence <= first.Sequence {
			t.Fatalf("after 7 days: signed prekey %d (was %d), sequence %d (was %d)", b.Signed.ID, first.Signed.ID, b.Sequence, first.Sequence)
		}
		if b.Signed.Created != time.Now().Unix() {
			t.Fatalf("created %d, now %d", b.Signed.Created, time.Now().Unix())
		}
		want, _ := b.MarshalBinary()
		if got := tn.recs.get(tn.hosts[0].ID()); !bytes.Equal(got, want) {
			t.Fatal("the DHT does not hold the rotated bundle")
		}
		if _, keys := stored(t, tn.dss[0]); !keys.RotationDue(time.Now().Unix()+ratchet.RotationPeriod) || keys.RotationDue(time.Now().Unix()) {
			t.Fatal("the rotation was not stored")
		}
		if err := respond(s, self, old); err != nil {
			t.Fatalf("an initial message to the previous signed prekey: %v", err)
		}
	})
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"one", Config{OneTime: 1}, true},
		{"too many", Config{OneTime: ratchet.MaxOneTimePrekeys + 1}, false},
		{"negative", Config{OneTime: -1}, false},
		{"low water above", Config{OneTime: 10, LowWater: 11}, false},
		{"negative timeout", Config{Timeout: -time.Second}, false},
		{"negative cache", Config{CacheSize: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.withDefaults().validate()
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("%v", err)
			}
		})
	}
	if c := (Config{OneTime: 8}).withDefaults(); c.LowWater != 6 {
		t.Fatalf("low water %d for 8, want 6", c.LowWater)
	}
}

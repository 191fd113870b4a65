package service

import (
	"log/slog"
	"testing"

	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/index"
)

// TestCatchUpIdle: a catch-up with nothing to do reads nothing of the
// chain (nor the index's checkpoint); one after the chain grew applies
// the new arrivals; one after a cut-off that kept the arrival count (one
// entry dropped, one arrived) sees the change and applies the chain as
// it is.
func TestCatchUpIdle(t *testing.T) {
	es := cutEntries(t, 4)
	ch := &cutChain{es: es[:2:2], cutAt: 1 << 60}
	s := &Service{chain: ch, cfg: Config{}.withDefaults(), log: slog.New(slog.DiscardHandler)}
	s.reg = s.cfg.Registry
	ix, err := index.Open(t.TempDir(), s.reg, index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	step := func(name string, want uint64, reads bool) {
		t.Helper()
		ch.mu.Lock()
		ch.asked = nil
		ch.mu.Unlock()
		got, err := s.catchUp(t.Context(), ix)
		if err != nil || got != want {
			t.Fatalf("%s: catchUp = %d, %v; want %d", name, got, err, want)
		}
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if read := len(ch.asked) > 0; read != reads {
			t.Errorf("%s: read the chain %v (%v), want %v", name, read, ch.asked, reads)
		}
	}
	step("first", 2, true)
	step("idle", 0, false)
	step("idle again", 0, false)
	ch.mu.Lock()
	ch.es = append(ch.es, es[2])
	ch.mu.Unlock()
	step("grown", 1, true)
	step("idle after", 0, false)
	ch.mu.Lock()
	ch.es = []replica.Entry{es[0], es[2], es[3]} // entry 1 dropped, entry 3 arrived
	for i := range ch.es {
		ch.es[i].Index = uint64(i)
	}
	ch.mu.Unlock()
	step("cut", 3, true)
	for i := range es {
		var e store.EntityID
		e[15] = byte(i + 1)
		_, err := ix.Get(t.Context(), e, nil)
		if got, want := err == nil, i != 1; got != want {
			t.Errorf("entity of entry %d: in the index %v, want %v (%v)", i, got, want, err)
		}
	}
	step("idle at last", 0, false)
}

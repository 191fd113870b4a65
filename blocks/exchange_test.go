package blocks

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

func hasProtocol(ps []ma.Protocol, name string) bool {
	return slices.ContainsFunc(ps, func(p ma.Protocol) bool { return p.Name == name })
}

// fetchTimeout bounds every fetch that should succeed; on loopback they
// take milliseconds.
const fetchTimeout = 20 * time.Second

func TestExchangeFetch(t *testing.T) {
	for _, tt := range []struct {
		name      string
		transport string
		// startAfterConnect starts B's exchange only once the hosts are
		// connected: Start must adopt the existing connection.
		startAfterConnect bool
	}{
		{"tcp", "tcp", false},
		{"quic", "quic-v1", false},
		{"start after connect", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newNode(t, Config{}, true)
			b := newNode(t, Config{}, !tt.startAfterConnect)
			connect(t, b, a, tt.transport)
			if tt.startAfterConnect {
				if err := b.ex.Start(t.Context()); err != nil {
					t.Fatal(err)
				}
			}

			one := randomBlock(t, 4096)
			many := []blockformat.Block{randomBlock(t, 1), randomBlock(t, 100<<10), randomBlock(t, 1024)}
			if err := a.ex.PutMany(t.Context(), append([]blockformat.Block{one}, many...)); err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(t.Context(), fetchTimeout)
			defer cancel()
			got, err := b.ex.Get(ctx, one.Cid())
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			checkSame(t, one, got)
			checkStored(t, b.store, one)

			// A local block, two fetched ones and a repeat, in order.
			if err := b.store.Put(t.Context(), many[2]); err != nil {
				t.Fatal(err)
			}
			cs := []cid.Cid{many[2].Cid(), many[0].Cid(), many[1].Cid(), many[0].Cid()}
			gotMany, err := b.ex.GetMany(ctx, cs)
			if err != nil {
				t.Fatalf("GetMany: %v", err)
			}
			for i, want := range []blockformat.Block{many[2], many[0], many[1], many[0]} {
				checkSame(t, want, gotMany[i])
			}
			for _, blk := range many {
				checkStored(t, b.store, blk)
			}
			wantCount(t, b.store, 4)
		})
	}
}

// Regression test: with boxo's default 16 KiB message size, a fetch of 100
// blocks of 16 KiB opened 100 streams, the receiver's resource manager
// reset some of them, and about one fetch in four stalled for ~45 s (see
// targetMessageSize).
func TestExchangeFetchManyDoesNotStall(t *testing.T) {
	a := newNode(t, Config{}, true)
	b := newNode(t, Config{}, true)
	connect(t, b, a, "tcp")
	m := newBlockMaker(16 << 10)
	for round := range 10 {
		blks := make([]blockformat.Block, 100)
		cids := make([]cid.Cid, len(blks))
		for i := range blks {
			blks[i] = m.next()
			cids[i] = blks[i].Cid()
		}
		if err := a.ex.PutMany(t.Context(), blks); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := b.ex.GetMany(ctx, cids)
		cancel()
		if err != nil {
			t.Fatalf("round %d: GetMany: %v", round, err)
		}
	}
}

func checkSame(t *testing.T, want, got blockformat.Block) {
	t.Helper()
	if got == nil {
		t.Fatalf("got no block, want %s", want.Cid())
	}
	if got.Cid() != want.Cid() {
		t.Errorf("got CID %s, want %s", got.Cid(), want.Cid())
	}
	if diff := cmp.Diff(want.RawData(), got.RawData()); diff != "" {
		t.Errorf("block %s data mismatch (-want +got):\n%s", want.Cid(), diff)
	}
}

// checkStored checks that s holds want, read back through verification.
func checkStored(t *testing.T, s *Store, want blockformat.Block) {
	t.Helper()
	got, err := s.Get(t.Context(), want.Cid())
	if err != nil {
		t.Fatalf("fetched block not stored: %v", err)
	}
	checkSame(t, want, got)
}

func TestExchangeFetchMissingEndsWithContext(t *testing.T) {
	a := newNode(t, Config{}, true)
	b := newNode(t, Config{ProviderSearchDelay: 100 * time.Millisecond}, true)
	connect(t, b, a, "")
	nobody := randomBlock(t, 64).Cid()
	const timeout = 500 * time.Millisecond

	for _, tt := range []struct {
		name string
		get  func(context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := b.ex.Get(ctx, nobody); return err }},
		{"GetMany", func(ctx context.Context) error {
			_, err := b.ex.GetMany(ctx, []cid.Cid{nobody, randomBlock(t, 64).Cid()})
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			start := time.Now()
			err := tt.get(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want context.DeadlineExceeded", err)
			}
			if took := time.Since(start); took > timeout+2*time.Second {
				t.Errorf("returned %v after the deadline", took-timeout)
			}
		})
	}
}

// A peer waiting for a block gets it as soon as the holder puts it (with
// Put or PutOwn), not at the next rebroadcast (a minute later).
func TestExchangeWaitingPeerGetsPut(t *testing.T) {
	for _, put := range []struct {
		name string
		put  func(context.Context, *Exchange, blockformat.Block) error
	}{
		{"Put", func(ctx context.Context, e *Exchange, b blockformat.Block) error { return e.Put(ctx, b) }},
		{"PutOwn", func(ctx context.Context, e *Exchange, b blockformat.Block) error {
			return e.PutOwn(ctx, []blockformat.Block{b})
		}},
	} {
		t.Run(put.name, func(t *testing.T) {
			a := newNode(t, Config{}, true)
			b := newNode(t, Config{}, true)
			connect(t, b, a, "")
			blk := randomBlock(t, 2048)

			type result struct {
				b   blockformat.Block
				err error
			}
			done := make(chan result, 1)
			ctx, cancel := context.WithTimeout(t.Context(), fetchTimeout)
			defer cancel()
			go func() {
				got, err := b.ex.Get(ctx, blk.Cid())
				done <- result{got, err}
			}()
			time.Sleep(200 * time.Millisecond) // let B's want reach A
			if err := put.put(t.Context(), a.ex, blk); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil {
				t.Fatalf("Get: %v", r.err)
			}
			checkSame(t, blk, r.b)
		})
	}
}

// A corrupt record never reaches a peer's store, nor a local reader. The
// serving side does not hash what bitswap sends (Store.served): the
// receiver's bitswap hashes it, finds it under a CID nobody wanted and
// drops it.
func TestExchangeDoesNotServeCorruptBlock(t *testing.T) {
	a := newNode(t, Config{}, true)
	b := newNode(t, Config{}, true)
	connect(t, b, a, "")
	blk := randomBlock(t, 1024)
	if err := a.store.Put(t.Context(), blk); err != nil {
		t.Fatal(err)
	}
	d, key := a.store.where(blk.Cid())
	if err := d.Put(t.Context(), key, []byte("rotten")); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if got, err := b.ex.Get(ctx, blk.Cid()); got != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("B.Get = %v, %v; want nil, context.DeadlineExceeded", got, err)
	}
	if has, _ := b.store.Has(t.Context(), blk.Cid()); has {
		t.Error("B stored the block")
	}
	if _, err := a.store.Get(t.Context(), blk.Cid()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("A.Get = %v; want ErrCorrupt", err)
	}
}

func TestExchangeProtocol(t *testing.T) {
	n := newNode(t, Config{}, false)
	want := protocol.ID("/exopeer/ipfs/bitswap/1.2.0")
	if ProtocolID != want || protocolPrefix+bsnet.ProtocolBitswap != want {
		t.Errorf("ProtocolID = %q, prefix + bsnet.ProtocolBitswap = %q; want %q",
			ProtocolID, protocolPrefix+bsnet.ProtocolBitswap, want)
	}
	registered := func() []protocol.ID {
		var out []protocol.ID
		for _, p := range n.host.Mux().Protocols() {
			if hasBitswap(p) {
				out = append(out, p)
			}
		}
		return out
	}
	if got := registered(); len(got) != 0 {
		t.Errorf("before Start: bitswap protocols %v, want none", got)
	}
	if err := n.ex.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]protocol.ID{want}, registered()); diff != "" {
		t.Errorf("after Start: protocols mismatch (-want +got):\n%s", diff)
	}
	if err := n.ex.Close(); err != nil {
		t.Fatal(err)
	}
	if got := registered(); len(got) != 0 {
		t.Errorf("after Close: bitswap protocols %v, want none", got)
	}
}

func hasBitswap(p protocol.ID) bool { return strings.Contains(string(p), "/bitswap") }

func TestExchangeLifecycle(t *testing.T) {
	n := newNode(t, Config{}, false)
	ctx := t.Context()
	local := NewBlock([]byte("local"))
	if err := n.ex.Put(ctx, local); err != nil {
		t.Fatalf("Put before Start: %v", err)
	}
	absent := NewBlock([]byte("absent")).Cid()

	steps := []struct {
		name    string
		do      func() error
		wantErr error
	}{
		{"Get local before Start", func() error { _, err := n.ex.Get(ctx, local.Cid()); return err }, nil},
		{"Get absent before Start", func() error { _, err := n.ex.Get(ctx, absent); return err }, ErrNotRunning},
		{"GetMany absent before Start", func() error { _, err := n.ex.GetMany(ctx, []cid.Cid{absent}); return err }, ErrNotRunning},
		{"Start", func() error { return n.ex.Start(ctx) }, nil},
		{"Close", n.ex.Close, nil},
		{"Close again", n.ex.Close, nil},
		{"Start after Close", func() error { return n.ex.Start(ctx) }, ErrNotRunning},
		{"Get absent after Close", func() error { _, err := n.ex.Get(ctx, absent); return err }, ErrNotRunning},
		{"Get local after Close", func() error { _, err := n.ex.Get(ctx, local.Cid()); return err }, nil},
	}
	for _, s := range steps {
		if err := s.do(); !errors.Is(err, s.wantErr) {
			t.Errorf("%s: err = %v, want %v", s.name, err, s.wantErr)
		}
	}

	m := newNode(t, Config{}, true)
	if err := m.ex.Start(ctx); err == nil {
		t.Error("second Start: no error")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"zero", Config{}, false},
		{"default", DefaultConfig(), false},
		{"negative delay", Config{ProviderSearchDelay: -time.Second}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewExchange(nil, nil, tt.cfg)
			if got := err != nil; got != tt.wantErr || (got && !errors.Is(err, ErrInvalidConfig)) {
				t.Errorf("NewExchange(%+v) err = %v, wantErr %v", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

package prekey

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/dht"
	"github.com/exopeer/exopeer/ratchet"
)

// testRand is a ChaCha8 stream fixed by the test's name and label.
func testRand(t testing.TB, label string) io.Reader {
	seed := sha256.Sum256([]byte(t.Name() + "/" + label))
	return rand.NewChaCha8(seed)
}

// testKey is device i's Ed25519 key, fixed by i.
func testKey(t testing.TB, i int) crypto.PrivKey {
	t.Helper()
	seed := sha256.Sum256(fmt.Appendf(nil, "prekey test key %d", i))
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testID(t testing.TB, i int) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(testKey(t, i))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func testSigner(t testing.TB, i int) ed25519.PrivateKey {
	t.Helper()
	raw, err := testKey(t, i).Raw()
	if err != nil {
		t.Fatal(err)
	}
	return ed25519.PrivateKey(raw)
}

// testPrekeys is a prekey state with n one-time prekeys, fixed by label.
func testPrekeys(t testing.TB, label string, n int) *ratchet.Prekeys {
	t.Helper()
	r := testRand(t, label)
	k, err := ratchet.NewPrekeys(r, 1_700_000_000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Replenish(r, n); err != nil {
		t.Fatal(err)
	}
	return k
}

// testBundleBytes is device 0's bundle of a fixed state, encoded.
func testBundleBytes(t testing.TB) []byte {
	t.Helper()
	b, err := testPrekeys(t, "bundle", 3).Bundle(testSigner(t, 0), 1)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := b.MarshalBinary()
	return enc
}

// testStateBytes is a stored state, encoded.
func testStateBytes(t testing.TB) []byte {
	t.Helper()
	return encodeState(1, testPrekeys(t, "state", 3))
}

// records is an in-memory DHT: one value per owner and name, the last
// put, or a value set by the test. Safe for concurrent use.
type records struct {
	mu   sync.Mutex
	m    map[string][]byte
	puts int
	fail error // every PutRecord's error while set
	// delay is how long each PutRecord takes; inflight counts those under
	// way, mostInflight the most at once.
	delay                  time.Duration
	inflight, mostInflight int
}

func newRecords() *records { return &records{m: map[string][]byte{}} }

// owner is the Records of one device.
type owner struct {
	r  *records
	id peer.ID
}

func (o owner) PutRecord(_ context.Context, name string, value []byte) error {
	o.r.mu.Lock()
	o.r.inflight++
	o.r.mostInflight = max(o.r.mostInflight, o.r.inflight)
	delay := o.r.delay
	o.r.mu.Unlock()
	time.Sleep(delay)
	o.r.mu.Lock()
	defer o.r.mu.Unlock()
	o.r.inflight--
	o.r.puts++
	if o.r.fail != nil {
		return o.r.fail
	}
	o.r.m[dht.RecordKey(o.id, name)] = append([]byte(nil), value...)
	return nil
}

func (o owner) GetRecord(_ context.Context, id peer.ID, name string) ([]byte, error) {
	o.r.mu.Lock()
	defer o.r.mu.Unlock()
	v, ok := o.r.m[dht.RecordKey(id, name)]
	if !ok {
		return nil, dht.ErrNotFound
	}
	return append([]byte(nil), v...), nil
}

func (r *records) get(id peer.ID) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[dht.RecordKey(id, RecordName)]
}

// counts returns the stores made and the most under way at once.
func (r *records) counts() (puts, mostInflight int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.puts, r.mostInflight
}

func (r *records) set(id peer.ID, v []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[dht.RecordKey(id, RecordName)] = v
}

// testNet is devices on a fully linked mocknet with an in-memory DHT. It
// must be built and closed inside one synctest bubble.
type testNet struct {
	t     *testing.T
	mn    mocknet.Mocknet
	recs  *records
	hosts []host.Host
	dss   []ds.Batching
	svcs  []*Service
}

// newTestNet makes n hosts (device i has testKey(i)), linked, not
// connected, each with a datastore of its own; no service yet.
func newTestNet(t *testing.T, n int) *testNet {
	t.Helper()
	tn := &testNet{t: t, mn: mocknet.New(), recs: newRecords()}
	for i := range n {
		h, err := tn.mn.AddPeer(testKey(t, i), ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4001", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		tn.hosts = append(tn.hosts, h)
		tn.dss = append(tn.dss, dssync.MutexWrap(ds.NewMapDatastore()))
		tn.svcs = append(tn.svcs, nil)
	}
	if err := tn.mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tn.close)
	return tn
}

// start starts device i's service with cfg (its Rand fixed by the
// test's name, i and life), closing the one it had.
func (tn *testNet) start(i, life int, cfg Config) *Service {
	tn.t.Helper()
	s, err := tn.build(i, life, cfg)
	if err != nil {
		tn.t.Fatal(err)
	}
	if err := s.Start(tn.t.Context()); err != nil {
		tn.t.Fatal(err)
	}
	return s
}

func (tn *testNet) build(i, life int, cfg Config) (*Service, error) {
	if old := tn.svcs[i]; old != nil {
		if err := old.Close(); err != nil {
			tn.t.Error(err)
		}
	}
	if cfg.Rand == nil {
		cfg.Rand = testRand(tn.t, fmt.Sprintf("device %d life %d", i, life))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now // the bubble's
	}
	s, err := New(Options{
		Host: tn.hosts[i], Key: testKey(tn.t, i), Datastore: tn.dss[i],
		Records: owner{tn.recs, tn.hosts[i].ID()}, Config: cfg,
	})
	tn.svcs[i] = s
	return s, err
}

func (tn *testNet) connect(i, j int) {
	tn.t.Helper()
	if _, err := tn.mn.ConnectPeers(tn.hosts[i].ID(), tn.hosts[j].ID()); err != nil {
		tn.t.Fatal(err)
	}
}

// close stops every service and host, then lets timers of stragglers
// fire.
func (tn *testNet) close() {
	for _, s := range tn.svcs {
		if s != nil {
			if err := s.Close(); err != nil {
				tn.t.Error(err)
			}
		}
	}
	if err := tn.mn.Close(); err != nil {
		tn.t.Error(err)
	}
	time.Sleep(time.Minute)
}

// settle waits in virtual time until every goroutine of the bubble is
// blocked for good: the maintenance loops have done what they were woken
// for.
func settle() { synctest.Wait() }

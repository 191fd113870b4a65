package gossip

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// aliveMsg is memberlist's alive message (its unexported alive struct,
// field for field: msgpack encodes the field names), which any member
// holding the gossip key can forge about any node.
type aliveMsg struct {
	Incarnation uint32
	Node        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Vsn         []uint8
}

// memberlist's message type of an alive message, and its encryption
// version 1 (AES-GCM, no padding), as in memberlist v0.7.0's net.go and
// security.go.
const (
	mlAliveMsg      = 4
	mlEncryptionVsn = 1
)

// forgeAlive encodes and encrypts an alive message as a memberlist packet
// of the cell whose gossip key is key.
func forgeAlive(t *testing.T, key []byte, a aliveMsg) []byte {
	t.Helper()
	var plain bytes.Buffer
	plain.WriteByte(mlAliveMsg)
	if err := codec.NewEncoder(&plain, &codec.MsgpackHandle{}).Encode(&a); err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, gcm.NonceSize())
	binary.BigEndian.PutUint32(nonce, a.Incarnation) // unique per message here
	out := append([]byte{mlEncryptionVsn}, nonce...)
	return gcm.Seal(out, nonce, plain.Bytes(), nil)
}

// nodeView returns memberlist's own entry for id at m.
func nodeView(m *Membership, id peer.ID) (memberlist.Node, bool) {
	m.mu.Lock()
	ml := m.ml
	m.mu.Unlock()
	for _, n := range ml.Members() {
		if n.Name == id.String() {
			return *n, true
		}
	}
	return memberlist.Node{}, false
}

// TestSimReplayedMeta: member M replays to member A two genuine, older
// signed metadata of member B, with an incarnation higher than B's: the
// metadata of B's previous run (an older roster version) and the one it
// gossiped when it left. A refuses both and keeps B's current metadata.
func TestSimReplayedMeta(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 31)
		const a, b, attacker = 0, 1, 2
		c := newSimCell(t, seed, 3)
		c.awaitConvergence(2*time.Minute, all(3)...)

		old := slices.Clone(*c.ms[b].meta.Load())
		if err := c.ms[b].Close(); err != nil { // leaves: gossips its leaving metadata
			t.Fatal(err)
		}
		leaving := slices.Clone(*c.ms[b].meta.Load())
		if nm, err := decodeMeta(leaving); err != nil || !nm.leaving() {
			t.Fatalf("metadata after Close: %v, leaving %v", err, nm.leaving())
		}
		// B restarts with a newer roster.
		cfg := testConfig(seed, testKey(seed, b), c.rosters[b], Timing{})
		cfg.AppMeta = func() []byte { return []byte("roster v2") }
		c.ms[b] = startMembership(t, c.hosts[b], cfg)
		if _, err := c.ms[b].Join(t.Context(), []peer.ID{c.ids[a]}); err != nil {
			t.Fatal(err)
		}
		current := *c.ms[b].meta.Load()
		if _, ok := waitUntil(2*time.Minute, 100*time.Millisecond, func() bool {
			n, ok := nodeView(c.ms[a], c.ids[b])
			return ok && n.State == memberlist.StateAlive && bytes.Equal(n.Meta, current)
		}); !ok {
			t.Fatal("node 0 never saw node 1's new metadata")
		}

		// The attacker's packets reach A at once, before any refutation
		// by B can (every other link has 5 ms or more).
		for _, l := range c.mn.LinksBetweenPeers(c.ids[attacker], c.ids[a]) {
			l.SetOptions(mocknet.LinkOptions{})
		}
		view, _ := nodeView(c.ms[a], c.ids[b])
		for i, replay := range []struct {
			name string
			meta []byte
		}{{"older roster", old}, {"leaving", leaving}} {
			pkt := forgeAlive(t, gossipKey(seed, 0), aliveMsg{
				Incarnation: 1<<20 + uint32(i),
				Node:        c.ids[b].String(),
				Addr:        view.Addr,
				Port:        view.Port,
				Meta:        replay.meta,
				Vsn:         []uint8{view.PMin, view.PMax, view.PCur, view.DMin, view.DMax, view.DCur},
			})
			s, err := c.hosts[attacker].NewStream(t.Context(), c.ids[a], ProtocolPacket)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Write(appendPacket(nil, c.ms[a].cfg.Tag, pkt)); err != nil {
				t.Fatal(err)
			}
			_ = s.Close()
			synctest.Wait()
			n, _ := nodeView(c.ms[a], c.ids[b])
			if !bytes.Equal(n.Meta, current) {
				nm, _ := decodeMeta(n.Meta)
				t.Errorf("%s: node 0 took the replayed metadata of node 1 (app %q, leaving %v)",
					replay.name, nm.App, nm.leaving())
			}
		}
		if n := c.ms[a].Stats().StaleMeta; n < 2 {
			t.Errorf("node 0 counted %d stale metadata, want at least the 2 replays", n)
		}
	})
}

// TestSimRestartWithClockBehind: a member that left, then comes back with
// its clock an hour behind (so its metadata has a lower sequence number
// than the last one the others saw), is admitted again with its new
// metadata: the others forget a member's sequence number when it leaves or
// fails.
func TestSimRestartWithClockBehind(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 32)
		const a, b = 0, 1
		c := newSimCell(t, seed, 3)
		c.awaitConvergence(2*time.Minute, all(3)...)
		if err := c.ms[b].Close(); err != nil {
			t.Fatal(err)
		}
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			st, _ := stateOf(c.ms[a], c.ids[b])
			return st == StateLeft
		}); !ok {
			t.Fatal("node 0 never saw node 1 leave")
		}

		cfg := testConfig(seed, testKey(seed, b), c.rosters[b], Timing{})
		cfg.AppMeta = func() []byte { return []byte("roster v2") }
		m, err := New(c.hosts[b], cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		m.now = func() time.Time { return time.Now().Add(-time.Hour) }
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		c.ms[b] = m
		if _, err := m.Join(t.Context(), []peer.ID{c.ids[a]}); err != nil {
			t.Fatal(err)
		}
		if _, ok := waitUntil(2*time.Minute, 100*time.Millisecond, func() bool {
			for _, mb := range c.ms[a].Members() {
				if mb.ID == c.ids[b] {
					return mb.State == StateAlive && string(mb.Meta) == "roster v2"
				}
			}
			return false
		}); !ok {
			st, _ := stateOf(c.ms[a], c.ids[b])
			t.Errorf("node 0 does not admit node 1 back with its clock behind: it sees it %v, %d stale metadata refused",
				st, c.ms[a].Stats().StaleMeta)
		}
	})
}

// TestSimQuickRestartWithClockBehind: a member that crashes and comes back
// before the others noticed, with its clock an hour behind, sees its
// previous metadata in their gossip, signs again above it, and the others
// take its new metadata, also when memberlist's refutation of that
// earlier metadata overtakes the first update (see maxResign): in about
// one run in five before that fix, the others kept the earlier metadata.
func TestSimQuickRestartWithClockBehind(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 33)
		const a, b = 0, 1
		c := newSimCell(t, seed, 3)
		c.awaitConvergence(2*time.Minute, all(3)...)
		c.crash(b)
		_ = c.ms[b].Close() // its leave goes nowhere
		for j := range c.ids {
			if j != b {
				if _, err := c.mn.LinkPeers(c.ids[b], c.ids[j]); err != nil {
					t.Fatal(err)
				}
			}
		}
		if st, _ := stateOf(c.ms[a], c.ids[b]); st == StateDead || st == StateLeft {
			t.Fatalf("node 0 already sees node 1 %v", st)
		}

		cfg := testConfig(seed, testKey(seed, b), c.rosters[b], Timing{})
		cfg.Logger = testLogger(c.ids[b])
		cfg.AppMeta = func() []byte { return []byte("roster v2") }
		m, err := New(c.hosts[b], cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Close() })
		m.now = func() time.Time { return time.Now().Add(-time.Hour) }
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		c.ms[b] = m
		if _, err := m.Join(t.Context(), []peer.ID{c.ids[a]}); err != nil {
			t.Fatal(err)
		}
		if _, ok := waitUntil(2*time.Minute, 100*time.Millisecond, func() bool {
			for _, mb := range c.ms[a].Members() {
				if mb.ID == c.ids[b] {
					return mb.State == StateAlive && string(mb.Meta) == "roster v2"
				}
			}
			return false
		}); !ok {
			st, _ := stateOf(c.ms[a], c.ids[b])
			n, _ := nodeView(c.ms[a], c.ids[b])
			nm, _ := decodeMeta(n.Meta)
			t.Errorf("node 0 does not take node 1's new metadata: it sees it %v with %q", st, nm.App)
		}
	})
}

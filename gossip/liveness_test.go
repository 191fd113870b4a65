package gossip

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// mlMessage encodes one of memberlist's messages as memberlist does: the
// type byte, then the msgpack map of the struct's fields.
func mlMessage(t testing.TB, typ byte, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(typ)
	if err := codec.NewEncoder(&buf, &codec.MsgpackHandle{}).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compound packs msgs as memberlist's compound message.
func compound(msgs ...[]byte) []byte {
	b := []byte{mlCompound, byte(len(msgs))}
	for _, m := range msgs {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m)))
	}
	for _, m := range msgs {
		b = append(b, m...)
	}
	return b
}

func TestSightings(t *testing.T) {
	alive := mlMessage(t, mlAlive, aliveMsg{Incarnation: 7, Node: "a", Addr: []byte{1, 2, 3, 4}, Port: FakePort, Meta: []byte("meta"), Vsn: []uint8{1, 5, 5, 2, 5, 5}})
	suspect, err := encodeSuspect(mlSuspectMsg{Incarnation: 3, Node: "b", From: "c"})
	if err != nil {
		t.Fatal(err)
	}
	dead := mlMessage(t, mlDead, mlSuspectMsg{Incarnation: math.MaxUint32, Node: "d", From: "e"})
	ping := mlMessage(t, 0, struct{ SeqNo uint32 }{9})
	crc := append([]byte{mlHasCRC, 0, 0, 0, 0}, compound(ping, alive, dead)...)
	for _, tt := range []struct {
		name  string
		plain []byte
		want  []sighting
	}{
		{"alive", alive, []sighting{{"a", 7, mlAlive}}},
		{"suspect", suspect, []sighting{{"b", 3, mlSuspect}}},
		{"compound with checksum", crc, []sighting{{"a", 7, mlAlive}, {"d", math.MaxUint32, mlDead}}},
		{"nested compound", compound(compound(suspect), alive), []sighting{{"b", 3, mlSuspect}, {"a", 7, mlAlive}}},
		{"too deep", compound(compound(compound(alive))), nil},
		{"ping only", ping, nil},
		{"truncated compound", compound(alive, suspect)[:len(compound(alive, suspect))-1], []sighting{{"a", 7, mlAlive}}},
		{"truncated alive", alive[:len(alive)-3], nil},
		{"empty", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := sightings(tt.plain); !slices.Equal(got, tt.want) {
				t.Errorf("sightings = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPacketEncryption(t *testing.T) {
	key, other := gossipKey(1, 0), gossipKey(1, 1)
	plain := []byte("a memberlist message")
	sealed, err := encryptPacket(key, plain, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decryptPacket([][]byte{other, key}, sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decryptPacket = %q, %v; want %q", got, err, plain)
	}
	if _, err := decryptPacket([][]byte{other}, sealed); err == nil {
		t.Error("decrypted with the wrong key")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := decryptPacket([][]byte{key}, sealed); err == nil {
		t.Error("decrypted a tampered packet")
	}
	if _, err := decryptPacket([][]byte{key}, []byte{mlEncryptionVersion}); err == nil {
		t.Error("decrypted a 1-byte packet")
	}
}

func FuzzSightings(f *testing.F) {
	alive := mlMessage(f, mlAlive, aliveMsg{Incarnation: 7, Node: "a", Vsn: []uint8{1, 5, 5, 2, 5, 5}})
	suspect := mlMessage(f, mlSuspect, mlSuspectMsg{Incarnation: 3, Node: "b", From: "c"})
	for _, seed := range [][]byte{nil, alive, suspect, compound(alive, suspect), append([]byte{mlHasCRC, 0, 0, 0, 0}, compound(suspect)...), compound(compound(alive)), {mlCompound, 255}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range sightings(b) {
			if s.node == "" {
				t.Errorf("sighting without a node: %v", s)
			}
		}
		// Decryption of arbitrary bytes fails cleanly.
		if _, err := decryptPacket([][]byte{gossipKey(1, 0)}, b); err == nil {
			t.Errorf("decrypted %x", b)
		}
	})
}

func TestIncTableBound(t *testing.T) {
	var tab incTable
	for i := range maxIncarnations + 10 {
		tab.note(peer.ID(fmt.Sprint(i)), uint32(i))
	}
	if n := tab.len(); n != maxIncarnations {
		t.Errorf("table holds %d members, bound %d", n, maxIncarnations)
	}
	tab.note("0", 5)
	tab.note("0", 2)
	if n, _ := tab.get("0"); n != 5 {
		t.Errorf("incarnation %d, want the highest seen, 5", n)
	}
	tab.prune(func(id peer.ID) bool { return id == "0" })
	if n := tab.len(); n != 1 {
		t.Errorf("after prune the table holds %d members, want 1", n)
	}
}

// fakeConn is a connection to a given peer, for disconnected.
type fakeConn struct {
	network.Conn
	remote peer.ID
}

func (c fakeConn) RemotePeer() peer.ID { return c.remote }

func TestLostQueueBound(t *testing.T) {
	m, err := New(newRealHost(t, testKey(1, 0)), testConfig(1, testKey(1, 0), newRoster(), Timing{}))
	if err != nil {
		t.Fatal(err)
	}
	m.cfg.Allow = func(peer.ID) bool { return true }
	for i := range maxIncarnations + 10 {
		m.disconnected(nil, fakeConn{remote: peer.ID(fmt.Sprint(i))})
	}
	m.lmu.Lock()
	n := len(m.lost)
	m.lmu.Unlock()
	if n != maxIncarnations {
		t.Errorf("%d lost peers queued, bound %d", n, maxIncarnations)
	}
	m.cfg.Allow = func(peer.ID) bool { return false }
	m.lmu.Lock()
	clear(m.lost)
	m.lmu.Unlock()
	m.disconnected(nil, fakeConn{remote: "x"})
	if len(m.lost) != 0 {
		t.Error("a peer not allowed was queued")
	}
}

func TestGossipStreamsAllowLimitedConns(t *testing.T) {
	if ok, _ := network.GetAllowLimitedConn(allowLimited(context.Background())); !ok {
		t.Error("gossip's streams may not use a limited (relayed) connection")
	}
}

// TestSimIncarnationsLearned: the transport reads the incarnations in
// memberlist's real packets, and follows a member's updates.
func TestSimIncarnationsLearned(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 31)
		c := newSimCell(t, seed, 4)
		c.awaitConvergence(2*time.Minute, all(4)...)
		time.Sleep(10 * time.Second)
		before, ok := c.ms[0].incs.get(c.ids[1])
		if !ok {
			t.Fatalf("seed %d: node 0 has not seen node 1's incarnation", seed)
		}
		if err := c.ms[1].UpdateMeta(t.Context()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		for _, i := range []int{0, 2, 3} {
			if n, _ := c.ms[i].incs.get(c.ids[1]); n <= before {
				t.Errorf("seed %d: node %d holds node 1 at incarnation %d after its update, not above %d", seed, i, n, before)
			}
		}
	})
}

// TestSimDisconnectSuspects: a member whose connections all drop is
// declared failed by every other member within the shortest suspicion
// (SuspicionMult × ProbeInterval here, the cell being small) and a second,
// long before its turn in the probe cycle and an unconfirmed suspicion.
func TestSimDisconnectSuspects(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 32)
		c := newSimCell(t, seed, 8)
		c.awaitConvergence(2*time.Minute, all(8)...)
		time.Sleep(10 * time.Second)
		x := 1 + newRand(seed, "crash").IntN(7)
		start := time.Now()
		c.crash(x)
		ds := c.failedAt(x, start, 3*time.Minute)
		tm := DefaultTiming()
		bound := time.Duration(tm.SuspicionMult)*tm.ProbeInterval + time.Second
		t.Logf("seed %d: node %d crashed; the others saw it failed after (virtual) %v", seed, x, ds)
		if len(ds) > 0 && ds[len(ds)-1] > bound {
			t.Errorf("seed %d: the last member saw node %d failed after %v, want at most %v", seed, x, ds[len(ds)-1], bound)
		}
	})
}

// TestSimDropRedialed: a connection that drops while the member stays
// reachable is redialled, and the member is not suspected.
func TestSimDropRedialed(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 34)
		c := newSimCell(t, seed, 4)
		c.awaitConvergence(2*time.Minute, all(4)...)
		for range 10 {
			_ = c.mn.DisconnectPeers(c.ids[0], c.ids[1])
			time.Sleep(2 * time.Second)
		}
		for i, m := range c.ms {
			if n := m.Stats().SuspectedLost; n != 0 {
				t.Errorf("seed %d: node %d suspected %d members whose connection dropped but came back", seed, i, n)
			}
		}
	})
}

// cut removes the link between nodes i and j and closes their
// connections; relink links them again.
func (c *simCell) cut(i, j int) {
	_ = c.mn.UnlinkPeers(c.ids[i], c.ids[j])
	_ = c.mn.DisconnectPeers(c.ids[i], c.ids[j])
}

func (c *simCell) relink(i, j int) {
	l, err := c.mn.LinkPeers(c.ids[i], c.ids[j])
	if err != nil {
		c.t.Fatal(err)
	}
	l.SetOptions(mocknet.LinkOptions{Latency: 20 * time.Millisecond})
}

// TestSimCutPairNotSuspected: two members whose link to each other is cut
// again and again, while the others reach both, do not suspect each
// other: the others answer the reach check that they reach them.
func TestSimCutPairNotSuspected(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 38)
		c := newSimCell(t, seed, 5)
		c.awaitConvergence(2*time.Minute, all(5)...)
		time.Sleep(10 * time.Second) // every incarnation seen
		for range 10 {
			c.cut(0, 1)
			time.Sleep(time.Second)
			c.relink(0, 1)
			time.Sleep(2 * time.Second)
		}
		for _, i := range []int{0, 1} {
			st := c.ms[i].Stats()
			if st.SuspectedLost != 0 {
				t.Errorf("seed %d: node %d suspected %d times a member it alone could not reach", seed, i, st.SuspectedLost)
			}
			if st.LostReachable == 0 {
				t.Errorf("seed %d: node %d never learnt from the others that the cut member was reachable (%+v)", seed, i, st)
			}
		}
		for i := range c.ms {
			if n := c.events[i].count(EventFailed); n != 0 {
				t.Errorf("seed %d: node %d saw %d failures", seed, i, n)
			}
		}
	})
}

// TestSimIsolatedAskerNoSuspicion: a member cut off from every other has
// nobody to ask whether the others are reachable, and suspects none of
// them: its probes decide, as they would without the suspicions on a lost
// connection.
func TestSimIsolatedAskerNoSuspicion(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 39)
		c := newSimCell(t, seed, 5)
		c.awaitConvergence(2*time.Minute, all(5)...)
		time.Sleep(10 * time.Second)
		c.crash(0)
		time.Sleep(5 * time.Second)
		st := c.ms[0].Stats()
		if st.SuspectedLost != 0 {
			t.Errorf("seed %d: the isolated node suspected %d members on its own lost connections", seed, st.SuspectedLost)
		}
		if st.LostUndecided == 0 {
			t.Errorf("seed %d: the isolated node left no lost member to the probes (%+v)", seed, st)
		}
	})
}

// TestSimRefuteLowerIncarnation: a suspicion of a member at an incarnation
// below its own (the others missed its later alives) is one memberlist
// ignores at that member while the others count it down to a failure; the
// member re-announces itself, so the others hold it at a higher
// incarnation (simnet's TestSlowMemberNotFailed failed about 1 run in 10
// without it: a member whose metadata changed before its join completed).
func TestSimRefuteLowerIncarnation(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 37)
		c := newSimCell(t, seed, 3)
		c.awaitConvergence(2*time.Minute, all(3)...)
		time.Sleep(10 * time.Second)
		before, ok := c.ms[0].incs.get(c.ids[1])
		if !ok {
			t.Fatalf("seed %d: node 0 has not seen node 1's incarnation", seed)
		}
		plain, err := encodeSuspect(mlSuspectMsg{Incarnation: 0, Node: c.ids[1].String(), From: c.ids[2].String()})
		if err != nil {
			t.Fatal(err)
		}
		pkt, err := encryptPacket(c.ms[1].keyring.GetKeys()[0], plain, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		c.ms[1].notePacket(pkt)
		c.ms[1].notePacket(pkt) // at most one re-announce a probe interval
		time.Sleep(5 * time.Second)
		if got := c.ms[1].Stats().Refutes; got != 1 {
			t.Errorf("seed %d: node 1 re-announced %d times, want 1", seed, got)
		}
		for _, i := range []int{0, 2} {
			if n, _ := c.ms[i].incs.get(c.ids[1]); n <= before {
				t.Errorf("seed %d: node %d holds node 1 at incarnation %d after the accusation, not above %d", seed, i, n, before)
			}
		}
	})
}

// TestSimRefuteStaleAccusation: once a member answered an accusation at a
// lower incarnation and the others hold it above, retransmits of that
// accusation (memberlist gossips one for a while after it was refuted)
// make it re-announce no more; a new accusation at the incarnation the
// others hold it at now is still answered.
func TestSimRefuteStaleAccusation(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 40)
		c := newSimCell(t, seed, 3)
		c.awaitConvergence(2*time.Minute, all(3)...)
		time.Sleep(10 * time.Second)
		accuse := func(inc uint32) {
			t.Helper()
			plain, err := encodeSuspect(mlSuspectMsg{Incarnation: inc, Node: c.ids[1].String(), From: c.ids[2].String()})
			if err != nil {
				t.Fatal(err)
			}
			pkt, err := encryptPacket(c.ms[1].keyring.GetKeys()[0], plain, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			c.ms[1].notePacket(pkt)
		}
		accuse(0)
		// Past the probe interval, and past a push/pull, so that the
		// others' states acknowledge the re-announcement.
		time.Sleep(time.Minute)
		if got := c.ms[1].Stats().Refutes; got != 1 {
			t.Fatalf("seed %d: node 1 re-announced %d times after one accusation, want 1", seed, got)
		}
		for range 5 {
			accuse(0) // a retransmit of the answered accusation
			time.Sleep(5 * time.Second)
		}
		if got := c.ms[1].Stats().Refutes; got != 1 {
			t.Errorf("seed %d: node 1 re-announced %d times after retransmits of an answered accusation, want 1", seed, got)
		}
		held, _ := c.ms[0].incs.get(c.ids[1])
		accuse(held)
		time.Sleep(5 * time.Second)
		if got := c.ms[1].Stats().Refutes; got != 2 {
			t.Errorf("seed %d: node 1 re-announced %d times after a new accusation at %d, want 2", seed, got, held)
		}
	})
}

// TestAccusationsStale: an accusation is stale only once one at its
// incarnation or above was answered and another member then stated this
// node above anything stated or accused before the answer.
func TestAccusationsStale(t *testing.T) {
	var a accusations
	a.held(7) // a member holds this node at 7 (its alives before the join)
	if a.stale(1) {
		t.Fatal("stale before any answer")
	}
	a.answer(1)
	if a.stale(1) {
		t.Fatal("stale before the answer was acknowledged")
	}
	a.held(7) // an echo of what a member held before the answer
	if a.stale(1) {
		t.Fatal("stale on an echo of an incarnation stated before the answer")
	}
	a.held(8) // the re-announcement, acknowledged
	if !a.stale(1) || !a.stale(0) {
		t.Fatal("a retransmit of the answered accusation is not stale")
	}
	if a.stale(2) || a.stale(8) {
		t.Fatal("an accusation above the one answered is stale")
	}
	a.answer(8)
	if a.stale(8) || a.stale(1) {
		t.Fatal("stale before the second answer was acknowledged")
	}
	a.held(9)
	if !a.stale(8) {
		t.Fatal("the second answered accusation is not stale once acknowledged")
	}
}

package simnet

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/exopeer/exopeer/discovery"
)

// lanSees reports whether a lists b among its peers as found on the LAN.
func lanSees(a, b *Node) bool {
	p := a.Peer()
	if p == nil {
		return false
	}
	for _, pi := range p.Discovery().Peers() {
		if pi.ID == b.ID {
			return slices.Contains(pi.Sources, discovery.SourceMDNS)
		}
	}
	return false
}

// lanMissing lists the pairs (a, b) of nodes where a does not list b as
// found on the LAN, as "a→b".
func lanMissing(nodes []*Node) []string {
	var out []string
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b && !lanSees(a, b) {
				out = append(out, nodeIndexes(a, b))
			}
		}
	}
	return out
}

// strangers lists the pairs in which a knows b at all (lists it, or is
// connected to it) although they should not meet.
func strangers(as, bs []*Node) []string {
	var out []string
	for _, a := range as {
		for _, b := range bs {
			for _, pair := range [][2]*Node{{a, b}, {b, a}} {
				x, y := pair[0], pair[1]
				if lists(x, y) || connectedness(x, y) != network.NotConnected {
					out = append(out, nodeIndexes(x, y))
				}
			}
		}
	}
	return out
}

// TestLANDiscoveryWithoutDHT: five nodes on one segment, with no bootstrap
// peer, so that nothing but the LAN can bring them together, all list
// each other as found on the LAN within seconds of virtual time; a node on
// another segment meets none of them.
func TestLANDiscoveryWithoutDHT(t *testing.T) {
	const seed = 21
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: seed})
		defer settle(t, n)
		nodes := addOnSegment(t, n, n.Segment("lan1"), 5)
		other := addOnSegment(t, n, n.Segment("lan2"), 1)

		took, ok := waitUntil(10*time.Second, 10*time.Millisecond, func() bool { return len(lanMissing(nodes)) == 0 })
		if !ok {
			t.Fatalf("seed %d: after %v, pairs that did not meet on the LAN: %v", seed, took, lanMissing(nodes))
		}
		t.Logf("5 nodes met on the LAN in %v virtual", took)

		// Several announce rounds later, the other segment is still apart,
		// and the pairs still there.
		time.Sleep(3 * AnnounceInterval)
		if s := strangers(nodes, other); len(s) > 0 {
			t.Errorf("seed %d: nodes of different segments know each other: %v", seed, s)
		}
		if got := other[0].Peer().Discovery().Peers(); len(got) != 0 {
			t.Errorf("seed %d: the node on lan2 lists %d peers, want none", seed, len(got))
		}
		if m := lanMissing(nodes); len(m) > 0 {
			t.Errorf("seed %d: pairs lost after %v: %v", seed, 3*AnnounceInterval, m)
		}
	})
}

// TestLANLateJoin: a node that joins a segment five virtual minutes after
// the others is found by all of them, and finds all of them, within
// seconds.
func TestLANLateJoin(t *testing.T) {
	const seed = 22
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: seed})
		defer settle(t, n)
		lan := n.Segment("lan1")
		nodes := addOnSegment(t, n, lan, 5)
		other := addOnSegment(t, n, n.Segment("lan2"), 1)
		time.Sleep(5 * time.Minute)
		if m := lanMissing(nodes); len(m) > 0 {
			t.Fatalf("seed %d: pairs that did not meet in 5 minutes: %v", seed, m)
		}

		all := append(nodes, addOnSegment(t, n, lan, 1)...)
		took, ok := waitUntil(10*time.Second, 10*time.Millisecond, func() bool { return len(lanMissing(all)) == 0 })
		if !ok {
			t.Fatalf("seed %d: after %v, pairs that did not meet the late node: %v", seed, took, lanMissing(all))
		}
		t.Logf("the node that joined at 5 min was met by all in %v virtual", took)
		if s := strangers(all, other); len(s) > 0 {
			t.Errorf("seed %d: nodes of different segments know each other: %v", seed, s)
		}
	})
}

// logRecord is one log record of a node, with its attributes as strings.
type logRecord struct {
	msg   string
	attrs map[string]string
}

// logRecorder is a slog.Handler that keeps the records at Info and above.
type logRecorder struct {
	mu    *sync.Mutex
	recs  *[]logRecord
	attrs []slog.Attr
}

func newLogRecorder() *logRecorder {
	return &logRecorder{mu: new(sync.Mutex), recs: new([]logRecord)}
}

func (h *logRecorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{mu: h.mu, recs: h.recs, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	m := make(map[string]string)
	for _, a := range h.attrs {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	*h.recs = append(*h.recs, logRecord{msg: r.Message, attrs: m})
	h.mu.Unlock()
	return nil
}

// heardOnLAN lists, as "a→b", the announcements that a node of as logged
// as hearing from a node of bs on the LAN.
func (h *logRecorder) heardOnLAN(as, bs []*Node) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range *h.recs {
		if r.msg != "peer found" || r.attrs["source"] != string(discovery.SourceMDNS) {
			continue
		}
		for _, a := range as {
			for _, b := range bs {
				if r.attrs["node"] == fmt.Sprint(a.Index) && r.attrs["peer"] == b.ID.String() {
					out = append(out, nodeIndexes(a, b))
				}
			}
		}
	}
	return out
}

// TestLANRespectsPartition: a partition cuts a LAN segment too, as it cuts
// multicast on a real one: a node that joins one side of a partitioned
// segment hears the members of its side only, and the other side does not
// hear it.
func TestLANRespectsPartition(t *testing.T) {
	const seed = 23
	synctest.Test(t, func(t *testing.T) {
		logs := newLogRecorder()
		n := New(Config{Seed: seed, Logger: slog.New(logs)})
		defer settle(t, n)
		lan := n.Segment("lan")
		nodes := addOnSegment(t, n, lan, 4)
		if _, ok := waitUntil(10*time.Second, 10*time.Millisecond, func() bool { return len(lanMissing(nodes)) == 0 }); !ok {
			t.Fatalf("seed %d: pairs that did not meet on the LAN: %v", seed, lanMissing(nodes))
		}
		a, b := nodes[:2], nodes[2:]
		n.Partition(a, b)
		// The late node joins side b: it is added, then put in b's group
		// at the same virtual instant, before any announcement arrives.
		late := addOnSegment(t, n, lan, 1)
		b = append(b, late...)
		n.Partition(a, b)
		time.Sleep(3 * AnnounceInterval)

		if m := lanMissing(b); len(m) > 0 {
			t.Errorf("seed %d: on side b, pairs that did not meet: %v", seed, m)
		}
		if x := crossLinks(a, b); len(x) > 0 {
			t.Errorf("seed %d: connections cross the partition: %v", seed, x)
		}
		if heard := logs.heardOnLAN(late, a); len(heard) > 0 {
			t.Errorf("seed %d: the late node heard the other side of the partition on the LAN: %v", seed, heard)
		}
		if heard := logs.heardOnLAN(a, late); len(heard) > 0 {
			t.Errorf("seed %d: the other side of the partition heard the late node on the LAN: %v", seed, heard)
		}
	})
}

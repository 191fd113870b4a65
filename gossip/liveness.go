package gossip

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/ambient"
)

// Liveness follows connectivity: when this node loses its last connection
// to a member, it redials it and asks others whether they reach it (the
// reach check, reach.go), and if the redial fails and another member
// cannot reach it either, while none can, it suspects that member at
// once, as memberlist does after a failed probe and failed indirect
// probes, instead of waiting for its turn in the probe cycle. The
// suspicion is memberlist's own: a suspect message from this node, handed
// to memberlist as if it had arrived, so that memberlist gossips it, starts
// its suspicion timer and lets the member refute it (see the package
// documentation, "Liveness").
//
// memberlist takes a suspicion only at the member's current incarnation
// or above, and does not expose incarnations: the transport reads them in
// the alive, suspect and dead messages of the packets it receives (it
// holds the keyring), and keeps the highest per member (incTable). A
// member whose incarnation this node has not seen yet is left to the
// probes.

// memberlist's message types, part of its wire protocol (net.go).
const (
	mlSuspect  = 3
	mlAlive    = 4
	mlDead     = 5
	mlCompound = 7
	mlHasCRC   = 12
)

// mlEncryptionVersion is memberlist's encryption version at protocol
// version 2 and above: no padding.
const mlEncryptionVersion = 1

const (
	mlNonceSize = 12
	// maxCompoundDepth bounds the nesting of compound messages this node
	// reads (memberlist nests none).
	maxCompoundDepth = 2
)

// sighting is a member's incarnation, as one message stated it.
type sighting struct {
	node        string
	incarnation uint32
	kind        byte // mlAlive, mlSuspect or mlDead
}

// mlStateMsg is the part of memberlist's alive, suspect and dead messages
// read here (msgpack maps keyed by field name).
type mlStateMsg struct {
	Incarnation uint32
	Node        string
}

// mlSuspectMsg is memberlist's suspect message.
type mlSuspectMsg struct {
	Incarnation uint32
	Node        string
	From        string
}

// errNotMemberlist is returned for a packet that no key decrypts.
var errNotMemberlist = errors.New("gossip: packet not readable with the gossip keys")

// decryptPacket opens a memberlist packet with one of keys.
func decryptPacket(keys [][]byte, buf []byte) ([]byte, error) {
	if len(buf) < 1+mlNonceSize+16 || buf[0] != mlEncryptionVersion {
		return nil, errNotMemberlist
	}
	for _, k := range keys {
		block, err := aes.NewCipher(k)
		if err != nil {
			continue
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			continue
		}
		plain, err := gcm.Open(nil, buf[1:1+mlNonceSize], buf[1+mlNonceSize:], nil)
		if err == nil {
			return plain, nil
		}
	}
	return nil, errNotMemberlist
}

// encryptPacket seals plain as memberlist does (version 1, no label).
func encryptPacket(key, plain []byte, rnd io.Reader) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("gossip: cipher: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gossip: gcm: %w", err)
	}
	out := make([]byte, 1+mlNonceSize, 1+mlNonceSize+len(plain)+gcm.Overhead())
	out[0] = mlEncryptionVersion
	if _, err := io.ReadFull(rnd, out[1:]); err != nil {
		return nil, fmt.Errorf("gossip: nonce: %w", err)
	}
	return gcm.Seal(out, out[1:], plain, nil), nil
}

// sightings returns the incarnations that a decrypted memberlist packet
// states, in order. It reads alive, suspect and dead messages, alone or in
// a compound message, with or without a checksum; it skips every other
// message and whatever it cannot decode.
func sightings(plain []byte) []sighting {
	var out []sighting
	readMessages(plain, 0, &out)
	return out
}

func readMessages(b []byte, depth int, out *[]sighting) {
	if len(b) >= 5 && b[0] == mlHasCRC {
		b = b[5:] // memberlist checks the checksum; a wrong one only costs a sighting
	}
	if len(b) < 1 {
		return
	}
	switch b[0] {
	case mlAlive, mlSuspect, mlDead:
		var msg mlStateMsg
		if err := codec.NewDecoderBytes(b[1:], &codec.MsgpackHandle{}).Decode(&msg); err != nil || msg.Node == "" {
			return
		}
		*out = append(*out, sighting{node: msg.Node, incarnation: msg.Incarnation, kind: b[0]})
	case mlCompound:
		if depth >= maxCompoundDepth || len(b) < 2 {
			return
		}
		n := int(b[1])
		rest := b[2:]
		if len(rest) < 2*n {
			return
		}
		lens, rest := rest[:2*n], rest[2*n:]
		for i := range n {
			l := int(binary.BigEndian.Uint16(lens[2*i:]))
			if len(rest) < l {
				return
			}
			readMessages(rest[:l], depth+1, out)
			rest = rest[l:]
		}
	}
}

// encodeSuspect returns memberlist's suspect message, unencrypted.
func encodeSuspect(s mlSuspectMsg) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(mlSuspect)
	if err := codec.NewEncoder(&buf, &codec.MsgpackHandle{}).Encode(&s); err != nil {
		return nil, fmt.Errorf("gossip: encode suspect: %w", err)
	}
	return buf.Bytes(), nil
}

// maxRedials bounds the redials of lost members under way at once.
const maxRedials = 16

// maxIncarnations bounds incTable, as maxSeqs bounds seqTable.
const maxIncarnations = 4096

// incTable holds the highest incarnation seen of each member. Bounded:
// only allowed peers enter, at most maxIncarnations of them.
type incTable struct {
	mu  sync.Mutex
	inc map[peer.ID]uint32
}

// note records that id was stated at incarnation n.
func (t *incTable) note(id peer.ID, n uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inc == nil {
		t.inc = make(map[peer.ID]uint32)
	}
	old, ok := t.inc[id]
	if !ok && len(t.inc) >= maxIncarnations {
		return
	}
	t.inc[id] = max(old, n)
}

func (t *incTable) get(id peer.ID) (uint32, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.inc[id]
	return n, ok
}

func (t *incTable) prune(keep func(peer.ID) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.inc {
		if !keep(id) {
			delete(t.inc, id)
		}
	}
}

// forget drops id's entry: a member that left or failed starts again
// from whatever its next run states.
func (t *incTable) forget(id peer.ID) {
	t.mu.Lock()
	delete(t.inc, id)
	t.mu.Unlock()
}

func (t *incTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.inc)
}

// notePacket reads the incarnations an incoming memberlist packet states.
// Called by the transport for every packet from an allowed peer.
func (m *Membership) notePacket(buf []byte) {
	plain, err := decryptPacket(m.keyring.GetKeys(), buf)
	if err != nil {
		return
	}
	for _, s := range sightings(plain) {
		id, err := peer.Decode(s.node)
		if err == nil && id == m.self {
			if s.kind == mlSuspect || s.kind == mlDead {
				m.refuteAccused(s.incarnation)
			} else {
				m.accused.held(s.incarnation)
			}
			continue
		}
		if err != nil || id == m.self || !m.cfg.Allow(id) {
			continue
		}
		m.incs.note(id, s.incarnation)
	}
}

// disconnected is the host's notification that a connection closed. It
// only queues the peer: the check runs on the liveness goroutine.
func (m *Membership) disconnected(_ network.Network, c network.Conn) {
	id := c.RemotePeer()
	if id == m.self || !m.cfg.Allow(id) {
		return
	}
	m.lmu.Lock()
	if _, ok := m.lost[id]; !ok && len(m.lost) < maxIncarnations {
		m.lost[id] = struct{}{}
	}
	m.lmu.Unlock()
	select {
	case m.lostCh <- struct{}{}:
	default:
	}
}

// followConnectivity is the liveness goroutine: it suspects the members
// this node lost its last connection to. Run by Start until Close.
func (m *Membership) followConnectivity() {
	for {
		select {
		case <-m.done:
			return
		case <-m.lostCh:
		}
		m.lmu.Lock()
		lost := make([]peer.ID, 0, len(m.lost))
		for id := range m.lost {
			lost = append(lost, id)
		}
		clear(m.lost)
		m.lmu.Unlock()
		// Concurrently, each redial bounded by the probe timeout: a
		// crash of several members costs one timeout, not one each.
		var wg sync.WaitGroup
		sem := make(chan struct{}, maxRedials)
		for _, id := range lost {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				m.suspectLost(id)
			})
		}
		wg.Wait()
	}
}

// aliveMember reports whether id is a member alive in this node's view
// while this node runs (started, not left or closed).
func (m *Membership) aliveMember(id peer.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.members[id]
	return st != nil && st.state == StateAlive && !m.closed && m.started && !m.left
}

// probeContext returns a context that ends after the probe timeout, or
// at Close.
func (m *Membership) probeContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timing.ProbeTimeout)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-m.done:
			cancel()
		case <-stop:
		}
	}()
	return ctx, sync.OnceFunc(func() {
		cancel()
		close(stop)
		<-done
	})
}

// suspectLost suspects member id if no connection to it remains (a
// relayed one counts: probes ride on it), a redial fails, another member
// cannot reach it and none can (the reach check), it is alive in this
// node's view and its incarnation is known.
func (m *Membership) suspectLost(id peer.ID) {
	if m.h.Network().Connectedness(id) != network.NotConnected || !m.aliveMember(id) {
		return
	}
	m.stats.lostChecked.Add(1)
	// One redial, and the reach check, at once, each within the probe
	// timeout. A connection that dropped while the member is reachable
	// (a NAT's idle timeout, a network change, a relay's limit) comes
	// back, and no suspicion is needed. A link to this node alone may be
	// down while the member is well: memberlist's indirect probes would
	// find it through others, and so does the reach check. A crashed
	// member's redial fails, usually at once, and so do the helpers'.
	ctx, cancel := m.probeContext()
	defer cancel()
	verdict := make(chan reachVerdict, 1)
	go func() { verdict <- m.askReach(ctx, id) }()
	err := m.h.Connect(allowLimited(ctx), peer.AddrInfo{ID: id})
	if err == nil {
		cancel()
		<-verdict
		return
	}
	v := <-verdict
	if !v.suspect() {
		if v.reachable > 0 {
			m.stats.lostReachable.Add(1)
		} else {
			m.stats.lostUndecided.Add(1)
		}
		m.log.Debug("gossip member not suspected: connection lost", "peer", id, "asked", v.asked, "reachable", v.reachable, "unreachable", v.unreachable)
		return
	}
	// Connected again meanwhile (the member dialled back from a new
	// address): reachable, as a redial that succeeded shows.
	if m.h.Network().Connectedness(id) != network.NotConnected {
		return
	}
	if !m.aliveMember(id) {
		return
	}
	inc, ok := m.incs.get(id)
	if !ok {
		m.stats.lostUnknown.Add(1)
		return
	}
	msg, err := encodeSuspect(mlSuspectMsg{Incarnation: inc, Node: id.String(), From: m.selfName})
	if err != nil {
		m.log.Debug("gossip suspect", "peer", id, "err", err)
		return
	}
	buf, err := encryptPacket(m.keyring.GetPrimaryKey(), msg, m.rand)
	if err != nil {
		m.log.Debug("gossip suspect", "peer", id, "err", err)
		return
	}
	p := &memberlist.Packet{Buf: buf, From: &net.UDPAddr{IP: m.tr.selfIP.AsSlice(), Port: FakePort}, Timestamp: ambient.Deadline(0)}
	select {
	case m.tr.packets <- p:
		m.stats.suspectedLost.Add(1)
		m.log.Debug("gossip member suspected: connection lost", "peer", id, "incarnation", inc)
	case <-m.done:
	}
}

package gossip

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/hashicorp/memberlist"
)

// Broadcasts: the package documentation describes the envelope.
const (
	// MaxBroadcastSize is the largest message Broadcast takes, and the
	// largest size limit of a topic.
	MaxBroadcastSize = 8 << 10

	broadcastVersion  byte = 2
	broadcastIDSize        = 16
	broadcastOverhead      = 1 + broadcastIDSize
	// seenBroadcasts is how many message IDs a member remembers to drop
	// copies: far more than a small cell sends while one message is still
	// being relayed (a few seconds).
	seenBroadcasts = 4096
	// maxQueuedBroadcasts bounds the relay queue; the most transmitted
	// messages go first when it overflows.
	maxQueuedBroadcasts = 256
)

var errBadBroadcast = errors.New("gossip: malformed broadcast")

// appendBroadcast appends the envelope of payload, with message ID id.
func appendBroadcast(b []byte, id [broadcastIDSize]byte, payload []byte) []byte {
	b = append(b, broadcastVersion)
	b = append(b, id[:]...)
	return append(b, payload...)
}

// decodeBroadcast splits an envelope into its ID and payload (which
// aliases b).
func decodeBroadcast(b []byte) ([broadcastIDSize]byte, []byte, error) {
	switch {
	case len(b) <= broadcastOverhead:
		return [broadcastIDSize]byte{}, nil, fmt.Errorf("%w: %d bytes", errBadBroadcast, len(b))
	case b[0] != broadcastVersion:
		return [broadcastIDSize]byte{}, nil, fmt.Errorf("%w: version %d", errBadBroadcast, b[0])
	case len(b)-broadcastOverhead > maxTopicMessage:
		return [broadcastIDSize]byte{}, nil, fmt.Errorf("%w: %d bytes of payload", errBadBroadcast, len(b)-broadcastOverhead)
	}
	return [broadcastIDSize]byte(b[1:broadcastOverhead]), b[broadcastOverhead:], nil
}

// seenSet remembers the last seenBroadcasts message IDs.
type seenSet struct {
	mu    sync.Mutex
	ids   map[[broadcastIDSize]byte]struct{}
	order [][broadcastIDSize]byte // ring, next is the oldest once full
	next  int
}

// add records id and reports whether it is new.
func (s *seenSet) add(id [broadcastIDSize]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = make(map[[broadcastIDSize]byte]struct{})
	}
	if _, ok := s.ids[id]; ok {
		return false
	}
	if len(s.order) < seenBroadcasts {
		s.order = append(s.order, id)
	} else {
		delete(s.ids, s.order[s.next])
		s.order[s.next] = id
		s.next = (s.next + 1) % seenBroadcasts
	}
	s.ids[id] = struct{}{}
	return true
}

// Broadcast sends msg (1 byte to the topic's size limit) on topic to every
// member of the cell: memberlist gossips it from here a few times
// (RetransmitMult × log10(n+1)), and every member that receives it for the
// first time hands it to the Handler of that topic in its Topics and
// gossips it on, so that it spreads like an epidemic and each member gets
// it once (members remember the last 4096 message IDs). Best effort: a
// member that is unreachable meanwhile misses it; push/pull state
// (StateHandler) is the way to catch up. The receivers learn only that some
// member sent it. ErrUnknownTopic if topic is not registered in this
// node's Topics, ErrTooLarge if msg is over its limit. It does not block;
// msg is copied.
func (m *Membership) Broadcast(topic string, msg []byte) error {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	tm, err := m.topics.message(topic, msg)
	if err != nil {
		return err
	}
	var id [broadcastIDSize]byte
	if _, err := io.ReadFull(m.rand, id[:]); err != nil {
		return fmt.Errorf("gossip: broadcast ID: %w", err)
	}
	m.seen.add(id)
	m.queueBroadcast(appendBroadcast(make([]byte, 0, broadcastOverhead+len(tm)), id, tm))
	return nil
}

func (m *Membership) queueBroadcast(env []byte) {
	m.bq.QueueBroadcast(userBroadcast(env))
	if m.bq.NumQueued() > maxQueuedBroadcasts {
		m.bq.Prune(maxQueuedBroadcasts)
	}
}

// receiveBroadcast handles a user message from memberlist: the first copy
// of a message is delivered to its topic and relayed (see Topics.deliver
// for the messages that are not), later ones are dropped.
func (m *Membership) receiveBroadcast(b []byte) {
	id, payload, err := decodeBroadcast(b)
	if err != nil {
		m.stats.badBroadcasts.Add(1)
		return
	}
	if !m.seen.add(id) {
		return
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return
	}
	if m.topics.deliver(payload) {
		m.queueBroadcast(slices.Clone(b))
	}
}

// userBroadcast is one envelope in memberlist's queue. Each is unique:
// none replaces another.
type userBroadcast []byte

func (b userBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b userBroadcast) Message() []byte                       { return b }
func (b userBroadcast) Finished()                             {}
func (b userBroadcast) UniqueBroadcast()                      {}

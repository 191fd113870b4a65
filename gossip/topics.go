package gossip

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Errors of topics.
var (
	// ErrUnknownTopic is returned by Broadcast on a topic not registered.
	ErrUnknownTopic = errors.New("gossip: topic not registered")
	// ErrTopicExists is returned by Register of a topic already registered.
	ErrTopicExists = errors.New("gossip: topic already registered")
	// ErrTooLarge is returned by Broadcast of a message over its topic's
	// size limit.
	ErrTooLarge = errors.New("gossip: message over its topic's size limit")
)

// Handler is a rider on gossip: it receives the messages of its topic.
//
// HandleMessage is called by memberlist's goroutines, some while memberlist
// holds its lock (see Config): it must be safe for concurrent use, quick,
// and never block; hand the work to a goroutine of its own. msg is a copy
// it may keep.
type Handler interface {
	HandleMessage(msg []byte)
}

// HandlerFunc is a Handler of a function, for riders without push/pull
// state.
type HandlerFunc func(msg []byte)

// HandleMessage calls f(msg).
func (f HandlerFunc) HandleMessage(msg []byte) { f(msg) }

// StateHandler is a Handler that also takes part in memberlist's push/pull
// exchanges: each member sends its LocalState to the other, which gets it
// in MergeState. The same rules as HandleMessage apply; MergeState's buf is
// valid only during the call; LocalState's result is not modified.
type StateHandler interface {
	Handler
	LocalState() []byte // nil or empty: nothing to send
	MergeState(buf []byte)
}

// Topics is the registry of the riders on a cell's gossip: each is
// registered under a topic name with its own size limit, receives only
// its topic's messages (and push/pull states), and has its own counters.
// One Topics outlives the Memberships that use it (Config.Topics): a node
// registers its riders once, and they ride on every Membership of its
// cell.
//
// Registration is allowed at any time, before or after a Membership using
// it starts: a topic registered late receives the messages that arrive
// from then on, and its state goes out in the next push/pull. Topics are
// never removed. All methods are safe for concurrent use.
type Topics struct {
	mu  sync.Mutex               // serialises Register
	set atomic.Pointer[topicSet] // read without a lock by memberlist's callbacks
	bad struct{ unknown, unknownStates, malformed atomic.Uint64 }
}

// topicSet is an immutable snapshot of the registered topics.
type topicSet struct {
	byName map[string]*topic
	sorted []*topic // by name: the order of the push/pull state
}

type topic struct {
	name  string
	limit int
	h     Handler
	st    StateHandler // h, if it is one; nil otherwise

	msgsIn, bytesIn, msgsOut, bytesOut atomic.Uint64
	statesIn, statesOut                atomic.Uint64
	oversize, oversizeStates           atomic.Uint64
}

// NewTopics returns an empty registry.
func NewTopics() *Topics {
	t := new(Topics)
	t.set.Store(&topicSet{byName: map[string]*topic{}})
	return t
}

// Register makes h the rider of topic name (1 to MaxTopicLen bytes of
// a–z, 0–9, '.', '-', '_' and '/'). limit is the largest message (and
// push/pull state) of the topic, 1 to MaxBroadcastSize bytes; 0 means
// MaxBroadcastSize. A message over it is refused by Broadcast (ErrTooLarge)
// and, from a member whose limit is larger, dropped and counted on
// receipt. At most MaxTopics topics; a name already registered is refused
// (ErrTopicExists). If h is a StateHandler, it takes part in push/pull.
func (t *Topics) Register(name string, h Handler, limit int) error {
	switch {
	case !validTopic(name):
		return fmt.Errorf("gossip: topic name %q: want 1 to %d bytes of a-z, 0-9, '.', '-', '_' and '/'", name, MaxTopicLen)
	case h == nil:
		return fmt.Errorf("gossip: topic %q: nil handler", name)
	case limit < 0 || limit > MaxBroadcastSize:
		return fmt.Errorf("gossip: topic %q: size limit %d, want 0 (the largest) to %d", name, limit, MaxBroadcastSize)
	case limit == 0:
		limit = MaxBroadcastSize
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.set.Load()
	if _, ok := old.byName[name]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	if len(old.sorted) >= MaxTopics {
		return fmt.Errorf("gossip: topic %q: already %d topics, the most a registry holds", name, MaxTopics)
	}
	tp := &topic{name: name, limit: limit, h: h}
	tp.st, _ = h.(StateHandler)
	set := &topicSet{byName: maps.Clone(old.byName), sorted: append(slices.Clone(old.sorted), tp)}
	set.byName[name] = tp
	slices.SortFunc(set.sorted, func(a, b *topic) int { return cmp.Compare(a.name, b.name) })
	t.set.Store(set)
	return nil
}

// message checks msg against its topic and returns the topic message to
// broadcast, counted as sent.
func (t *Topics) message(name string, msg []byte) ([]byte, error) {
	tp, ok := t.set.Load().byName[name]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	case len(msg) == 0:
		return nil, fmt.Errorf("gossip: empty message on topic %q", name)
	case len(msg) > tp.limit:
		return nil, fmt.Errorf("%w: %d bytes on topic %q, whose limit is %d", ErrTooLarge, len(msg), name, tp.limit)
	}
	tp.msgsOut.Add(1)
	tp.bytesOut.Add(uint64(len(msg)))
	return appendTopicMessage(make([]byte, 0, 1+len(name)+len(msg)), name, msg), nil
}

// deliver hands a received topic message to its topic's handler, and
// reports whether to relay it: a malformed message or one over its
// topic's limit is dropped and not relayed; one of a topic not registered
// here is dropped but relayed, for the members that know it.
func (t *Topics) deliver(b []byte) (relay bool) {
	name, msg, err := decodeTopicMessage(b)
	if err != nil {
		t.bad.malformed.Add(1)
		return false
	}
	tp, ok := t.set.Load().byName[string(name)]
	switch {
	case !ok:
		t.bad.unknown.Add(1)
		return true
	case len(msg) > tp.limit:
		tp.oversize.Add(1)
		return false
	}
	tp.msgsIn.Add(1)
	tp.bytesIn.Add(uint64(len(msg)))
	tp.h.HandleMessage(slices.Clone(msg))
	return true
}

// localState gathers the push/pull states of the topics that have one;
// nil if none does. A state over its topic's limit is left out, counted.
func (t *Topics) localState() []byte {
	set := t.set.Load()
	states := make([]topicState, 0, len(set.sorted))
	size := 2
	for _, tp := range set.sorted {
		if tp.st == nil {
			continue
		}
		s := tp.st.LocalState()
		switch {
		case len(s) == 0:
			continue
		case len(s) > tp.limit:
			tp.oversizeStates.Add(1)
			continue
		}
		tp.statesOut.Add(1)
		states = append(states, topicState{topic: tp.name, state: s})
		size += 1 + len(tp.name) + 2 + len(s)
	}
	if len(states) == 0 {
		return nil
	}
	return appendTopicStates(make([]byte, 0, size), states)
}

// mergeState hands each topic's part of a member's push/pull state to its
// handler. buf is valid only during the call.
func (t *Topics) mergeState(buf []byte) {
	states, err := decodeTopicStates(buf)
	if err != nil {
		t.bad.malformed.Add(1)
		return
	}
	set := t.set.Load()
	for _, s := range states {
		tp, ok := set.byName[s.topic]
		switch {
		case !ok:
			t.bad.unknownStates.Add(1)
		case tp.st == nil:
			// A topic whose rider here keeps no state: nothing to merge.
		case len(s.state) > tp.limit:
			tp.oversizeStates.Add(1)
		default:
			tp.statesIn.Add(1)
			tp.st.MergeState(s.state)
		}
	}
}

// TopicStats counts one topic's traffic on this node.
type TopicStats struct {
	Limit       int    // the topic's size limit, in bytes
	MessagesIn  uint64 // messages delivered to the handler
	BytesIn     uint64 // their bytes
	MessagesOut uint64 // messages this node broadcast
	BytesOut    uint64 // their bytes
	StatesIn    uint64 // push/pull states handed to MergeState
	StatesOut   uint64 // push/pull states of this node sent
	// Oversize counts the messages received over the limit, dropped.
	Oversize uint64
	// OversizeStates counts the push/pull states over the limit: received
	// ones dropped, and this node's own left out.
	OversizeStates uint64
}

// TopicsStats is a snapshot of a registry's counters.
type TopicsStats struct {
	Topics map[string]TopicStats
	// Unknown counts the messages of topics not registered here: dropped
	// (but relayed, for the members that know the topic).
	Unknown uint64
	// UnknownStates counts the push/pull states of topics not registered
	// here: dropped.
	UnknownStates uint64
	// Malformed counts topic messages and push/pull state sets that do
	// not decode: dropped.
	Malformed uint64
}

// Stats returns the registry's counters.
func (t *Topics) Stats() TopicsStats {
	set := t.set.Load()
	st := TopicsStats{
		Topics:        make(map[string]TopicStats, len(set.sorted)),
		Unknown:       t.bad.unknown.Load(),
		UnknownStates: t.bad.unknownStates.Load(),
		Malformed:     t.bad.malformed.Load(),
	}
	for _, tp := range set.sorted {
		st.Topics[tp.name] = TopicStats{
			Limit:      tp.limit,
			MessagesIn: tp.msgsIn.Load(), BytesIn: tp.bytesIn.Load(),
			MessagesOut: tp.msgsOut.Load(), BytesOut: tp.bytesOut.Load(),
			StatesIn: tp.statesIn.Load(), StatesOut: tp.statesOut.Load(),
			Oversize: tp.oversize.Load(), OversizeStates: tp.oversizeStates.Load(),
		}
	}
	return st
}

package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Topic messages and push/pull state sets: the package documentation
// describes their wire format.
const (
	// MaxTopicLen is the longest topic name, in bytes.
	MaxTopicLen = 32
	// MaxTopics is the most topics a registry holds, and so the most
	// states in one push/pull state set.
	MaxTopics = 16

	topicStatesVersion byte = 1
	// maxTopicMessage is the largest topic message: a name and a message
	// of MaxBroadcastSize.
	maxTopicMessage = 1 + MaxTopicLen + MaxBroadcastSize
)

var errBadTopic = errors.New("gossip: malformed topic message or state")

// validTopic reports whether name is a topic name: 1 to MaxTopicLen bytes
// of a–z, 0–9, '.', '-', '_' and '/'.
func validTopic[S string | []byte](name S) bool {
	if len(name) == 0 || len(name) > MaxTopicLen {
		return false
	}
	for i := range len(name) {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '-' && c != '_' && c != '/' {
			return false
		}
	}
	return true
}

// appendTopicMessage appends the topic message of msg on topic name.
func appendTopicMessage(b []byte, name string, msg []byte) []byte {
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, msg...)
}

// decodeTopicMessage splits a topic message into its topic name and its
// message, both aliasing b. The message is 1 to MaxBroadcastSize bytes;
// the topic's own limit is checked by the caller.
func decodeTopicMessage(b []byte) (name, msg []byte, err error) {
	if len(b) == 0 {
		return nil, nil, fmt.Errorf("%w: empty", errBadTopic)
	}
	n := int(b[0])
	switch {
	case n == 0 || n > MaxTopicLen || 1+n > len(b):
		return nil, nil, fmt.Errorf("%w: topic name of %d bytes in a message of %d", errBadTopic, n, len(b))
	case !validTopic(b[1 : 1+n]):
		return nil, nil, fmt.Errorf("%w: topic name %q", errBadTopic, b[1:1+n])
	case len(b)-1-n == 0 || len(b)-1-n > MaxBroadcastSize:
		return nil, nil, fmt.Errorf("%w: message of %d bytes", errBadTopic, len(b)-1-n)
	}
	return b[1 : 1+n], b[1+n:], nil
}

// topicState is one topic's push/pull state.
type topicState struct {
	topic string
	state []byte
}

// appendTopicStates appends the state set of states, which must be sorted
// by topic, with distinct valid names and 1 to MaxBroadcastSize bytes of
// state each, and at most MaxTopics of them.
func appendTopicStates(b []byte, states []topicState) []byte {
	b = append(b, topicStatesVersion, byte(len(states)))
	for _, s := range states {
		b = append(b, byte(len(s.topic)))
		b = append(b, s.topic...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.state)))
		b = append(b, s.state...)
	}
	return b
}

// decodeTopicStates decodes a push/pull state set. The states alias b. An
// empty b is an empty set (a node with no state sends nothing).
func decodeTopicStates(b []byte) ([]topicState, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 2 || b[0] != topicStatesVersion {
		return nil, fmt.Errorf("%w: state set header %x", errBadTopic, b[:min(len(b), 2)])
	}
	count := int(b[1])
	if count == 0 || count > MaxTopics {
		return nil, fmt.Errorf("%w: %d topics in a state set, want 1 to %d (none: no set at all)", errBadTopic, count, MaxTopics)
	}
	states := make([]topicState, 0, count)
	rest := b[2:]
	for i := range count {
		if len(rest) < 1 {
			return nil, fmt.Errorf("%w: state %d cut short", errBadTopic, i)
		}
		n := int(rest[0])
		if n == 0 || n > MaxTopicLen || len(rest) < 1+n+2 {
			return nil, fmt.Errorf("%w: state %d: topic name of %d bytes in %d", errBadTopic, i, n, len(rest))
		}
		name := rest[1 : 1+n]
		if !validTopic(name) {
			return nil, fmt.Errorf("%w: state %d: topic name %q", errBadTopic, i, name)
		}
		if i > 0 && string(name) <= states[i-1].topic {
			return nil, fmt.Errorf("%w: state %d: topic %q not after %q", errBadTopic, i, name, states[i-1].topic)
		}
		size := int(binary.BigEndian.Uint16(rest[1+n:]))
		rest = rest[1+n+2:]
		if size == 0 || size > MaxBroadcastSize || size > len(rest) {
			return nil, fmt.Errorf("%w: state %d (%q): %d bytes, %d left", errBadTopic, i, name, size, len(rest))
		}
		states = append(states, topicState{topic: string(name), state: rest[:size]})
		rest = rest[size:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last state", errBadTopic, len(rest))
	}
	return states, nil
}

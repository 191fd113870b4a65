package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rider is a StateHandler that keeps what it gets.
type rider struct {
	state []byte

	mu     sync.Mutex
	msgs   []string
	merged []string
}

func (r *rider) HandleMessage(msg []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, string(msg))
}

func (r *rider) LocalState() []byte { return r.state }

func (r *rider) MergeState(buf []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.merged = append(r.merged, string(buf)) // a copy: buf is the caller's
}

func (r *rider) got() (msgs, merged []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs), slices.Clone(r.merged)
}

// TestTopicMessageWire pins the bytes of a topic message and of a state
// set (the package documentation describes them).
func TestTopicMessageWire(t *testing.T) {
	if got, want := appendTopicMessage(nil, "chain", []byte("hi")), []byte("\x05chainhi"); !bytes.Equal(got, want) {
		t.Errorf("topic message = %q, want %q", got, want)
	}
	got := appendTopicStates(nil, []topicState{{"a", []byte("x")}, {"chain", []byte("heads")}})
	want := []byte("\x01\x02" + "\x01a\x00\x01x" + "\x05chain\x00\x05heads")
	if !bytes.Equal(got, want) {
		t.Errorf("state set = %q, want %q", got, want)
	}
	states, err := decodeTopicStates(got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]topicState{{"a", []byte("x")}, {"chain", []byte("heads")}}, states, cmp.AllowUnexported(topicState{})); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

func TestDecodeTopicMessageRefuses(t *testing.T) {
	long := strings.Repeat("a", MaxTopicLen+1)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"no name", []byte("\x00hello")},
		{"name longer than the message", []byte("\x09chain")},
		{"name too long", append([]byte{byte(len(long))}, long+"x"...)},
		{"upper case name", []byte("\x05Chainx")},
		{"name with a space", []byte("\x05ch inx")},
		{"no message", []byte("\x05chain")},
		{"message too long", appendTopicMessage(nil, "chain", make([]byte, MaxBroadcastSize+1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := decodeTopicMessage(tt.b); !errors.Is(err, errBadTopic) {
				t.Errorf("decode = %v, want errBadTopic", err)
			}
		})
	}
	name, msg, err := decodeTopicMessage(appendTopicMessage(nil, strings.Repeat("z", MaxTopicLen), make([]byte, MaxBroadcastSize)))
	if err != nil || len(name) != MaxTopicLen || len(msg) != MaxBroadcastSize {
		t.Errorf("the largest topic message: %d-byte name, %d-byte message, %v", len(name), len(msg), err)
	}
}

func TestDecodeTopicStatesRefuses(t *testing.T) {
	one := func(name string, state []byte) []byte {
		return appendTopicStates(nil, []topicState{{name, state}})
	}
	tooMany := []byte{topicStatesVersion, MaxTopics + 1}
	for i := range MaxTopics + 1 {
		tooMany = append(tooMany, 2, 'a', byte('a'+i), 0, 1, 'x')
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"version only", []byte{topicStatesVersion}},
		{"other version", []byte{2, 1, 1, 'a', 0, 1, 'x'}},
		{"no topic", []byte{topicStatesVersion, 0}},
		{"more topics than announced", append(one("a", []byte("x")), 1, 'b', 0, 1, 'y')},
		{"fewer topics than announced", []byte{topicStatesVersion, 2, 1, 'a', 0, 1, 'x'}},
		{"too many topics", tooMany},
		{"empty name", []byte{topicStatesVersion, 1, 0, 0, 1, 'x'}},
		{"bad name", one("A", []byte("x"))},
		{"empty state", []byte{topicStatesVersion, 1, 1, 'a', 0, 0}},
		{"state cut short", one("a", []byte("xyz"))[:7]},
		{"state too long", one("a", make([]byte, MaxBroadcastSize+1))},
		{"same topic twice", appendTopicStates(nil, []topicState{{"a", []byte("x")}, {"a", []byte("y")}})},
		{"topics out of order", appendTopicStates(nil, []topicState{{"b", []byte("x")}, {"a", []byte("y")}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeTopicStates(tt.b); !errors.Is(err, errBadTopic) {
				t.Errorf("decode = %v, want errBadTopic", err)
			}
		})
	}
	if states, err := decodeTopicStates(nil); err != nil || len(states) != 0 {
		t.Errorf("empty state set: %v, %v", states, err)
	}
}

func TestTopicsRegister(t *testing.T) {
	ts := NewTopics()
	h := HandlerFunc(func([]byte) {})
	if err := ts.Register("chain", h, 100); err != nil {
		t.Fatal(err)
	}
	if err := ts.Register("chain", h, 100); !errors.Is(err, ErrTopicExists) {
		t.Errorf("second Register of chain = %v, want ErrTopicExists", err)
	}
	for _, tt := range []struct {
		name, topic string
		h           Handler
		limit       int
	}{
		{"empty name", "", h, 0},
		{"name too long", strings.Repeat("a", MaxTopicLen+1), h, 0},
		{"upper case", "Chain", h, 0},
		{"nil handler", "blobs", nil, 0},
		{"negative limit", "blobs", h, -1},
		{"limit over the largest broadcast", "blobs", h, MaxBroadcastSize + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := ts.Register(tt.topic, tt.h, tt.limit); err == nil {
				t.Error("Register succeeded")
			}
		})
	}
	if err := ts.Register("presence", h, 0); err != nil {
		t.Fatal(err)
	}
	st := ts.Stats()
	if got := st.Topics["presence"].Limit; got != MaxBroadcastSize {
		t.Errorf("limit 0 became %d, want MaxBroadcastSize", got)
	}
	if len(st.Topics) != 2 {
		t.Errorf("%d topics registered, want 2: %v", len(st.Topics), st.Topics)
	}
	for i := len(st.Topics); i < MaxTopics; i++ {
		if err := ts.Register(fmt.Sprintf("t%d", i), h, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := ts.Register("one-too-many", h, 0); err == nil {
		t.Errorf("Register of topic %d succeeded", MaxTopics+1)
	}
}

// TestTopicsRoute: each topic's rider gets its own topic's messages and
// states only; oversize, unknown and malformed ones are dropped and
// counted; only well-formed messages within a known topic's limit, or of
// an unknown topic, are relayed.
func TestTopicsRoute(t *testing.T) {
	ts := NewTopics()
	chain, blobs := &rider{state: []byte("heads")}, &rider{state: []byte("have")}
	if err := ts.Register("chain", chain, 10); err != nil {
		t.Fatal(err)
	}
	if err := ts.Register("blobs", blobs, 0); err != nil {
		t.Fatal(err)
	}
	var plain []string
	if err := ts.Register("plain", HandlerFunc(func(b []byte) { plain = append(plain, string(b)) }), 0); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		b     []byte
		relay bool
	}{
		{"chain", appendTopicMessage(nil, "chain", []byte("c1")), true},
		{"blobs", appendTopicMessage(nil, "blobs", []byte("b1")), true},
		{"plain", appendTopicMessage(nil, "plain", []byte("p1")), true},
		{"chain at its limit", appendTopicMessage(nil, "chain", []byte("0123456789")), true},
		{"chain over its limit", appendTopicMessage(nil, "chain", []byte("0123456789a")), false},
		{"unknown topic", appendTopicMessage(nil, "presence", []byte("here")), true},
		{"malformed", []byte("\x09chain"), false},
	} {
		if got := ts.deliver(tt.b); got != tt.relay {
			t.Errorf("%s: relay = %v, want %v", tt.name, got, tt.relay)
		}
	}
	// A push/pull exchange: this node's state set, then another's.
	local, err := decodeTopicStates(ts.localState())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]topicState{{"blobs", []byte("have")}, {"chain", []byte("heads")}}, local, cmp.AllowUnexported(topicState{})); diff != "" {
		t.Errorf("local state (-want +got):\n%s", diff)
	}
	ts.mergeState(appendTopicStates(nil, []topicState{
		{"blobs", []byte("their have")}, {"chain", []byte("their chain too long")}, {"plain", []byte("p")}, {"presence", []byte("x")},
	}))
	ts.mergeState([]byte{topicStatesVersion, 3})

	chainMsgs, chainMerged := chain.got()
	blobMsgs, blobMerged := blobs.got()
	if diff := cmp.Diff([]string{"c1", "0123456789"}, chainMsgs); diff != "" {
		t.Errorf("chain's messages (-want +got):\n%s", diff)
	}
	if len(chainMerged) != 0 {
		t.Errorf("chain merged %q, want nothing (over its limit)", chainMerged)
	}
	if diff := cmp.Diff([]string{"b1"}, blobMsgs); diff != "" {
		t.Errorf("blobs' messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"their have"}, blobMerged); diff != "" {
		t.Errorf("blobs' states (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"p1"}, plain); diff != "" {
		t.Errorf("plain's messages (-want +got):\n%s", diff)
	}
	want := TopicsStats{
		Topics: map[string]TopicStats{
			"chain": {Limit: 10, MessagesIn: 2, BytesIn: 12, StatesOut: 1, Oversize: 1, OversizeStates: 1},
			"blobs": {Limit: MaxBroadcastSize, MessagesIn: 1, BytesIn: 2, StatesIn: 1, StatesOut: 1},
			"plain": {Limit: MaxBroadcastSize, MessagesIn: 1, BytesIn: 2},
		},
		Unknown:       1, // the presence message
		UnknownStates: 1, // and its state
		Malformed:     2, // the message and the state set
	}
	if diff := cmp.Diff(want, ts.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}

	// Sending: the topic's limit and registration are checked first.
	if _, err := ts.message("chain", []byte("0123456789a")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("message over the limit: %v, want ErrTooLarge", err)
	}
	if _, err := ts.message("presence", []byte("x")); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("message on a topic not registered: %v, want ErrUnknownTopic", err)
	}
	b, err := ts.message("chain", []byte("c2"))
	if err != nil || !bytes.Equal(b, []byte("\x05chainc2")) {
		t.Errorf("message = %q, %v", b, err)
	}
	if st := ts.Stats().Topics["chain"]; st.MessagesOut != 1 || st.BytesOut != 2 {
		t.Errorf("chain's counters out: %+v, want 1 message of 2 bytes", st)
	}

	// A local state over its topic's limit stays home, counted.
	chain.state = []byte("far too many heads")
	local, err = decodeTopicStates(ts.localState())
	if err != nil || len(local) != 1 || local[0].topic != "blobs" {
		t.Errorf("local state with chain's over its limit: %v, %v", local, err)
	}
	if st := ts.Stats().Topics["chain"]; st.OversizeStates != 2 {
		t.Errorf("chain's count of oversize states %d, want 2", st.OversizeStates)
	}
}

// FuzzTopicMessage: arbitrary topic messages never panic the decoder or
// the registry; what the decoder accepts re-encodes to the same bytes.
func FuzzTopicMessage(f *testing.F) {
	f.Add(appendTopicMessage(nil, "chain", []byte("heads")))
	f.Add(appendTopicMessage(nil, "test", []byte("over the limit")))
	f.Add(appendTopicMessage(nil, "presence", []byte("unknown")))
	f.Add([]byte("\x00"))
	f.Add([]byte("\xffchain"))
	ts := NewTopics()
	if err := ts.Register("chain", HandlerFunc(func([]byte) {}), 0); err != nil {
		f.Fatal(err)
	}
	if err := ts.Register("test", HandlerFunc(func([]byte) {}), 8); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		relay := ts.deliver(b)
		name, msg, err := decodeTopicMessage(b)
		if err != nil {
			if !errors.Is(err, errBadTopic) {
				t.Fatalf("error %v is not errBadTopic", err)
			}
			if relay {
				t.Fatal("a malformed message is relayed")
			}
			return
		}
		if !validTopic(name) || len(msg) == 0 || len(msg) > MaxBroadcastSize {
			t.Fatalf("accepted topic %q and a message of %d bytes", name, len(msg))
		}
		if again := appendTopicMessage(nil, string(name), msg); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, want %x", again, b)
		}
	})
}

// FuzzTopicStates: arbitrary push/pull state sets never panic the decoder
// or the registry; what the decoder accepts is bounded and re-encodes to
// the same bytes.
func FuzzTopicStates(f *testing.F) {
	f.Add(appendTopicStates(nil, []topicState{{"blobs", []byte("have")}, {"chain", []byte("heads")}}))
	f.Add(appendTopicStates(nil, []topicState{{"test", []byte("over the limit")}}))
	f.Add([]byte{topicStatesVersion, MaxTopics + 1})
	f.Add([]byte{topicStatesVersion, 1, 1, 'a', 0xff, 0xff})
	ts := NewTopics()
	if err := ts.Register("chain", &rider{state: []byte("heads")}, 0); err != nil {
		f.Fatal(err)
	}
	if err := ts.Register("test", &rider{}, 8); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ts.mergeState(b)
		states, err := decodeTopicStates(b)
		if err != nil {
			if !errors.Is(err, errBadTopic) {
				t.Fatalf("error %v is not errBadTopic", err)
			}
			return
		}
		if len(states) > MaxTopics {
			t.Fatalf("accepted %d states", len(states))
		}
		for i, s := range states {
			if !validTopic(s.topic) || len(s.state) == 0 || len(s.state) > MaxBroadcastSize || (i > 0 && s.topic <= states[i-1].topic) {
				t.Fatalf("accepted state %d: topic %q, %d bytes", i, s.topic, len(s.state))
			}
		}
		if len(b) == 0 {
			return
		}
		if again := appendTopicStates(nil, states); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, want %x", again, b)
		}
	})
}

// BenchmarkTopicsDeliver measures routing one received message (a chain
// announcement of the largest size) to its rider among 16 topics: memberlist
// calls it on its packet loop.
func BenchmarkTopicsDeliver(b *testing.B) {
	ts := NewTopics()
	for i := range MaxTopics - 1 {
		if err := ts.Register(fmt.Sprintf("rider-%02d", i), HandlerFunc(func([]byte) {}), 0); err != nil {
			b.Fatal(err)
		}
	}
	if err := ts.Register("chain", HandlerFunc(func([]byte) {}), 7<<10); err != nil {
		b.Fatal(err)
	}
	msg := appendTopicMessage(nil, "chain", make([]byte, 7<<10))
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if !ts.deliver(msg) {
			b.Fatal("not delivered")
		}
	}
}

// BenchmarkTopicsPushPull measures one push/pull's state: gathering this
// node's (16 topics, 1 KiB each) and merging a member's.
func BenchmarkTopicsPushPull(b *testing.B) {
	ts := NewTopics()
	for i := range MaxTopics {
		if err := ts.Register(fmt.Sprintf("rider-%02d", i), quietRider(make([]byte, 1<<10)), 0); err != nil {
			b.Fatal(err)
		}
	}
	remote := ts.localState()
	b.ReportAllocs()
	b.SetBytes(int64(len(remote)))
	for b.Loop() {
		if len(ts.localState()) != len(remote) {
			b.Fatal("local state changed")
		}
		ts.mergeState(remote)
	}
}

// quietRider is a StateHandler that keeps nothing.
type quietRider []byte

func (quietRider) HandleMessage([]byte) {}
func (r quietRider) LocalState() []byte { return r }
func (quietRider) MergeState([]byte)    {}

package gossip

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSimTopics runs three riders on the gossip of a three-member cell
// (mocknet, virtual time). Each topic's rider sees its own topic's
// messages and push/pull states only; a message over the receiver's limit
// for its topic is dropped and counted there; a topic a member has not
// registered is counted and dropped there, and refused when it sends on
// it; a topic registered after the start rides like the others.
func TestSimTopics(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 61)
		const n = 3
		riders := make([]map[string]*rider, n)
		topics := make([]*Topics, n)
		c := newSimCellWith(t, seed, n, func(i int) *Topics {
			ts := NewTopics()
			riders[i] = map[string]*rider{}
			reg := func(name string, limit int) {
				r := &rider{state: fmt.Appendf(nil, "%s state of %d", name, i)}
				if err := ts.Register(name, r, limit); err != nil {
					t.Fatal(err)
				}
				riders[i][name] = r
			}
			reg("a", 0)
			reg("b", 0)
			// Member 1 takes at most 10 bytes on "big"; the others 100.
			reg("big", map[bool]int{true: 10, false: 100}[i == 1])
			if i == 2 {
				reg("extra", 0) // only member 2 knows it
			}
			topics[i] = ts
			return ts
		})
		c.awaitConvergence(2*time.Minute, all(n)...)
		// Each member runs a push/pull every 30 s with a member memberlist
		// picks at random (not by our seed): wait, in virtual time, until
		// every member has merged every other's states.
		statesOK := func(i int, name string) bool {
			_, merged := riders[i][name].got()
			for j := range n {
				if j != i && !slices.Contains(merged, fmt.Sprintf("%s state of %d", name, j)) {
					return false
				}
			}
			return true
		}
		waitUntil(30*time.Minute, time.Second, func() bool {
			for i := range n {
				if !statesOK(i, "a") || !statesOK(i, "b") {
					return false
				}
			}
			return true
		})
		for i := range n {
			for _, name := range []string{"a", "b"} {
				_, merged := riders[i][name].got()
				var want []string
				for j := range n {
					if j != i {
						want = append(want, fmt.Sprintf("%s state of %d", name, j))
					}
				}
				if got := dedup(merged); !slices.Equal(got, want) {
					t.Errorf("member %d, topic %s: merged states %q, want %q", i, name, got, want)
				}
			}
		}

		send := func(from int, topic, msg string) {
			t.Helper()
			if err := c.ms[from].Broadcast(topic, []byte(msg)); err != nil {
				t.Fatalf("member %d: Broadcast on %s: %v", from, topic, err)
			}
		}
		send(0, "a", "to a")
		send(0, "b", "to b")
		send(0, "big", "fifty bytes..................................... 50")
		send(2, "extra", "only 2 knows")
		if err := c.ms[0].Broadcast("extra", []byte("x")); !errors.Is(err, ErrUnknownTopic) {
			t.Errorf("Broadcast on a topic not registered: %v, want ErrUnknownTopic", err)
		}
		if err := c.ms[1].Broadcast("big", make([]byte, 11)); !errors.Is(err, ErrTooLarge) {
			t.Errorf("Broadcast over the topic's limit: %v, want ErrTooLarge", err)
		}
		time.Sleep(30 * time.Second)

		for i := 1; i < n; i++ {
			for name, want := range map[string][]string{"a": {"to a"}, "b": {"to b"}} {
				if msgs, _ := riders[i][name].got(); !slices.Equal(msgs, want) {
					t.Errorf("member %d, topic %s: messages %q, want %q", i, name, msgs, want)
				}
			}
		}
		if msgs, _ := riders[2]["big"].got(); len(msgs) != 1 {
			t.Errorf("member 2 got %d messages on big, want 1", len(msgs))
		}
		if msgs, _ := riders[1]["big"].got(); len(msgs) != 0 {
			t.Errorf("member 1 got %q on big, over its limit", msgs)
		}
		st1 := topics[1].Stats()
		if got := st1.Topics["big"].Oversize; got != 1 {
			t.Errorf("member 1 counted %d oversize messages on big, want 1", got)
		}
		for i := range 2 {
			if got := topics[i].Stats().Unknown; got != 1 {
				t.Errorf("member %d counted %d messages of unknown topics, want 1", i, got)
			}
		}
		if msgs, _ := riders[2]["extra"].got(); len(msgs) != 0 {
			t.Errorf("member 2 heard its own message: %q", msgs)
		}
		st0 := topics[0].Stats().Topics["a"]
		if st0.MessagesOut != 1 || st0.BytesOut != 4 || st0.StatesOut == 0 || st0.StatesIn == 0 {
			t.Errorf("member 0's counters of topic a: %+v", st0)
		}
		if st1.UnknownStates == 0 || st1.Topics["big"].OversizeStates == 0 {
			t.Errorf("member 1 counted no state of extra (%d) or over its limit on big (%d)", st1.UnknownStates, st1.Topics["big"].OversizeStates)
		}
		if diff := cmp.Diff(TopicStats{Limit: MaxBroadcastSize, MessagesIn: 1, BytesIn: 4, StatesIn: st1.Topics["a"].StatesIn, StatesOut: st1.Topics["a"].StatesOut}, st1.Topics["a"]); diff != "" {
			t.Errorf("member 1's counters of topic a (-want +got):\n%s", diff)
		}

		// Registered while gossip runs: rides at once.
		late := make([]*rider, n)
		for i := range 2 {
			late[i] = &rider{state: fmt.Appendf(nil, "late state of %d", i)}
			if err := topics[i].Register("late", late[i], 0); err != nil {
				t.Fatal(err)
			}
		}
		send(0, "late", "late news")
		time.Sleep(30 * time.Second)
		waitUntil(30*time.Minute, time.Second, func() bool {
			_, merged := late[1].got()
			return slices.Contains(merged, "late state of 0")
		})
		msgs, merged := late[1].got()
		if !slices.Equal(msgs, []string{"late news"}) {
			t.Errorf("member 1's late rider got %q, want the late news", msgs)
		}
		if !slices.Contains(merged, "late state of 0") {
			t.Errorf("member 1's late rider merged %q, want member 0's state", merged)
		}
		if got := topics[2].Stats().Unknown; got != 1 {
			t.Errorf("member 2, without the late topic, counted %d unknown messages, want 1", got)
		}
	})
}

// dedup returns the distinct strings of s, sorted.
func dedup(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

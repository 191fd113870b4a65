package simnet

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	messages "github.com/exopeer/exopeer/message/service"
)

// TestMessageCheck: the messages scenario's check of one device's
// conversation finds each kind of fault: a message twice, out of the
// order sent, missing, not marked delivered on the sender's side, sent
// by no one or in another conversation; and it counts a failed send the
// recipient holds as a lost acknowledgement, and lets pass a text a
// crashed send recorded without telling its ID.
func TestMessageCheck(t *testing.T) {
	people := []*person{{name: "p00"}, {name: "p01"}, {name: "p02"}}
	l := &sendLog{}
	lost := errors.New("unreachable")
	for _, a := range []*attempt{
		{from: 0, to: 1, seq: 0, id: "a0", text: "p00 to p01, text 0"},
		{from: 0, to: 1, seq: 1, id: "a1", text: "p00 to p01, text 1", err: lost},
		{from: 0, to: 1, seq: 2, id: "a2", text: "p00 to p01, text 1"},
		{from: 1, to: 0, seq: 0, id: "b0", text: "p01 to p00, text 0"},
		{from: 2, to: 0, seq: 0, id: "c0", text: "p02 to p00, text 0"},
		// A send of text 0 cut by its device's crash before it told
		// the message's ID (talk logs every attempt).
		{from: 0, to: 1, seq: 3, text: "p00 to p01, text 0", err: lost},
	} {
		l.add(a)
	}
	msg := func(id, dir, state string) messages.Message {
		m := messages.Message{ID: id, Direction: dir, State: state}
		if a := l.byID[id]; a != nil {
			m.Text = a.text
		}
		return m
	}
	a0, a1, a2 := msg("a0", messages.Out, messages.Delivered), msg("a1", messages.Out, messages.Sent), msg("a2", messages.Out, messages.Delivered)
	b0 := msg("b0", messages.In, messages.Delivered)
	crashed := messages.Message{ID: "x", Direction: messages.Out, State: messages.Sent, Text: "p00 to p01, text 0"}
	stranger := messages.Message{ID: "y", Direction: messages.In, State: messages.Delivered, Text: "hello"}
	type counts struct{ Dups, Order, Missing, Unknown, AckLost int }
	for _, tc := range []struct {
		name string
		self int
		got  []messages.Message
		want counts
	}{
		{"whole", 0, []messages.Message{a0, b0, a1, a2}, counts{}},
		{"interrupted send", 0, []messages.Message{a0, crashed, b0, a1, a2}, counts{}},
		{"twice", 0, []messages.Message{a0, a0, b0, a1, a2}, counts{Dups: 1}},
		{"out of order", 0, []messages.Message{a2, b0, a1, a0}, counts{Order: 2}},
		{"missing", 0, []messages.Message{a0, a1, a2}, counts{Missing: 1}},
		{"not marked delivered", 0, []messages.Message{msg("a0", messages.Out, messages.Sent), b0, a2}, counts{Missing: 1}},
		{"sent by no one", 0, []messages.Message{a0, stranger, b0, a2}, counts{Unknown: 1}},
		{"another conversation", 0, []messages.Message{a0, b0, a2, msg("c0", messages.In, messages.Delivered)}, counts{Unknown: 1}},
		{"recipient whole", 1, []messages.Message{msg("a0", messages.In, messages.Delivered), msg("b0", messages.Out, messages.Delivered), msg("a2", messages.In, messages.Delivered)}, counts{}},
		{"acknowledgement lost", 1, []messages.Message{msg("a0", messages.In, messages.Delivered), msg("a1", messages.In, messages.Delivered), msg("b0", messages.Out, messages.Delivered), msg("a2", messages.In, messages.Delivered)}, counts{AckLost: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := 1 - tc.self
			var want []*attempt
			for _, a := range l.sends {
				if a.err == nil && a.from != 2 {
					want = append(want, a)
				}
			}
			var c checkCounts
			c.device(7, tc.got, tc.self, other, want, l, map[string]bool{}, people)
			got := counts{c.dups, c.order, c.missing, c.unknown, c.ackLost}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("counts (-want +got):\n%s\nnotes: %q", d, c.samples)
			}
		})
	}
}

// TestMessageCheckCopyUnderAnotherID: a device that holds a sent message
// twice, the second copy under an ID no send returned (a re-record, a
// resend as a new message), holds it twice: only a send that returned no
// ID (interrupted by a crash) excuses one copy of its text under an
// unknown ID, not a send whose ID is known.
func TestMessageCheckCopyUnderAnotherID(t *testing.T) {
	people := []*person{{name: "p00"}, {name: "p01"}}
	l := &sendLog{}
	a0 := &attempt{from: 0, to: 1, seq: 0, id: "a0", text: "p00 to p01, text 0"}
	l.add(a0)
	got := []messages.Message{
		{ID: "a0", Direction: messages.In, State: messages.Delivered, Text: a0.text},
		{ID: "again", Direction: messages.In, State: messages.Delivered, Text: a0.text},
	}
	var c checkCounts
	c.device(7, got, 1, 0, []*attempt{a0}, l, map[string]bool{}, people)
	if c.dups+c.unknown == 0 {
		t.Errorf("a copy of %q under another ID passes: %d duplicates, %d unknown", a0.text, c.dups, c.unknown)
	}
}

package simnet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	messages "github.com/exopeer/exopeer/message/service"
)

// sendLog is what the people of the messages scenario sent, as they
// saw it: every attempt, its message's ID and whether it was reported
// delivered. Safe for concurrent use.
type sendLog struct {
	mu          sync.Mutex
	sends       []*attempt
	byID        map[string]*attempt
	texts       map[string]bool
	noID        map[string]int // text → attempts of it that returned no ID
	undelivered int
}

// attempt is one call of Send: the seq-th of its talk (from → to).
type attempt struct {
	from, to int
	seq      int
	id       string
	text     string
	took     time.Duration
	err      error
	// pending: Send recorded the message and reported no device
	// reachable (ErrUnreachable): the cell's couriers deliver it, the
	// user does not send it again.
	pending bool
}

func (l *sendLog) add(a *attempt) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byID == nil {
		l.byID, l.texts, l.noID = map[string]*attempt{}, map[string]bool{}, map[string]int{}
	}
	l.sends = append(l.sends, a)
	l.texts[a.text] = true
	if a.id != "" {
		l.byID[a.id] = a
	} else {
		l.noID[a.text]++
	}
}

// talk sends tk's texts at their times, from the planned device or,
// when it is down, the next one of the cell that is up; a send that
// recorded nothing (its device down, its record failed) is retried
// after its backoff until it is delivered, pending or maxAttempts.
func (l *sendLog) talk(ctx context.Context, people []*person, tk talk, start time.Time) {
	from, to := people[tk.from], people[tk.to]
	seq, tries := 0, 0
	for k, at := range tk.at {
		time.Sleep(time.Until(start.Add(at)))
		text := fmt.Sprintf("%s to %s, text %d", from.name, to.name, k)
		for try := 0; ; try++ {
			a := &attempt{from: tk.from, to: tk.to, seq: seq, text: text}
			seq++
			nd := upDevice(from.devices, tk.device[k])
			if nd == nil {
				a.err = fmt.Errorf("%s: every device is down", from.name)
			} else if p := nd.Peer(); p == nil {
				a.err = fmt.Errorf("%s: node %d went down", from.name, nd.Index)
			} else {
				sctx, cancel := context.WithTimeout(ctx, time.Minute)
				began := time.Now()
				m, err := p.Messages().Send(sctx, to.name, text)
				a.took, a.id, a.err = time.Since(began), m.ID, err
				cancel()
				if err != nil {
					a.err = fmt.Errorf("node %d sends %q: %w", nd.Index, text, err)
				}
			}
			a.pending = a.id != "" && errors.Is(a.err, messages.ErrUnreachable)
			l.add(a)
			if a.err == nil || a.pending {
				break
			}
			if try+1 == maxAttempts {
				l.mu.Lock()
				l.undelivered++
				l.mu.Unlock()
				break
			}
			time.Sleep(tk.backoff[tries%len(tk.backoff)])
			tries++
		}
	}
}

// upDevice is devices[i % len] if it is up, else the next one that is;
// nil if none is.
func upDevice(devices []*Node, i int) *Node {
	for j := range devices {
		if nd := devices[(i+j)%len(devices)]; nd.Up() {
			return nd
		}
	}
	return nil
}

// checkCounts is what checkConversations found.
type checkCounts struct {
	dups, order, missing, unknown, ackLost int
	samples                                []string
}

func (c *checkCounts) note(format string, args ...any) {
	if len(c.samples) < maxFailuresReported {
		c.samples = append(c.samples, fmt.Sprintf(format, args...))
	}
}

// checkConversations reads the conversation of each pair on every
// device of both cells and checks it against the log: each attempt
// reported delivered held exactly once (and delivered, on the sender's
// side), each talk's messages in the order sent, nothing unknown. A
// message of an attempt reported failed that the recipient's cell holds
// counts once in ackLost. A device that is down or cannot answer counts
// its conversation's delivered messages as missing.
func checkConversations(ctx context.Context, people []*person, pairs [][2]int, l *sendLog) checkCounts {
	l.mu.Lock()
	defer l.mu.Unlock()
	var c checkCounts
	lost := map[string]bool{}
	for _, pr := range pairs {
		for _, side := range [][2]int{{pr[0], pr[1]}, {pr[1], pr[0]}} {
			self, other := side[0], side[1]
			var want []*attempt // delivered, of both talks
			for _, a := range l.sends {
				if (a.err == nil || a.pending) && (a.from == self && a.to == other || a.from == other && a.to == self) {
					want = append(want, a)
				}
			}
			for _, nd := range people[self].devices {
				got, err := conversation(ctx, nd, people[other].name)
				if err != nil {
					c.missing += len(want)
					c.note("node %d of %s: conversation with %s: %v", nd.Index, people[self].name, people[other].name, err)
					continue
				}
				c.device(nd.Index, got, self, other, want, l, lost, people)
			}
		}
	}
	if c.missing > 0 {
		c.note("%d delivered messages missing or not marked delivered", c.missing)
	}
	return c
}

// device checks the conversation got that the device of index nd of
// person self holds with person other against the log: want are the
// attempts of both talks reported delivered or pending; lost the IDs of failed
// attempts the recipient's cell was found holding. The caller holds
// l.mu.
func (c *checkCounts) device(nd int, got []messages.Message, self, other int, want []*attempt, l *sendLog, lost map[string]bool, people []*person) {
	seen := map[string]int{}
	last := map[int]int{}       // a talk's sender → the last attempt seen
	excused := map[string]int{} // text → copies held under an unknown ID
	for _, m := range got {
		seen[m.ID]++
		if seen[m.ID] == 2 {
			c.dups++
			c.note("node %d holds message %s twice", nd, m.ID)
		}
		a, ok := l.byID[m.ID]
		if !ok {
			// A send interrupted by a crash of its device may have
			// recorded its text, sent, with no ID to show; a courier
			// delivers it later. Each such send excuses one copy of its
			// text under an unknown ID; a further copy (of a send whose
			// ID is known) is the message held twice.
			excused[m.Text]++
			switch {
			case !l.texts[m.Text]:
				c.unknown++
				c.note("node %d holds a message no one sent: %q (%s)", nd, m.Text, m.ID)
			case excused[m.Text] > l.noID[m.Text]:
				c.dups++
				c.note("node %d holds %q again under an ID no send returned (%s)", nd, m.Text, m.ID)
			}
			continue
		}
		if a.from != self && a.from != other || a.to != self && a.to != other {
			c.unknown++
			c.note("node %d holds %s's message to %s in the conversation of %s with %s", nd, people[a.from].name, people[a.to].name, people[self].name, people[other].name)
			continue
		}
		if prev, ok := last[a.from]; ok && prev > a.seq {
			c.order++
			c.note("node %d holds %q (attempt %d) after attempt %d", nd, a.text, a.seq, prev)
		}
		last[a.from] = a.seq
		if a.err != nil && !a.pending && a.to == self && !lost[a.id] {
			lost[a.id] = true
			c.ackLost++
		}
	}
	for _, a := range want {
		switch {
		case seen[a.id] == 0:
			c.missing++
		case a.from == self && !isDelivered(got, a.id):
			c.missing++
		}
	}
}

func isDelivered(ms []messages.Message, id string) bool {
	for _, m := range ms {
		if m.ID == id && m.State == messages.Delivered {
			return true
		}
	}
	return false
}

// conversation reads nd's whole conversation with the contact name, in
// order.
func conversation(ctx context.Context, nd *Node, name string) ([]messages.Message, error) {
	p := nd.Peer()
	if p == nil {
		return nil, fmt.Errorf("node %d is down", nd.Index)
	}
	var out []messages.Message
	after := ""
	for {
		pg, err := p.Messages().Conversation(ctx, name, after, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, pg.Messages...)
		if pg.Next == "" {
			return out, nil
		}
		after = pg.Next
	}
}

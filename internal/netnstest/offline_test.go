package netnstest_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/netnstest"
)

// scene is TestMessages' world: the LAN, the people, the messages sent,
// the figures measured.
type scene struct {
	top     *testing.T // the test's own: the nodes it starts live until it ends
	lan     *netnstest.LAN
	people  []*person
	book    ledger
	figures map[string]string
	live    []time.Duration // each send's call on a live LAN, from the command to the delivery
}

// nodes returns the devices of ps.
func nodes(ps ...*person) []*netnstest.Node {
	var out []*netnstest.Node
	for _, p := range ps {
		out = append(out, p.nodes...)
	}
	return out
}

// restart starts a node on the host and data dir of n, which has
// stopped or been killed, and puts it in n's place among its person's
// devices. The node lives until the test ends, not only the step.
func (sc *scene) restart(t *testing.T, n *netnstest.Node) *netnstest.Node {
	t.Helper()
	restarted := sc.lan.Start(stepTB{TB: t, top: sc.top}, n.Host)
	if restarted.ID != n.ID {
		t.Fatalf("node %s restarted on its data dir as %s, was %s", n.Name, restarted.ID, n.ID)
	}
	ownerOf(sc.people, n).replace(restarted)
	return restarted
}

// stepTB is what a node restarted within a step starts under: a failed
// start fails the step (Fatal, Fatalf), and the node lives until the
// whole test ends (its clean-up, and its report if the test failed, are
// the test's: a step's clean-up would stop it at the step's end).
type stepTB struct {
	testing.TB // the step's
	top        testing.TB
}

func (s stepTB) Cleanup(f func())                  { s.top.Cleanup(f) }
func (s stepTB) Failed() bool                      { return s.top.Failed() }
func (s stepTB) Logf(format string, args ...any)   { s.top.Logf(format, args...) }
func (s stepTB) Errorf(format string, args ...any) { s.top.Errorf(format, args...) }

// send sends a message from device n of from to to, with `exopeer send`
// if cli, else through the API, and fails t unless it is delivered.
func (sc *scene) send(t *testing.T, from *person, n *netnstest.Node, to *person, cli bool) *msg {
	t.Helper()
	m := sc.book.add(from, to, n, "hello")
	if cli {
		r := run(t, n, sendLimit, "send", to.name, m.text)
		if !regexp.MustCompile(`^delivered to ` + to.name + ` \(message [0-9a-f]{32}\)\n$`).MatchString(r.Stdout) {
			t.Fatalf("node %s: exopeer send: %v", n.Name, r)
		}
		sc.live = append(sc.live, r.Took)
		return m
	}
	ctx, cancel := context.WithTimeout(t.Context(), sendLimit)
	defer cancel()
	sent := time.Now()
	v, err := n.Client.Send(ctx, to.name, m.text)
	if err != nil || v.State != "delivered" || v.Text != m.text || v.Device != n.ID {
		t.Fatalf("node %s: send to %s: %+v, %v", n.Name, to.name, v, err)
	}
	sc.live = append(sc.live, time.Since(sent))
	return m
}

// shows waits until every device of ps shows its conversations as the
// ledger has them, and returns how long that took.
func (sc *scene) shows(t *testing.T, what string, limit time.Duration, ps ...*person) time.Duration {
	t.Helper()
	return sc.showsOn(t, what, limit, nodes(ps...)...)
}

// showsOn is shows on the devices ns.
func (sc *scene) showsOn(t *testing.T, what string, limit time.Duration, ns ...*netnstest.Node) time.Duration {
	t.Helper()
	return waitAll(t, ns, what, limit, func(n *netnstest.Node) error {
		p := ownerOf(sc.people, n)
		var errs []string
		for _, q := range sc.people {
			if q == p {
				continue
			}
			if err := showsConversation(t, n, p, q, sc.book.between(p, q)); err != nil {
				errs = append(errs, fmt.Sprintf("with %s: %v", q.name, err))
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s", strings.Join(errs, "\n  "))
		}
		return nil
	})
}

// offlineAndBack stops Carol's only device; alice1 (`exopeer send`) and
// bob2 (the API) send to her, told the messages are not delivered, and
// every device of Alice and Bob shows them pending in `exopeer inbox`.
// bob2 stops too. Carol comes back: Alice's messages are delivered by
// their author, alice1, Bob's by bob1 (a device of the cell that did not
// write them, once its grace has passed: 5 s, as it has the mailbox
// role, which a cell's founder has), and every device of the three
// (bob2 restarted) shows them delivered, once; she answers each
// (delivered), then reads both conversations (`exopeer read`), and every
// device of Alice and Bob shows its messages to her read.
func offlineAndBack(t *testing.T, sc *scene, alice, bob, carol *person) {
	a1, b1, b2, c := alice.nodes[0], bob.nodes[0], bob.nodes[1], carol.nodes[0]
	if _, err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	var away []*msg
	var failed []time.Duration
	for range 2 {
		m := sc.book.add(alice, carol, a1, "while Carol is away")
		ctx, cancel := context.WithTimeout(t.Context(), sendLimit)
		r, err := a1.Exopeer(ctx, "send", carol.name, m.text)
		cancel()
		if err != nil || r.Code != 1 || !strings.Contains(r.Stderr, "not delivered") {
			t.Fatalf("node %s: exopeer send to Carol, away: %v, %v; want exit 1, not delivered", a1.Name, r, err)
		}
		failed = append(failed, r.Took)
		away = append(away, m)

		m = sc.book.add(bob, carol, b2, "while Carol is away")
		ctx, cancel = context.WithTimeout(t.Context(), sendLimit)
		sent := time.Now()
		v, err := b2.Client.Send(ctx, carol.name, m.text)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "not delivered") {
			t.Fatalf("node %s: send to Carol, away: %+v, %v; want not delivered", b2.Name, v, err)
		}
		failed = append(failed, time.Since(sent))
		away = append(away, m)
	}
	sc.figures["offline: a send to Carol away, until it says not delivered"] = percentiles(failed)
	states := map[string]int{} // state: how many (device, message) show it
	waitAll(t, nodes(alice, bob), "the messages to Carol pending in exopeer inbox", deliverLimit, func(n *netnstest.Node) error {
		p := ownerOf(sc.people, n)
		views, err := inbox(t, n, carol.name)
		if err != nil {
			return err
		}
		seen, twice := byText(views)
		if len(twice) > 0 {
			t.Fatalf("node %s: inbox shows more than once: %q", n.Name, twice)
		}
		shown := map[string]int{} // counted once the device shows them all
		for _, m := range away {
			if m.from != p {
				continue
			}
			v, ok := seen[m.text]
			if !ok {
				return fmt.Errorf("missing: %q", m.text)
			}
			// Sent, or stored if a blind mailbox on the LAN's DHT took it:
			// pending either way.
			if v.State != "sent" && v.State != "stored" {
				t.Fatalf("node %s: %q is %s while Carol is away; want pending (sent or stored)", n.Name, m.text, v.State)
			}
			shown[v.State]++
		}
		for st, k := range shown {
			states[st] += k
		}
		return nil
	})
	t.Logf("while Carol is away, the devices of Alice and Bob show her messages: %v", states)

	cv, err := call(t, b1.Client.Cell)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(cv.Members, func(m api.CellMemberView) bool { return m.Self }); i < 0 || !strings.Contains(cv.Members[i].Roles, "mailbox") {
		t.Fatalf("node %s has not the mailbox role: %+v", b1.Name, cv.Members)
	}
	if _, err := b2.Stop(); err != nil {
		t.Fatal(err)
	}
	c = sc.restart(t, c)
	back := time.Now()
	since := func() string { return time.Since(back).Round(time.Millisecond).String() }
	// What reaches Carol's device, from each, then what the senders'
	// devices show (the state the delivering device recorded, carried
	// to the other by the chain).
	for _, p := range []*person{alice, bob} {
		waitAll(t, carol.nodes, p.name+"'s messages held once", deliverLimit, func(n *netnstest.Node) error {
			return showsConversation(t, n, carol, p, sc.book.between(carol, p))
		})
		sc.figures["offline: Carol's return to her device holding "+p.name+"'s messages"] = since()
	}
	sc.showsOn(t, "every message once, delivered", deliverLimit, alice.nodes...)
	sc.figures["offline: Carol's return to every device of Alice showing hers delivered (their author online delivers)"] = since()
	sc.showsOn(t, "every message once, delivered", deliverLimit, b1)
	sc.figures["offline: Carol's return to bob1 showing Bob's delivered (their author stopped: bob1, the mailbox device, delivers)"] = since()
	b2 = sc.restart(t, b2)
	sc.shows(t, "every message once, delivered", deliverLimit, alice, bob, carol)

	sc.send(t, carol, c, alice, true)
	sc.send(t, carol, c, bob, false)

	// Carol reads Alice's messages (--json) and Bob's (text).
	var toCarol = map[*person]int{}
	for _, m := range sc.book.msgs {
		if m.to == carol {
			toCarol[m.from]++
			m.read = true
		}
	}
	var rd struct {
		Marked  int    `json:"marked"`
		Receipt bool   `json:"receipt"`
		UpTo    string `json:"upTo"`
	}
	runJSON(t, c, &rd, "read", alice.name)
	if rd.Marked != toCarol[alice] || !rd.Receipt || rd.UpTo == "" {
		t.Fatalf("node %s: exopeer read Alice: %+v; want %d marked and a receipt", c.Name, rd, toCarol[alice])
	}
	r := run(t, c, callLimit, "read", bob.name)
	if want := fmt.Sprintf("%d message(s) marked read; a read receipt goes to Bob\n", toCarol[bob]); r.Stdout != want {
		t.Fatalf("node %s: exopeer read Bob: %q, want %q", c.Name, r.Stdout, want)
	}
	sc.figures["read: Carol's read to every device showing it read"] =
		sc.shows(t, "every message once, Carol's read", deliverLimit, alice, bob, carol).Round(time.Millisecond).String()
}

package netnstest_test

// Helpers of TestMessages: people (cells of devices), the CLI verbs they
// run, the messages the test sent and what every device must show of
// them.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/netnstest"
)

// person is a cell: a name (the cell's, on its card, and the one its
// contacts call it by) and its devices.
type person struct {
	name  string
	nodes []*netnstest.Node
	cell  string // the cell's public key, hex
}

// replace puts n, a node restarted on the data dir of a device of p, in
// the place of the one it replaces.
func (p *person) replace(n *netnstest.Node) {
	for i, m := range p.nodes {
		if m.Host == n.Host {
			p.nodes[i] = n
			return
		}
	}
	panic("netnstest: no device of " + p.name + " on host " + n.Name)
}

// msg is a message the test sent: its text (unique), the device that
// sent it (its host's name, which survives a restart), its place among
// that device's messages, and to whom.
type msg struct {
	text     string
	from, to *person
	dev      string // the sending device's host name
	devID    string // its peer ID
	line     string // dev and, for sends made at once, which one's
	seq      int    // its place among the messages of line, from 1
	// maybe: the send was cut by the sending device's death, so the test
	// cannot know whether it was recorded; settled before the checks.
	maybe bool
	read  bool // its recipient read it
}

// ledger is every message the test sent, in the order sent.
type ledger struct {
	mu   sync.Mutex
	msgs []*msg
	seqs map[string]int
}

// add notes a message about to be sent from device n of from to to.
func (l *ledger) add(from, to *person, n *netnstest.Node, what string) *msg {
	return l.addLine(from, to, n, "", what)
}

// addLine is add for one of several lines of sends a device makes at
// once, named line: its messages are in order within the line only.
func (l *ledger) addLine(from, to *person, n *netnstest.Node, line, what string) *msg {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seqs == nil {
		l.seqs = map[string]int{}
	}
	line = n.Name + line
	l.seqs[line]++
	m := &msg{from: from, to: to, dev: n.Name, devID: n.ID, line: line, seq: l.seqs[line]}
	m.text = fmt.Sprintf("%s #%d from %s to %s: %s", line, m.seq, from.name, to.name, what)
	l.msgs = append(l.msgs, m)
	return m
}

// between returns the messages from a to b, and from b to a.
func (l *ledger) between(a, b *person) []*msg {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*msg
	for _, m := range l.msgs {
		if m.from == a && m.to == b || m.from == b && m.to == a {
			out = append(out, m)
		}
	}
	return out
}

// run runs a CLI verb on n bounded by limit and fails t unless it exits 0.
func run(t *testing.T, n *netnstest.Node, limit time.Duration, args ...string) netnstest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	r, err := n.Exopeer(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 0 {
		t.Fatalf("node %s: exopeer %s: %v", n.Name, strings.Join(args, " "), r)
	}
	return r
}

// runJSON runs a CLI verb with --json on n, bounded by callLimit, and
// decodes its output into v.
func runJSON(t *testing.T, n *netnstest.Node, v any, args ...string) {
	t.Helper()
	runJSONWithin(t, n, callLimit, v, args...)
}

// runJSONWithin is runJSON bounded by limit.
func runJSONWithin(t *testing.T, n *netnstest.Node, limit time.Duration, v any, args ...string) {
	t.Helper()
	r := run(t, n, limit, append(args, "--json")...)
	if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
		t.Fatalf("node %s: exopeer %s --json: %v: %q", n.Name, strings.Join(args, " "), err, r.Stdout)
	}
}

// inbox runs `exopeer inbox --contact NAME --json` on n and returns the
// messages it prints (NDJSON), or why it could not.
func inbox(t *testing.T, n *netnstest.Node, contact string) ([]api.MessageView, error) {
	ctx, cancel := context.WithTimeout(t.Context(), callLimit)
	defer cancel()
	r, err := n.Exopeer(ctx, "inbox", "--contact", contact, "--json")
	if err != nil {
		return nil, err
	}
	if r.Code != 0 {
		return nil, fmt.Errorf("inbox --contact %s --json: %v", contact, r)
	}
	var out []api.MessageView
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	for {
		var m api.MessageView
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("inbox --contact %s --json: %w: %q", contact, err, r.Stdout)
		}
		out = append(out, m)
	}
}

// conversation reads the whole conversation of n with contact through
// the control API, in its order, a page at a time.
func conversation(t *testing.T, n *netnstest.Node, contact string) ([]api.MessageView, error) {
	var out []api.MessageView
	after := ""
	for range 100 {
		pg, err := call(t, func(ctx context.Context) (api.MessagePage, error) {
			return n.Client.Messages(ctx, contact, after, 20)
		})
		if err != nil {
			return nil, err
		}
		out = append(out, pg.Messages...)
		if pg.Next == "" {
			return out, nil
		}
		after = pg.Next
	}
	return nil, fmt.Errorf("conversation with %s: over 100 pages", contact)
}

// byText indexes views by text, and returns the texts seen more than once.
func byText(views []api.MessageView) (map[string]api.MessageView, []string) {
	seen := map[string]api.MessageView{}
	var twice []string
	for _, v := range views {
		if _, ok := seen[v.Text]; ok {
			twice = append(twice, v.Text)
		}
		seen[v.Text] = v
	}
	return seen, twice
}

// stateOf is the state device of p must show for m once everything has
// settled: read if its recipient read it, else delivered (in or out).
func stateOf(m *msg) string {
	if m.read {
		return "read"
	}
	return "delivered"
}

// checkShows checks that views, what device of p shows of its
// conversation with q, hold each of want exactly once, nothing else,
// each from its device, in its direction, in the state state(m) gives,
// and each device's messages (of each line of sends it made at once) in
// the order it sent them by the order key
// that orders the conversation; and, if listed (a conversation's pages,
// not the inbox, which lists by last change), in that order.
func checkShows(p *person, views []api.MessageView, want []*msg, state func(*msg) string, listed bool) error {
	seen, twice := byText(views)
	var errs []error
	if len(twice) > 0 {
		errs = append(errs, fmt.Errorf("shown more than once: %q", twice))
	}
	wanted := map[string]*msg{}
	for _, m := range want {
		wanted[m.text] = m
		v, ok := seen[m.text]
		if !ok {
			errs = append(errs, fmt.Errorf("missing: %q", m.text))
			continue
		}
		dir := "in"
		if m.from == p {
			dir = "out"
		}
		if v.Direction != dir || v.Device != m.devID || v.State != state(m) {
			errs = append(errs, fmt.Errorf("%q: %s from %s in state %s, want %s from %s (node %s) in state %s",
				m.text, v.Direction, v.Device, v.State, dir, m.devID, m.dev, state(m)))
		}
	}
	for _, v := range views {
		if wanted[v.Text] == nil {
			errs = append(errs, fmt.Errorf("a message the test did not send: %q (%s, %s)", v.Text, v.Direction, v.State))
		}
	}
	byOrder := func(a, b api.MessageView) int { return strings.Compare(a.Order, b.Order) }
	if listed && !slices.IsSortedFunc(views, byOrder) {
		errs = append(errs, errors.New("not listed in the order of its order keys"))
	}
	sorted := slices.SortedStableFunc(slices.Values(views), byOrder)
	last := map[string]int{}
	for _, v := range sorted {
		m := wanted[v.Text]
		if m == nil {
			continue
		}
		if m.seq <= last[m.line] {
			errs = append(errs, fmt.Errorf("%q orders after message #%d of %s", m.text, last[m.line], m.line))
		}
		last[m.line] = m.seq
	}
	return errors.Join(errs...)
}

// settled keeps of ms those certainly sent, and those whose send was cut
// whose record the sender's cell holds (read on the sender's device
// n): a message the sender's cell recorded must reach the recipient,
// one it did not never can.
func settled(t *testing.T, ms []*msg, n *netnstest.Node, contact string) ([]*msg, error) {
	conv, err := conversation(t, n, contact)
	if err != nil {
		return nil, err
	}
	held, _ := byText(conv)
	var out []*msg
	for _, m := range ms {
		v, ok := held[m.text]
		if ok {
			t.Logf("node %s holds %q, cut by the kill, in state %s", n.Name, m.text, v.State)
		}
		if ok || !m.maybe {
			out = append(out, m)
		}
	}
	return out, nil
}

// percentiles returns the median and the largest of ds, for the log.
func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.SortFunc(s, cmp.Compare)
	return fmt.Sprintf("n=%d median %v max %v", len(s), s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond))
}

// sameBytes says where got first differs from want.
func sameBytes(got, want []byte) error {
	if bytes.Equal(got, want) {
		return nil
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Errorf("%d bytes, want %d; they differ from byte %d", len(got), len(want), i)
}

// settle keeps, of the messages whose send was cut, those held (the
// sender's cell recorded them: they count as sent) and drops the others
// (never recorded, so never sent).
func (l *ledger) settle(cut, held []*msg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range held {
		m.maybe = false
	}
	l.msgs = slices.DeleteFunc(l.msgs, func(m *msg) bool { return slices.Contains(cut, m) && m.maybe })
}

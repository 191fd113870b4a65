package netnstest_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/netnstest"
)

// TestNATMessages: messages between two people behind NATs. Alice's cell
// is r, on the internet (its relay), and a1 behind a cone NAT; Bob is one
// device, bob1, behind another cone NAT, with no public device: he names
// r as his static relay. Once Alice and Bob hold each other's cards, r
// grants bob1 a reservation (a contact's device), and a1 sends to Bob and
// bob1 answers, each delivered (through r, or directly where a punch
// made a path): a1 finds bob1's relayed address through the DHT.
func TestNATMessages(t *testing.T) {
	n, _, homes := natNet(t, true, "r")
	a1h, bobh := n.AddHost(homes[0], "a1"), n.AddHost(homes[2], "bob1")
	r := n.StartEnv(t, n.Host("r"), []string{"EXOPEER_RELAY_SERVICE=on"})
	a1 := n.StartEnv(t, a1h, nil, "--bootstrap", quicAddr(r))
	bob1 := n.StartEnv(t, bobh, []string{"EXOPEER_STATIC_RELAYS=" + quicAddr(r)}, "--bootstrap", quicAddr(r))
	started := time.Now()
	for _, nd := range []*netnstest.Node{r, a1, bob1} {
		t.Logf("node %s: %s on %s (%s)", nd.Name, nd.ID, nd.Host.IP, nd.Host.Segment.Name)
	}

	var alice, bob api.CellView
	runJSON(t, r, &alice, "cell", "create", "Alice", "--member", "r")
	var joined api.CellView
	runJSONWithin(t, a1, cellLimit+callLimit, &joined, "cell", "join", invite(t, r), "--member", "a1", "--timeout", cellLimit.String())
	if joined.ID != alice.ID {
		t.Fatalf("node a1 joined cell %s, want Alice's %s", joined.ID, alice.ID)
	}
	runJSON(t, bob1, &bob, "cell", "create", "Bob", "--member", "bob1")

	// The cards: Alice's naming r and a1 once the roster settled.
	cards := map[string]string{}
	waitAll(t, []*netnstest.Node{r, bob1}, "a card naming every device", cellLimit, func(nd *netnstest.Node) error {
		var card api.ContactCard
		runJSON(t, nd, &card, "contact", "card")
		want := map[*netnstest.Node]int{r: 2, bob1: 1}[nd]
		if len(card.Devices) != want {
			return fmt.Errorf("card %+v, want %d devices", card, want)
		}
		cards[card.Name] = card.Text
		return nil
	})
	var added api.ContactAdded
	runJSON(t, a1, &added, "contact", "add", cards["Bob"])
	if added.Contact.Name != "Bob" || len(added.Contact.Devices) != 1 || added.Contact.Devices[0] != bob1.ID {
		t.Fatalf("node a1: contact add Bob's card: %+v", added)
	}
	runJSON(t, bob1, &added, "contact", "add", cards["Alice"])
	if added.Contact.Name != "Alice" || len(added.Contact.Devices) != 2 {
		t.Fatalf("node bob1: contact add Alice's card: %+v", added)
	}
	// r learns Bob from a1 (the cell's chain), then grants bob1 a
	// reservation: AutoRelay retries a refused static relay 15 s on
	// (relayBackoff).
	waitAll(t, []*netnstest.Node{r}, "Bob among r's contacts", chainLimit, func(nd *netnstest.Node) error {
		cs, err := call(t, nd.Client.Contacts)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(cs, func(c api.ContactView) bool { return c.Name == "Bob" }) {
			return fmt.Errorf("contacts %+v", cs)
		}
		return nil
	})
	reserved := waitAll(t, []*netnstest.Node{bob1}, "a relayed address through r", natMsgLimit, func(nd *netnstest.Node) error {
		st, err := call(t, nd.Client.Status)
		if err != nil {
			return err
		}
		for _, a := range st.AddrReachability {
			if a.Reachability == api.AddrReachabilityReachabilityRelay && strings.Contains(a.Addr, r.ID) {
				return nil
			}
		}
		return fmt.Errorf("addresses %+v", st.AddrReachability)
	})
	t.Logf("bob1 holds a reservation on r %v after the contact exchange, %v after the start", reserved.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))

	delivered := regexp.MustCompile(`^delivered to (Alice|Bob) \(message [0-9a-f]{32}\)\n$`)
	for _, s := range []struct {
		from     *netnstest.Node
		to, peer string
		by       *netnstest.Node
		text     string
	}{
		{a1, "Bob", "Alice", bob1, "from a1 to Bob, behind another NAT"},
		{bob1, "Alice", "Bob", a1, "from bob1 to Alice, answering"},
	} {
		res := run(t, s.from, sendLimit, "send", s.to, s.text)
		if !delivered.MatchString(res.Stdout) {
			t.Fatalf("node %s: exopeer send %s: %v", s.from.Name, s.to, res)
		}
		t.Logf("node %s: sent to %s, delivered in %v", s.from.Name, s.to, res.Took.Round(time.Millisecond))
		waitAll(t, []*netnstest.Node{s.by}, "the message in", deliverLimit, func(nd *netnstest.Node) error {
			in, err := inbox(t, nd, s.peer)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(in, func(m api.MessageView) bool { return m.Text == s.text }) {
				return fmt.Errorf("inbox %+v", in)
			}
			return nil
		})
	}
	kind, via, err := path(t, a1, bob1)
	if err != nil || kind == "" {
		t.Fatalf("a1's path to bob1: %q (%s), %v; want relayed or direct", kind, via, err)
	}
	if kind == "relayed" && via != r.ID {
		t.Errorf("a1 reaches bob1 through relay %s, want r (%s)", via, r.ID)
	}
	t.Logf("a1 reaches bob1 %s (%s)", kind, via)
}

// natMsgLimit bounds the wait for bob1's reservation on r: AutoRelay
// tries a static relay again 15 s after a refusal (peer's relayBackoff;
// it was a minute, which this limit would not allow).
const natMsgLimit = 45 * time.Second

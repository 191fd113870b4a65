package netnstest_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/netnstest"
)

// Bounds of TestMessages' waits, generous for a loaded machine: how long
// a step may take before the test gives up, not a speed it asserts (the
// figures are logged).
const (
	// sendLimit bounds one send: the node tries each device of the
	// contact in turn, 20 s each at most (the CLI's own bound is 2 min).
	sendLimit = 2*time.Minute + 10*time.Second
	// deliverLimit bounds messages pending reaching their recipient and
	// every device of both cells showing them in their final state: the
	// courier's backoff, the chain carrying records between devices.
	deliverLimit = 2 * time.Minute
)

// sharedName is the file Alice shares with Bob.
const sharedName = "report.bin"

// TestMessages runs three people on five real devices on one LAN, where
// they meet by mDNS: Alice (alice1, alice2), Bob (bob1, bob2) and Carol
// (carol). Each cell is formed by invite, each person adds the others'
// cards (CLI and API); each pair talks from different devices (`exopeer
// send` and the API); alice1 shares a file with Bob (`exopeer share`)
// while bob2 is stopped, and bob2, restarted, reads it byte for byte;
// alice2 is killed (SIGKILL) while it sends to Bob and Bob sends to
// Alice, and restarted; Carol stops while alice1 and bob2 write to her
// (every device of both shows those messages pending in `exopeer
// inbox`), bob2 stops too, Carol comes back (alice1 delivers Alice's,
// bob1 Bob's: every device shows them delivered), answers, and reads
// (every device of Alice and Bob shows its messages to her read). After
// each step, every device shows, in `exopeer inbox --contact X --json`
// and in the conversation the API pages through, every message of its
// conversations exactly once, from its device, in its state, each
// device's in the order it sent them. A step runs only if the ones
// before it passed. It logs the times it measured.
func TestMessages(t *testing.T) {
	lan := netnstest.New(t, "alice1", "alice2", "bob1", "bob2", "carol")
	began := time.Now()
	start := func(host string) *netnstest.Node { return lan.Start(t, lan.Host(host)) }
	alice := &person{name: "Alice", nodes: []*netnstest.Node{start("alice1"), start("alice2")}}
	bob := &person{name: "Bob", nodes: []*netnstest.Node{start("bob1"), start("bob2")}}
	carol := &person{name: "Carol", nodes: []*netnstest.Node{start("carol")}}
	people := []*person{alice, bob, carol}
	for _, n := range nodes(people...) {
		t.Logf("node %s: %s on %s", n.Name, n.ID, n.Host.IP)
	}
	sc := &scene{top: t, lan: lan, people: people, figures: map[string]string{}}
	book, figures, send, shows := &sc.book, sc.figures, sc.send, sc.shows

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"discovery", func(t *testing.T) {
			all := nodes(people...)
			waitAll(t, all, "every other node listed by mDNS", discoveryLimit, func(n *netnstest.Node) error {
				peers, err := call(t, n.Client.Peers)
				if err != nil {
					return err
				}
				for _, m := range all {
					if m != n && !slices.ContainsFunc(peers, func(p api.PeerView) bool {
						return p.Peer == m.ID && slices.Contains(p.Sources, "mdns")
					}) {
						return fmt.Errorf("node %s not listed by mDNS", m.Name)
					}
				}
				return nil
			})
		}},
		{"cells", func(t *testing.T) {
			for _, p := range people {
				first := p.nodes[0]
				var v api.CellView
				runJSON(t, first, &v, "cell", "create", p.name, "--member", first.Name)
				for _, n := range p.nodes[1:] {
					code := invite(t, first)
					var got api.CellView
					// The CLI bounds itself: --timeout + 10 s.
					runJSONWithin(t, n, cellLimit+callLimit, &got, "cell", "join", code, "--member", n.Name, "--timeout", cellLimit.String())
					if got.ID != v.ID {
						t.Fatalf("node %s joined cell %s, want %s", n.Name, got.ID, v.ID)
					}
				}
				figures["cell of "+p.name] = waitAll(t, p.nodes, p.name+"'s roster, every member alive", cellLimit, func(n *netnstest.Node) error {
					c, err := call(t, n.Client.Cell)
					if err != nil {
						return err
					}
					alive := 0
					for _, m := range c.Members {
						if m.State == "alive" {
							alive++
						}
					}
					if c.ID != v.ID || len(c.Members) != len(p.nodes) || alive != len(p.nodes) || !isSelf(c, n.ID) {
						return fmt.Errorf("cell %s, members %+v", c.ID, c.Members)
					}
					return nil
				}).Round(time.Millisecond).String()
			}
		}},
		{"contacts", func(t *testing.T) {
			cards := map[*person]string{}
			for _, p := range people {
				// The admin signs a list of every member when a card is
				// asked of it; a card asked before the roster settled
				// may lack a device.
				// Alice's and Bob's with `exopeer contact card`, Carol's
				// through the API.
				waitAll(t, p.nodes[:1], p.name+"'s card naming every device", cellLimit, func(n *netnstest.Node) error {
					var card api.ContactCard
					if p == carol {
						var err error
						if card, err = call(t, func(ctx context.Context) (api.ContactCard, error) { return n.Client.CellCard(ctx, "") }); err != nil {
							return err
						}
					} else {
						runJSON(t, n, &card, "contact", "card")
					}
					if card.Name != p.name || len(card.Devices) != len(p.nodes) {
						return fmt.Errorf("card %+v", card)
					}
					cards[p], p.cell = card.Text, card.Cell
					return nil
				})
			}
			// Alice adds hers on alice2 and Bob on bob1, with the CLI;
			// Carol through the API; each device of a cell then has them.
			adders := map[*person]*netnstest.Node{alice: alice.nodes[1], bob: bob.nodes[0]}
			for _, p := range people {
				for _, q := range people {
					if q == p {
						continue
					}
					var got api.ContactAdded
					if n := adders[p]; n != nil {
						runJSON(t, n, &got, "contact", "add", cards[q])
					} else {
						var err error
						got, err = call(t, func(ctx context.Context) (api.ContactAdded, error) {
							return carol.nodes[0].Client.ContactAdd(ctx, cards[q], "")
						})
						if err != nil {
							t.Fatalf("%s: contact add %s: %v", p.name, q.name, err)
						}
					}
					if !got.New || got.Contact.Name != q.name || got.Contact.Cell != q.cell || len(got.Contact.Devices) != len(q.nodes) {
						t.Fatalf("%s: contact add %s's card: %+v", p.name, q.name, got)
					}
				}
			}
			figures["contacts on every device"] = waitAll(t, nodes(people...), "both contacts listed", cellLimit, func(n *netnstest.Node) error {
				cs, err := call(t, n.Client.Contacts)
				if err != nil {
					return err
				}
				p := ownerOf(people, n)
				var got []string
				for _, c := range cs {
					got = append(got, fmt.Sprintf("%s/%d", c.Name, len(c.Devices)))
				}
				var want []string
				for _, q := range people {
					if q != p {
						want = append(want, fmt.Sprintf("%s/%d", q.name, len(q.nodes)))
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, want) {
					return fmt.Errorf("contacts (name/devices) %q, want %q", got, want)
				}
				return nil
			}).Round(time.Millisecond).String()
		}},
		{"conversations", func(t *testing.T) {
			a1, a2, b1, b2, c := alice.nodes[0], alice.nodes[1], bob.nodes[0], bob.nodes[1], carol.nodes[0]
			for range 2 {
				send(t, alice, a1, bob, true)
				send(t, bob, b2, alice, false)
				send(t, alice, a2, carol, false)
				send(t, carol, c, alice, true)
				send(t, bob, b1, carol, true)
				send(t, carol, c, bob, false)
				send(t, bob, b1, alice, true)
				send(t, alice, a2, bob, false)
			}
			figures["conversations on every device"] = shows(t, "every message once, delivered", deliverLimit, people...).Round(time.Millisecond).String()
		}},
		{"share", func(t *testing.T) {
			shareFile(t, sc, alice, bob)
			shows(t, "every message once, delivered", deliverLimit, people...)
		}},
		{"kill", func(t *testing.T) {
			killWhileSending(t, sc, alice, bob)
			figures["after the kill, every device shows every message"] = shows(t, "every message once, delivered", deliverLimit, people...).Round(time.Millisecond).String()
		}},
		{"offline", func(t *testing.T) {
			offlineAndBack(t, sc, alice, bob, carol)
		}},
		{"final", func(t *testing.T) {
			shows(t, "every message once, in its final state", deliverLimit, people...)
			for _, n := range nodes(people...) {
				if _, err := n.Stop(); err != nil {
					t.Error(err)
				} else if !strings.Contains(n.Stdout(), "\nstopped\n") {
					t.Errorf("node %s exited without saying it stopped", n.Name)
				}
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("step %s failed; the steps after it depend on it", s.name)
		}
	}
	figures["send to delivered, live LAN"] = percentiles(sc.live)
	var report []string
	for _, k := range slices.Sorted(maps.Keys(figures)) {
		report = append(report, k+": "+figures[k])
	}
	t.Logf("3 people on 5 devices, %d messages, passed in %v:\n  %s", len(book.msgs), time.Since(began).Round(time.Millisecond), strings.Join(report, "\n  "))
}

// ownerOf returns the person n is a device of.
func ownerOf(people []*person, n *netnstest.Node) *person {
	for _, p := range people {
		for _, m := range p.nodes {
			if m.Host == n.Host {
				return p
			}
		}
	}
	panic("netnstest: node " + n.Name + " is no one's")
}

// showsConversation checks what device n of p shows of its conversation
// with q, in `exopeer inbox --contact --json` and paged through the API:
// want, each once, in its state, in order per sending device.
func showsConversation(t *testing.T, n *netnstest.Node, p, q *person, want []*msg) error {
	in, err := inbox(t, n, q.name)
	if err != nil {
		return err
	}
	// A message shown twice stays so: no need to wait.
	if _, twice := byText(in); len(twice) > 0 {
		t.Fatalf("node %s: exopeer inbox --contact %s shows more than once: %q", n.Name, q.name, twice)
	}
	if len(in) >= 50 {
		return fmt.Errorf("inbox shows %d messages: the conversation outgrew the inbox's latest 50, and the test cannot check it whole", len(in))
	}
	if err := checkShows(p, in, want, stateOf, false); err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	conv, err := conversation(t, n, q.name)
	if err != nil {
		return err
	}
	if _, twice := byText(conv); len(twice) > 0 {
		t.Fatalf("node %s: the conversation with %s holds more than once: %q", n.Name, q.name, twice)
	}
	if err := checkShows(p, conv, want, stateOf, true); err != nil {
		return fmt.Errorf("conversation: %w", err)
	}
	return nil
}

// shareFile shares a 3 MiB file from Alice's first device with Bob
// (`exopeer share PATH Bob`) while Bob's second device is stopped: his
// first receives it and reads it; the second, restarted, gets it
// through its cell and reads it byte for byte too.
func shareFile(t *testing.T, sc *scene, alice, bob *person) {
	book, figures := &sc.book, sc.figures
	a1, b1, b2 := alice.nodes[0], bob.nodes[0], bob.nodes[1]
	data := make([]byte, 3<<20+4321)
	r := rand.New(rand.NewPCG(14, 8))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	path := filepath.Join(t.TempDir(), sharedName)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b2.Stop(); err != nil {
		t.Fatal(err)
	}
	m := book.add(alice, bob, a1, "a file")
	res := run(t, a1, sendLimit, "share", path, bob.name, "--text", m.text)
	if !regexp.MustCompile(`^shared ` + sharedName + ` with Bob \(message [0-9a-f]{32}\)\n$`).MatchString(res.Stdout) {
		t.Fatalf("node %s: exopeer share: %v", a1.Name, res)
	}
	sc.live = append(sc.live, res.Took)
	catLoop := func(n *netnstest.Node) time.Duration {
		return waitAll(t, []*netnstest.Node{n}, sharedName+" read whole", fileLimit, func(n *netnstest.Node) error {
			ctx, cancel := context.WithTimeout(t.Context(), callLimit)
			defer cancel()
			r, err := n.Exopeer(ctx, "files", "cat", sharedName)
			if err != nil {
				return err
			}
			if r.Code != 0 {
				return fmt.Errorf("files cat: exit %d: %s", r.Code, r.Stderr)
			}
			if err := sameBytes([]byte(r.Stdout), data); err != nil {
				// A file read whole and wrong is no transient: stop.
				t.Fatalf("node %s: files cat %s: %v", n.Name, sharedName, err)
			}
			return nil
		})
	}
	figures["share: Bob's first device reads the file"] = catLoop(b1).Round(time.Millisecond).String()

	back := time.Now()
	b2 = sc.restart(t, b2)
	catLoop(b2)
	figures["share: Bob's second device, restarted, reads the file"] = time.Since(back).Round(time.Millisecond).String()
	for _, n := range bob.nodes {
		var fs []api.FileView
		runJSON(t, n, &fs, "files", "ls")
		if len(fs) != 1 || fs[0].Name != sharedName || fs[0].Size != int64(len(data)) || fs[0].From != alice.cell || !fs[0].Pinned || fs[0].Held < int64(len(data)) {
			t.Errorf("node %s: files ls: %+v; want %s, %d bytes, from Alice (%s), pinned and held", n.Name, fs, sharedName, len(data), alice.cell)
		}
	}
}

// killWhileSending has alice2 send to Bob through the API and bob1 send
// to Alice, both in a loop (alice2 three at once), kills alice2
// (SIGKILL) once six of its messages and three of bob1's are delivered,
// has bob1 send four more while alice2 is dead, restarts alice2 on its
// data dir, and has it send three more with the CLI. The messages whose
// sends the kill cut are settled by alice2's records: recorded, each
// must arrive, once; not, it never can.
func killWhileSending(t *testing.T, sc *scene, alice, bob *person) {
	book, figures := &sc.book, sc.figures
	a2, b1 := alice.nodes[1], bob.nodes[0]
	sixth, third, killed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var cut []*msg
	delivered := 0
	// The senders' own context: should the step give up before the kill,
	// it ends their sends and waits for them, so that none logs to the
	// step after it has ended (a panic that would hide the failure).
	sends, stopSends := context.WithCancel(t.Context())
	defer stopSends()
	// Three sends at once, so that the kill finds some under way; 12 at
	// most, which keeps the conversation within the inbox's 50.
	for _, line := range []string{"a", "b", "c"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				m := book.addLine(alice, bob, a2, line, "before the kill")
				ctx, cancel := context.WithTimeout(sends, sendLimit)
				v, err := a2.Client.Send(ctx, bob.name, m.text)
				cancel()
				mu.Lock()
				if err != nil {
					m.maybe = true
					cut = append(cut, m)
					mu.Unlock()
					t.Logf("node %s: send %q cut: %v", a2.Name, m.text, err)
					return
				}
				if delivered++; delivered == 6 {
					close(sixth)
				}
				mu.Unlock()
				if v.State != "delivered" {
					t.Errorf("node %s: send %q: %+v", a2.Name, m.text, v)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Up to 10 before the kill (then it waits for it), 4 after.
		before, after := 0, 0
		for i := 0; after < 4; i++ {
			select {
			case <-killed:
				after++
			default:
				if before++; before > 10 {
					select {
					case <-killed:
					case <-sends.Done():
						return
					}
					continue
				}
			}
			if sends.Err() != nil {
				return
			}
			m := book.add(bob, alice, b1, "around the kill")
			ctx, cancel := context.WithTimeout(sends, sendLimit)
			v, err := b1.Client.Send(ctx, alice.name, m.text)
			cancel()
			switch {
			case err == nil && v.State == "delivered":
			case err != nil && strings.Contains(err.Error(), "not delivered"):
				// Recorded: the courier delivers it.
				t.Logf("node %s: send %d recorded, not delivered: %v", b1.Name, i+1, err)
			default:
				t.Errorf("node %s: send %d to Alice while alice2 dies: %+v, %v", b1.Name, i+1, v, err)
			}
			if i == 2 {
				close(third)
			}
		}
	}()
	for _, c := range []chan struct{}{sixth, third} {
		select {
		case <-c:
		case <-time.After(sendLimit):
			stopSends()
			wg.Wait()
			t.Fatalf("sends not delivered within %v", sendLimit)
		}
	}
	err := a2.Kill()
	close(killed)
	if err != nil {
		stopSends()
		wg.Wait()
		t.Fatal(err)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	back := time.Now()
	a2 = sc.restart(t, a2)
	// The cut message: held by alice2 after its restart, it was
	// recorded before the kill, and must arrive.
	held, err := settled(t, cut, a2, bob.name)
	if err != nil {
		t.Fatal(err)
	}
	book.settle(cut, held)
	t.Logf("node %s killed with %d send(s) under way, of which %d recorded", a2.Name, len(cut), len(held))
	for range 3 {
		m := book.add(alice, bob, a2, "after the restart")
		r := run(t, a2, sendLimit, "send", bob.name, m.text)
		if !strings.HasPrefix(r.Stdout, "delivered to Bob ") {
			t.Fatalf("node %s, restarted: exopeer send: %v", a2.Name, r)
		}
	}
	figures["kill: restart to three more delivered"] = time.Since(back).Round(time.Millisecond).String()
}

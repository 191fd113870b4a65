package simnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/cell"
	messages "github.com/exopeer/exopeer/message/service"
	"github.com/exopeer/exopeer/prekey"
)

// TestMessages: two cells of two devices each, contacts of each other.
// A message sent from one device appears exactly once on every device of
// both cells, in the order sent, delivered on the sender's side; both
// directions; a device restarted in between makes one new session for
// its first message (one bundle fetched) and goes on with it; a third cell, no contact of theirs, is refused and
// recorded nowhere; and a capture of every byte written on the links
// during the conversation holds no text and no cell key of either cell.
func TestMessages(t *testing.T) {
	const seed = 131
	dirs := make([]string, 5)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		a0 := addNode(t, ctx, n, NodeConfig{Dir: dirs[0]})
		if _, err := a0.Peer().Cell().Create(ctx, "Alice", "a0"); err != nil {
			fail("Create: %v", err)
		}
		a1 := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{a0}, Dir: dirs[1]})
		join(t, ctx, a0, a1, cell.RoleChain|cell.RoleStore)
		b0 := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{a0}, Dir: dirs[2]})
		if _, err := b0.Peer().Cell().Create(ctx, "Bob", "b0"); err != nil {
			fail("Create: %v", err)
		}
		b1 := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{b0}, Dir: dirs[3]})
		join(t, ctx, b0, b1, cell.RoleChain|cell.RoleStore)
		c0 := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{a0}, Dir: dirs[4]})
		if _, err := c0.Peer().Cell().Create(ctx, "Carol", "c0"); err != nil {
			fail("Create: %v", err)
		}
		waitAlive(t, []*Node{a0, a1}, time.Minute)
		waitAlive(t, []*Node{b0, b1}, time.Minute)

		// Cards of both devices of each cell; each cell adds the other.
		cards := map[*Node]string{}
		for _, admin := range []*Node{a0, b0, c0} {
			if _, err := admin.Peer().Contacts().Card(ctx, ""); err != nil {
				fail("card: %v", err)
			}
		}
		for _, member := range []*Node{a1, b1} {
			if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
				c, err := member.Peer().Contacts().Card(ctx, "")
				if err == nil && c.Devices.Version == 2 {
					cards[member] = c.Text()
				}
				return cards[member] != ""
			}); !ok {
				fail("node %d has no card of its cell with both devices", member.Index)
			}
		}
		if _, err := a0.Peer().Contacts().Add(ctx, cards[b1], "Bob"); err != nil {
			fail("Alice adds Bob: %v", err)
		}
		if _, err := b0.Peer().Contacts().Add(ctx, cards[a1], "Alice"); err != nil {
			fail("Bob adds Alice: %v", err)
		}
		if _, err := c0.Peer().Contacts().Add(ctx, cards[b1], "Bob"); err != nil {
			fail("Carol adds Bob: %v", err)
		}
		// Bob does not add Carol.
		for _, p := range []struct {
			nd   *Node
			name string
		}{{a1, "Bob"}, {b1, "Alice"}} {
			if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
				_, err := p.nd.Peer().Contacts().Get(ctx, p.name)
				return err == nil
			}); !ok {
				fail("node %d does not list %s", p.nd.Index, p.name)
			}
		}

		// The capture, from the first message on.
		var cmu sync.Mutex
		// Which cell each device is in: a cell's members name their cell
		// to each other (chain sync does, inside Noise on a real link);
		// between cells, and on the message protocols, no cell key may
		// show.
		cellOf := map[peer.ID]int{a0.ID: 1, a1.ID: 1, b0.ID: 2, b1.ID: 2, c0.ID: 3}
		var captured, across, onMessages [][]byte
		var protos []protocol.ID
		stop := n.Capture(func(from, to peer.ID, p protocol.ID, b []byte) {
			cmu.Lock()
			defer cmu.Unlock()
			captured = append(captured, b)
			if cellOf[from] != cellOf[to] || p == messages.Protocol || p == prekey.Protocol {
				across = append(across, b)
				protos = append(protos, p)
			}
			if p == messages.Protocol {
				onMessages = append(onMessages, b)
			}
		})
		marker := fmt.Sprintf("marker-%d-", seed)
		send := func(from *Node, to string, i int) string {
			t.Helper()
			text := fmt.Sprintf("%s%02d", marker, i)
			m, err := from.Peer().Messages().Send(ctx, to, text)
			if err != nil || m.State != messages.Delivered {
				fail("node %d sends %q to %s: %+v, %v", from.Index, text, to, m, err)
			}
			time.Sleep(time.Second) // the next message's time is later
			return text
		}
		fetched := func() (sum uint64) {
			for _, nd := range []*Node{a0, a1, b0, b1} {
				st := nd.Peer().Prekeys().Stats()
				sum += st.Direct + st.FromDHT
			}
			return sum
		}
		var want []string
		want = append(want, send(a0, "Bob", 1), send(b1, "Alice", 2), send(a0, "Bob", 3), send(b0, "Alice", 4), send(a1, "Bob", 5))

		// After a restart a0's sessions open messages but seal none
		// (message/service/restore.go: its datastore may be an older
		// copy): its first message makes one new session, the next goes
		// on it.
		if err := n.Crash(a0); err != nil {
			fail("Crash: %v", err)
		}
		if err := n.Restart(ctx, a0); err != nil {
			fail("Restart: %v", err)
		}
		waitAlive(t, []*Node{a0, a1}, time.Minute)
		afterRestart := fetched()
		want = append(want, send(a0, "Bob", 6))
		if got := fetched(); got != afterRestart+1 {
			fail("a restarted device fetched %d bundles for its first message, want 1 (a new session)", got-afterRestart)
		}
		want = append(want, send(a0, "Bob", 7))
		if got := fetched(); got != afterRestart+1 {
			fail("a restarted device fetched %d bundles for two messages, want 1 (one new session)", got-afterRestart)
		}
		stop()

		// Every device of both cells holds the conversation once, in
		// order, delivered.
		for _, p := range []struct {
			nd   *Node
			name string
		}{{a0, "Bob"}, {a1, "Bob"}, {b0, "Alice"}, {b1, "Alice"}} {
			var got []messages.Message
			if _, ok := waitUntil(2*time.Minute, 200*time.Millisecond, func() bool {
				pg, err := p.nd.Peer().Messages().Conversation(ctx, p.name, "", 0)
				got = pg.Messages
				return err == nil && len(got) == len(want) && !slices.ContainsFunc(got, func(m messages.Message) bool { return m.State != messages.Delivered })
			}); !ok {
				fail("node %d holds %d messages, want %d delivered: %+v", p.nd.Index, len(got), len(want), got)
			}
			for i, m := range got {
				if m.Text != want[i] {
					fail("node %d: message %d is %q, want %q", p.nd.Index, i, m.Text, want[i])
				}
			}
		}

		// Carol is no contact of Bob's: refused, recorded in no device of
		// Bob's cell.
		if m, err := c0.Peer().Messages().Send(ctx, "Bob", "from carol"); !errors.Is(err, messages.ErrUnreachable) || m.State != messages.Sent {
			fail("Carol's message: %+v, %v", m, err)
		}
		time.Sleep(10 * time.Second)
		for _, nd := range []*Node{b0, b1} {
			ms, err := nd.Peer().Messages().Latest(ctx, "")
			if err != nil {
				fail("Latest: %v", err)
			}
			if slices.ContainsFunc(ms, func(m messages.Message) bool { return m.Text == "from carol" }) {
				fail("node %d recorded a message of a non-contact", nd.Index)
			}
		}

		// Bob's cell removes b1: the admin signs a list without it, b0's
		// next message carries it to Alice's cell, which drops every
		// session with b1 at once, and from then on b1 cannot send as
		// Bob: nothing it sends is recorded there.
		held := 0
		for _, nd := range []*Node{a0, a1} {
			k, err := nd.Peer().Messages().SessionsWith(ctx, b1.ID)
			if err != nil {
				fail("SessionsWith: %v", err)
			}
			held += k
		}
		if held == 0 {
			fail("no device of Alice's holds a session with b1 before its removal")
		}
		if _, err := b0.Peer().Cell().Remove(ctx, b1.ID, true); err != nil {
			fail("Remove: %v", err)
		}
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			l, err := b0.Peer().Contacts().DeviceList(ctx)
			return err == nil && !l.Has(b1.ID)
		}); !ok {
			fail("b0 did not sign a device list without b1")
		}
		send(b0, "Alice", 7)
		for _, nd := range []*Node{a0, a1} {
			if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
				c, err := nd.Peer().Contacts().Get(ctx, "Bob")
				return err == nil && !c.Devices.Has(b1.ID)
			}); !ok {
				fail("node %d still holds b1 on Bob's list", nd.Index)
			}
		}
		// Within half of messages.SweepEvery: the sweep the newer list set
		// off (a0: the message that carried it; a1: the store's change,
		// through the chain), not the periodic one.
		for _, nd := range []*Node{a0, a1} {
			var k int
			var err error
			if _, ok := waitUntil(messages.SweepEvery/2, 100*time.Millisecond, func() bool {
				k, err = nd.Peer().Messages().SessionsWith(ctx, b1.ID)
				return err == nil && k == 0
			}); !ok {
				fail("node %d holds %d sessions with the removed b1 (%v), want 0", nd.Index, k, err)
			}
		}
		// The list without b1 is of a new epoch: it carries the cell's
		// new mailbox key, and Alice's devices hold it.
		bks, err := b0.Peer().Contacts().MailboxKeys(ctx)
		if err != nil || len(bks) != 2 || !bks[1].Current || bks[0].Until.IsZero() {
			fail("Bob's mailbox keys after the removal: %+v, %v", bks, err)
		}
		for _, nd := range []*Node{a0, a1} {
			c, err := nd.Peer().Contacts().Get(ctx, "Bob")
			if err != nil {
				fail("Get: %v", err)
			}
			if k, err := c.MailboxKey(); err != nil || !k.Equal(bks[1].Private.PublicKey()) || k.Equal(bks[0].Private.PublicKey()) {
				fail("node %d holds Bob's mailbox key %v (%v), not his new epoch's", nd.Index, k, err)
			}
		}
		if _, err := b1.Peer().Messages().Send(ctx, "Alice", "from removed b1"); err == nil {
			fail("a removed device sent as Bob")
		} else {
			t.Logf("the removed device's send: %v", err)
		}
		time.Sleep(10 * time.Second)
		for _, nd := range []*Node{a0, a1} {
			ms, err := nd.Peer().Messages().Latest(ctx, "")
			if err != nil {
				fail("Latest: %v", err)
			}
			if slices.ContainsFunc(ms, func(m messages.Message) bool { return m.Text == "from removed b1" }) {
				fail("node %d recorded a message of a device its contact removed", nd.Index)
			}
		}

		// The capture: no text, no cell key, no mailbox key (they travel
		// in cards and in sealed envelopes only).
		var keys [][]byte
		for _, nd := range []*Node{a0, b0} {
			keys = append(keys, nd.Peer().Cell().Roster().Cell)
			mks, err := nd.Peer().Contacts().MailboxKeys(ctx)
			if err != nil {
				fail("MailboxKeys: %v", err)
			}
			for _, k := range mks {
				keys = append(keys, k.Private.PublicKey().Bytes())
			}
		}
		cmu.Lock()
		defer cmu.Unlock()
		if len(captured) == 0 {
			fail("nothing captured")
		}
		all := bytes.Join(captured, nil)
		if bytes.Contains(all, []byte(marker)) {
			fail("a message's text is in the clear on the links")
		}
		if len(across) == 0 {
			fail("nothing captured between the cells")
		}
		for _, k := range keys {
			for i, b := range across {
				if bytes.Contains(b, k) {
					fail("a cell key or mailbox key is in the clear on %s", protos[i])
				}
			}
		}
		// No device's identity X25519 key either: an initial header seals
		// it (its bundle, a public record under its peer ID, carries it).
		if len(onMessages) == 0 {
			fail("nothing captured on the message protocol")
		}
		for _, nd := range []*Node{a0, a1, b0, b1} {
			ik := nd.Peer().Prekeys().Bundle().Identity
			for _, b := range onMessages {
				if bytes.Contains(b, ik[:]) {
					fail("node %d's identity X25519 key is in the clear on %s", nd.Index, messages.Protocol)
				}
			}
		}
		t.Logf("seed %d: %d messages, %d bytes captured, %d writes between the cells or on the message protocols", seed, len(want), len(all), len(across))
	})
}

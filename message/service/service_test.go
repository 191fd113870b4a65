package service

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/message"
	"github.com/exopeer/exopeer/ratchet"
)

// device is one device of a one-device cell, with fakes for the node's
// other parts.
type device struct {
	name  string
	h     host.Host
	key   crypto.PrivKey
	ds    ds.Batching
	fault *faultyDS // d.ds as the service sees it
	cell  ed25519.PrivateKey
	list  *contact.DeviceList
	cons  *fakeContacts
	store *fakeStore
	prek  *fakePrekeys
	svc   *Service
	seed  uint64
	clock *atomic.Int64
	// now, if set, is the service's clock instead of clock's.
	now func() time.Time
	// maxIn is the service's Config.MaxFramesIn (0: the default).
	maxIn int
	// mailbox is the member of d's cell with the mailbox role, if any.
	mailbox peer.ID
	// keepRun, if set, has start keep the run of the service it
	// replaces, as if the disk were known current (restore.go): what a
	// reload after an eviction does within a run, which the tests of the
	// state on disk check across a restart.
	keepRun bool
	// files is the service's Options.Files at start (nil: none).
	files Files
	// mdht and mkeys are the service's blind mailboxes (nil: none).
	mdht  MailboxDHT
	mkeys MailboxKeys
	// backoff is the service's Config.CourierBackoff: a day unless the
	// test is the courier's (onClock), since d's clock, a second further
	// at each read, would make the courier's retries come at random.
	backoff time.Duration
	// tune, if set, changes the service's Config before each start.
	tune func(*Config)
}

// newDevices makes one device per name, each in a cell of its own, all
// connected on a mock network.
func newDevices(t *testing.T, names ...string) []*device {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	dir := map[peer.ID]*fakePrekeys{}
	var devs []*device
	clock := new(atomic.Int64) // one clock, a second further at each read
	clock.Store(1_790_000_000)
	for i, name := range names {
		seed := make([]byte, 32)
		seed[0], seed[1] = byte(i+1), 0xd0
		edk := ed25519.NewKeyFromSeed(seed)
		key, err := crypto.UnmarshalEd25519PrivateKey(edk)
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(key, ma.StringCast("/ip4/127.0.0.1/tcp/"+string(rune('0'+i))+"000"))
		if err != nil {
			t.Fatal(err)
		}
		seed[1] = 0xce
		cellKey := ed25519.NewKeyFromSeed(seed)
		list := contact.NewDeviceList(cellKey.Public().(ed25519.PublicKey), 1, []peer.ID{h.ID()})
		if err := list.Sign(cellKey); err != nil {
			t.Fatal(err)
		}
		r := rand.NewChaCha8([32]byte{byte(i), 1})
		keys, err := ratchet.NewPrekeys(r, 1_790_000_000)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.Replenish(r, 10); err != nil {
			t.Fatal(err)
		}
		d := &device{
			name: name, h: h, key: key, ds: dssync.MutexWrap(ds.NewMapDatastore()), cell: cellKey, list: list,
			cons: &fakeContacts{own: list}, store: newFakeStore(),
			prek: &fakePrekeys{keys: keys, signer: edk, dir: dir}, seed: uint64(i) << 32, clock: clock,
			backoff: 24 * time.Hour,
		}
		d.fault = &faultyDS{Datastore: d.ds}
		dir[h.ID()] = d.prek
		devs = append(devs, d)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		d.start(t)
	}
	return devs
}

// start (re)starts d's service on its datastore, as a node restart does.
func (d *device) start(t *testing.T) {
	t.Helper()
	d.seed++
	now := d.now
	if now == nil {
		now = func() time.Time { return time.Unix(d.clock.Add(1), 0) }
	}
	cfg := Config{
		Rand:           rand.NewChaCha8([32]byte{byte(d.seed), byte(d.seed >> 32), 2}),
		Now:            now,
		MaxFramesIn:    d.maxIn,
		CourierBackoff: d.backoff,
	}
	if d.tune != nil {
		d.tune(&cfg)
	}
	svc, err := New(Options{
		Host: d.h, Key: d.key, Datastore: d.fault, Cell: fakeCell{key: d.cell.Public().(ed25519.PublicKey), mailbox: d.mailbox},
		Contacts: d.cons, Prekeys: d.prek, Store: d.store, Mailbox: d.mdht, MailboxKeys: d.mkeys, Files: d.files, Config: cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.keepRun && d.svc != nil {
		svc.run = d.svc.run
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	d.svc = svc
	t.Cleanup(func() { _ = svc.Close() })
}

// befriend makes b a contact of a under name.
func (a *device) befriend(name string, b *device) { a.cons.add(name, b.list) }

// TestConversation: messages both ways are recorded once in each cell,
// in order, delivered on the sender's side; later messages use the
// session (no new bundle fetched); after a restart the first message
// makes one new session (restore.go), the next use it; a corrupt
// stored session is dropped for a new handshake; a stranger's message
// is refused and recorded nowhere; a text over the cap is refused
// before anything is recorded.
func TestConversation(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "mallory")
	alice, bob, mallory := devs[0], devs[1], devs[2]
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	mallory.befriend("Bob", bob) // Bob does not know Mallory
	ctx := t.Context()

	send := func(from *device, to, text string) Message {
		t.Helper()
		m, err := from.svc.Send(ctx, to, text)
		if err != nil {
			t.Fatalf("%s sends %q: %v", from.name, text, err)
		}
		if m.State != Delivered {
			t.Fatalf("%s sends %q: state %s", from.name, text, m.State)
		}
		return m
	}
	send(alice, "Bob", "hello 1")
	send(bob, "Alice", "hello 2")
	send(alice, "Bob", "hello 3")
	if n := alice.prek.fetches() + bob.prek.fetches(); n != 1 {
		t.Fatalf("%d bundles fetched for three messages, want 1 (one handshake)", n)
	}
	// After a restart the sessions on disk open messages but seal none
	// (restore.go): alice's first message makes one handshake, and Bob's
	// reply goes on the new session.
	_ = alice.svc.Close()
	alice.start(t)
	send(alice, "Bob", "hello 4")
	send(bob, "Alice", "hello 5")
	if n := alice.prek.fetches() + bob.prek.fetches(); n != 2 {
		t.Fatalf("%d bundles fetched after a restart, want 2 (one new session)", n)
	}
	want := []string{"hello 1", "hello 2", "hello 3", "hello 4", "hello 5"}
	for _, d := range []*device{alice, bob} {
		ms := d.store.messages()
		if got := texts(ms); !slices.Equal(got, want) {
			t.Fatalf("%s holds %q, want %q", d.name, got, want)
		}
		for _, m := range ms {
			if m.State != Delivered {
				t.Fatalf("%s holds %q in state %s", d.name, m.Text, m.State)
			}
			out := m.Cell == hexKey(d.cell.Public().(ed25519.PublicKey))
			if (m.Direction == Out) != out {
				t.Fatalf("%s holds %q as %s", d.name, m.Text, m.Direction)
			}
		}
	}
	page, err := bob.svc.Conversation(ctx, "Alice", "", 0)
	if err != nil || !slices.Equal(texts(page.Messages), want) {
		t.Fatalf("Bob's conversation with Alice: %q, %v", texts(page.Messages), err)
	}

	// A corrupt stored session (read when the service starts again: it
	// keeps the sessions in memory, the datastore written by it only):
	// dropped, a new handshake, delivered.
	_ = alice.svc.Close()
	if err := alice.ds.Put(ctx, sessionKey(bob.h.ID()), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	alice.keepRun = true // the handshake is the corrupt session's
	alice.start(t)
	send(alice, "Bob", "hello 6")
	if n := alice.prek.fetches(); n != 3 {
		t.Fatalf("alice fetched %d bundles, want 3 (a new handshake after the corrupt session)", n)
	}
	// Bob's old session is still there beside the new one; his reply
	// goes on the new one, and Alice opens it.
	send(bob, "Alice", "hello 7")

	// Mallory is not Bob's contact: refused, recorded nowhere on Bob's
	// side (only as sent on hers).
	before := bob.store.puts
	m, err := mallory.svc.Send(ctx, "Bob", "buy now")
	if !errors.Is(err, ErrUnreachable) || m.State != Sent {
		t.Fatalf("Mallory's message: %+v, %v; want ErrUnreachable, state sent", m, err)
	}
	if bob.store.puts != before || slices.Contains(texts(bob.store.messages()), "buy now") {
		t.Fatal("Bob recorded a stranger's message")
	}
	if got := texts(mallory.store.messages()); !slices.Equal(got, []string{"buy now"}) {
		t.Fatalf("Mallory holds %q", got)
	}
	// Too long: nothing recorded.
	before = alice.store.puts
	if _, err := alice.svc.Send(ctx, "Bob", strings.Repeat("x", 4097)); err == nil || alice.store.puts != before {
		t.Fatalf("a text over the cap: %v, %d writes", err, alice.store.puts-before)
	}
	if _, err := alice.svc.Send(ctx, "Carol", "hi"); err == nil {
		t.Fatal("a message to no contact was sent")
	}
}

// TestRemovedDevice: once a device of the contact's cell is off the
// contact's newer device list (learnt from a message of another of its
// devices), it can no longer send as the contact: refused, recorded
// nowhere on the receiving side. An older list a message carries is
// refused.
func TestRemovedDevice(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "bob2")
	alice, bob, bob2 := devs[0], devs[1], devs[2]
	ctx := t.Context()
	// bob and bob2 are one cell: bob's key; version 2 names both.
	bob2.cell = bob.cell
	pub := bob.cell.Public().(ed25519.PublicKey)
	both := contact.NewDeviceList(pub, 2, []peer.ID{bob.h.ID(), bob2.h.ID()})
	onlyBob := contact.NewDeviceList(pub, 3, []peer.ID{bob.h.ID()})
	for _, l := range []*contact.DeviceList{both, onlyBob} {
		if err := l.Sign(bob.cell); err != nil {
			t.Fatal(err)
		}
	}
	bob.list, bob2.list = both, both
	bob.cons.own, bob2.cons.own = both, both
	for _, d := range []*device{bob, bob2} {
		_ = d.svc.Close()
		d.start(t)
		d.befriend("Alice", alice)
	}
	alice.befriend("Bob", bob)
	if _, err := bob2.svc.Send(ctx, "Alice", "from bob2"); err != nil {
		t.Fatalf("bob2 sends: %v", err)
	}
	// Bob's cell drops bob2: bob's next message carries the list.
	bob.cons.mu.Lock()
	bob.cons.own = onlyBob
	bob.cons.mu.Unlock()
	if _, err := bob.svc.Send(ctx, "Alice", "bob2 is gone"); err != nil {
		t.Fatalf("bob sends: %v", err)
	}
	if c, _ := alice.cons.Get(ctx, "Bob"); c.Devices.Version != 3 || c.Devices.Has(bob2.h.ID()) {
		t.Fatalf("alice holds Bob's list version %d, devices %v", c.Devices.Version, c.Devices.Devices)
	}
	if _, err := bob2.svc.Send(ctx, "Alice", "still me"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("bob2 sends after its removal: %v, want ErrUnreachable", err)
	}
	if got := texts(alice.store.messages()); !slices.Equal(got, []string{"from bob2", "bob2 is gone"}) {
		t.Fatalf("alice holds %q", got)
	}
	// bob's store lags behind its cell: bob holds and sends the older list
	// again. bob is on the list Alice holds, so its message stands; the
	// older list is not taken.
	bob.cons.mu.Lock()
	bob.cons.own = both
	bob.cons.mu.Unlock()
	_ = bob.svc.Close()
	_ = bob.ds.Delete(ctx, sessionKey(alice.h.ID())) // so that the list goes along again
	bob.start(t)
	if _, err := bob.svc.Send(ctx, "Alice", "old list"); err != nil {
		t.Fatalf("a current device sending an older list: %v, want delivered", err)
	}
	if got := texts(alice.store.messages()); !slices.Equal(got, []string{"from bob2", "bob2 is gone", "old list"}) {
		t.Fatalf("alice holds %q", got)
	}
	if c, _ := alice.cons.Get(ctx, "Bob"); c.Devices.Version != 3 || c.Devices.Has(bob2.h.ID()) {
		t.Fatalf("an older list came back: alice holds Bob's list version %d, devices %v", c.Devices.Version, c.Devices.Devices)
	}
	if _, err := bob2.svc.Send(ctx, "Alice", "still me, again"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("bob2 sends after its removal, with the older list on its side: %v, want ErrUnreachable", err)
	}
}

// TestExactlyOnce: a message delivered again (its acknowledgement lost:
// the sender tries again, under a new message key) and delivered to two
// devices of the recipient's cell is one entity in that cell, written
// once, and acknowledged each time.
func TestExactlyOnce(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "bob2")
	alice, bob, bob2 := devs[0], devs[1], devs[2]
	ctx := t.Context()
	// bob and bob2: one cell, one store.
	bob2.cell, bob2.store = bob.cell, bob.store
	pub := bob.cell.Public().(ed25519.PublicKey)
	both := contact.NewDeviceList(pub, 2, []peer.ID{bob.h.ID(), bob2.h.ID()})
	if err := both.Sign(bob.cell); err != nil {
		t.Fatal(err)
	}
	bob.list, bob2.list = both, both
	for _, d := range []*device{bob, bob2} {
		d.cons.own = both
		_ = d.svc.Close()
		d.start(t)
		d.befriend("Alice", alice)
	}
	alice.befriend("Bob", bob)

	m, err := alice.svc.Send(ctx, "Bob", "once")
	if err != nil {
		t.Fatal(err)
	}
	env := &message.Envelope{Cell: alice.cell.Public().(ed25519.PublicKey), To: bob.cell.Public().(ed25519.PublicKey), Device: alice.h.ID(), Text: "once"}
	id, err := message.ParseID(m.ID)
	if err != nil {
		t.Fatal(err)
	}
	env.ID = id
	env.Sent = m.Sent.UnixMilli()
	_, _ = fmt.Sscanf(m.Order[len(m.Order)-16:], "%x", &env.Seq)
	puts := bob.store.puts
	for _, to := range []*device{bob, bob, bob2, bob2} {
		if err := alice.svc.deliver(ctx, to.h.ID(), env, nil, func() error { return nil }); err != nil {
			t.Fatalf("delivered again to %s: %v", to.name, err)
		}
	}
	if bob.store.puts != puts {
		t.Fatalf("%d more writes in Bob's cell for a message held", bob.store.puts-puts)
	}
	ms := bob.store.messages()
	if len(ms) != 1 || ms[0].ID != m.ID || ms[0].Order != m.Order {
		t.Fatalf("Bob's cell holds %+v", ms)
	}
}

// TestDeviceOnTwoLists: a cell may sign a list naming any peer ID, so a
// device can be on the lists of two contacts. Mallory's list names Bob's
// device; Bob's messages to Alice, who has both as contacts (Mallory
// first), are still delivered and recorded in the conversation with Bob.
func TestDeviceOnTwoLists(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "mallory")
	alice, bob, mallory := devs[0], devs[1], devs[2]
	ctx := t.Context()
	pub := mallory.cell.Public().(ed25519.PublicKey)
	claim := contact.NewDeviceList(pub, 2, []peer.ID{mallory.h.ID(), bob.h.ID()})
	if err := claim.Sign(mallory.cell); err != nil {
		t.Fatal(err)
	}
	alice.befriend("Mallory", &device{list: claim})
	alice.befriend("Bob", bob)
	bob.befriend("Alice", alice)
	m, err := bob.svc.Send(ctx, "Alice", "from bob")
	if err != nil || m.State != Delivered {
		t.Fatalf("bob sends: %+v, %v; want delivered", m, err)
	}
	ms := alice.store.messages()
	if len(ms) != 1 || ms[0].Conversation != hexKey(bob.cell.Public().(ed25519.PublicKey)) {
		t.Fatalf("alice holds %+v, want bob's message in the conversation with Bob", ms)
	}
}

// TestMessageForAnotherCell: Mallory's list names Bob's device, so
// Alice's message to Mallory goes to it; Bob, whose contact Alice is,
// must not record it as Alice's message to him (the envelope names the
// cell it is for).
func TestMessageForAnotherCell(t *testing.T) {
	devs := newDevices(t, "alice", "bob", "mallory")
	alice, bob, mallory := devs[0], devs[1], devs[2]
	ctx := t.Context()
	claim := contact.NewDeviceList(mallory.cell.Public().(ed25519.PublicKey), 2, []peer.ID{bob.h.ID()})
	if err := claim.Sign(mallory.cell); err != nil {
		t.Fatal(err)
	}
	alice.befriend("Bob", bob)
	alice.befriend("Mallory", &device{list: claim})
	bob.befriend("Alice", alice)
	if _, err := alice.svc.Send(ctx, "Mallory", "for Mallory only"); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("alice sends to Mallory through Bob's device: %v, want ErrUnreachable", err)
	}
	if got := texts(bob.store.messages()); len(got) != 0 {
		t.Fatalf("bob recorded %q, meant for another cell", got)
	}
}

package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
)

// rzLog records discovery's rendezvous calls.
type rzLog struct {
	mu    sync.Mutex
	calls []string
}

func (r *rzLog) Rendezvous(s []byte)     { r.add("+" + string(s)) }
func (r *rzLog) StopRendezvous(s []byte) { r.add("-" + string(s)) }
func (r *rzLog) add(c string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

// sent records broadcasts.
type sent struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (s *sent) broadcast(topic string, msg []byte) error {
	if topic != windowTopic {
		panic("topic " + topic)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, msg)
	return nil
}

func (s *sent) all() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs
}

// clock is a settable now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var (
	cellInvite    = []byte("exopeer invite v1\x00\x01\x02")
	contactInvite = []byte("exopeer contact invite v1\x00\x00\x09")
)

// TestInvWindowsAnnounce: the rendezvous of invites (cell and contact)
// opens the node's window, announced signed once while any is advertised;
// withdrawing the last closes it; other rendezvous open nothing, every
// call still reaches discovery. A node that does not announce (simnet)
// sends nothing.
func TestInvWindowsAnnounce(t *testing.T) {
	rz, out, clk := &rzLog{}, &sent{}, &clock{t: time.Unix(1_800_000_000, 0)}
	self := seedID(t, 2)
	w, err := newInvWindows(rz, nil, seedKeyF(t, 2), clk.now, true, out.broadcast, func(peer.ID) bool { return true }, nil)
	if err != nil {
		t.Fatal(err)
	}
	// step runs what Run does on a poke; false: none was pending.
	step := func() bool {
		select {
		case <-w.poke:
			w.send(t.Context())
			return true
		default:
			return false
		}
	}
	w.Rendezvous([]byte("cell rendezvous"))
	if step() || len(out.all()) != 0 {
		t.Fatal("a window announced for a non-invite rendezvous")
	}
	w.Rendezvous(cellInvite)
	w.Rendezvous(contactInvite)
	step()
	step()
	msgs := out.all()
	if len(msgs) != 1 {
		t.Fatalf("%d announces for two invites opened, want 1", len(msgs))
	}
	open, err := openWindow(msgs[0])
	if err != nil || open.member != self || !open.until.Equal(clk.now().Add(windowLease)) {
		t.Fatalf("announce %+v, %v: want A's window until now+windowLease", open, err)
	}
	if string(w.LocalState()) != string(msgs[0]) {
		t.Error("push/pull state is not the last announce")
	}
	w.StopRendezvous(cellInvite)
	if step() || len(out.all()) != 1 {
		t.Fatal("announced with an invite still open")
	}
	w.StopRendezvous(contactInvite)
	if !step() {
		t.Fatal("no announce asked after the last invite ended")
	}
	msgs = out.all()
	if len(msgs) != 2 {
		t.Fatalf("%d announces after the last invite ended, want 2", len(msgs))
	}
	closed, err := openWindow(msgs[1])
	if err != nil || closed.until.After(closed.issued) || !closed.issued.After(open.issued) {
		t.Fatalf("close %+v, %v: want a newer closed window", closed, err)
	}
	w.StopRendezvous(contactInvite) // again: nothing more
	if step() {
		t.Fatal("announce asked after a second withdrawal")
	}
	want := []string{"+cell rendezvous", "+" + string(cellInvite), "+" + string(contactInvite), "-" + string(cellInvite), "-" + string(contactInvite), "-" + string(contactInvite)}
	if strings.Join(rz.calls, "|") != strings.Join(want, "|") {
		t.Errorf("discovery got %q, want %q", rz.calls, want)
	}

	quiet := &sent{}
	q, err := newInvWindows(&rzLog{}, nil, seedKeyF(t, 3), clk.now, false, quiet.broadcast, func(peer.ID) bool { return true }, nil)
	if err != nil {
		t.Fatal(err)
	}
	q.Rendezvous(cellInvite)
	<-q.poke
	q.send(t.Context())
	if len(quiet.all()) != 0 {
		t.Error("a node that does not announce announced")
	}
}

// TestInvWindowsClockSetBack: a node restarted with its clock an hour
// behind still announces windows newer than its last before the restart
// (it keeps its last issued time in its store), so a relay that took the
// old one takes the new one. Before, the relay ignored the node's
// announces until its clock passed the old one. A stored value that is
// not 8 bytes is ignored and overwritten.
func TestInvWindowsClockSetBack(t *testing.T) {
	store := dssync.MutexWrap(ds.NewMapDatastore())
	t0 := time.Unix(1_800_000_000, 0)
	announce := func(at time.Time) windowMsg {
		t.Helper()
		out := &sent{}
		w, err := newInvWindows(&rzLog{}, store, seedKeyF(t, 2), func() time.Time { return at }, true, out.broadcast, func(peer.ID) bool { return true }, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Rendezvous(cellInvite)
		<-w.poke
		w.send(t.Context())
		if len(out.all()) != 1 {
			t.Fatalf("%d announces, want 1", len(out.all()))
		}
		m, err := openWindow(out.all()[0])
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	var relay windowTable
	all := func(peer.ID) bool { return true }
	before := announce(t0)
	if !relay.put(before, t0, all) {
		t.Fatal("first announce not taken")
	}
	after := announce(t0.Add(-time.Hour)) // restarted, the clock set back
	if !relay.put(after, t0.Add(time.Minute), all) {
		t.Fatalf("announce after a restart with the clock set back (issued %v, before %v) not taken", after.issued, before.issued)
	}
	if after.until.Sub(after.issued) != windowLease {
		t.Fatalf("window of %v, want its lease", after.until.Sub(after.issued))
	}
	if err := store.Put(t.Context(), windowIssuedKey, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if m := announce(t0.Add(2 * time.Hour)); !m.issued.Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("issued %v with a bad stored value, want the clock's %v", m.issued, t0.Add(2*time.Hour))
	}
	if last, err := loadIssued(t.Context(), store); err != nil || !last.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("stored %v, %v: want the last announce's issued", last, err)
	}
}

// TestRelayInviteWindow (real hosts on loopback): R runs the relay for
// members R, A and B; A reserves a slot. Stranger D (a joiner) is refused
// a circuit to A until A's window reaches R through its gossip handler,
// then reaches A; the window does not admit D to member B nor let D
// reserve; a window announced by someone else than A, A's window once
// closed and once expired all refuse D; a former member's window too.
func TestRelayInviteWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	hr, ha, hb, hd := loopbackHost(t, 1), loopbackHost(t, 2), loopbackHost(t, 3), loopbackHost(t, 4)
	members := &memberSet{m: map[peer.ID]bool{hr.ID(): true, ha.ID(): true, hb.ID(): true}}
	clk := &clock{t: time.Now()}
	wr, err := newInvWindows(&rzLog{}, nil, seedKeyF(t, 1), clk.now, true, (&sent{}).broadcast, members.has, nil)
	if err != nil {
		t.Fatal(err)
	}
	acl := relayACL{self: hr.ID(), member: members.has, contactDevice: noContact, window: wr.admit}
	startRelay(ctx, t, hr, acl)
	for _, h := range []host.Host{ha, hb} {
		h.SetStreamHandler(echoProto, func(s network.Stream) {
			defer s.Close()
			if _, err := io.Copy(s, s); err != nil {
				s.Reset()
			}
		})
	}
	rinfo := peer.AddrInfo{ID: hr.ID(), Addrs: hr.Addrs()}
	for _, h := range []host.Host{ha, hb} {
		if _, err := client.Reserve(ctx, h, rinfo); err != nil {
			t.Fatalf("member's reservation: %v", err)
		}
	}
	// dial is D's dial to dest through R only (not the direct addresses
	// identify told D), with no backoff left from the previous refusal.
	dial := func(dest peer.ID) error {
		hd.Network().(*swarm.Swarm).Backoff().Clear(dest)
		hd.Peerstore().ClearAddrs(dest)
		return hd.Connect(ctx, circuitTo(t, hr, dest))
	}
	refused := func(what string, dest peer.ID) {
		t.Helper()
		err := dial(dest)
		if err == nil || !strings.Contains(err.Error(), pbv2.Status_PERMISSION_DENIED.String()) {
			t.Fatalf("%s: %v, want PERMISSION_DENIED", what, err)
		}
	}
	// A's window, announced by A (member A's key), and the forgery.
	announce := func(key byte, member peer.ID, issued, until time.Time) {
		t.Helper()
		msg, err := signWindow(seedKeyF(t, key), windowMsg{member: member, issued: issued, until: until})
		if err != nil {
			t.Fatal(err)
		}
		wr.HandleMessage(msg)
	}
	t0 := clk.now()
	announce(4, hd.ID(), t0, t0.Add(windowLease)) // D is no member
	announce(1, hr.ID(), t0, t0.Add(windowLease)) // nor the relay itself
	if n := wr.tab.len(); n != 0 {
		t.Fatalf("%d windows kept from a stranger and the relay itself, want 0", n)
	}
	refused("no window", ha.ID())
	announce(3, ha.ID(), t0, t0.Add(windowLease)) // B signs a window for A
	refused("window for A signed by B", ha.ID())

	announce(2, ha.ID(), t0, t0.Add(windowLease))
	if err := dial(ha.ID()); err != nil {
		t.Fatalf("stranger through A's open window: %v", err)
	}
	got, err := echo(ctx, hd, ha.ID(), []byte("join me"))
	if err != nil || string(got) != "join me" {
		t.Fatalf("echo through A's window: %q, %v", got, err)
	}
	refused("A's window, to member B", hb.ID())
	_, err = client.Reserve(ctx, hd, rinfo)
	var rerr client.ReservationError
	if !errors.As(err, &rerr) || rerr.Status != pbv2.Status_PERMISSION_DENIED {
		t.Fatalf("stranger's reservation during a window: %v, want PERMISSION_DENIED", err)
	}

	// A closes its window (its invite used): new circuits refused.
	if err := hd.Network().ClosePeer(ha.ID()); err != nil {
		t.Fatal(err)
	}
	announce(2, ha.ID(), t0.Add(time.Second), t0.Add(time.Second))
	refused("A's closed window", ha.ID())

	// Reopened, then past its end.
	announce(2, ha.ID(), t0.Add(2*time.Second), t0.Add(windowLease))
	clk.set(t0.Add(windowLease))
	refused("A's expired window", ha.ID())

	// Reopened, then A leaves the cell.
	announce(2, ha.ID(), t0.Add(3*time.Second), t0.Add(2*windowLease))
	members.set(ha.ID(), false)
	refused("a former member's window", ha.ID())
}

// FuzzLoadIssued: whatever the store holds under windowIssuedKey, the
// read gives a time or an error, never a panic.
func FuzzLoadIssued(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		store := ds.NewMapDatastore()
		if err := store.Put(t.Context(), windowIssuedKey, b); err != nil {
			t.Fatal(err)
		}
		_, err := loadIssued(t.Context(), store)
		if (err == nil) != (len(b) == 8) {
			t.Fatalf("%d bytes: err %v", len(b), err)
		}
	})
}

// failingGet is a datastore whose Get fails while fail is set.
type failingGet struct {
	ds.Datastore
	fail bool
}

func (f *failingGet) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	if f.fail {
		return nil, errors.New("disk busy")
	}
	return f.Datastore.Get(ctx, k)
}

// TestInvWindowsIssuedReadRetried: a read of the stored issued time that
// fails (not a wrong value) is tried again at the next announce, so that
// after a clock set back the node's announces come after its last one
// again once the store answers.
func TestInvWindowsIssuedReadRetried(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	store := &failingGet{Datastore: dssync.MutexWrap(ds.NewMapDatastore()), fail: true}
	if err := store.Put(t.Context(), windowIssuedKey, binary.BigEndian.AppendUint64(nil, uint64(t0.UnixNano()))); err != nil {
		t.Fatal(err)
	}
	out := &sent{}
	now := t0.Add(-time.Hour) // restarted, the clock set back
	w, err := newInvWindows(&rzLog{}, store, seedKeyF(t, 2), func() time.Time { return now }, true, out.broadcast, func(peer.ID) bool { return true }, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Rendezvous(cellInvite)
	<-w.poke
	w.send(t.Context()) // the read fails: issued is the clock's
	store.fail = false
	w.send(t.Context())
	all := out.all()
	if len(all) != 2 {
		t.Fatalf("%d announces, want 2", len(all))
	}
	m, err := openWindow(all[1])
	if err != nil {
		t.Fatal(err)
	}
	if !m.issued.After(t0) {
		t.Fatalf("second announce issued %v, not after the stored %v: the failed read was not tried again", m.issued, t0)
	}
}

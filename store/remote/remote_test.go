package remote

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/internal/leaktest"
	"github.com/exopeer/exopeer/store"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// newHost returns a libp2p host on loopback TCP only, closed at cleanup.
func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("closing host: %v", err)
		}
	})
	return h
}

// introduce lets a dial b.
func introduce(a, b host.Host) { a.Peerstore().AddAddrs(b.ID(), b.Addrs(), time.Hour) }

// rig is a store member serving b and a client host that knows it.
type rig struct {
	b      *stateBackend
	srv    *Server
	member host.Host
	ch     host.Host
	c      *Client
	allow  *allowList
}

type allowList struct {
	mu  sync.Mutex
	ids map[peer.ID]bool
}

func (a *allowList) set(p peer.ID, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ids[p] = ok
}

func (a *allowList) allow(p peer.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ids[p]
}

func newRig(t *testing.T, cfg Config, b Backend) *rig {
	t.Helper()
	sb, _ := b.(*stateBackend)
	if b == nil {
		sb = newStateBackend()
		b = sb
	}
	r := &rig{b: sb, member: newHost(t), ch: newHost(t), allow: &allowList{ids: map[peer.ID]bool{}}}
	r.allow.set(r.ch.ID(), true)
	srv, err := NewServerConfig(r.member, b, r.allow.allow, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if sb != nil {
			sb.wg.Wait()
		}
	})
	r.srv = srv
	introduce(r.ch, r.member)
	r.c = NewClient(r.ch)
	return r
}

// otherClient returns a client on a new host that knows the rig's member
// and that allow accepts.
func (r *rig) otherClient(t *testing.T) (*Client, host.Host) {
	h := newHost(t)
	introduce(h, r.member)
	r.allow.set(h.ID(), true)
	return NewClient(h), h
}

func id(b byte) store.EntityID {
	var e store.EntityID
	e[0], e[15] = b, 0xee
	return e
}

var cmpOpts = cmp.Options{cmpopts.EquateEmpty()}

// sameErr checks that a remote error is the local one: same sentinel,
// same message.
func sameErr(t *testing.T, what string, remote, local error, sentinel error) {
	t.Helper()
	if local == nil || !errors.Is(local, sentinel) {
		t.Fatalf("%s: local error %v is not %v", what, local, sentinel)
	}
	if !errors.Is(remote, sentinel) || remote.Error() != local.Error() {
		t.Fatalf("%s: remote error %q, want %q (errors.Is %v: %v)", what, remote, local, sentinel, errors.Is(remote, sentinel))
	}
}

func TestGetAndQueryAnswerAsTheBackend(t *testing.T) {
	r := newRig(t, Config{}, nil)
	for i := range byte(12) {
		tags := []string{"even"}
		if i%2 == 1 {
			tags = []string{"odd", fmt.Sprintf("n%d", i)}
		}
		r.b.put(id(i+1), "exo.note", fmt.Sprintf("note <%d> & \"quoted\"", i), tags...)
	}
	r.b.apply(store.PutTrait(id(1), store.Trait{Type: "x.other", ID: "o", Doc: []byte(`{ "a" :1 }`), Created: testTime, Modified: testTime}))
	ctx := t.Context()
	p := r.member.ID()

	for _, traits := range [][]string{nil, {}, {"x.other"}, {"exo.note", "x.other"}} {
		got, err := r.c.Get(ctx, p, id(1), traits)
		if err != nil {
			t.Fatalf("Get %v: %v", traits, err)
		}
		want, _ := r.b.Get(ctx, id(1), traits)
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Fatalf("Get %v (-local +remote):\n%s", traits, diff)
		}
		for i := range got.Traits {
			if string(got.Traits[i].Doc) != string(want.Traits[i].Doc) {
				t.Fatalf("document %q crossed as %q", want.Traits[i].Doc, got.Traits[i].Doc)
			}
		}
	}
	_, err := r.c.Get(ctx, p, id(99), nil)
	_, lerr := r.b.Get(ctx, id(99), nil)
	sameErr(t, "Get of no entity", err, lerr, store.ErrNotFound)

	queries := []store.Query{
		{},
		{Type: "exo.note", Limit: 5},
		{Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "odd"}}, Limit: 2},
		{Where: []store.Predicate{{Field: "tags", Op: store.Prefix, Value: "n1"}}, Traits: []string{}},
		{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "none"}}},
	}
	for _, q := range queries {
		// Page through, following the cursor, as the local backend does.
		for page := 0; ; page++ {
			got, err := r.c.Query(ctx, p, q)
			if err != nil {
				t.Fatalf("Query %+v: %v", q, err)
			}
			want, _ := r.b.Query(ctx, q)
			if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
				t.Fatalf("Query %+v page %d (-local +remote):\n%s", q, page, diff)
			}
			if q.Traits != nil && len(q.Traits) == 0 {
				for _, h := range got.Hits {
					if h.Entity.Traits == nil || len(h.Entity.Traits) != 0 {
						t.Fatalf("projection [] returned traits %v", h.Entity.Traits)
					}
				}
			}
			if got.Next == "" {
				break
			}
			q.After = got.Next
		}
	}

	bad := []struct {
		name string
		q    store.Query
	}{
		{"unknown field", store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "nope", Op: store.Eq, Value: "1"}}}},
		{"limit", store.Query{Limit: store.MaxLimit + 1}},
		{"cursor", store.Query{After: "not a cursor"}},
	}
	for _, tt := range bad {
		_, err := r.c.Query(ctx, p, tt.q)
		_, lerr := r.b.Query(ctx, tt.q)
		sameErr(t, "Query with a bad "+tt.name, err, lerr, store.ErrQuery)
		_, err = r.c.Watch(ctx, p, tt.q)
		_, lerr = r.b.Watch(ctx, tt.q)
		sameErr(t, "Watch with a bad "+tt.name, err, lerr, store.ErrQuery)
	}

	// What the wire cannot carry is the query's fault, refused before
	// anything is sent.
	_, err = r.c.Query(ctx, p, store.Query{Traits: make([]string, MaxTraits+1)})
	if !errors.Is(err, store.ErrQuery) {
		t.Fatalf("Query projecting %d traits: %v, want ErrQuery", MaxTraits+1, err)
	}
	_, err = r.c.Query(ctx, p, store.Query{After: string(make([]byte, MaxCursor+1))})
	if !errors.Is(err, store.ErrQuery) {
		t.Fatalf("Query with a cursor over %d: %v, want ErrQuery", MaxCursor, err)
	}
	if s, w := r.srv.Bounds(); s != 0 || w != 0 {
		// Every answer is read whole before Query returns, and the server
		// releases its stream before closing it; a stream's slot can
		// outlive the answer only by the close handshake.
		waitBounds(t, r.srv, 0, 0)
	}
}

// waitBounds waits until the server counts streams and watches open.
func waitBounds(t *testing.T, s *Server, streams, watches int) {
	t.Helper()
	for i := 0; ; i++ {
		gs, gw := s.Bounds()
		if gs == streams && gw == watches {
			return
		}
		if i == 2000 {
			t.Fatalf("server holds %d streams, %d watches; want %d, %d", gs, gw, streams, watches)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// next returns the watch's next event, failing if it closes.
func next(t *testing.T, w *Watch) store.WatchEvent {
	t.Helper()
	ev, ok := <-w.Events()
	if !ok {
		t.Fatalf("watch ended: %v", w.Err())
	}
	return ev
}

func TestWatchSendsThePageThenChanges(t *testing.T) {
	r := newRig(t, Config{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r.b.put(id(1), "exo.note", "one", "work")
	r.b.put(id(2), "exo.note", "two", "home")
	q := store.Query{Type: "exo.note", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "work"}}}
	w, err := r.c.Subscribe(ctx, r.member.ID(), q)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := r.b.Query(ctx, q)
	if ev := next(t, w); ev.Page == nil || ev.Changes != nil || !cmp.Equal(*ev.Page, want, cmpOpts) {
		t.Fatalf("first event %+v, want the page %+v", ev, want)
	}
	waitBounds(t, r.srv, 0, 1)

	steps := []struct {
		name string
		do   func()
	}{
		{"added", func() { r.b.put(id(3), "exo.note", "three", "work") }},
		{"changed", func() { r.b.put(id(1), "exo.note", "one again", "work") }},
		{"removed", func() { r.b.apply(store.DeleteEntity(id(3))) }},
		{"left by a change", func() { r.b.put(id(1), "exo.note", "one", "home") }},
	}
	kinds := []store.ChangeKind{store.Added, store.Changed, store.Removed, store.Removed}
	ids := []store.EntityID{id(3), id(1), id(3), id(1)}
	for i, s := range steps {
		s.do()
		ev := next(t, w)
		if ev.Page != nil || len(ev.Changes) != 1 {
			t.Fatalf("%s: event %+v, want one change", s.name, ev)
		}
		c := ev.Changes[0]
		if c.Kind != kinds[i] || c.Hit.Entity.ID != ids[i] {
			t.Fatalf("%s: change %s of %s, want %s of %s", s.name, c.Kind, c.Hit.Entity.ID, kinds[i], ids[i])
		}
		if c.Kind != store.Removed {
			e, _ := r.b.Get(ctx, ids[i], nil)
			if !cmp.Equal(c.Hit.Entity, e, cmpOpts) {
				t.Fatalf("%s: hit %+v, want %+v", s.name, c.Hit.Entity, e)
			}
		}
	}

	// Cancelling ctx ends the watch at both ends: the channel closes
	// with ctx's error, the server's watch and the backend's end.
	cancel()
	for range w.Events() {
	}
	if !errors.Is(w.Err(), context.Canceled) {
		t.Fatalf("Err after cancel = %v", w.Err())
	}
	waitBounds(t, r.srv, 0, 0)
	r.b.mu.Lock()
	n := len(r.b.watchers)
	r.b.mu.Unlock()
	if n != 0 {
		t.Fatalf("the backend holds %d watches after the client went", n)
	}
}

func TestWatchEndsWhenTheServerCloses(t *testing.T) {
	r := newRig(t, Config{}, nil)
	r.b.put(id(1), "exo.note", "one")
	w, err := r.c.Subscribe(t.Context(), r.member.ID(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	next(t, w)
	if err := r.srv.Close(); err != nil {
		t.Fatal(err)
	}
	for range w.Events() {
	}
	if !errors.Is(w.Err(), ErrClosed) {
		t.Fatalf("Err = %v, want ErrClosed", w.Err())
	}
	if _, err := r.c.Get(t.Context(), r.member.ID(), id(1), nil); err == nil {
		t.Fatal("a closed server answered")
	}
}

// TestWatchCoalescesForASlowConsumer: a consumer that does not read gets,
// when it reads, the page and then one event that is the difference.
func TestWatchCoalescesForASlowConsumer(t *testing.T) {
	r := newRig(t, Config{}, nil)
	r.b.put(id(1), "exo.note", "one", "w")
	r.b.put(id(2), "exo.note", "two", "w")
	q := store.Query{Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "w"}}}
	w, err := r.c.Subscribe(t.Context(), r.member.ID(), q)
	if err != nil {
		t.Fatal(err)
	}
	r.b.put(id(3), "exo.note", "three", "w") // added
	r.b.put(id(4), "exo.note", "four", "w")  // added, then removed: nothing
	r.b.apply(store.DeleteEntity(id(4)))
	r.b.apply(store.DeleteEntity(id(1)))   // removed
	r.b.put(id(2), "exo.note", "TWO", "w") // changed
	want, _ := r.b.Query(t.Context(), q)
	// Read the page, then events until the consumer's view is the page
	// now; whatever the coalescing, the view must get there, each event
	// must be a valid difference, and no event may be empty.
	ev := next(t, w)
	view := map[store.EntityID]store.Hit{}
	for _, h := range ev.Page.Hits {
		view[h.Entity.ID] = h
	}
	for i := 0; !sameView(view, want); i++ {
		ev := next(t, w)
		if ev.Page != nil || len(ev.Changes) == 0 {
			t.Fatalf("event %d: %+v", i, ev)
		}
		for _, c := range ev.Changes {
			_, in := view[c.Hit.Entity.ID]
			if (c.Kind == store.Added) == in {
				t.Fatalf("event %d: %s of %s, in the view: %v", i, c.Kind, c.Hit.Entity.ID, in)
			}
		}
		apply(view, ev.Changes)
	}
}

func sameView(view map[store.EntityID]store.Hit, pg store.Page) bool {
	if len(view) != len(pg.Hits) {
		return false
	}
	for _, h := range pg.Hits {
		if v, ok := view[h.Entity.ID]; !ok || !sameHit(v, h) {
			return false
		}
	}
	return true
}

func TestNotAllowedGetsNotMemberOnly(t *testing.T) {
	r := newRig(t, Config{}, nil)
	r.b.put(id(1), "exo.note", "secret")
	p := r.member.ID()
	if _, err := r.c.Get(t.Context(), p, id(1), nil); err != nil {
		t.Fatal(err)
	}
	// The roster changes: the next stream is refused.
	r.allow.set(r.ch.ID(), false)
	_, err := r.c.Get(t.Context(), p, id(1), nil)
	if !errors.Is(err, ErrNotMember) {
		t.Fatalf("Get by a removed member: %v, want ErrNotMember", err)
	}
	if _, err := r.c.Query(t.Context(), p, store.Query{}); !errors.Is(err, ErrNotMember) {
		t.Fatalf("Query by a removed member: %v", err)
	}
	if _, err := r.c.Watch(t.Context(), p, store.Query{}); !errors.Is(err, ErrNotMember) {
		t.Fatalf("Watch by a removed member: %v", err)
	}
	// A stranger's request is not even read: the refusal comes first.
	stranger := newHost(t)
	introduce(stranger, r.member)
	st, err := stranger.NewStream(t.Context(), p, Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	f := readRaw(t, st)
	if f.Err == nil || f.Err.Code != codeNotMember {
		t.Fatalf("a stranger got %+v", f)
	}
}

// readRaw reads one response frame from a raw stream.
func readRaw(t *testing.T, st network.Stream) frame {
	t.Helper()
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := readFrame(bufio.NewReader(st), MaxFrame)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	f, err := decodeFrame(b)
	if err != nil {
		t.Fatalf("decode frame: %v", err)
	}
	return f
}

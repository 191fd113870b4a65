package service

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
	"github.com/exopeer/exopeer/ratchet"
	"github.com/exopeer/exopeer/store"
	storeservice "github.com/exopeer/exopeer/store/service"
)

// The fakes below stand in for the node's other parts in the service's
// own tests; simnet's tests run the real ones.

// fakeCell is a cell of one key; mailbox, if set, is its member with
// the mailbox role (the roster has no other members).
type fakeCell struct {
	key     ed25519.PublicKey
	mailbox peer.ID
}

func (c fakeCell) Roster() *cell.Roster {
	r := &cell.Roster{Cell: c.key}
	if c.mailbox != "" {
		r.Members = []cell.Member{{Peer: c.mailbox, Roles: cell.RoleMailbox}}
	}
	return r
}

// fakeContacts holds a cell's contacts and its own device list.
type fakeContacts struct {
	mu  sync.Mutex
	cs  []contactservice.Contact
	own *contact.DeviceList
}

func (f *fakeContacts) Get(_ context.Context, name string) (contactservice.Contact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.cs {
		if c.Name == name {
			return c, nil
		}
	}
	return contactservice.Contact{}, fmt.Errorf("%w: %q", contactservice.ErrNoContact, name)
}

func (f *fakeContacts) List(context.Context) ([]contactservice.Contact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cs), nil
}

func (f *fakeContacts) ByDevice(_ context.Context, id peer.ID) ([]contactservice.Contact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []contactservice.Contact
	for _, c := range f.cs {
		if c.Devices.Has(id) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeContacts) DeviceList(context.Context) (*contact.DeviceList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.own == nil {
		return nil, contactservice.ErrNoDeviceList
	}
	return f.own, nil
}

func (f *fakeContacts) UpdateDevices(_ context.Context, l *contact.DeviceList) (contactservice.Contact, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.cs {
		if !c.Cell().Equal(l.Cell) {
			continue
		}
		newer, err := contact.Newer(c.Devices, l)
		if err != nil || !newer {
			return c, false, err
		}
		f.cs[i].Devices = l
		return f.cs[i], true, nil
	}
	return contactservice.Contact{}, false, contactservice.ErrNoContact
}

func (f *fakeContacts) add(name string, l *contact.DeviceList) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cs = append(f.cs, contactservice.Contact{Name: name, Devices: l})
}

// fakeStore is a cell's store in memory: the entities, and how many
// writes it took.
type fakeStore struct {
	mu   sync.Mutex
	ents map[store.EntityID]store.Entity
	puts int
	gets int
	// noCreated counts the puts of a trait with a zero Created (the
	// store then reads the live trait to keep its Created).
	noCreated int
	// fail, if set, is the error of every put; failGet of every get.
	fail    error
	failGet error
	// onPut, if set, is called at each put, before it is done.
	onPut func()
	// watches get an event (no content) after each put, if they have
	// room for it.
	watches map[chan store.WatchEvent]struct{}
	// pages, if set, makes watches as the index's are: an event only
	// when the query's page (its Limit applied) changed, its query and
	// last page kept in paged.
	pages bool
	paged map[chan store.WatchEvent]*pagedWatch
	// mod is each entity's put sequence number (Order "modified").
	mod map[store.EntityID]int
	// limits, if set, makes Query apply the query's Limit (one page).
	limits bool
	// hits counts the hits Query returned.
	hits int
	// onQuery, if set, is called at each query, before it is done.
	onQuery func()
	// status, if set, is the store's Status (sweep_test.go).
	status func() (storeservice.Status, error)
}

// pagedWatch is a watch's query and the page it last sent.
type pagedWatch struct {
	q    store.Query
	last string
}

func newFakeStore() *fakeStore { return &fakeStore{ents: make(map[store.EntityID]store.Entity)} }

func (f *fakeStore) Get(_ context.Context, id store.EntityID, _ []string) (store.Entity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.failGet != nil {
		return store.Entity{}, f.failGet
	}
	e, ok := f.ents[id]
	if !ok {
		return store.Entity{}, store.ErrNotFound
	}
	return e, nil
}

func (f *fakeStore) Put(_ context.Context, id store.EntityID, traits []store.Trait) (storeservice.Written, error) {
	f.mu.Lock()
	hook := f.onPut
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return storeservice.Written{}, f.fail
	}
	for _, t := range traits {
		if err := store.NewRegistry().Validate(t.Type, t.Doc); err != nil {
			return storeservice.Written{}, err
		}
		if t.Created.IsZero() {
			f.noCreated++
		}
	}
	traits = slices.Clone(traits)
	for i, t := range traits {
		// As the store does: a zero Created is the live trait's, if any.
		if t.Created.IsZero() {
			for _, o := range f.ents[id].Traits {
				if o.Type == t.Type {
					traits[i].Created = o.Created
				}
			}
		}
	}
	f.ents[id] = store.Entity{ID: id, Traits: traits}
	f.puts++
	if f.mod == nil {
		f.mod = map[store.EntityID]int{}
	}
	f.mod[id] = f.puts
	for w := range f.watches {
		if pw := f.paged[w]; pw != nil {
			if pg := f.pageSig(pw.q); pg != pw.last {
				pw.last = pg
			} else {
				continue
			}
		}
		select {
		case w <- store.WatchEvent{}:
		default:
		}
	}
	return storeservice.Written{Entity: id}, nil
}

// Query answers the queries in the conversations' order with equality
// predicates on the conversation and the state (ConversationQuery,
// pendingQuery), in one page, Limit ignored.
func (f *fakeStore) Query(ctx context.Context, q store.Query) (store.Page, error) {
	f.mu.Lock()
	hook := f.onQuery
	f.mu.Unlock()
	if hook != nil {
		hook()
		if err := ctx.Err(); err != nil {
			return store.Page{}, err // a slow query outlived its context
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pg, err := f.queryLocked(q)
	if f.limits && q.Limit > 0 && len(pg.Hits) > q.Limit {
		pg.Hits = pg.Hits[:q.Limit]
		if q.Order == "order" {
			m, _ := decode(pg.Hits[len(pg.Hits)-1].Entity)
			pg.Next = m.Order // the cursor: the page's last order key
		}
	}
	f.hits += len(pg.Hits)
	return pg, err
}

// pageSig is the signature of q's page (IDs and documents, Limit
// applied). f.mu must be held.
func (f *fakeStore) pageSig(q store.Query) string {
	pg, err := f.queryLocked(q)
	if err != nil {
		return "error"
	}
	if q.Limit > 0 && len(pg.Hits) > q.Limit {
		pg.Hits = pg.Hits[:q.Limit]
	}
	var b strings.Builder
	for _, h := range pg.Hits {
		b.WriteString(string(h.Entity.ID[:]))
		for _, t := range h.Entity.Traits {
			b.Write(t.Doc)
		}
	}
	return b.String()
}

// queryLocked is Query with f.mu held; Order "modified" is the newest
// put first.
func (f *fakeStore) queryLocked(q store.Query) (store.Page, error) {
	if q.Type != Type && q.Type != ReadType || (q.Order != "order" && q.Order != store.OrderModified) || len(q.Where) == 0 {
		return store.Page{}, fmt.Errorf("fake store: query %+v: %w", q, store.ErrQuery)
	}
	for _, w := range q.Where {
		if w.Op != store.Eq || (w.Field != "conversation" && w.Field != "state") {
			return store.Page{}, fmt.Errorf("fake store: query %+v: %w", q, store.ErrQuery)
		}
	}
	var hits []store.Hit
	orders := map[store.EntityID]string{}
	for _, e := range f.ents {
		m, ok := decode(e)
		if q.Type == ReadType {
			var mk marker
			mk, ok = decodeMarker(e)
			m = Message{Conversation: mk.Conversation, State: mk.State}
		}
		if q.After != "" && (!q.Desc && m.Order <= q.After || q.Desc && m.Order >= q.After) {
			ok = false
		}
		for _, w := range q.Where {
			if w.Field == "conversation" && m.Conversation != w.Value || w.Field == "state" && m.State != w.Value {
				ok = false
			}
		}
		if ok {
			hits = append(hits, store.Hit{Entity: e})
			orders[e.ID] = m.Order
		}
	}
	if q.Order == store.OrderModified {
		slices.SortFunc(hits, func(a, b store.Hit) int { return cmp.Compare(f.mod[b.Entity.ID], f.mod[a.Entity.ID]) })
		return store.Page{Hits: hits}, nil
	}
	slices.SortFunc(hits, func(a, b store.Hit) int { return cmp.Compare(orders[a.Entity.ID], orders[b.Entity.ID]) })
	if q.Desc {
		slices.Reverse(hits)
	}
	return store.Page{Hits: hits}, nil
}

// Watch sends an empty event after each put (dropped when one is
// waiting), until ctx ends.
func (f *fakeStore) Watch(ctx context.Context, q store.Query) (<-chan store.WatchEvent, error) {
	w := make(chan store.WatchEvent, 1)
	f.mu.Lock()
	if f.watches == nil {
		f.watches = map[chan store.WatchEvent]struct{}{}
		f.paged = map[chan store.WatchEvent]*pagedWatch{}
	}
	f.watches[w] = struct{}{}
	if f.pages {
		f.paged[w] = &pagedWatch{q: q, last: f.pageSig(q)}
	}
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.watches, w)
		delete(f.paged, w)
		close(w)
	})
	return w, nil
}

// messages returns the messages held, by order key.
func (f *fakeStore) messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ms []Message
	for _, e := range f.ents {
		if m, ok := decode(e); ok {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b Message) int { return cmp.Compare(a.Order, b.Order) })
	return ms
}

// failPuts makes every put fail with err (nil: none).
func (f *fakeStore) failPuts(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// counts returns the puts, gets and puts with no Created so far.
func (f *fakeStore) counts() (puts, gets, noCreated int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts, f.gets, f.noCreated
}

// faultyDS is a device's datastore that counts the writes of each key
// prefix and can fail those of one, as a disk that fails would.
type faultyDS struct {
	ds.Datastore
	mu     sync.Mutex
	puts   map[string]int // by the key's first two components
	failOn string         // a prefix whose writes fail; empty: none
	// onPut, if set, is called at each write, before it is done.
	onPut func(ds.Key)
}

var errDiskFull = errors.New("faulty datastore: disk full")

func (f *faultyDS) Put(ctx context.Context, k ds.Key, v []byte) error {
	p := prefixOf(k)
	f.mu.Lock()
	fail := f.failOn != "" && p == f.failOn
	hook := f.onPut
	if !fail {
		if f.puts == nil {
			f.puts = map[string]int{}
		}
		f.puts[p]++
	}
	f.mu.Unlock()
	if hook != nil {
		hook(k)
	}
	if fail {
		return errDiskFull
	}
	return f.Datastore.Put(ctx, k, v)
}

// fail makes the writes under prefix fail (empty: none).
func (f *faultyDS) fail(prefix ds.Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failOn = prefixOf(prefix)
	if prefix.String() == "/" {
		f.failOn = ""
	}
}

// written returns how many writes under prefix succeeded.
func (f *faultyDS) written(prefix ds.Key) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts[prefixOf(prefix)]
}

// prefixOf is the first two components of k.
func prefixOf(k ds.Key) string {
	l := k.List()
	if len(l) > 2 {
		l = l[:2]
	}
	return "/" + strings.Join(l, "/")
}

// fakePrekeys is a device's prekeys in memory, and a directory of every
// device's, from which Fetch answers; it counts the bundles fetched.
type fakePrekeys struct {
	mu      sync.Mutex
	keys    *ratchet.Prekeys
	signer  ed25519.PrivateKey
	dir     map[peer.ID]*fakePrekeys
	fetched int
	// gate, if set, holds each Fetch until it is closed.
	gate chan struct{}
}

func (f *fakePrekeys) Fetch(_ context.Context, id peer.ID) (*ratchet.Bundle, error) {
	f.mu.Lock()
	f.fetched++
	o := f.dir[id]
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if o == nil {
		return nil, fmt.Errorf("fake prekeys: no bundle of %s", id)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.keys.Bundle(o.signer, 1)
}

func (f *fakePrekeys) Accept(_ context.Context, fn func(k *ratchet.Prekeys, now int64) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fn(f.keys, 1_790_000_000)
}

func (f *fakePrekeys) View(fn func(k *ratchet.Prekeys) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fn(f.keys)
}

func (f *fakePrekeys) fetches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fetched
}

// hexKey is a cell key's text form in records.
func hexKey(k ed25519.PublicKey) string { return hex.EncodeToString(k) }

// texts returns the texts of ms.
func texts(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Text
	}
	return out
}

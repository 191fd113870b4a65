package pin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	"github.com/ipfs/go-datastore/query"

	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/internal/ambient"
)

// Bounds on what a caller can make a pin record hold.
const (
	// MaxReasons is the most reasons one root keeps.
	MaxReasons = 1024
	// MaxReasonLen is the longest reason, in bytes.
	MaxReasonLen = 256
)

var (
	// ErrPin is wrapped by the error for a pin that cannot be made: a root
	// that is not a blob's (codec raw or dag-pb), an empty or too long
	// reason, too many reasons.
	ErrPin = errors.New("pin: bad pin")
	// ErrRecord is wrapped by the error for a stored pin record that does
	// not decode.
	ErrRecord = errors.New("pin: bad pin record")
)

// prefix is the namespace of pin records in the node's datastore.
var prefix = ds.NewKey("/blobpins")

// Pin is a pinned root: it stays, with every block of its DAG held
// locally, while any of its reasons holds.
type Pin struct {
	Root    cid.Cid
	Reasons []string  // sorted
	Since   time.Time // when the root was first pinned (this record)
}

// record is a pin as stored.
type record struct {
	Reasons []string  `json:"reasons"`
	Since   time.Time `json:"since"`
}

// Pins keeps the pins of a node, its holds, and collects blob blocks
// neither pinned nor held. It is safe for concurrent use.
type Pins struct {
	d   ds.Batching // under prefix
	s   *blocks.Store
	log *slog.Logger
	now func() time.Time

	gc chan struct{} // a token: one GC at a time

	mu        sync.Mutex       // guards the fields below and pin records' read-modify-write
	held      map[string]int   // multihash -> number of holds
	gcRunning bool             // a GC is marking or sweeping
	late      map[cid.Cid]bool // roots pinned while a GC runs
}

// New returns the Pins of store s, keeping records in d under /blobpins
// (d is the node's datastore; the records need no other namespace). log
// may be nil. It starts nothing and does not block.
func New(d ds.Batching, s *blocks.Store, log *slog.Logger) *Pins {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pins{
		d:    namespace.Wrap(d, prefix),
		s:    s,
		log:  log,
		now:  ambient.Now,
		gc:   make(chan struct{}, 1),
		held: make(map[string]int),
	}
}

// WithClock makes p read the time (Pin.Since, GCStats.Took) from now,
// and returns p.
// Call it before using p.
func (p *Pins) WithClock(now func() time.Time) *Pins {
	p.now = now
	return p
}

func key(root cid.Cid) ds.Key { return ds.NewKey(root.String()) }

func checkPin(root cid.Cid, reason string) error {
	if !root.Defined() || (root.Type() != cid.Raw && root.Type() != cid.DagProtobuf) {
		return fmt.Errorf("%w: %s is not the root of a blob", ErrPin, root)
	}
	if reason == "" || len(reason) > MaxReasonLen {
		return fmt.Errorf("%w: reason of %d bytes (1 to %d)", ErrPin, len(reason), MaxReasonLen)
	}
	return nil
}

// get reads root's record; ok is false when there is none.
func (p *Pins) get(ctx context.Context, root cid.Cid) (r record, ok bool, err error) {
	v, err := p.d.Get(ctx, key(root))
	if errors.Is(err, ds.ErrNotFound) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("pin: read %s: %w", root, err)
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return record{}, false, fmt.Errorf("%w: %s: %w", ErrRecord, root, err)
	}
	return r, true, nil
}

func (p *Pins) put(ctx context.Context, root cid.Cid, r record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("pin: encode %s: %w", root, err)
	}
	if err := p.d.Put(ctx, key(root), v); err != nil {
		return fmt.Errorf("pin: write %s: %w", root, err)
	}
	return nil
}

// Pin adds reason to root's pin, making the pin if there is none. A
// reason root already has changes nothing. It blocks on the datastore
// (and, for the time of a walk of the roots pinned meanwhile, on a
// collection's sweep).
func (p *Pins) Pin(ctx context.Context, root cid.Cid, reason string) error {
	if err := checkPin(root, reason); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok, err := p.get(ctx, root)
	if err != nil {
		return err
	}
	if !ok {
		r.Since = p.now().UTC()
	}
	i, found := slices.BinarySearch(r.Reasons, reason)
	if found {
		return nil
	}
	if len(r.Reasons) >= MaxReasons {
		return fmt.Errorf("%w: %s has %d reasons already", ErrPin, root, len(r.Reasons))
	}
	r.Reasons = slices.Insert(r.Reasons, i, reason)
	if err := p.put(ctx, root, r); err != nil {
		return err
	}
	if p.gcRunning {
		p.late[root] = true
	}
	return nil
}

// Unpin removes reason from root's pin, and the pin with its last reason.
// Removing a reason root does not have is not an error. It blocks on the
// datastore.
func (p *Pins) Unpin(ctx context.Context, root cid.Cid, reason string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok, err := p.get(ctx, root)
	if err != nil || !ok {
		return err
	}
	i, found := slices.BinarySearch(r.Reasons, reason)
	if !found {
		return nil
	}
	r.Reasons = slices.Delete(r.Reasons, i, i+1)
	if len(r.Reasons) == 0 {
		if err := p.d.Delete(ctx, key(root)); err != nil {
			return fmt.Errorf("pin: delete %s: %w", root, err)
		}
		return nil
	}
	return p.put(ctx, root, r)
}

// Get returns root's pin; ok is false if root is not pinned.
func (p *Pins) Get(ctx context.Context, root cid.Cid) (pin Pin, ok bool, err error) {
	r, ok, err := p.get(ctx, root)
	if err != nil || !ok {
		return Pin{}, ok, err
	}
	return Pin{Root: root, Reasons: r.Reasons, Since: r.Since}, true, nil
}

// List returns every pin, oldest first (then by root). It blocks on the
// datastore; a record that does not decode is an error wrapping
// ErrRecord.
func (p *Pins) List(ctx context.Context) ([]Pin, error) {
	res, err := p.d.Query(ctx, query.Query{})
	if err != nil {
		return nil, fmt.Errorf("pin: list: %w", err)
	}
	defer res.Close()
	var out []Pin
	for e := range res.Next() {
		if e.Error != nil {
			return nil, fmt.Errorf("pin: list: %w", e.Error)
		}
		k := ds.RawKey(e.Key)
		root, err := cid.Decode(k.BaseNamespace())
		if err != nil {
			return nil, fmt.Errorf("%w: key %s: %w", ErrRecord, k, err)
		}
		var r record
		if err := json.Unmarshal(e.Value, &r); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrRecord, root, err)
		}
		out = append(out, Pin{Root: root, Reasons: r.Reasons, Since: r.Since})
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Pin) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Root.String(), b.Root.String())
	})
	return out, nil
}

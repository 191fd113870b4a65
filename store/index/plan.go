package index

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/exopeer/exopeer/store"
)

// MaxProjection bounds Query.Traits (and Get's traits).
const MaxProjection = 64

// orderKind is what a query is ordered by.
type orderKind uint8

const (
	byModified orderKind = iota + 1
	byCreated
	byRelevance
	byField
)

// pred is a validated predicate: terms of field with v op value (a
// prefix is the range [v, hi)).
type pred struct {
	field int64
	list  bool
	op    store.Cmp
	v, hi any
}

// plan is a validated query, ready to run.
type plan struct {
	typ       string
	match     string // the FTS5 expression, "" without Match
	preds     []pred
	refers    []byte // nil without RefersTo
	refFields []int64
	order     orderKind
	orderBy   field // byField
	desc      bool  // in SQL: descending keys first
	limit     int
	after     *cursor
	fp        [8]byte
	traits    []string
	all       bool // no projection: every live trait
}

func errQuery(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), store.ErrQuery)
}

// compile validates q against the registry and makes its plan. Every
// error wraps store.ErrQuery and names the part at fault.
func (ix *Index) compile(q store.Query) (*plan, error) {
	p := &plan{typ: q.Type}
	var fields map[string]field
	if q.Type != "" {
		if len(q.Type) > store.MaxType || !utf8.ValidString(q.Type) {
			return nil, errQuery("type: 1 to %d bytes of UTF-8", store.MaxType)
		}
		// A type with no schema has no fields: its traits are kept and
		// listed (by time), and a predicate or an order on a field of it
		// is refused below as an unknown field.
		fields = ix.fields.byName[q.Type]
	}
	if len(q.Match) > store.MaxMatch {
		return nil, errQuery("match: %d bytes, over %d", len(q.Match), store.MaxMatch)
	}
	if !utf8.ValidString(q.Match) {
		return nil, errQuery("match: not UTF-8")
	}
	if strings.IndexByte(q.Match, 0) >= 0 {
		return nil, errQuery("match: a NUL byte")
	}
	if q.Match != "" {
		words := strings.Fields(q.Match)
		if len(words) == 0 {
			return nil, errQuery("match: no words")
		}
		for i, w := range words {
			words[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
		}
		p.match = strings.Join(words, " ")
	}
	if len(q.Where) > store.MaxPredicates {
		return nil, errQuery("where: %d predicates, over %d", len(q.Where), store.MaxPredicates)
	}
	for i, w := range q.Where {
		if q.Type == "" {
			return nil, errQuery("where[%d] %q: a predicate needs a type", i, truncate(w.Field))
		}
		f, ok := fields[w.Field]
		if !ok {
			return nil, errQuery("where[%d]: type %s has no field %q", i, q.Type, truncate(w.Field))
		}
		if f.kept {
			return nil, errQuery("where[%d]: field %s of %s is kept, not indexed", i, f.name, q.Type)
		}
		if !takes(f.kind, w.Op) {
			return nil, errQuery("where[%d]: field %s (%s) does not take %q", i, f.name, f.kind, truncate(string(w.Op)))
		}
		v, ok := textValue(f.kind, w.Value)
		if !ok {
			return nil, errQuery("where[%d]: field %s: %q is not a %s value", i, f.name, truncate(w.Value), f.kind)
		}
		pr := pred{field: f.id, list: f.list, op: w.Op, v: v}
		if w.Op == store.Prefix {
			pr.hi = w.Value + "\xff" // above every UTF-8 string with the prefix
		}
		p.preds = append(p.preds, pr)
	}
	// The most selective kinds first: the first predicate drives.
	slices.SortStableFunc(p.preds, func(a, b pred) int { return cmp.Compare(opRank(a.op), opRank(b.op)) })
	if q.RefersTo != nil {
		if q.RefersTo.IsZero() {
			return nil, errQuery("refers_to: zero entity id")
		}
		p.refers = append([]byte(nil), q.RefersTo[:]...)
		for _, f := range ix.fields.refs {
			if q.Type == "" || f.typ == q.Type {
				p.refFields = append(p.refFields, f.id)
			}
		}
		if q.Type != "" && len(p.refFields) == 0 {
			return nil, errQuery("refers_to: type %s has no reference field", q.Type)
		}
	}
	if err := p.setOrder(q, fields); err != nil {
		return nil, err
	}
	if p.order == byField {
		// The ordering field's predicates first: they drive, in order.
		slices.SortStableFunc(p.preds, func(a, b pred) int {
			return cmp.Compare(boolInt(a.field != p.orderBy.id), boolInt(b.field != p.orderBy.id))
		})
	}
	switch {
	case q.Limit < 0 || q.Limit > store.MaxLimit:
		return nil, errQuery("limit %d: want 0 to %d", q.Limit, store.MaxLimit)
	case q.Limit == 0:
		p.limit = store.DefaultLimit
	default:
		p.limit = q.Limit
	}
	if q.Traits == nil {
		p.all = true
	} else if err := checkProjection(q.Traits); err != nil {
		return nil, err
	}
	p.traits = q.Traits
	p.fp = p.fingerprint(q)
	if q.After != "" {
		c, err := decodeCursor(q.After)
		if err != nil {
			return nil, err
		}
		if c.fp != p.fp {
			return nil, errQuery("after: the cursor is from another query")
		}
		if err := p.checkKey(c.key); err != nil {
			return nil, err
		}
		p.after = &c
	}
	return p, nil
}

func checkProjection(ts []string) error {
	if len(ts) > MaxProjection {
		return errQuery("traits: %d types, over %d", len(ts), MaxProjection)
	}
	for i, t := range ts {
		if t == "" || len(t) > store.MaxType {
			return errQuery("traits[%d]: a type is 1 to %d bytes", i, store.MaxType)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func opRank(op store.Cmp) int {
	switch op {
	case store.Eq:
		return 0
	case store.Prefix:
		return 1
	}
	return 2
}

// takes reports whether a field of kind k takes op.
func takes(k store.IndexKind, op store.Cmp) bool {
	switch op {
	case store.Eq:
		return k != store.Text
	case store.Prefix:
		return k == store.Keyword
	case store.Lt, store.Le, store.Gt, store.Ge:
		return k == store.Number || k == store.Time
	}
	return false
}

func (p *plan) setOrder(q store.Query, fields map[string]field) error {
	if q.Asc && q.Desc {
		return errQuery("order: both asc and desc")
	}
	switch q.Order {
	case store.OrderRelevance:
		if q.Match == "" {
			return errQuery("order: relevance needs a match")
		}
		p.order = byRelevance
	case "":
		p.order = byModified
		if q.Match != "" {
			p.order = byRelevance
		}
	case store.OrderModified:
		p.order = byModified
	case store.OrderCreated:
		p.order = byCreated
	default:
		if q.Type == "" {
			return errQuery("order %q: ordering by a field needs a type", truncate(q.Order))
		}
		f, ok := fields[q.Order]
		if !ok {
			return errQuery("order: type %s has no field %q", q.Type, truncate(q.Order))
		}
		if f.kept {
			return errQuery("order: field %s of %s is kept, not indexed", f.name, q.Type)
		}
		if f.kind != store.Keyword && f.kind != store.Number && f.kind != store.Time {
			return errQuery("order: field %s is %s, not keyword, number or time", f.name, f.kind)
		}
		p.order, p.orderBy = byField, f
	}
	switch {
	case p.order == byRelevance:
		if q.Asc {
			return errQuery("order: relevance is best first, it cannot be asc")
		}
		p.desc = false // lower bm25 ranks are better
	case p.order == byModified || p.order == byCreated || p.orderBy.kind == store.Time:
		p.desc = !q.Asc
	default:
		p.desc = q.Desc
	}
	return nil
}

// fingerprint hashes what decides a query's hits and their order (not its
// limit, cursor or projection): a cursor carries it, so that a cursor from
// another query is refused.
func (p *plan) fingerprint(q store.Query) [8]byte {
	h := sha256.New()
	put := func(s string) {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	put(q.Type)
	put(p.match)
	for _, w := range q.Where {
		put(w.Field)
		put(string(w.Op))
		put(w.Value)
	}
	put(string(p.refers))
	put(fmt.Sprint(p.order, p.orderBy.id, p.desc))
	var fp [8]byte
	copy(fp[:], h.Sum(nil))
	return fp
}

// checkKey checks that a cursor's key has the type of the plan's order.
func (p *plan) checkKey(k any) error {
	ok := false
	switch k.(type) {
	case nil:
		ok = p.order == byField
	case float64:
		ok = p.order == byRelevance || p.order == byField && p.orderBy.kind == store.Number
	case string:
		ok = p.order == byField && p.orderBy.kind == store.Keyword
	case []byte:
		ok = p.order == byModified || p.order == byCreated || p.order == byField && p.orderBy.kind == store.Time
	}
	if !ok {
		return errQuery("after: the cursor does not fit the query's order")
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

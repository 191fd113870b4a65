package store

import "errors"

// The shapes of a query and its answer, shared by the index (which runs
// queries), the node's store service (which runs them locally or sends
// them to a store member), the control API and the CLI.

// Cmp is a field predicate's comparison.
type Cmp string

// The comparisons. Keyword fields take Eq and Prefix; number and time
// fields Eq and the ranges; reference fields Eq.
const (
	Eq     Cmp = "="
	Lt     Cmp = "<"
	Le     Cmp = "<="
	Gt     Cmp = ">"
	Ge     Cmp = ">="
	Prefix Cmp = "^="
)

// Predicate is one condition on an indexed field of the query's type:
// Field Op Value, Value in the field's text form (a keyword as is, a
// number in JSON syntax, a time in RFC 3339, a reference as an EntityID's
// 32 hex digits). A list field holds when any of its values does.
type Predicate struct {
	Field string `json:"field"`
	Op    Cmp    `json:"op"`
	Value string `json:"value"`
}

// Query limits.
const (
	// DefaultLimit is a page's size when Query.Limit is 0.
	DefaultLimit = 50
	// MaxLimit is the largest page.
	MaxLimit = 1000
	// MaxPredicates bounds Query.Where.
	MaxPredicates = 16
	// MaxMatch bounds Query.Match, in bytes.
	MaxMatch = 1024
)

// Order names. Besides these, a query can be ordered by any keyword,
// number or time field of its type.
const (
	// OrderRelevance orders by full-text rank (needs Match); the default
	// when Match is set.
	OrderRelevance = "relevance"
	// OrderModified orders by the matching trait's modified time; the
	// default without Match (newest first unless Asc).
	OrderModified = "modified"
	// OrderCreated orders by the matching trait's created time.
	OrderCreated = "created"
)

// Query asks for entities. An entity is a hit when one of its live traits
// (of Type, when set) satisfies every condition; the order, the rank and
// the field values it is ordered by come from its best such trait. Ties
// are broken by EntityID, so that an order is total and every node that
// holds the same chain returns the same pages.
type Query struct {
	// Type keeps entities with a live trait of this type; Where and Order
	// fields are fields of this type (required when either names one).
	Type string `json:"type,omitempty"`
	// Match is full-text search: every word must occur in a text field of
	// the trait (words are matched as FTS5 tokens, with no operators).
	Match string `json:"match,omitempty"`
	// Where are field predicates, all of which must hold.
	Where []Predicate `json:"where,omitempty"`
	// RefersTo keeps entities with a trait that has a reference field
	// (of any registered type, or of Type when set) naming this entity.
	RefersTo *EntityID `json:"refers_to,omitempty"`
	// Order is OrderRelevance, OrderModified, OrderCreated or a field of
	// Type; empty means relevance with Match, modified without.
	Order string `json:"order,omitempty"`
	// Asc reverses the default direction: relevance and times are
	// descending (best, newest first), other fields ascending; Asc makes
	// times ascending, Desc makes fields descending.
	Asc  bool `json:"asc,omitempty"`
	Desc bool `json:"desc,omitempty"`
	// Limit is the page size, 0 meaning DefaultLimit, at most MaxLimit.
	Limit int `json:"limit,omitempty"`
	// After is the cursor of the previous page (Page.Next): the page
	// starts after that page's last hit, even if entities were added or
	// changed meanwhile (a stable cursor: it holds the last hit's sort key
	// and ID, not an offset).
	After string `json:"after,omitempty"`
	// Traits is the projection: the trait types returned with each hit.
	// Nil returns every live trait; an empty non-nil slice none (IDs only).
	Traits []string `json:"traits,omitempty"`
}

// Hit is one entity of a page.
type Hit struct {
	Entity Entity `json:"entity"`
	// Rank is the full-text rank with Match (lower is better, as FTS5's
	// bm25), rounded so that it prints the same on every node; 0 without.
	Rank float64 `json:"rank,omitempty"`
}

// Page is one page of a query's hits.
type Page struct {
	Hits []Hit `json:"hits"`
	// Next is the cursor of the next page; empty when this page is the
	// last.
	Next string `json:"next,omitempty"`
}

// ChangeKind says how a watched query's results changed.
type ChangeKind string

// The changes a watch reports.
const (
	Added   ChangeKind = "added"
	Changed ChangeKind = "changed"
	Removed ChangeKind = "removed"
)

// Change is one entity that entered, changed within, or left the first
// page of a watched query (Hit is the zero Hit for Removed, with only
// Entity.ID set).
type Change struct {
	Kind ChangeKind `json:"kind"`
	Hit  Hit        `json:"hit"`
}

// ErrQuery is a query that cannot run: an unknown field, a
// predicate its field's kind does not take, a value that does not parse,
// a bad cursor or limit. Errors that wrap it name the part at fault.
var ErrQuery = errors.New("store: bad query")

// ErrNotFound is an entity with no live trait (never written, or deleted).
var ErrNotFound = errors.New("store: no such entity")

// WatchEvent is what a watched query sends: first the query's first page
// (Page set), then, after each index update that changed that page, the
// changes (Changes set). A watcher that reads slowly gets the changes
// coalesced: each event is the difference between the page it was last
// sent and the page now.
type WatchEvent struct {
	Page    *Page    `json:"page,omitempty"`
	Changes []Change `json:"changes,omitempty"`
}

package remote

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/exopeer/exopeer/internal/growbuf"
	"github.com/exopeer/exopeer/store"
)

// Protocol is the libp2p protocol ID of the store's remote queries.
const Protocol = "/exopeer/store/1.0.0"

// Version is the version every frame carries ("v"); a frame of another
// version is refused.
const Version = 1

// Caps on what crosses the wire (the package doc says why each is what it
// is).
const (
	// MaxCursor bounds Query.After, in bytes.
	MaxCursor = 64 << 10
	// MaxTraits bounds a projection (Query.Traits, Get's traits).
	MaxTraits = 64
	// MaxFrame bounds one response frame, in bytes.
	MaxFrame = 16 << 20
	// MaxMessage bounds the frames of one answer (a page, a watch event)
	// together, in bytes.
	MaxMessage = 128 << 20
	// MaxErrorMsg bounds an error's message, in bytes.
	MaxErrorMsg = 1 << 10
	// MaxChanges bounds the changes of one watch event: an event is the
	// difference between two pages of at most store.MaxLimit hits.
	MaxChanges = 2 * store.MaxLimit

	// MaxRequest bounds the one frame of a request, in bytes: the largest
	// request the caps allow (predicates as ParseWhere takes them), every
	// string escaped at its worst (2 + 6*n bytes for a string of n bytes:
	// quotes, and \u00XX a byte), plus the JSON around them: 851,336
	// bytes. A real request is a few hundred bytes; the frame's buffer grows
	// only as its bytes arrive.
	MaxRequest = 1<<10 + // "v", "op", "id", limit, asc, desc and punctuation
		(2 + 6*store.MaxType) + // type
		(2 + 6*store.MaxMatch) + // match
		store.MaxPredicates*(64+(2+6*store.MaxField)+(2+6*store.MaxWhere)) + // where
		(2 + 6*store.MaxField) + // order
		(2 + 6*MaxCursor) + // after
		MaxTraits*(1+(2+6*store.MaxType)) // traits
)

// Sentinel errors. Errors that cross the wire from the store member wrap
// store.ErrQuery, store.ErrNotFound or one of these, as the member's
// answer says.
var (
	// ErrNotMember is the answer to a peer the store member does not serve
	// (not, or no longer, a member of its cell).
	ErrNotMember = errors.New("remote: not a member of the store member's cell")
	// ErrBusy is the answer to a peer over its share of streams or
	// watches, or to any peer when the member has its total of watches.
	ErrBusy = errors.New("remote: store member busy")
	// ErrTooLarge is a request, an answer or a frame over its cap.
	ErrTooLarge = errors.New("remote: message too large")
	// ErrProtocol is a frame that breaks the protocol (does not decode,
	// wrong version, out of place).
	ErrProtocol = errors.New("remote: protocol violation")
	// ErrClosed is a watch that the store member ended, or a request it
	// did not answer, because it (or its index) is closing.
	ErrClosed = errors.New("remote: watch ended by the store member")
	// ErrRemote is any other failure of the store member; the error's
	// message is the member's.
	ErrRemote = errors.New("remote: store member failed")
)

// Error codes: an error frame's "code".
const (
	codeQuery     = "query"
	codeNotFound  = "not_found"
	codeNotMember = "not_member"
	codeBusy      = "busy"
	codeTooLarge  = "too_large"
	codeProtocol  = "protocol"
	codeClosed    = "closed"
	codeInternal  = "internal"

	maxCode = 32 // the longest code a frame may carry
)

var codeErrs = map[string]error{
	codeQuery:     store.ErrQuery,
	codeNotFound:  store.ErrNotFound,
	codeNotMember: ErrNotMember,
	codeBusy:      ErrBusy,
	codeTooLarge:  ErrTooLarge,
	codeProtocol:  ErrProtocol,
	codeClosed:    ErrClosed,
	codeInternal:  ErrRemote,
}

// codeOf is the code of an error a server sends.
func codeOf(err error) string {
	for _, c := range []string{codeQuery, codeNotFound, codeNotMember, codeBusy, codeTooLarge, codeProtocol, codeClosed} {
		if errors.Is(err, codeErrs[c]) {
			return c
		}
	}
	return codeInternal
}

// Error is an error answered by the store member. Its message is the
// member's, word for word (so that a query refused remotely reads as it
// would locally); it unwraps to the sentinel of its code: store.ErrQuery,
// store.ErrNotFound, ErrNotMember, ErrBusy, ErrTooLarge, ErrProtocol,
// ErrClosed, or ErrRemote for any other code.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel of e's code.
func (e *Error) Unwrap() error {
	if err, ok := codeErrs[e.Code]; ok {
		return err
	}
	return ErrRemote
}

// Op is a request's operation.
type Op string

// The operations.
const (
	OpGet   Op = "get"
	OpQuery Op = "query"
	OpWatch Op = "watch"
)

// request is the decoded request frame.
type request struct {
	Op     Op
	ID     store.EntityID // OpGet
	Traits []string       // OpGet: the projection, nil for every trait
	Query  store.Query    // OpQuery, OpWatch
}

type wireRequest struct {
	V      int        `json:"v"`
	Op     Op         `json:"op"`
	ID     string     `json:"id,omitempty"`
	Traits *[]string  `json:"traits,omitempty"`
	Query  *wireQuery `json:"query,omitempty"`
}

// wireQuery is store.Query on the wire: RefersTo in hex, and Traits a
// pointer so that an empty projection ([]: IDs only) differs from none
// (absent: every trait).
type wireQuery struct {
	Type     string            `json:"type,omitempty"`
	Match    string            `json:"match,omitempty"`
	Where    []store.Predicate `json:"where,omitempty"`
	RefersTo string            `json:"refers_to,omitempty"`
	Order    string            `json:"order,omitempty"`
	Asc      bool              `json:"asc,omitempty"`
	Desc     bool              `json:"desc,omitempty"`
	Limit    int               `json:"limit,omitempty"`
	After    string            `json:"after,omitempty"`
	Traits   *[]string         `json:"traits,omitempty"`
}

func projection(ts []string) *[]string {
	if ts == nil {
		return nil
	}
	return &ts
}

func unprojection(p *[]string) []string {
	if p == nil {
		return nil
	}
	if *p == nil {
		return []string{}
	}
	return *p
}

// checkProjection refuses a projection the wire does not carry.
func checkProjection(ts []string) error {
	if len(ts) > MaxTraits {
		return fmt.Errorf("remote: projection of %d traits, over %d: %w", len(ts), MaxTraits, store.ErrQuery)
	}
	return nil
}

// encodeRequest returns r's frame body. A request the wire does not carry
// (a projection over MaxTraits, a cursor over MaxCursor, a frame over
// MaxRequest) is an error wrapping store.ErrQuery: it is the query's fault.
func encodeRequest(r request) ([]byte, error) {
	w := wireRequest{V: Version, Op: r.Op}
	switch r.Op {
	case OpGet:
		if err := checkProjection(r.Traits); err != nil {
			return nil, err
		}
		w.ID, w.Traits = r.ID.String(), projection(r.Traits)
	case OpQuery, OpWatch:
		q := r.Query
		if err := checkProjection(q.Traits); err != nil {
			return nil, err
		}
		if len(q.After) > MaxCursor {
			return nil, fmt.Errorf("remote: cursor of %d bytes, over %d: %w", len(q.After), MaxCursor, store.ErrQuery)
		}
		w.Query = &wireQuery{
			Type: q.Type, Match: q.Match, Where: q.Where, Order: q.Order,
			Asc: q.Asc, Desc: q.Desc, Limit: q.Limit, After: q.After, Traits: projection(q.Traits),
		}
		if q.RefersTo != nil {
			w.Query.RefersTo = q.RefersTo.String()
		}
	default:
		return nil, fmt.Errorf("remote: unknown op %q", r.Op)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("remote: encode request: %w", err)
	}
	if len(b) > MaxRequest {
		return nil, fmt.Errorf("remote: request of %d bytes, over %d: %w", len(b), MaxRequest, store.ErrQuery)
	}
	return b, nil
}

// decodeRequest parses a request frame body. Errors wrap ErrProtocol; a
// request within the caps that the backend will refuse (an unknown field,
// a bad value) decodes: the backend answers it.
func decodeRequest(b []byte) (request, error) {
	if len(b) > MaxRequest {
		return request{}, fmt.Errorf("request of %d bytes, over %d: %w", len(b), MaxRequest, ErrTooLarge)
	}
	var w wireRequest
	if err := json.Unmarshal(b, &w); err != nil {
		return request{}, fmt.Errorf("request: %w: %w", ErrProtocol, err)
	}
	if w.V != Version {
		return request{}, fmt.Errorf("request of version %d, want %d: %w", w.V, Version, ErrProtocol)
	}
	r := request{Op: w.Op}
	switch w.Op {
	case OpGet:
		if w.Query != nil {
			return request{}, fmt.Errorf("get with a query: %w", ErrProtocol)
		}
		id, err := store.ParseEntityID(w.ID)
		if err != nil {
			return request{}, fmt.Errorf("get: %w: %w", ErrProtocol, err)
		}
		r.ID, r.Traits = id, unprojection(w.Traits)
		if err := checkProjection(r.Traits); err != nil {
			return request{}, fmt.Errorf("get: %w: %w", ErrProtocol, err)
		}
	case OpQuery, OpWatch:
		if w.Query == nil || w.ID != "" || w.Traits != nil {
			return request{}, fmt.Errorf("%s: want a query and only a query: %w", w.Op, ErrProtocol)
		}
		q := w.Query
		r.Query = store.Query{
			Type: q.Type, Match: q.Match, Where: q.Where, Order: q.Order,
			Asc: q.Asc, Desc: q.Desc, Limit: q.Limit, After: q.After, Traits: unprojection(q.Traits),
		}
		if len(q.Where) == 0 {
			r.Query.Where = nil // [] means none, as absent does
		}
		if q.RefersTo != "" {
			id, err := store.ParseEntityID(q.RefersTo)
			if err != nil {
				return request{}, fmt.Errorf("refers_to: %w: %w", ErrProtocol, err)
			}
			r.Query.RefersTo = &id
		}
		if err := checkProjection(r.Query.Traits); err != nil {
			return request{}, fmt.Errorf("%s: %w: %w", w.Op, ErrProtocol, err)
		}
		if len(q.After) > MaxCursor {
			return request{}, fmt.Errorf("cursor of %d bytes: %w", len(q.After), ErrTooLarge)
		}
	default:
		return request{}, fmt.Errorf("unknown op %q: %w", truncate(string(w.Op)), ErrProtocol)
	}
	return r, nil
}

// frame is one decoded response frame. An answer is one message: the
// frames up to the first without More. A frame is exactly one of: an
// error (Err), a keep-alive (Ping), an entity (Get's answer), a page or
// part of one (Page: Query's answer, a watch's first event), or changes
// (a watch's later events).
type frame struct {
	Err     *Error
	Ping    bool
	Entity  *store.Entity
	Page    bool
	Hits    []store.Hit
	Next    string
	Changes []store.Change
	More    bool
}

type wireFrame struct {
	V       int          `json:"v"`
	Err     *wireError   `json:"err,omitempty"`
	Ping    bool         `json:"ping,omitempty"`
	Entity  *wireEntity  `json:"entity,omitempty"`
	Page    bool         `json:"page,omitempty"`
	Hits    []wireHit    `json:"hits,omitempty"`
	Next    string       `json:"next,omitempty"`
	Changes []wireChange `json:"changes,omitempty"`
	More    bool         `json:"more,omitempty"`
}

type wireError struct {
	Code string `json:"code"`
	Msg  string `json:"msg"`
}

type wireEntity struct {
	ID     string      `json:"id"`
	Traits []wireTrait `json:"traits"`
}

// wireTrait carries the document in base64 ("doc"), so that it crosses
// byte for byte: a JSON value embedded as JSON would be re-spaced and
// re-escaped by encoders on the way.
type wireTrait struct {
	Type     string    `json:"type"`
	ID       string    `json:"id"`
	Doc      []byte    `json:"doc"`
	Created  time.Time `json:"created"`
	Modified time.Time `json:"modified"`
}

type wireHit struct {
	Entity wireEntity `json:"entity"`
	Rank   float64    `json:"rank,omitempty"`
}

type wireChange struct {
	Kind store.ChangeKind `json:"kind"`
	Hit  wireHit          `json:"hit"`
}

func toWireEntity(e store.Entity) wireEntity {
	w := wireEntity{ID: e.ID.String(), Traits: make([]wireTrait, len(e.Traits))}
	for i, t := range e.Traits {
		w.Traits[i] = wireTrait{Type: t.Type, ID: string(t.ID), Doc: t.Doc, Created: t.Created.UTC(), Modified: t.Modified.UTC()}
	}
	return w
}

func fromWireEntity(w wireEntity) (store.Entity, error) {
	id, err := store.ParseEntityID(w.ID)
	if err != nil {
		return store.Entity{}, err
	}
	e := store.Entity{ID: id, Traits: make([]store.Trait, len(w.Traits))}
	for i, t := range w.Traits {
		switch {
		case t.Type == "" || len(t.Type) > store.MaxType || !utf8.ValidString(t.Type):
			return store.Entity{}, fmt.Errorf("entity %s: trait type %q", id, truncate(t.Type))
		case t.ID == "" || len(t.ID) > store.MaxTraitID || !utf8.ValidString(t.ID):
			return store.Entity{}, fmt.Errorf("entity %s: trait id %q", id, truncate(t.ID))
		case len(t.Doc) > store.MaxDoc || !json.Valid(t.Doc):
			return store.Entity{}, fmt.Errorf("entity %s: trait %q: document of %d bytes is not JSON of at most %d", id, t.ID, len(t.Doc), store.MaxDoc)
		}
		e.Traits[i] = store.Trait{Type: t.Type, ID: store.TraitID(t.ID), Doc: json.RawMessage(t.Doc), Created: t.Created, Modified: t.Modified}
	}
	return e, nil
}

func toWireHit(h store.Hit) wireHit { return wireHit{Entity: toWireEntity(h.Entity), Rank: h.Rank} }

func fromWireHit(w wireHit) (store.Hit, error) {
	e, err := fromWireEntity(w.Entity)
	return store.Hit{Entity: e, Rank: w.Rank}, err
}

// encodeFrame returns f's frame body, or an error wrapping ErrTooLarge when
// it is over MaxFrame.
func encodeFrame(f frame) ([]byte, error) {
	w := wireFrame{V: Version, Ping: f.Ping, Page: f.Page, Next: f.Next, More: f.More}
	if f.Err != nil {
		w.Err = &wireError{Code: f.Err.Code, Msg: truncateMsg(f.Err.Msg)}
	}
	if f.Entity != nil {
		we := toWireEntity(*f.Entity)
		w.Entity = &we
	}
	for _, h := range f.Hits {
		w.Hits = append(w.Hits, toWireHit(h))
	}
	for _, c := range f.Changes {
		w.Changes = append(w.Changes, wireChange{Kind: c.Kind, Hit: toWireHit(c.Hit)})
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("remote: encode frame: %w", err)
	}
	if len(b) > MaxFrame {
		return nil, fmt.Errorf("remote: frame of %d bytes, over %d: %w", len(b), MaxFrame, ErrTooLarge)
	}
	return b, nil
}

// decodeFrame parses a response frame body. Errors wrap ErrProtocol or
// ErrTooLarge.
func decodeFrame(b []byte) (frame, error) {
	if len(b) > MaxFrame {
		return frame{}, fmt.Errorf("frame of %d bytes, over %d: %w", len(b), MaxFrame, ErrTooLarge)
	}
	var w wireFrame
	if err := json.Unmarshal(b, &w); err != nil {
		return frame{}, fmt.Errorf("frame: %w: %w", ErrProtocol, err)
	}
	if w.V != Version {
		return frame{}, fmt.Errorf("frame of version %d, want %d: %w", w.V, Version, ErrProtocol)
	}
	kinds := 0
	for _, set := range []bool{w.Err != nil, w.Ping, w.Entity != nil, w.Page, len(w.Changes) > 0} {
		if set {
			kinds++
		}
	}
	switch {
	case kinds != 1:
		return frame{}, fmt.Errorf("frame of %d kinds, want 1: %w", kinds, ErrProtocol)
	case (len(w.Hits) > 0 || w.Next != "") && !w.Page:
		return frame{}, fmt.Errorf("hits outside a page: %w", ErrProtocol)
	case w.More && len(w.Hits) == 0 && len(w.Changes) == 0:
		return frame{}, fmt.Errorf("a frame to be continued carries no hit or change: %w", ErrProtocol)
	case w.More && w.Next != "":
		return frame{}, fmt.Errorf("a cursor before the page's last frame: %w", ErrProtocol)
	}
	f := frame{Ping: w.Ping, Page: w.Page, Next: w.Next, More: w.More}
	if w.Err != nil {
		if len(w.Err.Msg) > MaxErrorMsg || len(w.Err.Code) > maxCode || w.Err.Code == "" {
			return frame{}, fmt.Errorf("error of code %q, message of %d bytes: %w", truncate(w.Err.Code), len(w.Err.Msg), ErrProtocol)
		}
		f.Err = &Error{Code: w.Err.Code, Msg: w.Err.Msg}
	}
	if w.Entity != nil {
		e, err := fromWireEntity(*w.Entity)
		if err != nil {
			return frame{}, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		f.Entity = &e
	}
	if len(w.Hits) > store.MaxLimit || len(w.Changes) > MaxChanges {
		return frame{}, fmt.Errorf("frame of %d hits, %d changes: %w", len(w.Hits), len(w.Changes), ErrTooLarge)
	}
	for _, wh := range w.Hits {
		h, err := fromWireHit(wh)
		if err != nil {
			return frame{}, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		f.Hits = append(f.Hits, h)
	}
	for _, wc := range w.Changes {
		if wc.Kind != store.Added && wc.Kind != store.Changed && wc.Kind != store.Removed {
			return frame{}, fmt.Errorf("change of kind %q: %w", truncate(string(wc.Kind)), ErrProtocol)
		}
		h, err := fromWireHit(wc.Hit)
		if err != nil {
			return frame{}, fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		f.Changes = append(f.Changes, store.Change{Kind: wc.Kind, Hit: h})
	}
	return f, nil
}

// writeFrame writes a frame: a uvarint length, then body.
func writeFrame(w io.Writer, body []byte) error {
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(body)), uint64(len(body)))
	_, err := w.Write(append(b, body...))
	return err
}

// readFrame reads one frame body of 1 to limit bytes. A longer frame is
// refused from its length alone; the buffer grows as the bytes arrive
// (package growbuf), so a length prefix and nothing else costs a few KiB.
// It returns io.EOF when r ends before a frame starts.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	var n uint64
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if i == 0 {
					return nil, io.EOF
				}
				return nil, fmt.Errorf("frame length cut short: %w", ErrProtocol)
			}
			return nil, err
		}
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			break
		}
		if i == maxLengthBytes-1 {
			return nil, fmt.Errorf("frame length of more than %d bytes: %w", maxLengthBytes, ErrTooLarge)
		}
	}
	if n == 0 || n > uint64(limit) {
		return nil, fmt.Errorf("frame of %d bytes, limit %d: %w", n, limit, ErrTooLarge)
	}
	b, err := growbuf.ReadFull(r, int(n), nil)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("frame of %d bytes cut short: %w", n, ErrProtocol)
		}
		return nil, err
	}
	return b, nil
}

// maxLengthBytes is the longest length prefix: 4 bytes of uvarint hold 28
// bits, more than MaxFrame and MaxRequest need.
const maxLengthBytes = 4

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// truncateMsg cuts an error message to MaxErrorMsg bytes, on a rune
// boundary.
func truncateMsg(s string) string {
	if len(s) <= MaxErrorMsg {
		return s
	}
	cut := MaxErrorMsg - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

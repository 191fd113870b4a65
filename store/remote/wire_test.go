package remote

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/exopeer/exopeer/store"
)

// TestMaxRequestHoldsTheLargestQuery: a query at every cap, every string
// of its worst bytes, encodes within MaxRequest, and decodes to itself.
func TestMaxRequestHoldsTheLargestQuery(t *testing.T) {
	worst := func(n int) string { return strings.Repeat("\x01", n) }
	ref := id(7)
	q := store.Query{
		Type: worst(store.MaxType), Match: worst(store.MaxMatch), Order: worst(store.MaxField),
		RefersTo: &ref, Asc: true, Desc: true, Limit: -1 << 62, After: worst(MaxCursor),
	}
	for range store.MaxPredicates {
		q.Where = append(q.Where, store.Predicate{Field: worst(store.MaxField), Op: store.Prefix, Value: worst(store.MaxWhere)})
	}
	for range MaxTraits {
		q.Traits = append(q.Traits, worst(store.MaxType))
	}
	for _, op := range []Op{OpQuery, OpWatch} {
		b, err := encodeRequest(request{Op: op, Query: q})
		if err != nil {
			t.Fatalf("%s at the caps: %v", op, err)
		}
		r, err := decodeRequest(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(request{Op: op, Query: q}, r); diff != "" {
			t.Fatalf("%s (-sent +got):\n%s", op, diff)
		}
	}
	q.Where = append(q.Where, q.Where[0])
	if _, err := encodeRequest(request{Op: OpQuery, Query: q}); !errors.Is(err, store.ErrQuery) {
		t.Fatalf("a query over MaxRequest: %v, want ErrQuery", err)
	}
}

func TestRequestProjections(t *testing.T) {
	for _, traits := range [][]string{nil, {}, {"a", "b"}} {
		for _, r := range []request{{Op: OpGet, ID: id(1), Traits: traits}, {Op: OpQuery, Query: store.Query{Traits: traits}}} {
			b, err := encodeRequest(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			// nil (every trait) and empty (none) must stay apart.
			if diff := cmp.Diff(r, got); diff != "" {
				t.Fatalf("%s (-sent +got):\n%s", b, diff)
			}
		}
	}
}

// TestPagesSplitAndJoin: a page over a frame is split into frames under
// the cap, and readMessage joins them back.
func TestPagesSplitAndJoin(t *testing.T) {
	var hits []store.Hit
	for i := range 40 {
		h := hit(byte(i), strings.Repeat("x", 60*i))
		h.Rank = float64(i) / 3
		hits = append(hits, h)
	}
	cs := []store.Change{added(1, "a"), removed(2), changed(3, strings.Repeat("y", 2000))}
	const frameCap = 4 << 10
	for _, tt := range []struct {
		name string
		ev   frame
	}{
		{"empty page", frame{Page: true}},
		{"one-frame page", frame{Page: true, Hits: hits[:2], Next: "cursor\x00"}},
		{"many-frame page", frame{Page: true, Hits: hits, Next: "c"}},
		{"changes", frame{Changes: cs}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bodies, err := pageFrames(tt.ev.Page, tt.ev.Hits, tt.ev.Changes, tt.ev.Next, frameCap, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "many-frame page" && len(bodies) < 10 {
				t.Fatalf("%d frames", len(bodies))
			}
			var stream bytes.Buffer
			_ = writeFrame(&stream, pingFrame) // a keep-alive before is skipped
			for _, b := range bodies {
				if len(b) > frameCap {
					t.Fatalf("frame of %d bytes, cap %d", len(b), frameCap)
				}
				if !json.Valid(b) {
					t.Fatalf("frame %q is not JSON", b)
				}
				_ = writeFrame(&stream, b)
			}
			got, err := readMessage(bufio.NewReader(&stream), func() {})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.ev, got, cmpOpts); diff != "" {
				t.Fatalf("(-sent +got):\n%s", diff)
			}
			if stream.Len() != 0 {
				t.Fatalf("%d bytes left unread", stream.Len())
			}
		})
	}
	// A message over its cap is refused, though each frame is within
	// its own.
	bodies, err := pageFrames(true, hits, nil, "", frameCap, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var stream, under bytes.Buffer
	total := 0
	for _, b := range bodies {
		_ = writeFrame(&stream, b)
		total += len(b)
	}
	under.Write(stream.Bytes())
	if _, err := readMessageCaps(bufio.NewReader(&stream), func() {}, frameCap, total-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a message of %d bytes, cap %d: %v, want ErrTooLarge", total, total-1, err)
	}
	if _, err := readMessageCaps(bufio.NewReader(&under), func() {}, frameCap, total); err != nil {
		t.Fatalf("a message of %d bytes, cap %d: %v", total, total, err)
	}
	big := hit(1, strings.Repeat("z", frameCap))
	if _, err := pageFrames(true, []store.Hit{big}, nil, "", frameCap, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a hit over a frame: %v, want ErrTooLarge", err)
	}
}

func TestReadMessageRefuses(t *testing.T) {
	many := make([]store.Hit, store.MaxLimit+1)
	for i := range many {
		many[i] = store.Hit{Entity: store.Entity{ID: store.EntityID{byte(i), byte(i >> 8), 1}}}
	}
	split, err := pageFrames(true, many, nil, "", 16<<10, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		frames [][]byte
		raw    []byte
		want   error
	}{
		{"nothing", nil, nil, ErrProtocol},
		{"a length and nothing", nil, []byte{0x80, 0x01}, ErrProtocol},
		{"a length over the cap", nil, []byte{0x81, 0x80, 0x80, 0x08}, ErrTooLarge},
		{"over MaxLimit hits across frames", split, nil, ErrTooLarge},
		{"a page cut short", [][]byte{[]byte(`{"v":1,"page":true,"hits":[{"entity":{"id":"0100000000000000000000000000000e","traits":[]}}],"more":true}`)}, nil, ErrProtocol},
		{"kinds mixed", [][]byte{[]byte(`{"v":1,"page":true,"hits":[{"entity":{"id":"0100000000000000000000000000000e","traits":[]}}],"more":true}`), []byte(`{"v":1,"changes":[{"kind":"removed","hit":{"entity":{"id":"0100000000000000000000000000000e","traits":[]}}}]}`)}, nil, ErrProtocol},
		{"a keep-alive inside", [][]byte{[]byte(`{"v":1,"page":true,"hits":[{"entity":{"id":"0100000000000000000000000000000e","traits":[]}}],"more":true}`), pingFrame}, nil, ErrProtocol},
		{"another version", [][]byte{[]byte(`{"v":2,"page":true}`)}, nil, ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stream bytes.Buffer
			for _, f := range tt.frames {
				_ = writeFrame(&stream, f)
			}
			stream.Write(tt.raw)
			_, err := readMessage(bufio.NewReader(&stream), func() {})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestErrorsMapBack(t *testing.T) {
	for _, sentinel := range []error{store.ErrQuery, store.ErrNotFound, ErrNotMember, ErrBusy, ErrTooLarge, ErrProtocol, ErrClosed, errors.New("disk on fire")} {
		local := errors.Join(errors.New("context"), sentinel)
		b, err := encodeFrame(frame{Err: errorOf(local)})
		if err != nil {
			t.Fatal(err)
		}
		f, err := decodeFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		want := sentinel
		if sentinel.Error() == "disk on fire" {
			want = ErrRemote
		}
		if !errors.Is(f.Err, want) || f.Err.Error() != local.Error() {
			t.Fatalf("%v crossed as %q (%v), want %v", local, f.Err, f.Err.Unwrap(), want)
		}
	}
	long := strings.Repeat("é", MaxErrorMsg)
	b, _ := encodeFrame(frame{Err: errorOf(errors.New(long))})
	f, err := decodeFrame(b)
	if err != nil || len(f.Err.Msg) > MaxErrorMsg || !strings.HasPrefix(long, strings.TrimSuffix(f.Err.Msg, "...")) {
		t.Fatalf("a long message crossed as %d bytes, %v", len(f.Err.Msg), err)
	}
	if e := (&Error{Code: "from the future", Msg: "m"}); !errors.Is(e, ErrRemote) {
		t.Fatal("an unknown code does not unwrap to ErrRemote")
	}
}

// FuzzDecodeRequest: decodeRequest never panics; what it accepts
// re-encodes to a request that decodes to the same.
func FuzzDecodeRequest(f *testing.F) {
	ref := id(3)
	for _, r := range []request{
		{Op: OpGet, ID: id(1)},
		{Op: OpGet, ID: id(1), Traits: []string{}},
		{Op: OpQuery, Query: store.Query{Type: "exo.note", Match: "grocery list", Where: []store.Predicate{{Field: "tags", Op: store.Eq, Value: "work"}}, Limit: 10, After: "c", Traits: []string{"exo.note"}}},
		{Op: OpWatch, Query: store.Query{RefersTo: &ref, Order: "modified", Asc: true}},
	} {
		b, err := encodeRequest(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"op":"query","query":{"traits":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("decodeRequest: %v wraps neither ErrProtocol nor ErrTooLarge", err)
			}
			return
		}
		b2, err := encodeRequest(r)
		if err != nil {
			if errors.Is(err, store.ErrQuery) {
				return // within the frame cap raw, over it once escaped
			}
			t.Fatalf("encodeRequest(%+v): %v", r, err)
		}
		r2, err := decodeRequest(b2)
		if err != nil {
			t.Fatalf("decodeRequest(%q): %v", b2, err)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzDecodeResponse: decodeFrame never panics; what it accepts
// re-encodes to a frame that decodes to the same.
func FuzzDecodeResponse(f *testing.F) {
	e := hit(1, "a").Entity
	seeds := []frame{
		{Err: &Error{Code: codeQuery, Msg: "where: no field x: store: bad query"}},
		{Ping: true},
		{Entity: &e},
		{Page: true, Hits: []store.Hit{hit(1, "a"), hit(2, "b")}, Next: "n"},
		{Page: true, Hits: []store.Hit{hit(1, "a")}, More: true},
		{Changes: []store.Change{added(1, "a"), removed(2), changed(3, "c")}},
	}
	for _, s := range seeds {
		b, err := encodeFrame(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("decodeFrame: %v wraps neither ErrProtocol nor ErrTooLarge", err)
			}
			return
		}
		b2, err := encodeFrame(fr)
		if err != nil {
			t.Fatalf("encodeFrame(%+v): %v", fr, err)
		}
		fr2, err := decodeFrame(b2)
		if err != nil {
			t.Fatalf("decodeFrame(%q): %v", b2, err)
		}
		if diff := cmp.Diff(fr, fr2, cmpOpts); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzReadMessage: readMessage, over any bytes, never panics, and what it
// returns is within the caps: one message of one kind.
func FuzzReadMessage(f *testing.F) {
	var stream bytes.Buffer
	_ = writeFrame(&stream, pingFrame)
	for _, b := range [][]byte{
		[]byte(`{"v":1,"page":true,"hits":[{"entity":{"id":"010000000000000000000000000000ee","traits":[]}}],"more":true}`),
		[]byte(`{"v":1,"page":true,"hits":[{"entity":{"id":"020000000000000000000000000000ee","traits":[]},"rank":1.5}],"next":"n"}`),
	} {
		_ = writeFrame(&stream, b)
	}
	f.Add(stream.Bytes())
	f.Add(frameOf(`{"v":1,"err":{"code":"busy","msg":"m"}}`))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readMessage(bufio.NewReader(bytes.NewReader(b)), func() {})
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("readMessage: %v wraps neither ErrProtocol nor ErrTooLarge", err)
			}
			return
		}
		if m.More || m.Ping || len(m.Hits) > store.MaxLimit || len(m.Changes) > MaxChanges {
			t.Fatalf("readMessage returned %+v", m)
		}
	})
}

package chain

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/libp2p/go-libp2p/core/peer"
)

// wireAuthors returns n made-up authors of 38 bytes, the size of an
// Ed25519 peer ID.
func wireAuthors(n int) []peer.ID {
	ids := make([]peer.ID, n)
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprintf("author %030d", i))
	}
	return ids
}

func TestAnnounceRoundTrip(t *testing.T) {
	self := newTestAuthor(t, 0).id
	ids := wireAuthors(3)
	tests := []struct {
		name string
		a    Announce
	}{
		{"empty", Announce{From: self}},
		{"one author", Announce{From: self, Len: 1, Vector: Vector{self: 1}}},
		{"three authors", Announce{From: ids[2], Len: 300, Vector: Vector{ids[2]: 100, ids[0]: 1, ids[1]: 199}}},
		{"partial", Announce{From: self, Len: 5, Partial: true, Vector: Vector{ids[0]: 5}}},
		{"largest values", Announce{From: peer.ID(strings.Repeat("x", maxAuthorLen)), Len: math.MaxUint64, Vector: Vector{ids[0]: maxCounter}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := EncodeAnnounce(tt.a, nil)
			got, err := DecodeAnnounce(b)
			if err != nil {
				t.Fatalf("DecodeAnnounce: %v", err)
			}
			if diff := cmp.Diff(tt.a, got, cmpOpts); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			if again := EncodeAnnounce(got, nil); !bytes.Equal(again, b) {
				t.Errorf("re-encoding differs")
			}
			if len(b) > MaxAnnounce {
				t.Errorf("%d bytes", len(b))
			}
		})
	}
}

func TestAnnouncePartial(t *testing.T) {
	ids := wireAuthors(400)
	v := make(Vector, len(ids))
	for i, id := range ids {
		v[id] = uint64(1 + i*7919%1000)
	}
	keep := func(id peer.ID) uint64 { return v[id] } // keep the busiest
	a := Announce{From: ids[0], Len: 12345, Vector: v}
	b := EncodeAnnounce(a, keep)
	if len(b) > MaxAnnounce {
		t.Fatalf("announce of %d bytes, limit %d", len(b), MaxAnnounce)
	}
	got, err := DecodeAnnounce(b)
	if err != nil {
		t.Fatalf("DecodeAnnounce: %v", err)
	}
	if !got.Partial || got.Len != a.Len || got.From != a.From {
		t.Errorf("got partial %v len %d from %s", got.Partial, got.Len, got.From)
	}
	if len(got.Vector) == 0 || len(got.Vector) >= len(v) {
		t.Fatalf("%d of %d authors kept", len(got.Vector), len(v))
	}
	// Every author kept has its own seq, and none dropped is busier than
	// one kept.
	least := uint64(math.MaxUint64)
	for id, seq := range got.Vector {
		if v[id] != seq {
			t.Errorf("author %s: seq %d, want %d", id, seq, v[id])
		}
		least = min(least, seq)
	}
	for id, seq := range v {
		if _, ok := got.Vector[id]; !ok && seq > least {
			t.Errorf("dropped %s at %d, kept one at %d", id, seq, least)
		}
	}
	// It is not much smaller than the limit.
	if len(b) < MaxAnnounce*3/4 {
		t.Errorf("announce of %d bytes, %d authors: room for more", len(b), len(got.Vector))
	}
	if len(v) != 400 {
		t.Errorf("EncodeAnnounce changed the Vector")
	}
	// A Vector that fits is whole even with keep.
	small := Announce{From: ids[0], Vector: make(Vector)}
	for _, id := range ids[:10] {
		small.Vector[id] = v[id]
	}
	got, err = DecodeAnnounce(EncodeAnnounce(small, keep))
	if err != nil || got.Partial || len(got.Vector) != 10 {
		t.Errorf("small announce: partial %v, %d authors, %v", got.Partial, len(got.Vector), err)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	ids := wireAuthors(MaxVectorLen)
	big := make(Vector, len(ids))
	for i, id := range ids {
		big[id] = maxCounter - uint64(i)
	}
	for _, q := range []Request{
		{},
		{Len: 7, Vector: Vector{ids[1]: 3, ids[0]: 4}},
		{Len: math.MaxUint64, Vector: big},
	} {
		b := EncodeRequest(q)
		got, err := DecodeRequest(b)
		if err != nil {
			t.Fatalf("DecodeRequest(%d authors): %v", len(q.Vector), err)
		}
		if diff := cmp.Diff(q, got, cmpOpts); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		if len(b) > MaxRequest {
			t.Errorf("request of %d bytes, limit %d", len(b), MaxRequest)
		}
	}
}

// wireMsg builds a sync message by hand.
type wireMsg struct{ writer }

func msg(magic string) *wireMsg { return &wireMsg{writer{b: []byte(magic)}} }

func (m *wireMsg) u(v uint64) *wireMsg    { m.uvarint(v); return m }
func (m *wireMsg) s(v string) *wireMsg    { m.bytes([]byte(v)); return m }
func (m *wireMsg) raw(v ...byte) *wireMsg { m.b = append(m.b, v...); return m }

// e appends a vector entry: author, sequence number, a zero digest.
func (m *wireMsg) e(author string, seq uint64) *wireMsg {
	return m.s(author).u(seq).raw(make([]byte, len(Digest{}))...)
}

func TestDecodeAnnounceRefuses(t *testing.T) {
	// An announce: magic, from, len, partial, vector.
	head := func() *wireMsg { return msg("EXCA").s("from").u(5).raw(0) }
	valid := head().u(2).e("a", 1).e("b", 2).b
	if _, err := DecodeAnnounce(valid); err != nil {
		t.Fatalf("the valid message: %v", err)
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"wrong magic", slices.Concat([]byte("EXCQ"), valid[4:])},
		{"truncated", valid[:len(valid)-1]},
		{"trailing byte", append(slices.Clone(valid), 0)},
		{"unsorted authors", head().u(2).e("b", 1).e("a", 2).b},
		{"repeated author", head().u(2).e("a", 1).e("a", 2).b},
		{"zero seq", head().u(1).e("a", 0).b},
		{"seq over the counters", head().u(1).e("a", maxCounter+1).b},
		{"empty author", head().u(1).e("", 1).b},
		{"long author", head().u(1).e(strings.Repeat("a", maxAuthorLen+1), 1).b},
		{"more authors than bytes", head().u(50).e("a", 1).b},
		{"too many authors", head().u(MaxVectorLen + 1).b},
		{"from nobody", msg("EXCA").e("", 5).raw(0).u(0).b},
		{"bad partial flag", msg("EXCA").s("from").u(5).raw(2).u(0).b},
		{"bad varint", msg("EXCA").s("from").raw(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01).b},
		{"over the broadcast limit", slices.Concat(valid, make([]byte, maxBroadcast))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if a, err := DecodeAnnounce(tt.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeAnnounce = %+v, %v; want ErrMalformed", a, err)
			}
		})
	}
}

func TestDecodeRequestRefuses(t *testing.T) {
	valid := msg("EXCQ").u(3).u(1).e("a", 1).b
	if _, err := DecodeRequest(valid); err != nil {
		t.Fatalf("the valid message: %v", err)
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"wrong magic", msg("EXCA").u(3).u(0).b},
		{"trailing byte", append(slices.Clone(valid), 1)},
		{"truncated", valid[:len(valid)-1]},
		{"unsorted authors", msg("EXCQ").u(3).u(2).e("b", 1).e("a", 1).b},
		{"zero seq", msg("EXCQ").u(3).u(1).e("a", 0).b},
		{"no vector", msg("EXCQ").u(3).b},
		{"over MaxRequest", slices.Concat(valid, make([]byte, MaxRequest))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if q, err := DecodeRequest(tt.b); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeRequest = %+v, %v; want ErrMalformed", q, err)
			}
		})
	}
}

func TestFrames(t *testing.T) {
	_, e1, e2 := twoEntries(t)
	batches := [][][]byte{{e1.Bytes(), e2.Bytes()}, nil, {e2.Bytes()}, {{}, []byte("not checked here")}}
	var stream []byte
	for _, b := range batches {
		stream = AppendFrame(stream, FrameEntries, EntriesBody(b))
	}
	stream = AppendFrame(stream, FrameDone, DoneBody(1<<40))

	r := bufio.NewReader(bytes.NewReader(stream))
	var buf []byte
	for i, want := range batches {
		kind, body, err := ReadFrame(r, buf)
		if err != nil || kind != FrameEntries {
			t.Fatalf("frame %d: kind %q, %v", i, kind, err)
		}
		buf = body
		got, err := DecodeEntries(body)
		if err != nil {
			t.Fatalf("frame %d: DecodeEntries: %v", i, err)
		}
		if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
			t.Errorf("frame %d (-want +got):\n%s", i, diff)
		}
	}
	kind, body, err := ReadFrame(r, buf)
	if err != nil || kind != FrameDone {
		t.Fatalf("done frame: kind %q, %v", kind, err)
	}
	if n, err := DecodeDone(body); err != nil || n != 1<<40 {
		t.Errorf("DecodeDone = %d, %v", n, err)
	}
	if _, _, err := ReadFrame(r, buf); err != io.EOF {
		t.Errorf("ReadFrame at the end = %v, want io.EOF", err)
	}
	// Decoded blocks are entries again.
	got, err := DecodeEntries(EntriesBody([][]byte{e1.Bytes()}))
	if err != nil {
		t.Fatal(err)
	}
	if e, err := Decode(got[0]); err != nil || !e.CID().Equals(e1.CID()) {
		t.Errorf("Decode of a framed entry: %v", err)
	}
}

func TestFrameLimits(t *testing.T) {
	frame := func(kind byte, n uint64, body []byte) []byte {
		return append(msg("").raw(kind).u(n).b, body...)
	}
	full := make([]byte, MaxFrame)
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"MaxFrame + 1", frame(FrameEntries, MaxFrame+1, nil), ErrFrameTooLarge},
		{"huge", frame(FrameDone, math.MaxUint64, nil), ErrFrameTooLarge},
		{"unknown kind", frame('X', 1, []byte{0}), ErrMalformed},
		{"truncated body", frame(FrameEntries, 10, []byte{1, 2}), ErrMalformed},
		{"truncated length", []byte{FrameEntries, 0x80}, ErrMalformed},
		{"bad length", frame(FrameEntries, 0, nil)[:1], ErrMalformed},
		{"empty", nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, body, err := ReadFrame(bufio.NewReader(bytes.NewReader(tt.b)), nil)
			if !errors.Is(err, tt.want) || body != nil {
				t.Errorf("ReadFrame = %q, %d bytes, %v; want %v", kind, len(body), err, tt.want)
			}
		})
	}
	// A frame of MaxFrame bytes is read, into the buffer given when it is
	// large enough.
	buf := make([]byte, 0, MaxFrame)
	kind, body, err := ReadFrame(bufio.NewReader(bytes.NewReader(frame(FrameEntries, MaxFrame, full))), buf)
	if err != nil || kind != FrameEntries || len(body) != MaxFrame || &body[0] != &buf[:1][0] {
		t.Errorf("ReadFrame of MaxFrame bytes: %q, %d bytes, %v", kind, len(body), err)
	}
}

func TestDecodeBodiesRefuse(t *testing.T) {
	entries := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"more blocks than bytes", msg("").u(3).s("a").b},
		{"block past the end", msg("").u(1).u(5).raw(1, 2).b},
		{"trailing byte", msg("").u(1).s("a").raw(0).b},
		{"block over MaxEntrySize", msg("").u(1).u(MaxEntrySize + 1).raw(make([]byte, MaxEntrySize+1)...).b},
		{"bad varint", []byte{0x80}},
	}
	for _, tt := range entries {
		t.Run("entries/"+tt.name, func(t *testing.T) {
			if got, err := DecodeEntries(tt.b); !errors.Is(err, ErrMalformed) || got != nil {
				t.Errorf("DecodeEntries = %d blocks, %v; want ErrMalformed", len(got), err)
			}
		})
	}
	for _, b := range [][]byte{nil, {0x80}, {1, 0}} {
		if n, err := DecodeDone(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeDone(% x) = %d, %v; want ErrMalformed", b, n, err)
		}
	}
}

// TestReadFrameAllocatesAsBytesArrive announces the largest frame and
// sends three bytes of it: reading it allocates a few KiB, not the
// megabytes announced.
func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	in := msg("").raw(FrameEntries).u(MaxFrame).raw(1, 2, 3).b
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 16
	for range runs {
		_, _, err := ReadFrame(bytes.NewReader(in), nil)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut-short frame: %v, want ErrMalformed", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 16<<10 {
		t.Errorf("%d bytes allocated per read of a %d-byte frame cut after 3 bytes", per, MaxFrame)
	}
}

// TestReadFrameDoneCap: a done frame holds one uvarint; a longer one is
// refused from its length.
func TestReadFrameDoneCap(t *testing.T) {
	ok := AppendFrame(nil, FrameDone, DoneBody(math.MaxUint64))
	if kind, body, err := ReadFrame(bytes.NewReader(ok), nil); err != nil || kind != FrameDone || len(body) != maxDoneFrame {
		t.Errorf("largest done frame: %q, %d bytes, %v", kind, len(body), err)
	}
	long := AppendFrame(nil, FrameDone, make([]byte, maxDoneFrame+1))
	if _, _, err := ReadFrame(bytes.NewReader(long), nil); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("done frame of %d bytes: %v, want ErrFrameTooLarge", maxDoneFrame+1, err)
	}
}

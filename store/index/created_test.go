package index

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/exopeer/exopeer/store"
)

// TestCreatedEarliest: a trait's Created in the index is the earliest of
// its puts' since its latest delete (of the trait or its entity; a put
// with no Created counts for none), its document the last put's, as
// store.State has it, in every arrival order of the entries (Get and
// Trait agree).
func TestCreatedEarliest(t *testing.T) {
	e := eid(1)
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	put := func(clock uint64, body string, created time.Time) entry {
		doc, _ := json.Marshal(map[string]any{"body": body})
		tr := store.Trait{Type: "exo.note", ID: "exo.note", Doc: doc, Created: created, Modified: t0.Add(time.Hour)}
		return entry{store.Pos{Clock: clock, Key: "k"}, mustEncode(t, store.PutTrait(e, tr))}
	}
	del := entry{store.Pos{Clock: 3, Key: "k"}, mustEncode(t, store.DeleteTrait(e, "exo.note"))}
	delEntity := entry{store.Pos{Clock: 3, Key: "k"}, mustEncode(t, store.DeleteEntity(e))}
	for _, c := range []struct {
		name string
		es   []entry
		want time.Time
	}{
		{"earlier first", []entry{put(1, "a", t0), put(2, "b", t0.Add(5*time.Minute))}, t0},
		{"earlier last", []entry{put(1, "a", t0.Add(5*time.Minute)), put(2, "b", t0)}, t0},
		{"zero keeps", []entry{put(1, "a", t0), put(2, "b", time.Time{})}, t0},
		{"zero alone", []entry{put(2, "b", time.Time{})}, time.Time{}},
		{"delete cuts", []entry{put(1, "a", t0), put(2, "b", t0.Add(time.Minute)), del,
			put(4, "c", t0.Add(7*time.Minute)), put(5, "d", t0.Add(9*time.Minute))}, t0.Add(7 * time.Minute)},
		{"delete, then zero", []entry{put(1, "a", t0), del, put(4, "c", time.Time{})}, time.Time{}},
		{"entity delete cuts", []entry{put(1, "a", t0), delEntity,
			put(4, "c", t0.Add(7*time.Minute)), put(5, "d", t0.Add(9*time.Minute))}, t0.Add(7 * time.Minute)},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := testRegistry(t)
			s := store.NewState(reg)
			for _, en := range c.es {
				if err := s.Apply(en.pos, en.p); err != nil {
					t.Fatal(err)
				}
			}
			want, _ := s.Get(e)
			if len(want.Traits) != 1 || !want.Traits[0].Created.Equal(c.want) {
				t.Fatalf("State: %+v, want Created %v", want, c.want)
			}
			r := rand.New(rand.NewPCG(uint64(len(c.es)), 7))
			for order := range 8 {
				es := slices.Clone(c.es)
				r.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
				ix := openIndex(t, t.TempDir(), reg)
				applyAll(t, ix, r, 0, es, 1+order%3)
				got, err := ix.Get(t.Context(), e, nil)
				if err != nil {
					t.Fatal(err)
				}
				if diff := gocmp.Diff(want, got); diff != "" {
					t.Fatalf("order %d (-State +index):\n%s", order, diff)
				}
				tr, err := ix.Trait(t.Context(), e, "exo.note")
				if err != nil || !tr.Created.Equal(c.want) {
					t.Fatalf("order %d: Trait = %+v, %v; want Created %v", order, tr, err, c.want)
				}
				if err := ix.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// FuzzDecodeFirsts: a firsts column that does not decode is an error,
// never a panic, and what decodes encodes to bytes that decode to it.
func FuzzDecodeFirsts(f *testing.F) {
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	var fs firsts
	f.Add(fs.encode())
	fs.add(at{clock: 3, key: []byte("k1"), op: 2}, t0)
	f.Add(fs.encode())
	fs.hasDel, fs.del = true, at{clock: 1, key: []byte("k0")}
	fs.add(at{clock: 9, key: []byte("k2")}, t0.Add(time.Minute))
	f.Add(fs.encode())
	f.Add([]byte{})
	f.Add([]byte{2})
	f.Add([]byte{0, 200, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := decodeFirsts(b)
		if err != nil {
			return
		}
		again, err := decodeFirsts(fs.encode())
		if err != nil {
			t.Fatalf("%x decodes to %+v, whose encoding does not decode: %v", b, fs, err)
		}
		if !gocmp.Equal(fs, again, gocmp.AllowUnexported(firsts{}, firstPut{}, at{})) {
			t.Fatalf("%x decodes to %+v, then %+v", b, fs, again)
		}
	})
}

package service

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/exopeer/exopeer/blob"
	"github.com/exopeer/exopeer/store"
)

// file makes a test file: entity id, content (the blob's root is made of
// it, so two files of the same content share one), size, and its age in
// days (older is smaller added time).
func file(id byte, content string, size int64, day int) File {
	h, err := mh.Sum([]byte(content), mh.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	return File{
		ID:    store.EntityID{id},
		Name:  content,
		Size:  size,
		Cap:   blob.Capability{Root: cid.NewCidV1(cid.Raw, h)},
		Added: time.Date(2026, 1, day, 0, 0, 0, 0, time.UTC),
	}
}

func TestChoose(t *testing.T) {
	a := file(1, "a", 40, 1) // oldest
	b := file(2, "b", 30, 2)
	c := file(3, "c", 50, 3)
	d := file(4, "d", 10, 4) // newest
	cDup := file(5, "c", 50, 3)
	tie1, tie2 := file(6, "t1", 10, 9), file(7, "t2", 10, 9)
	all := []File{a, b, c, d}
	for _, tc := range []struct {
		name   string
		files  []File
		policy string
		budget int64
		over   map[store.EntityID]Override
		want   []byte // entity ids kept
	}{
		{"all", all, PolicyAll, 0, nil, []byte{1, 2, 3, 4}},
		{"none", all, PolicyNone, 0, nil, nil},
		{"budget newest first", all, PolicyBudget, 60, nil, []byte{3, 4}},
		{"budget skips one too large, takes an older that fits", all, PolicyBudget, 95, nil, []byte{2, 3, 4}},
		{"budget exact", all, PolicyBudget, 130, nil, []byte{1, 2, 3, 4}},
		{"budget too small for any", all, PolicyBudget, 5, nil, nil},
		{"budget zero", all, PolicyBudget, 0, nil, nil},
		{"order of the input does not matter", []File{d, b, a, c}, PolicyBudget, 60, nil, []byte{3, 4}},
		{"a duplicate blob costs nothing more", []File{a, c, cDup, d}, PolicyBudget, 60, nil, []byte{3, 4, 5}},
		{"ties broken by id", []File{tie2, tie1}, PolicyBudget, 10, nil, []byte{6}},
		{"pinned by hand under none", all, PolicyNone, 0, map[store.EntityID]Override{{1}: Pinned}, []byte{1}},
		{"unpinned by hand under all", all, PolicyAll, 0, map[store.EntityID]Override{{2}: Unpinned}, []byte{1, 3, 4}},
		{"pinned by hand counts against the budget first", all, PolicyBudget, 60, map[store.EntityID]Override{{1}: Pinned}, []byte{1, 4}},
		{"pinned by hand over the budget is still kept", all, PolicyBudget, 10, map[store.EntityID]Override{{3}: Pinned}, []byte{3}},
		{"unpinned by hand frees the budget", all, PolicyBudget, 60, map[store.EntityID]Override{{3}: Unpinned}, []byte{2, 4}},
		{"unknown policy keeps only the hand-pinned", all, "weird", 100, map[store.EntityID]Override{{2}: Pinned}, []byte{2}},
		{"no files", nil, PolicyAll, 0, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.files)
			keep := Choose(tc.files, tc.policy, tc.budget, tc.over)
			var got []byte
			for id := range keep {
				got = append(got, id[0])
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
			if !slices.EqualFunc(in, tc.files, func(x, y File) bool { return x.ID == y.ID }) {
				t.Error("Choose reordered its input")
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		say  string // "" for valid
	}{
		{"zero", Config{}, ""},
		{"defaults", DefaultConfig(), ""},
		{"none", Config{Policy: PolicyNone}, ""},
		{"budget", Config{Policy: PolicyBudget, PinBudget: 1 << 30}, ""},
		{"budget without one", Config{Policy: PolicyBudget}, "needs a pin budget"},
		{"unknown policy", Config{Policy: "some"}, "not one of all, none, budget"},
		{"negative pin budget", Config{PinBudget: -1}, "pin budget -1 is negative"},
		{"negative disk budget", Config{DiskBudget: -1}, "disk budget -1 is negative"},
		{"too many fetchers", Config{Fetchers: 65}, "fetchers 65"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.say == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tc.say != "" && (err == nil || !strings.Contains(err.Error(), tc.say)):
				t.Errorf("Validate: %v, want an error saying %q", err, tc.say)
			}
		})
	}
	d := Config{}.withDefaults()
	if d.Policy != PolicyAll || d.Fetchers != 2 || d.Backoff != 5*time.Second || d.MaxBackoff != 5*time.Minute || d.Spool == "" || d.Rand == nil || d.Now == nil {
		t.Errorf("withDefaults: %+v", d)
	}
	if d := (Config{Backoff: time.Hour, MaxBackoff: time.Minute}).withDefaults(); d.MaxBackoff != time.Hour {
		t.Errorf("MaxBackoff under Backoff: %v, want raised to %v", d.MaxBackoff, time.Hour)
	}
}

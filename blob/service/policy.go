package service

import (
	"bytes"
	"slices"

	"github.com/exopeer/exopeer/store"
)

// Override is a device's own choice for one file, kept in its datastore
// (PinFile, UnpinFile): it wins over the policy.
type Override uint8

// The overrides.
const (
	// Policy: no override; the policy decides.
	Policy Override = iota
	// Pinned: kept whatever the policy (PinFile).
	Pinned
	// Unpinned: not kept whatever the policy (UnpinFile).
	Unpinned
)

// Choose returns the IDs of the files a device keeps (pins and fetches)
// under policy, with budget for PolicyBudget, given its overrides. It is
// pure: the same files give the same answer on every call.
//
//   - A file pinned by hand is kept, one unpinned by hand is not; one
//     a contact offered over the cell's budget (File.Offered) is kept
//     only pinned by hand.
//   - PolicyAll keeps the others, PolicyNone none of them.
//   - PolicyBudget first counts the files pinned by hand against the
//     budget, then walks the others newest first (by Added, then by ID)
//     and keeps each that fits in what is left of the budget: a file
//     larger than what is left is skipped, and an older, smaller one may
//     still fit. A file whose blob is already kept (the same content added
//     twice, one blob) costs nothing more.
//
// files is not modified.
func Choose(files []File, policy string, budget int64, overrides map[store.EntityID]Override) map[store.EntityID]bool {
	keep := make(map[store.EntityID]bool)
	kept := make(map[string]bool) // blob roots kept
	left := budget
	take := func(f File) {
		keep[f.ID] = true
		if root := f.Cap.Root.KeyString(); !kept[root] {
			kept[root] = true
			left -= f.Size
		}
	}
	fits := func(f File) bool { return kept[f.Cap.Root.KeyString()] || f.Size <= left }
	var rest []File
	for _, f := range files {
		switch overrides[f.ID] {
		case Pinned:
			take(f)
		case Policy:
			if !f.Offered { // a contact's file over budget: by hand only
				rest = append(rest, f)
			}
		}
	}
	switch policy {
	case PolicyAll:
		for _, f := range rest {
			take(f)
		}
	case PolicyBudget:
		slices.SortFunc(rest, func(a, b File) int {
			if c := b.Added.Compare(a.Added); c != 0 {
				return c
			}
			return bytes.Compare(a.ID[:], b.ID[:])
		})
		for _, f := range rest {
			if fits(f) {
				take(f)
			}
		}
	}
	return keep
}

package service

import (
	"context"
	"slices"
	"strings"
	"sync"

	contactservice "github.com/exopeer/exopeer/contact/service"
)

// fairSlots is the node's Config.MaxFramesIn frame slots, shared fairly
// among the contacts whose devices send: a frame takes one once its
// header has arrived, for a key (slotKey: the contacts whose lists name
// its device), and holds it until it is handled (or slowed). A key
// takes a slot only while it holds fewer than its share, the slots
// divided among the keys holding or waiting for one and one more: a
// key alone holds at most half of them, so that another contact's
// frame finds one at once, and as more keys wait the holders' share
// shrinks, the slots freed going to those under theirs. The maps have
// an entry per key holding or waiting: at most the slots plus the
// streams waiting (bounded by the resource manager).
type fairSlots struct {
	mu   sync.Mutex
	max  int
	used int
	held map[string]int
	wait map[string]int
	// wake is closed and replaced whenever a slot is freed or a waiter
	// leaves (a share may have grown).
	wake chan struct{}
}

func newFairSlots(n int) *fairSlots {
	return &fairSlots{max: n, held: map[string]int{}, wait: map[string]int{}, wake: make(chan struct{})}
}

// share is the slots a key may hold, the keys holding or waiting
// counted with k among them.
func (f *fairSlots) shareLocked(k string) int {
	keys := len(f.held)
	for w := range f.wait {
		if f.held[w] == 0 {
			keys++
		}
	}
	if f.held[k] == 0 && f.wait[k] == 0 {
		keys++
	}
	return max(1, f.max/(keys+1))
}

// tryLocked takes a slot for k when one is free and k is under its share.
func (f *fairSlots) tryLocked(k string) bool {
	if f.used >= f.max || f.held[k] >= f.shareLocked(k) {
		return false
	}
	f.used++
	f.held[k]++
	return true
}

// take takes a slot for k, waiting for one (see fairSlots), or returns
// false when ctx ends first.
func (f *fairSlots) take(ctx context.Context, k string) bool {
	f.mu.Lock()
	if f.tryLocked(k) {
		f.mu.Unlock()
		return true
	}
	f.wait[k]++
	defer func() {
		f.mu.Lock()
		if f.wait[k]--; f.wait[k] <= 0 {
			delete(f.wait, k)
		}
		f.broadcastLocked()
		f.mu.Unlock()
	}()
	for {
		ch := f.wake
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
		f.mu.Lock()
		if f.tryLocked(k) {
			f.mu.Unlock()
			return true
		}
	}
}

// give frees a slot k took.
func (f *fairSlots) give(k string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used--
	if f.held[k]--; f.held[k] <= 0 {
		delete(f.held, k)
	}
	f.broadcastLocked()
}

func (f *fairSlots) broadcastLocked() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// inUse is the slots taken.
func (f *fairSlots) inUse() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used
}

// slotKey is the key a device's frames take the node's frame slots
// under: the cell keys of the contacts whose lists name it (as the
// quotas charge them), sorted; each is 32 bytes, so their joining is
// unambiguous.
func slotKey(cs []contactservice.Contact) string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = string(c.Cell())
	}
	slices.Sort(ids)
	return strings.Join(ids, "")
}

package peer

import (
	"context"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
)

// stalledGet is a datastore whose Get waits until release is closed.
type stalledGet struct {
	ds.Datastore
	entered chan struct{}
	release chan struct{}
}

func (s *stalledGet) Get(ctx context.Context, k ds.Key) ([]byte, error) {
	close(s.entered)
	<-s.release
	return s.Datastore.Get(ctx, k)
}

// TestInvWindowsRendezvousNotHeldByStoreRead: the cell and contacts call
// the windows' Rendezvous with their own lock held, and it only notes the
// change; while the first announce reads the stored issued time (a disk
// read), Rendezvous must not wait for that read.
func TestInvWindowsRendezvousNotHeldByStoreRead(t *testing.T) {
	store := &stalledGet{Datastore: dssync.MutexWrap(ds.NewMapDatastore()), entered: make(chan struct{}), release: make(chan struct{})}
	w, err := newInvWindows(&rzLog{}, store, seedKeyF(t, 2), time.Now, true, (&sent{}).broadcast, func(peer.ID) bool { return true }, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Rendezvous(cellInvite)
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		w.send(t.Context())
	}()
	<-store.entered
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Rendezvous(cellInvite)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		close(store.release)
		<-sendDone
		t.Fatal("Rendezvous waited for the window's store read (the cell's lock held meanwhile)")
	}
	close(store.release)
	<-sendDone
}

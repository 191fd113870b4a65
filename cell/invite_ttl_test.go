package cell_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/crypto"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/cell"
)

// TestInviteTTL: an invite lives at most cell.MaxInviteTTL. A longer TTL
// is refused with ErrInviteTTL (before, one of more than about 236 years
// overflowed its stored expiry and the invite was dropped at the next
// start); the longest is accepted, and its invite is still open after a
// restart.
func TestInviteTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mn := mocknet.New()
		defer func() {
			if err := mn.Close(); err != nil {
				t.Errorf("mocknet Close: %v", err)
			}
			time.Sleep(time.Minute) // let the host's timers run out
		}()
		h := sha256.Sum256([]byte("cell invite ttl test key"))
		key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(h[:]))
		if err != nil {
			t.Fatal(err)
		}
		host, err := mn.AddPeer(key, ma.StringCast("/ip4/10.0.0.1/tcp/4777"))
		if err != nil {
			t.Fatal(err)
		}
		store := dssync.MutexWrap(ds.NewMapDatastore())
		start := func() *cell.Service {
			t.Helper()
			s, err := cell.New(cell.Options{Host: host, Key: key, Datastore: store, Config: cell.Config{Name: "admin"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			return s
		}
		s := start()
		if _, err := s.Create(ctx, "home", "admin"); err != nil {
			t.Fatal(err)
		}
		for _, ttl := range []time.Duration{cell.MaxInviteTTL + time.Nanosecond, 250 * 365 * 24 * time.Hour} {
			if _, _, err := s.Invite(cell.InviteOptions{TTL: ttl}); !errors.Is(err, cell.ErrInviteTTL) {
				t.Errorf("Invite with TTL %v: %v, want ErrInviteTTL", ttl, err)
			}
		}
		code, exp, err := s.Invite(cell.InviteOptions{TTL: cell.MaxInviteTTL})
		if err != nil {
			t.Fatalf("Invite with TTL %v: %v", cell.MaxInviteTTL, err)
		}
		if want := time.Now().Add(cell.MaxInviteTTL); !exp.Equal(want) {
			t.Errorf("expiry %v, want %v", exp, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour)
		s = start()
		defer func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
		if !cell.OpenInvite(s, code.Nameplate) {
			t.Errorf("after a restart, the invite of nameplate %04d is not open", code.Nameplate)
		}
	})
}

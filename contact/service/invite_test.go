package service

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/store"
)

// TestInviteNotListed: a device on its cell's roster but not yet on the
// cell's signed device list (it joined after an admin last signed it)
// neither invites nor accepts (ErrNotListed: the other cell would refuse
// its card); a device on the list invites.
func TestInviteNotListed(t *testing.T) {
	ctx := t.Context()
	mn := mocknet.New()
	t.Cleanup(func() { _ = mn.Close() })
	cellKey := ed25519.NewKeyFromSeed(append(make([]byte, ed25519.SeedSize-1), 0xa1))
	cs := &chainStore{}
	var members []cell.Member
	var ids []peer.ID
	for i := range 2 {
		seed := make([]byte, ed25519.SeedSize)
		seed[0], seed[1] = byte(i+1), 0xa0
		k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		h, err := mn.AddPeer(k, nil)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, cell.Member{Peer: h.ID()})
		ids = append(ids, h.ID())
	}
	hosts := mn.Hosts()
	slices.SortFunc(members, func(a, b cell.Member) int { return strings.Compare(string(a.Peer), string(b.Peer)) })
	r := &cell.Roster{Cell: cellKey.Public().(ed25519.PublicKey), Name: "Alice", Version: 3, Members: members}
	// The list an admin signed at version 2 names the first device only.
	l := contact.NewDeviceList(r.Cell, 2, ids[:1])
	if err := l.Sign(cellKey); err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(devicesDoc{Cell: hex.EncodeToString(r.Cell), Version: 2, List: base64.StdEncoding.EncodeToString(l.Encode())})
	if err != nil {
		t.Fatal(err)
	}
	v := &view{s: cs, at: -1}
	if _, err := v.Put(ctx, devicesEntity(r.Cell), []store.Trait{{Type: DevicesType, Doc: doc}}); err != nil {
		t.Fatal(err)
	}
	svcs := map[peer.ID]*Service{}
	for i, h := range hosts {
		s, err := New(Options{Host: h, Cell: memberCell{r}, Store: &view{s: cs, by: i, at: -1}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		svcs[h.ID()] = s
	}
	listed, unlisted := svcs[ids[0]], svcs[ids[1]]
	if _, _, err := unlisted.Invite(ctx, 0); !errors.Is(err, ErrNotListed) {
		t.Errorf("the unlisted device invites: %v, want ErrNotListed", err)
	}
	if _, err := unlisted.Accept(ctx, "1234-abandon-ability-able", ""); !errors.Is(err, ErrNotListed) {
		t.Errorf("the unlisted device accepts: %v, want ErrNotListed", err)
	}
	if _, _, err := listed.Invite(ctx, 0); err != nil {
		t.Errorf("the listed device invites: %v", err)
	}
}

package server_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// otherCard is the card text of another cell (cell key from seed byte
// b), its device list of version v over one device.
func otherCard(t *testing.T, b byte, v uint64, name string) string {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	key := ed25519.NewKeyFromSeed(seed)
	seed[1] = byte(v)
	nk, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(nk)
	if err != nil {
		t.Fatal(err)
	}
	l := contact.NewDeviceList(key.Public().(ed25519.PublicKey), v, []peer.ID{id})
	if err := l.Sign(key); err != nil {
		t.Fatal(err)
	}
	return (&contact.Card{Name: name, Devices: l}).Text()
}

// TestContactsOverTheAPI: the cell's card, and adding, listing, verifying
// and removing contacts, each refusal a problem of its own type.
func TestContactsOverTheAPI(t *testing.T) {
	dir, _, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, err = c.Contacts(ctx)
	wantProblemType(t, "contacts in no cell", err, http.StatusConflict, api.ProblemNotInCell)
	_, err = c.CellCard(ctx, "")
	wantProblemType(t, "card in no cell", err, http.StatusConflict, api.ProblemNotInCell)
	if _, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "home", Member: "laptop"}); err != nil {
		t.Fatal(err)
	}

	card, err := c.CellCard(ctx, "")
	if err != nil || card.Name != "home" || card.Version != 1 || len(card.Devices) != 1 || len(card.Cell) != 64 {
		t.Fatalf("CellCard = %+v, %v", card, err)
	}
	if parsed, err := contact.ParseCard(card.Text); err != nil || parsed.Name != "home" {
		t.Fatalf("the card's text: %v", err)
	}
	if named, err := c.CellCard(ctx, "Ann"); err != nil || named.Name != "Ann" {
		t.Errorf("CellCard(Ann) = %+v, %v", named, err)
	}
	_, err = c.CellCard(ctx, "bad\x01name")
	wantProblemType(t, "card with a bad name", err, http.StatusBadRequest, api.ProblemBadContactName)

	_, err = c.ContactAdd(ctx, card.Text, "")
	wantProblemType(t, "own card", err, http.StatusConflict, api.ProblemOwnCard)
	_, err = c.ContactAdd(ctx, "hello", "")
	wantProblemType(t, "not a card", err, http.StatusBadRequest, api.ProblemBadCard)
	bob2 := otherCard(t, 2, 2, "Bob")
	swap := "a"
	if bob2[40] == 'a' {
		swap = "b"
	}
	typo := bob2[:40] + swap + bob2[41:]
	if _, err := c.ContactAdd(ctx, typo, ""); !errors.Is(err, client.ErrBadCard) || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("a mistyped card: %v, want bad-card saying the checksum", err)
	}

	added, err := c.ContactAdd(ctx, bob2, "")
	if err != nil || !added.New || added.Contact.Name != "Bob" || added.Contact.Version != 2 || added.Contact.Verified {
		t.Fatalf("ContactAdd = %+v, %v", added, err)
	}
	if again, err := c.ContactAdd(ctx, bob2, ""); err != nil || again.New || again.Updated {
		t.Errorf("the same card again = %+v, %v; want nothing done", again, err)
	}
	_, err = c.ContactAdd(ctx, otherCard(t, 2, 1, "Bob"), "")
	wantProblemType(t, "older card", err, http.StatusConflict, api.ProblemStaleCard)
	_, err = c.ContactAdd(ctx, otherCard(t, 3, 1, "Carol"), "Bob")
	wantProblemType(t, "name taken", err, http.StatusConflict, api.ProblemContactNameTaken)
	_, err = c.ContactAdd(ctx, otherCard(t, 3, 1, "Carol"), " Carol")
	wantProblemType(t, "bad name", err, http.StatusBadRequest, api.ProblemBadContactName)
	if _, err := c.ContactAdd(ctx, otherCard(t, 3, 1, "Carol"), "Aunt Carol"); err != nil {
		t.Fatal(err)
	}
	cs, err := c.Contacts(ctx)
	if err != nil || len(cs) != 2 || cs[0].Name != "Aunt Carol" || cs[1].Name != "Bob" {
		t.Fatalf("Contacts = %+v, %v", cs, err)
	}

	sn, err := c.ContactVerify(ctx, "Bob", false)
	if err != nil || len(sn.Number) != 60 || len(sn.Grouped) != 71 || sn.Contact.Verified {
		t.Fatalf("ContactVerify = %+v, %v", sn, err)
	}
	if ok, err := c.ContactVerify(ctx, "Bob", true); err != nil || ok.Number != sn.Number || !ok.Contact.Verified {
		t.Fatalf("ContactVerify confirm = %+v, %v", ok, err)
	}
	if got, err := c.Contact(ctx, "Bob"); err != nil || !got.Verified {
		t.Errorf("Contact(Bob) after confirm = %+v, %v", got, err)
	}
	_, err = c.ContactVerify(ctx, "Dan", false)
	wantProblemType(t, "verify no one", err, http.StatusNotFound, api.ProblemNoContact)

	if gone, err := c.ContactRemove(ctx, "Bob"); err != nil || gone.Name != "Bob" {
		t.Fatalf("ContactRemove = %+v, %v", gone, err)
	}
	_, err = c.Contact(ctx, "Bob")
	wantProblemType(t, "removed contact", err, http.StatusNotFound, api.ProblemNoContact)
	_, err = c.ContactRemove(ctx, "Bob")
	wantProblemType(t, "removed twice", err, http.StatusNotFound, api.ProblemNoContact)
}

// TestContactInviteOverTheAPI: a node's invite, accepted by a node of
// another cell, makes each the other's contact; the invite's and the
// accept's refusals are problems of their own types.
func TestContactInviteOverTheAPI(t *testing.T) {
	dir, admin, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "Alice", Member: "laptop"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ContactInvite(ctx, api.ContactInviteRequest{TTL: api.Duration(25 * time.Hour)})
	wantProblemType(t, "invite for 25 h", err, http.StatusBadRequest, api.ProblemBadRequest)
	_, err = c.ContactAccept(ctx, api.ContactAcceptRequest{Code: "not a code"})
	wantProblemType(t, "accept of no code", err, http.StatusBadRequest, api.ProblemBadCode)
	_, err = c.ContactAccept(ctx, api.ContactAcceptRequest{Code: "0001-abandon-abandon-abandon", Timeout: api.Duration(time.Second)})
	wantProblemType(t, "accept with no inviter", err, http.StatusBadGateway, api.ProblemTimeout)

	inv, err := c.ContactInvite(ctx, api.ContactInviteRequest{})
	if err != nil {
		t.Fatal(err)
	}
	bopts := nodetest.Options(t, 12, nodetest.AddrInfo(admin))
	bopts.Store.Dir = t.TempDir() // contacts are store entities
	bob := nodetest.Start(t, bopts)
	if _, err := bob.Cell().Create(ctx, "Bob", "phone"); err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	added, err := bob.Contacts().Accept(actx, inv.Code, "")
	if err != nil || added.Contact.Name != "Alice" {
		t.Fatalf("Accept = %+v, %v", added, err)
	}
	got, err := c.Contact(ctx, "Bob")
	if err != nil || len(got.Devices) != 1 || got.Devices[0] != bob.ID().String() {
		t.Fatalf("Alice's contact Bob = %+v, %v", got, err)
	}
}

package simnet

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	contactservice "github.com/exopeer/exopeer/contact/service"
)

// TestContacts: contacts are entities of the cell's store, so a contact
// one device adds, updates, verifies or removes is seen so by the cell's
// other device; an admin signs the cell's device list as its roster
// grows, so the card any member prints carries the current devices; a
// newer card replaces a contact's device list and an older one is
// refused; both cells compute the same safety number.
func TestContacts(t *testing.T) {
	const seed = 71
	dirs := make([]string, 5)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		// Cell A: a0 (admin) and a1 (a store member); cell B: b0, later
		// b1; cell C: c0.
		a0 := addNode(t, ctx, n, NodeConfig{Dir: dirs[0]})
		if _, err := a0.Peer().Cell().Create(ctx, "Alice", "a0"); err != nil {
			fail("Create: %v", err)
		}
		a1 := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{a0}, Dir: dirs[1]})
		join(t, ctx, a0, a1, cell.RoleChain|cell.RoleStore)
		waitAlive(t, []*Node{a0, a1}, time.Minute)
		b0 := addNode(t, ctx, n, NodeConfig{Dir: dirs[2]})
		if _, err := b0.Peer().Cell().Create(ctx, "Bob", "b0"); err != nil {
			fail("Create: %v", err)
		}
		c0 := addNode(t, ctx, n, NodeConfig{Dir: dirs[3]})
		if _, err := c0.Peer().Cell().Create(ctx, "Carol", "c0"); err != nil {
			fail("Create: %v", err)
		}
		ac0, ac1, bc := a0.Peer().Contacts(), a1.Peer().Contacts(), b0.Peer().Contacts()

		// A cell that never used contacts has no device list.
		if _, err := ac1.Card(ctx, ""); !errors.Is(err, contactservice.ErrNoDeviceList) {
			fail("a1's card before any: %v", err)
		}
		// a0, the admin, signs it when asked for the card; a1, a member,
		// then prints the cell's card too.
		if c, err := ac0.Card(ctx, "Alice A."); err != nil || c.Name != "Alice A." || c.Devices.Version != 2 {
			fail("a0's card: %+v, %v", c, err)
		}
		var cardA *contact.Card
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			c, err := ac1.Card(ctx, "")
			cardA = c
			return err == nil && c.Devices.Version == 2
		}); !ok {
			fail("a1 has no card of its cell's roster version 2")
		}
		if cardA.Name != "Alice" || !cardA.Devices.Has(a0.ID) || !cardA.Devices.Has(a1.ID) {
			fail("a1's card: %s with %v", cardA.Name, cardA.Devices.Devices)
		}

		cardB1, err := bc.Card(ctx, "")
		if err != nil {
			fail("b0 Card: %v", err)
		}
		added, err := ac0.Add(ctx, cardB1.Text(), "")
		if err != nil || !added.New || added.Contact.Name != "Bob" {
			fail("a0 adds Bob: %+v, %v", added, err)
		}
		if _, err := ac0.Add(ctx, cardA.Text(), ""); !errors.Is(err, contactservice.ErrSelf) {
			fail("a0 adds its own cell: %v", err)
		}
		cardC, err := c0.Peer().Contacts().Card(ctx, "")
		if err != nil {
			fail("c0 Card: %v", err)
		}
		if _, err := ac0.Add(ctx, cardC.Text(), "Bob"); !errors.Is(err, contactservice.ErrNameTaken) {
			fail("a0 adds Carol as Bob: %v", err)
		}
		// a1 lists the contact a0 added.
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			c, err := ac1.Get(ctx, "Bob")
			return err == nil && c.Devices.Version == 1
		}); !ok {
			fail("a1 does not list the contact a0 added")
		}

		// Bob's cell grows: b0 signs a new list by itself (the card b1,
		// a member, prints has it), and the new card replaces the old
		// list on both of Alice's devices.
		b1 := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{b0}, Dir: dirs[4]})
		join(t, ctx, b0, b1, cell.RoleChain)
		var cardB2 *contact.Card
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			c, err := b1.Peer().Contacts().Card(ctx, "")
			cardB2 = c
			return err == nil && c.Devices.Version == 2
		}); !ok {
			fail("b0 did not sign its cell's device list of version 2")
		}
		if !cardB2.Devices.Has(b1.ID) || !cardB2.Devices.Has(b0.ID) {
			fail("b1's card: %v", cardB2.Devices.Devices)
		}
		if up, err := ac1.Add(ctx, cardB2.Text(), ""); err != nil || !up.Updated {
			fail("a1 adds Bob's newer card: %+v, %v", up, err)
		}
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			c, err := ac0.Get(ctx, "Bob")
			return err == nil && c.Devices.Version == 2 && c.Devices.Has(b1.ID)
		}); !ok {
			fail("a0 does not hold Bob's newer device list")
		}
		if _, err := ac0.Add(ctx, cardB1.Text(), ""); !errors.Is(err, contact.ErrStale) {
			fail("a0 adds Bob's older card: %v", err)
		}

		// Safety numbers: the same on both sides; a confirmation on one
		// device is seen on the other.
		if _, err := bc.Add(ctx, cardA.Text(), ""); err != nil {
			fail("b0 adds Alice: %v", err)
		}
		_, na, err := ac0.Verify(ctx, "Bob", true)
		if err != nil {
			fail("a0 Verify: %v", err)
		}
		_, nb, err := bc.Verify(ctx, "Alice", false)
		if err != nil || na != nb || len(na) != contact.SafetyDigits {
			fail("safety numbers %q and %q (%v)", na, nb, err)
		}
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			c, err := ac1.Get(ctx, "Bob")
			return err == nil && c.Verified
		}); !ok {
			fail("a1 does not see Bob verified")
		}

		// a1 removes Bob; a0 no longer lists him.
		if _, err := ac1.Remove(ctx, "Bob"); err != nil {
			fail("a1 Remove: %v", err)
		}
		if _, err := ac1.Remove(ctx, "Bob"); !errors.Is(err, contactservice.ErrNoContact) {
			fail("a1 removes Bob twice: %v", err)
		}
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			cs, err := ac0.List(ctx)
			return err == nil && !slices.ContainsFunc(cs, func(c contactservice.Contact) bool { return c.Name == "Bob" })
		}); !ok {
			fail("a0 still lists Bob")
		}
	})
}

// TestContactInvite: two cells exchange cards by a one-time code over
// CPace: a mistyped code is refused (and counted), the right one makes
// each cell the other's contact, and the code is good once only.
func TestContactInvite(t *testing.T) {
	const seed = 72
	dirs := []string{t.TempDir(), t.TempDir()}
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		a := addNode(t, ctx, n, NodeConfig{Dir: dirs[0]})
		if _, err := a.Peer().Cell().Create(ctx, "Alice", "a0"); err != nil {
			fail("Create: %v", err)
		}
		b := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{a}, Dir: dirs[1]})
		if _, err := b.Peer().Cell().Create(ctx, "Bob", "b0"); err != nil {
			fail("Create: %v", err)
		}
		ac, bc := a.Peer().Contacts(), b.Peer().Contacts()
		code, _, err := ac.Invite(ctx, 0)
		if err != nil {
			fail("Invite: %v", err)
		}
		typo := code
		typo.Words[1] = (typo.Words[1] + 1) % 2048
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = bc.Accept(tctx, typo.String(), "")
		cancel()
		if !errors.Is(err, contactservice.ErrNoInviter) || !errors.Is(err, contact.ErrWrongCode) {
			fail("Accept of a mistyped code: %v, want no inviter, the inviter's answer a wrong code", err)
		}

		actx, cancel := context.WithTimeout(ctx, time.Minute)
		added, err := bc.Accept(actx, code.String(), "")
		cancel()
		if err != nil || !added.New || added.Contact.Name != "Alice" {
			fail("Accept: %+v, %v", added, err)
		}
		cardA, err := ac.Card(ctx, "")
		if err != nil || !added.Contact.Cell().Equal(cardA.Cell()) {
			fail("b holds another cell's key than a's card: %v", err)
		}
		got, err := ac.Get(ctx, "Bob")
		if err != nil || !got.Devices.Has(b.ID) {
			fail("a's contact Bob: %+v, %v", got, err)
		}
		_, na, err := ac.Verify(ctx, "Bob", false)
		if err != nil {
			fail("Verify: %v", err)
		}
		if _, nb, err := bc.Verify(ctx, "Alice", false); err != nil || na != nb {
			fail("safety numbers %s and %s (%v)", na, nb, err)
		}

		// The code was used: a second accept finds no invite.
		tctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		_, err = bc.Accept(tctx, code.String(), "Alice again")
		cancel()
		if !errors.Is(err, contactservice.ErrNoInviter) || !errors.Is(err, contact.ErrNoInvite) {
			fail("a second accept of the code: %v, want no inviter, the answer no invite", err)
		}
	})
}

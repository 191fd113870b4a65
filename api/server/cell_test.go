package server_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/internal/nodetest"
)

// TestCellOverTheAPI forms a cell of two real nodes on loopback through the
// control API, as `exopeer cell` does, and restarts the joiner: it comes
// back from its stored roster and keys.
func TestCellOverTheAPI(t *testing.T) {
	dir, admin, _ := nodetest.Serve(t)
	c, err := client.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := c.Cell(ctx); err == nil || !strings.Contains(err.Error(), "no cell") || !errors.Is(err, client.ErrNotInCell) {
		t.Errorf("Cell before create: %v, want 'in no cell'", err)
	}
	v, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "home", Member: "laptop"})
	if err != nil || !v.Admin || v.Version != 1 || len(v.Members) != 1 || v.Members[0].State != "alive" {
		t.Fatalf("CellCreate = %+v, %v", v, err)
	}
	if _, err := c.CellCreate(ctx, api.CellCreateRequest{Name: "again"}); !errors.Is(err, client.ErrAlreadyInCell) {
		t.Errorf("a second cell: %v, want ErrAlreadyInCell", err)
	}
	if _, err := c.CellInvite(ctx, api.CellInviteRequest{Roles: "admin"}); err == nil {
		t.Error("an invite granted the admin role")
	}
	var se *client.StatusError
	if _, err := c.CellInvite(ctx, api.CellInviteRequest{TTL: api.Duration(cell.MaxInviteTTL + time.Second)}); !errors.As(err, &se) ||
		se.Status != http.StatusBadRequest || se.Type != api.ProblemBadRequest || !strings.Contains(se.Detail, "TTL too long") {
		t.Errorf("an invite for longer than %v: %v, want a 400 bad request saying the TTL is too long", cell.MaxInviteTTL, err)
	}
	inv, err := c.CellInvite(ctx, api.CellInviteRequest{Roles: "chain,relay", TTL: api.Duration(time.Minute)})
	if err != nil || inv.Roles != "chain,relay" {
		t.Fatalf("CellInvite = %+v, %v", inv, err)
	}
	if _, err := cell.ParseCode(inv.Code); err != nil {
		t.Fatalf("invite code %q: %v", inv.Code, err)
	}

	jopts := nodetest.Options(t, 11, nodetest.AddrInfo(admin))
	jopts.Cell = nodetest.FastCell
	joiner := nodetest.Start(t, jopts)
	jctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := joiner.Cell().Join(jctx, inv.Code, "phone"); err != nil {
		t.Fatalf("Join: %v", err)
	}
	bothAlive := func() bool {
		v, err := c.Cell(ctx)
		if err != nil || len(v.Members) != 2 {
			return false
		}
		for _, m := range v.Members {
			if m.State != "alive" {
				return false
			}
		}
		return true
	}
	nodetest.Eventually(t, 20*time.Second, "both members alive on the admin", bothAlive)
	v, _ = c.Cell(ctx)
	for _, m := range v.Members {
		if m.Peer == joiner.ID().String() && (m.Name != "phone" || m.Roles != "chain,relay" || m.LastSeen == nil) {
			t.Errorf("joiner listed as %+v", m)
		}
	}

	// Restart the joiner on its datastore: it is still a member and
	// gossips again with no join.
	if err := joiner.Close(); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 30*time.Second, "the admin seeing the stopped joiner not alive", func() bool { return !bothAlive() })
	again := nodetest.Start(t, jopts)
	if r := again.Cell().Roster(); r == nil || !r.Has(again.ID()) {
		t.Fatalf("restarted joiner lost its cell: %v", r)
	}
	nodetest.Eventually(t, 30*time.Second, "both members alive again", bothAlive)
}

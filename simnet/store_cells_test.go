package simnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/exopeer/exopeer/cell"
	xpeer "github.com/exopeer/exopeer/peer"
	"github.com/exopeer/exopeer/store"
	"github.com/exopeer/exopeer/store/service"
)

// TestStoreCutoffAndCells: a store member that indexed a removed member's
// entries past its cut-off (it synced with it before it heard of the
// removal) reindexes when its chain drops them, and ends with the same
// answers as the others; the removed member closes its cell's index, and
// when it joins another cell it indexes that cell's chain in a directory
// of its own.
func TestStoreCutoffAndCells(t *testing.T) {
	const seed = 43
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
		admin := addNode(t, ctx, n, NodeConfig{Dir: dirs[0]})
		ro, err := admin.Peer().Cell().Create(ctx, "one", "admin")
		if err != nil {
			fail("Create: %v", err)
		}
		nodes := []*Node{admin}
		for i := 1; i < 4; i++ {
			nd := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{admin}, Dir: dirs[i]})
			join(t, ctx, admin, nd, cell.RoleChain|cell.RoleStore)
			nodes = append(nodes, nd)
		}
		waitAlive(t, nodes, time.Minute)
		stay, lag, gone := nodes[1], nodes[2], nodes[3]
		putNotes(t, gone, "before", 5)
		putNotes(t, admin, "admin", 2)
		awaitLength(t, nodes, 7, time.Minute)

		n.Partition([]*Node{admin, stay}, []*Node{lag, gone})
		if err := removeNow(ctx, admin, gone.ID); err != nil {
			fail("Remove: %v", err)
		}
		putNotes(t, gone, "after", 5)
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			st, err := lag.Peer().Store().Status(ctx)
			return err == nil && st.Next == 12 && st.Entities == 12
		}); !ok {
			fail("the lagging member did not index the removed member's late entries")
		}
		putNotes(t, lag, "lag", 2)
		putNotes(t, stay, "stay", 3)
		n.Heal()

		up := []*Node{admin, stay, lag}
		if _, ok := waitUntil(3*time.Minute, 100*time.Millisecond, func() bool {
			var ref []byte
			for i, nd := range up {
				st, err := nd.Peer().Store().Status(ctx)
				if err != nil || st.Next != 12 || st.Behind != 0 {
					return false
				}
				b := mustJSON(mustQuery(t, ctx, nd, store.Query{Type: "exo.note", Order: store.OrderCreated}))
				if i == 0 {
					ref = b
				} else if !bytes.Equal(b, ref) {
					return false
				}
			}
			return true
		}); !ok {
			for _, nd := range up {
				st, err := nd.Peer().Store().Status(ctx)
				t.Logf("node %d: %+v %v", nd.Index, st, err)
			}
			fail("the members' indexes did not agree after the heal")
		}
		if pg := mustQuery(t, ctx, lag, store.Query{Match: "after"}); len(pg.Hits) != 0 {
			fail("the lagging member's index holds %d entities written past the cut-off", len(pg.Hits))
		}

		// The removed member learns of its removal: its store says so.
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			_, err := gone.Peer().Store().Status(ctx)
			return errors.Is(err, service.ErrNotMember)
		}); !ok {
			fail("the removed member's store still answers")
		}

		// It joins another cell: a new index, in a directory of that
		// cell's, with that cell's entities only.
		other := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{gone}, Dir: dirs[4]})
		ro2, err := other.Peer().Cell().Create(ctx, "two", "other")
		if err != nil {
			fail("Create: %v", err)
		}
		join(t, ctx, other, gone, cell.RoleChain|cell.RoleStore)
		w, err := gone.Peer().Store().Put(ctx, store.EntityID{}, []store.Trait{noteDoc("in the new cell")})
		if err != nil {
			fail("Put in the new cell: %v", err)
		}
		pg := mustQuery(t, ctx, gone, store.Query{Type: "exo.note"})
		if len(pg.Hits) != 1 || pg.Hits[0].Entity.ID != w.Entity {
			fail("the new cell's query on the joiner: %s", mustJSON(pg))
		}
		for _, id := range []string{ro.ID(), ro2.ID()} {
			if _, err := os.Stat(filepath.Join(dirs[3], xpeer.StoreDir, id)); err != nil {
				fail("index dir of cell %s: %v", id, err)
			}
		}
	})
}

// join makes nd join admin's cell with roles.
func join(t *testing.T, ctx context.Context, admin, nd *Node, roles cell.Role) {
	t.Helper()
	code, _, err := admin.Peer().Cell().Invite(cell.InviteOptions{Roles: roles})
	if err != nil {
		t.Fatalf("seed %d: Invite: %v", nd.net.Seed(), err)
	}
	jctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := nd.Peer().Cell().Join(jctx, code.String(), fmt.Sprintf("node-%d", nd.Index)); err != nil {
		t.Fatalf("seed %d: node %d Join: %v", nd.net.Seed(), nd.Index, err)
	}
}

// putNotes makes nd put count new notes with bodies "prefix i".
func putNotes(t *testing.T, nd *Node, prefix string, count int) {
	t.Helper()
	for i := range count {
		if _, err := nd.Peer().Store().Put(context.Background(), store.EntityID{}, []store.Trait{noteDoc(fmt.Sprintf("%s %d", prefix, i))}); err != nil {
			t.Fatalf("seed %d: node %d: Put: %v", nd.net.Seed(), nd.Index, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func noteDoc(body string) store.Trait {
	return store.Trait{Type: "exo.note", Doc: mustJSON(map[string]string{"body": body})}
}

func mustQuery(t *testing.T, ctx context.Context, nd *Node, q store.Query) store.Page {
	t.Helper()
	pg, err := nd.Peer().Store().Query(ctx, q)
	if err != nil {
		t.Fatalf("seed %d: node %d: Query %+v: %v", nd.net.Seed(), nd.Index, q, err)
	}
	return pg
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the store's shapes and string maps always marshal
	}
	return b
}

package simnet

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"testing"
	"testing/synctest"
	"time"

	blockformat "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/blob"
	blobservice "github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/blocks"
	"github.com/exopeer/exopeer/cell"
	messages "github.com/exopeer/exopeer/message/service"
)

// TestShareFile: Alice shares a file with Bob, whose cell has two
// devices. Alice's device serves the blob's blocks to both of Bob's
// devices and to nobody else (Carol, another contact of Alice's, and a
// stranger get none); both of Bob's devices list the file, named as
// Alice sent it, from Alice, and hold it whole, with the same bytes;
// the message that carried it is in both conversations. Then Bob's
// cell removes its second device: once Alice holds Bob's newer list
// (his next message carries it), that device is refused the blocks.
func TestShareFile(t *testing.T) {
	const seed = 1405
	dirs := make([]string, 5)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	data := bytes.Repeat([]byte("a file Alice shares with Bob. "), (1<<20+7)/30)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		a := newPerson(t, ctx, n, "Alice", "alice", NodeConfig{Dir: dirs[0]})
		b := newPerson(t, ctx, n, "Bob", "bob1", NodeConfig{Bootstrap: []*Node{a.devices[0]}, Dir: dirs[1]})
		alice, bob1 := a.devices[0], b.devices[0]
		bob2 := addDevice(t, ctx, n, b, cell.RoleChain|cell.RoleStore, NodeConfig{Bootstrap: []*Node{bob1}, Dir: dirs[2]})
		c := newPerson(t, ctx, n, "Carol", "carol", NodeConfig{Bootstrap: []*Node{alice}, Dir: dirs[3]})
		carol := c.devices[0]
		stranger := addNode(t, ctx, n, NodeConfig{Bootstrap: []*Node{alice}, Dir: dirs[4]})
		waitAlive(t, b.devices, time.Minute)
		befriend(t, ctx, a, b)
		befriend(t, ctx, a, c)

		f, err := alice.Peer().Blobs().AddFileReader(ctx, "notes.txt", bytes.NewReader(data), blobservice.AddOptions{})
		if err != nil {
			fail("AddFileReader: %v", err)
		}
		m, err := alice.Peer().Messages().SendFile(ctx, "Bob", messages.File{Cap: f.Cap.String(), Name: f.Name, Size: f.Size, Media: f.MediaType}, "")
		if err != nil || m.State != messages.Delivered || m.File == nil || m.Text != "notes.txt" {
			fail("SendFile: %+v, %v", m, err)
		}

		// Served to Bob's devices, the whole DAG; to nobody else.
		dag := dagCIDs(t, alice, f.Cap.Root)
		served := func(p peer.ID) (all, none bool) {
			all, none = true, true
			for _, c := range dag {
				if alice.Peer().Blobs().MayRead(p, c) {
					none = false
				} else {
					all = false
				}
			}
			return all, none
		}
		for _, nd := range []*Node{bob1, bob2} {
			if all, _ := served(nd.ID); !all {
				fail("Alice does not serve every block of the shared file to Bob's node %d", nd.Index)
			}
		}
		for _, nd := range []*Node{carol, stranger} {
			if _, none := served(nd.ID); !none {
				fail("Alice serves blocks of the file shared with Bob to node %d", nd.Index)
			}
		}

		aliceHex := hex.EncodeToString(alice.Peer().Cell().Roster().Cell)
		for _, nd := range []*Node{bob1, bob2} {
			var got blobservice.File
			if _, ok := waitUntil(5*time.Minute, time.Second, func() bool {
				fs, err := nd.Peer().Blobs().Files(ctx)
				if err != nil || len(fs) != 1 {
					return false
				}
				got = fs[0]
				return got.Held == f.Held && got.Pinned
			}); !ok {
				fail("Bob's node %d: file %+v, want it held whole (%d bytes)", nd.Index, got, f.Held)
			}
			if got.Name != "notes.txt" || got.From != aliceHex || got.Cap.String() != f.Cap.String() || got.Size != f.Size {
				fail("Bob's node %d lists %+v", nd.Index, got)
			}
			r, err := nd.Peer().Blobs().Open(ctx, got.Cap)
			if err != nil {
				fail("Open on node %d: %v", nd.Index, err)
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(b, data) {
				fail("node %d reads %d bytes (%v), not the file", nd.Index, len(b), err)
			}
			holdsFile(t, seed, ctx, nd, "Alice", f.Cap.String())
		}
		holdsFile(t, seed, ctx, alice, "Bob", f.Cap.String())

		// Bob's cell removes its second device; his next message brings
		// Alice the newer list: the removed device gets nothing more.
		if _, err := bob1.Peer().Cell().Remove(ctx, bob2.ID, true); err != nil {
			fail("Remove: %v", err)
		}
		if _, ok := waitUntil(2*time.Minute, time.Second, func() bool {
			c, err := bob1.Peer().Contacts().Card(ctx, "")
			return err == nil && !c.Devices.Has(bob2.ID)
		}); !ok {
			fail("Bob's card still names the removed device")
		}
		if _, err := bob1.Peer().Messages().Send(ctx, "Alice", "my second device is gone"); err != nil {
			fail("Send: %v", err)
		}
		if _, ok := waitUntil(2*time.Minute, time.Second, func() bool {
			_, none := served(bob2.ID)
			return none
		}); !ok {
			fail("Alice still serves the shared file to Bob's removed device")
		}
		if all, _ := served(bob1.ID); !all {
			fail("Alice no longer serves the shared file to Bob's device")
		}
	})
}

// dagCIDs returns the CIDs of every block of the blob under root, which
// nd holds.
func dagCIDs(t *testing.T, nd *Node, root cid.Cid) []cid.Cid {
	t.Helper()
	var cs []cid.Cid
	sess := nd.Peer().Exchange().NewSession(context.Background(), blocks.SessionOptions{})
	defer sess.Close()
	if err := blob.Walk(context.Background(), sess, root, func(b blockformat.Block) error {
		cs = append(cs, b.Cid())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return cs
}

// holdsFile fails unless nd's conversation with name has a message
// sharing the blob of capability c.
func holdsFile(t *testing.T, seed uint64, ctx context.Context, nd *Node, name, c string) {
	t.Helper()
	if _, ok := waitUntil(time.Minute, time.Second, func() bool {
		ms, err := conversation(ctx, nd, name)
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.File != nil && m.File.Cap == c {
				return true
			}
		}
		return false
	}); !ok {
		t.Fatalf("seed %d: node %d has no message sharing the file with %s", seed, nd.Index, name)
	}
}

// TestShareFileOverBudget: Bob's cell fetches by itself at most its
// budget of one contact's files (blobservice Config.ShareBudget): a file
// Alice shares past it is listed as offered and not fetched, until Bob
// pins it; it then comes whole. The record survives a restart of Bob's
// device, still offered. Past Bob's number of Alice's files
// (MaxSharedFiles), a message sharing one is taken and the file is
// listed in it only.
func TestShareFileOverBudget(t *testing.T) {
	const seed = 1406
	dirs := []string{t.TempDir(), t.TempDir()}
	data := bytes.Repeat([]byte("over Bob's budget for Alice. "), (1<<20+5)/29)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		n := New(Config{Seed: seed})
		defer settle(t, n)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
		}
		a := newPerson(t, ctx, n, "Alice", "alice", NodeConfig{Dir: dirs[0]})
		b := newPerson(t, ctx, n, "Bob", "bob", NodeConfig{Bootstrap: []*Node{a.devices[0]}, Dir: dirs[1], Files: blobservice.Config{ShareBudget: 512 << 10, MaxSharedFiles: 1}})
		befriend(t, ctx, a, b)
		alice, bob := a.devices[0], b.devices[0]
		f, err := alice.Peer().Blobs().AddFileReader(ctx, "big.bin", bytes.NewReader(data), blobservice.AddOptions{})
		if err != nil {
			fail("AddFileReader: %v", err)
		}
		if _, err := alice.Peer().Messages().SendFile(ctx, "Bob", messages.File{Cap: f.Cap.String(), Name: f.Name, Size: f.Size}, ""); err != nil {
			fail("SendFile: %v", err)
		}
		file := func() blobservice.File {
			fs, err := bob.Peer().Blobs().Files(ctx)
			if err != nil || len(fs) != 1 {
				return blobservice.File{}
			}
			return fs[0]
		}
		if _, ok := waitUntil(time.Minute, time.Second, func() bool { return file().Offered }); !ok {
			fail("Bob's device lists %+v, want the file offered", file())
		}
		time.Sleep(3 * time.Minute)
		if got := file(); got.Held != 0 || got.Pinned {
			fail("an offered file was fetched: %+v", got)
		}
		if err := n.Crash(bob); err != nil {
			fail("Crash: %v", err)
		}
		if err := n.Restart(ctx, bob); err != nil {
			fail("Restart: %v", err)
		}
		if _, ok := waitUntil(time.Minute, time.Second, func() bool { return file().Offered }); !ok {
			fail("after a restart Bob's device lists %+v", file())
		}
		if err := bob.Peer().Blobs().PinFile(ctx, "big.bin"); err != nil {
			fail("PinFile: %v", err)
		}
		if _, ok := waitUntil(5*time.Minute, time.Second, func() bool { got := file(); return got.Pinned && got.Held == f.Held }); !ok {
			fail("the offered file pinned by hand: %+v, want %d bytes held", file(), f.Held)
		}

		// Past Bob's number of files for Alice: the message is taken, the
		// file is in it only, not in Bob's files.
		g, err := alice.Peer().Blobs().AddFileReader(ctx, "more.bin", bytes.NewReader(data[:1000]), blobservice.AddOptions{})
		if err != nil {
			fail("AddFileReader: %v", err)
		}
		m, err := alice.Peer().Messages().SendFile(ctx, "Bob", messages.File{Cap: g.Cap.String(), Name: g.Name, Size: g.Size}, "")
		if err != nil || m.State != messages.Delivered {
			fail("SendFile past Bob's number of files: %+v, %v", m, err)
		}
		holdsFile(t, seed, ctx, bob, "Alice", g.Cap.String())
		if fs, err := bob.Peer().Blobs().Files(ctx); err != nil || len(fs) != 1 {
			fail("Bob lists %d files (%v), want 1", len(fs), err)
		}
	})
}

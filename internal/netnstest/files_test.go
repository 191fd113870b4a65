package netnstest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/internal/netnstest"
)

// fileLimit bounds one step on a 64 MiB file (an add, a read of a range):
// how long it may take on a loaded machine, not a speed the test asserts.
const fileLimit = 2 * time.Minute

// TestFiles runs three real nodes: a adds a 64 MiB file (`exopeer files
// add`); b and c, with policy none (on demand), list it (`files ls
// --json`); b reads a 40 MiB range of it (`files cat --offset --length`),
// fetched from a; c reads the same range through the control API, slowly,
// and a is killed (SIGKILL) once c has read 8 MiB of it: the rest comes
// from b. What c read matches the file byte for byte.
func TestFiles(t *testing.T) {
	lan := netnstest.New(t, "a", "b", "c")
	lazy := []string{"EXOPEER_BLOBS_POLICY=none"}
	a := lan.Start(t, lan.Host("a"))
	b := lan.StartEnv(t, lan.Host("b"), lazy)
	c := lan.StartEnv(t, lan.Host("c"), lazy)

	const seed = 64
	data := make([]byte, 64<<20)
	r := rand.New(rand.NewPCG(seed, seed>>1))
	for i := 0; i < len(data); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	path := filepath.Join(t.TempDir(), "film.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	const off, length = 17<<20 + 12345, 40 << 20
	want := data[off : off+length]

	view, err := call(t, func(ctx context.Context) (api.CellView, error) {
		return a.Client.CellCreate(ctx, api.CellCreateRequest{Name: "files-test", Member: "node-a"})
	})
	if err != nil {
		t.Fatalf("node a: cell create: %v", err)
	}
	for _, n := range []*netnstest.Node{b, c} {
		code := invite(t, a)
		got, err := call(t, func(ctx context.Context) (api.CellView, error) {
			return n.Client.CellJoin(ctx, api.CellJoinRequest{Code: code, Member: "node-" + n.Name, Timeout: api.Duration(cellLimit)})
		})
		if err != nil || got.ID != view.ID {
			t.Fatalf("node %s: cell join: %+v, %v", n.Name, got, err)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), fileLimit)
	defer cancel()
	res, err := a.Exopeer(ctx, "files", "add", path)
	if err != nil || res.Code != 0 {
		t.Fatalf("node a: files add: %v, %v", res, err)
	}
	t.Logf("node a: files add of 64 MiB took %v", res.Took.Round(time.Millisecond))

	var file api.FileView
	waitAll(t, []*netnstest.Node{b, c}, "film.bin listed, not held", cellLimit, func(n *netnstest.Node) error {
		ctx, cancel := context.WithTimeout(t.Context(), callLimit)
		defer cancel()
		res, err := n.Exopeer(ctx, "files", "ls", "--json")
		if err != nil || res.Code != 0 {
			return fmt.Errorf("files ls: %v, %v", res, err)
		}
		var fs []api.FileView
		if err := json.Unmarshal([]byte(res.Stdout), &fs); err != nil {
			return fmt.Errorf("files ls --json: %w: %q", err, res.Stdout)
		}
		if len(fs) != 1 || fs[0].Name != "film.bin" || fs[0].Size != int64(len(data)) {
			return fmt.Errorf("files ls lists %+v", fs)
		}
		if fs[0].Pinned || fs[0].Held != 0 {
			return fmt.Errorf("with policy none, yet %+v", fs[0])
		}
		file = fs[0]
		return nil
	})

	// b reads the range: fetched from a, the only holder.
	res, err = b.Exopeer(ctx, "files", "cat", "film.bin", "--offset", fmt.Sprint(off), "--length", fmt.Sprint(length))
	if err != nil || res.Code != 0 {
		t.Fatalf("node b: files cat: exit %d, %v; stderr %q", res.Code, err, res.Stderr)
	}
	if !bytes.Equal([]byte(res.Stdout), want) {
		t.Fatalf("node b: files cat gave %d bytes unlike the file's range", len(res.Stdout))
	}
	t.Logf("node b: files cat of 40 MiB took %v", res.Took.Round(time.Millisecond))

	// c reads it slowly; a dies a fifth of the way in.
	content, err := c.Client.BlobContent(ctx, file.Cap, off, length)
	if err != nil {
		t.Fatalf("node c: content: %v", err)
	}
	defer content.Close()
	got := make([]byte, 0, length)
	buf := make([]byte, 1<<20)
	for len(got) < 8<<20 {
		n, err := content.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("node c: read %d bytes, then %v", len(got), err)
		}
	}
	st, err := call(t, c.Client.BlobStatus)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("node a killed after c read %d bytes (c held %d bytes of blocks)", len(got), st.Usage.Bytes)
	rest, err := io.ReadAll(content)
	got = append(got, rest...)
	if err != nil {
		t.Fatalf("node c: read %d bytes, then %v (after a was killed)", len(got), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("node c read %d bytes unlike the file's %d-byte range at %d", len(got), length, off)
	}
	after, err := call(t, c.Client.BlobStatus)
	if err != nil {
		t.Fatal(err)
	}
	if after.Usage.Bytes <= st.Usage.Bytes {
		t.Errorf("node c held %d bytes when a was killed and %d after reading the rest: nothing came after", st.Usage.Bytes, after.Usage.Bytes)
	}
	t.Logf("node c: %d bytes fetched after a was killed", after.Usage.Bytes-st.Usage.Bytes)
}

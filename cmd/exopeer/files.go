package main

// The files of the cell (exo.file entities whose content is a blob) and
// raw blobs. The node does the work: it reads the paths of `files add`
// on its own disk (the control API is local), fetches and serves blobs;
// these verbs show its progress on a bar (stderr, a terminal only) and
// write what it serves where they are told.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
)

func cmdFilesAdd(ctx context.Context, cmd *cli.Command) error {
	paths, err := args(ctx, cmd, 1, -1)
	if err != nil {
		return err
	}
	name := cmd.String("name")
	upload := len(paths) == 1 && paths[0] == "-"
	switch {
	case upload && name == "":
		return usage(cmd, "files add - (stdin) wants the file's --name")
	case !upload && name != "":
		return usage(cmd, "--name names stdin's file (files add - --name NAME)")
	case !upload && len(paths) > 1 && containsDash(paths):
		return usage(cmd, "- (stdin) goes alone")
	}
	for i, p := range paths {
		if !upload {
			if paths[i], err = filepath.Abs(p); err != nil {
				return err
			}
		}
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	bar := newProgress(stderr(cmd), "adding", 0)
	show := func(l api.ImportLine) { bar.set(l.Done, l.Total) }
	var files []api.FileView
	if upload {
		var f api.FileView
		f, err = c.FilesUpload(ctx, name, stdin, -1, show)
		files = []api.FileView{f}
	} else {
		files, err = c.FilesAdd(ctx, paths, show)
	}
	bar.done(err == nil)
	if err != nil && len(files) == 0 {
		return err
	}
	// Files added before a failure are the cell's: they are printed, then
	// the failure.
	if cmd.Bool("json") {
		if perr := printJSON(stdout(cmd), files); perr != nil {
			return perr
		}
		return err
	}
	for _, f := range files {
		if _, perr := fmt.Fprintf(stdout(cmd), "%s  %s\n", f.Cap, printable(f.Name)); perr != nil {
			return perr
		}
	}
	return err
}

func containsDash(ss []string) bool {
	for _, s := range ss {
		if s == "-" {
			return true
		}
	}
	return false
}

func cmdFilesLs(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	files, err := c.Files(ctx)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), files)
	}
	if len(files) == 0 {
		_, err := fmt.Fprintln(stdout(cmd), "no files")
		return err
	}
	tw := tabwriter.NewWriter(stdout(cmd), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tADDED\tBY\tHERE")
	for _, f := range files {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", short(printable(f.Name), 60), sizeText(f.Size),
			f.Added.Local().Format(time.DateTime), shortPeer(f.AddedBy), here(f))
	}
	return tw.Flush()
}

// here says what the node holds of a file: pinned (kept), and how much of
// it is on the node.
func here(f api.FileView) string {
	held := "none held"
	switch {
	case f.Held >= f.Size && f.Size > 0 || f.Size == 0 && f.Held > 0:
		held = "held"
	case f.Held > 0:
		held = fmt.Sprintf("%s held", sizeText(f.Held))
	}
	if f.Pinned {
		return "pinned, " + held
	}
	if f.Offered {
		// A contact's file over the budget: `files pin` fetches it.
		return "offered, " + held
	}
	return held
}

// target is what `files get` and `files cat` read: a file of the cell, or
// a capability that is none.
type target struct {
	name, cap string
	size      int64 // -1: unknown
	dir       bool
}

// resolve finds NAME|CAP: a file of the cell by name, entity ID or
// capability, else a capability (a raw blob).
func resolve(ctx context.Context, c *client.Client, s string) (target, error) {
	qctx, cancel := queryContext(ctx)
	defer cancel()
	f, err := c.File(qctx, s)
	if err == nil {
		return target{name: f.Name, cap: f.Cap, size: f.Size, dir: strings.Contains(f.Cap, "?dir")}, nil
	}
	if !errors.Is(err, client.ErrNoFile) || !strings.HasPrefix(s, "exo://") {
		return target{}, err
	}
	p, perr := client.CapPath(s)
	if perr != nil {
		return target{}, perr
	}
	root, _, _ := strings.Cut(p, ".")
	return target{name: root, cap: s, size: -1, dir: strings.HasSuffix(p, ".dir")}, nil
}

func cmdFilesGet(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	t, err := resolve(ctx, c, a[0])
	if err != nil {
		return err
	}
	out := cmd.String("output")
	if out == "" {
		if !safeName(t.name) {
			return fmt.Errorf("the file's name %q is not one to write here: give -o PATH", t.name)
		}
		out = t.name
		if _, err := os.Lstat(out); err == nil {
			return fmt.Errorf("%s exists: give -o PATH to write over it, or elsewhere", out)
		}
	}
	return getBlob(ctx, cmd, c, t, out)
}

// getBlob fetches the blob of t whole, then writes it to out ("-":
// stdout; a directory's tree cannot go there).
func getBlob(ctx context.Context, cmd *cli.Command, c *client.Client, t target, out string) error {
	if t.dir && out == "-" {
		return usage(cmd, "%s is a folder: give -o DIR", t.name)
	}
	bar := newProgress(stderr(cmd), "fetching", 0)
	last, err := c.BlobFetch(ctx, t.cap, func(l api.FetchLine) { bar.set(l.Bytes, l.TotalBytes) })
	bar.done(err == nil)
	if err != nil {
		return err
	}
	if bar != nil && len(last.Peers) > 0 {
		// Beside the bar, on the terminal: who sent what.
		fmt.Fprintln(stderr(cmd), fetchedFrom(last))
	}
	if t.dir {
		return writeTree(ctx, cmd, c, t.cap, out, 0)
	}
	return writeBlob(ctx, cmd, c, t.cap, out)
}

// fetchedFrom says what each peer sent, most first.
func fetchedFrom(l api.FetchLine) string {
	ids := make([]string, 0, len(l.Peers))
	for id := range l.Peers {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(l.Peers[b].Bytes, l.Peers[a].Bytes), strings.Compare(a, b))
	})
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%s %s", shortPeer(id), sizeText(l.Peers[id].Bytes))
	}
	return fmt.Sprintf("fetched %s in %d blocks: %s", sizeText(l.Bytes), l.Blocks, strings.Join(parts, ", "))
}

// maxDepth bounds the folders within folders a get writes: a listing is
// written by whoever added it.
const maxDepth = 64

// writeTree writes the directory blob cap as the folder dir, and what it
// holds under it.
func writeTree(ctx context.Context, cmd *cli.Command, c *client.Client, cap, dir string, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: folders deeper than %d", dir, maxDepth)
	}
	entries, err := c.BlobEntries(ctx, cap)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		// The names are the adder's: none may leave the folder.
		if !safeName(e.Name) {
			return fmt.Errorf("%s: the folder holds an entry named %q, not a file's name", dir, e.Name)
		}
		p := filepath.Join(dir, e.Name)
		if strings.Contains(e.Cap, "?dir") {
			err = writeTree(ctx, cmd, c, e.Cap, p, depth+1)
		} else {
			err = writeBlob(ctx, cmd, c, e.Cap, p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// safeName tells a name that is one file's in one folder.
func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

// writeBlob writes the content of the blob cap to out ("-": stdout): to
// a file beside it first, renamed once whole.
func writeBlob(ctx context.Context, cmd *cli.Command, c *client.Client, cap, out string) error {
	body, err := c.BlobContent(ctx, cap, 0, -1)
	if err != nil {
		return err
	}
	defer body.Close()
	if out == "-" {
		_, err := io.Copy(stdout(cmd), body)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, there is none
	bar := newProgress(stderr(cmd), "writing "+filepath.Base(out), body.Size)
	n, err := io.Copy(tmp, bar.reader(body))
	if err == nil && body.Size >= 0 && n != body.Size {
		err = fmt.Errorf("the node sent %d bytes of %d", n, body.Size)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	bar.done(err == nil)
	if err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return os.Rename(tmp.Name(), out)
}

func cmdFilesCat(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	off, length := cmd.Int64("offset"), int64(-1)
	if cmd.IsSet("length") {
		length = cmd.Int64("length")
	}
	if off < 0 || cmd.IsSet("length") && length < 0 {
		return usage(cmd, "--offset and --length are bytes, 0 or more")
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	t, err := resolve(ctx, c, a[0])
	if err != nil {
		return err
	}
	if t.dir {
		return fmt.Errorf("%s is a folder: files get it", t.name)
	}
	body, err := c.BlobContent(ctx, t.cap, off, length)
	if err != nil {
		return err
	}
	defer body.Close()
	n, err := io.Copy(stdout(cmd), body)
	if err == nil && n != body.Length {
		err = fmt.Errorf("the node sent %d bytes of %d", n, body.Length)
	}
	return err
}

func cmdFilesRm(ctx context.Context, cmd *cli.Command) error {
	return fileVerb(ctx, cmd, "removed", (*client.Client).FileRemove)
}

func cmdFilesPin(ctx context.Context, cmd *cli.Command) error {
	return fileVerb(ctx, cmd, "pinned", (*client.Client).FilePin)
}

func cmdFilesUnpin(ctx context.Context, cmd *cli.Command) error {
	return fileVerb(ctx, cmd, "unpinned", (*client.Client).FileUnpin)
}

// fileVerb runs a call on one file, NAME, and says what it did.
func fileVerb(ctx context.Context, cmd *cli.Command, did string, call func(*client.Client, context.Context, string) (api.FileView, error)) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	f, err := call(c, ctx, a[0])
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), f)
	}
	_, err = fmt.Fprintf(stdout(cmd), "%s %s (%s)\n", did, printable(f.Name), sizeText(f.Size))
	return err
}

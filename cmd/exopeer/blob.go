package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
)

// Raw blobs: content addressed by a capability alone, no file entity.

func cmdBlobAdd(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	// The file first: a path that does not open fails before the node
	// is asked; stdin is read once a node runs.
	var (
		r    io.Reader = stdin
		size int64     = -1
	)
	if a[0] != "-" {
		f, err := os.Open(a[0])
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		if info.IsDir() {
			return fmt.Errorf("%s is a folder: a raw blob is one file (files add takes folders)", a[0])
		}
		if info.Mode().IsRegular() {
			size = info.Size()
		}
		r = f
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	bar := newProgress(stderr(cmd), "adding", size)
	b, err := c.BlobAdd(ctx, r, size, cmd.Bool("public"), func(l api.ImportLine) { bar.set(l.Done, l.Total) })
	bar.done(err == nil)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), b)
	}
	_, err = fmt.Fprintln(stdout(cmd), b.Cap)
	return err
}

func cmdBlobGet(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	p, err := client.CapPath(a[0])
	if err != nil {
		return usage(cmd, "%v", err)
	}
	out := cmd.String("output")
	if out == "" {
		out = "-"
	}
	root, _, _ := strings.Cut(p, ".")
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	return getBlob(ctx, cmd, c, target{name: root, cap: a[0], size: -1, dir: strings.HasSuffix(p, ".dir")}, out)
}

func cmdBlobExport(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	if _, err := client.CapPath(a[0]); err != nil {
		return usage(cmd, "%v", err)
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	car, err := c.BlobExport(ctx, a[0])
	if err != nil {
		return err
	}
	defer car.Close()
	out := cmd.String("output")
	if out == "" || out == "-" {
		_, err := io.Copy(stdout(cmd), car)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bar := newProgress(stderr(cmd), "exporting", 0)
	n, err := io.Copy(tmp, bar.reader(car))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	bar.done(err == nil)
	if err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout(cmd), "wrote %s (%s)\n", out, sizeText(n))
	return err
}

func cmdBlobGC(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	st, err := c.BlobGC(ctx)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), st)
	}
	_, err = fmt.Fprintf(stdout(cmd), "deleted %d blocks (%s freed), kept %d, in %s\n", st.Deleted, sizeText(st.Freed), st.Kept, st.Took)
	return err
}

func cmdBlobStatus(ctx context.Context, cmd *cli.Command) error {
	return query(ctx, cmd, (*client.Client).BlobStatus, func(out io.Writer, st api.BlobStatus) error {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		policy := st.Policy
		if st.Policy == "budget" {
			policy += " of " + sizeText(st.Budget)
		}
		fmt.Fprintf(tw, "pin policy\t%s\n", policy)
		fmt.Fprintf(tw, "blob blocks\t%d (%s)\n", st.Usage.Blocks, sizeText(st.Usage.Bytes))
		if st.DiskBudget > 0 {
			fmt.Fprintf(tw, "disk budget\t%s (collected past it)\n", sizeText(st.DiskBudget))
		}
		fmt.Fprintf(tw, "pinned roots\t%d\n", st.Pinned)
		if st.Fetching > 0 {
			fmt.Fprintf(tw, "fetching\t%d roots\n", st.Fetching)
		}
		fmt.Fprintf(tw, "files of the cell\t%d\n", st.Files)
		if sc := st.Scrub; sc.Unclean {
			state := "done"
			if !sc.Done {
				state = "under way"
			}
			fmt.Fprintf(tw, "scrub after an unclean stop\t%s: %d block files checked, %d damaged deleted\n", state, sc.Checked, sc.Deleted)
			if sc.Err != "" {
				fmt.Fprintf(tw, "scrub error\t%s (tried again)\n", sc.Err)
			}
		}
		if st.Scrub.Recheck {
			fmt.Fprintf(tw, "files held whole\tto be checked again after an unclean stop\n")
		}
		if st.Incomplete > 0 {
			fmt.Fprintf(tw, "files found incomplete\t%d (fetched again)\n", st.Incomplete)
		}
		if st.Scrub.SyncErr != "" {
			fmt.Fprintf(tw, "sync error\t%s (the next start scrubs)\n", st.Scrub.SyncErr)
		}
		return tw.Flush()
	})
}

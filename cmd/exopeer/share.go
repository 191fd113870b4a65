package main

// Sharing a file with a contact: the file becomes one of the cell's (if
// it is a path), then a message carries its capability.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api"
)

func shareVerb() *cli.Command {
	return &cli.Command{
		Name:      "share",
		Usage:     "share a file with a contact: a path is added to the cell's files first; the contact's devices fetch it from this cell's",
		ArgsUsage: "PATH|FILE NAME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "text", Usage: "the message's text (default: the file's name)"},
			jsonFlag(),
		},
		Action: action(cmdShare),
	}
}

func cmdShare(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 2, 2)
	if err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	file := a[0]
	if _, serr := os.Stat(file); serr == nil {
		// A path on this machine's disk: added first (the control API
		// is local, so the node reads it).
		abs, err := filepath.Abs(file)
		if err != nil {
			return err
		}
		bar := newProgress(stderr(cmd), "adding", 0)
		files, err := c.FilesAdd(ctx, []string{abs}, func(l api.ImportLine) { bar.set(l.Done, l.Total) })
		bar.done(err == nil)
		if err != nil {
			return err
		}
		if len(files) != 1 {
			return fmt.Errorf("adding %s made %d files", file, len(files))
		}
		file = files[0].ID
	}
	sctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	m, err := c.Share(sctx, a[1], file, cmd.String("text"))
	if err != nil {
		return err
	}
	out := stdout(cmd)
	if cmd.Bool("json") {
		return printJSON(out, m)
	}
	name := file
	if m.File != nil {
		name = m.File.Name
	}
	_, err = fmt.Fprintf(out, "shared %s with %s (message %s)\n", printable(name), a[1], m.ID)
	return err
}

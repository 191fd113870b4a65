package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api/server"
	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/peer"
)

// stopTimeout bounds a graceful stop after Ctrl-C or SIGTERM.
const stopTimeout = 2 * time.Second

// stopHook, if set (by a test, before Main), runs on the stop path just
// before the node is closed: a hook that blocks plays a node that hangs on
// stop.
var stopHook func()

func cmdInit(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	dir, err := dataDir(cmd)
	if err != nil {
		return err
	}
	created, err := datadir.Init(dir)
	if err != nil {
		return err
	}
	out := stdout(cmd)
	if len(created) == 0 {
		fmt.Fprintf(out, "data dir %s is already set up; nothing changed\n", dir)
		return nil
	}
	for _, f := range created {
		fmt.Fprintf(out, "created %s\n", f)
	}
	fmt.Fprintf(out, "edit %s, then start the node with: exopeer run --dir %s\n", filepath.Join(dir, datadir.ConfigFile), dir)
	return nil
}

func cmdRun(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	dir, err := dataDir(cmd)
	if err != nil {
		return err
	}
	// A bad flag or variable is refused before the data dir is made.
	if _, _, _, err := resolveConfig(cmd, dir); err != nil {
		return err
	}
	d, err := datadir.OpenDir(dir)
	if err != nil {
		return err
	}
	// Until the stop path takes the dir over, closing it is ours.
	closeDir := true
	defer func() {
		if closeDir {
			d.Close()
		}
	}()

	// OpenDir read config.toml; the environment and the flags go over it.
	if _, d.Config, _, err = resolveConfig(cmd, dir); err != nil {
		return err
	}
	stdout, stderr := stdout(cmd), stderr(cmd)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: d.Config.Level()}))
	// The blob store's syncer and scrub started with the dir; from now on
	// they log here.
	d.Blobs.SetLogger(log.With("part", "blobstore"))
	for _, p := range d.MadePrivate {
		log.Warn("other users could enter this dir; made it private (0700)", "path", p)
	}
	if path := os.Getenv(cpuProfileEnv); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	opts, err := peer.NodeOptions(d, log) // --bootstrap is in d.Config
	if err != nil {
		return err
	}
	node, err := peer.New(opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := node.Start(ctx); err != nil {
		node.Close()
		return err
	}
	api := server.New(node, d.Token, log.With("part", "api"))
	if err := api.Start(d.Config.API.Listen, filepath.Join(dir, datadir.APIFile)); err != nil {
		node.Close()
		return err
	}

	fmt.Fprintf(stdout, "exopeer %s\n", peer.Version)
	fmt.Fprintf(stdout, "peer ID      %s\n", node.ID())
	fmt.Fprintf(stdout, "data dir     %s\n", dir)
	for i, a := range node.Addrs() {
		label := "listening on"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(stdout, "%-12s %s\n", label, a)
	}
	fmt.Fprintf(stdout, "control API  http://%s (token in %s)\n", api.Addr(), filepath.Join(dir, datadir.TokenFile))
	fmt.Fprintln(stdout, "press Ctrl-C to stop")

	<-ctx.Done()
	stop() // a second Ctrl-C now kills the process at once
	closeDir = false
	return shutdown(log, stdout, api, node, d)
}

// shutdown stops the API, the node and the data dir, in that order, within
// stopTimeout; it owns d. The dir is closed only once the node has stopped:
// if the node does not stop in time, shutdown returns an error saying so,
// so that the process never hangs on exit, and leaves the dir open and
// locked under the node (leveldb's synced journal keeps it consistent when
// the process exits) rather than close the store under it; should the node
// stop later, the dir is closed then.
func shutdown(log *slog.Logger, stdout io.Writer, api *server.Server, node *peer.Node, d *datadir.Dir) error {
	log.Info("stopping")
	began := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		errAPI := api.Close(sctx)
		if stopHook != nil {
			stopHook()
		}
		errNode := node.Close()
		done <- firstErr(errAPI, errNode, d.Close())
	}()
	select {
	case err := <-done:
		log.Info("stopped", "took", time.Since(began).Round(time.Millisecond))
		if err != nil {
			return fmt.Errorf("stop: %w", err)
		}
		fmt.Fprintln(stdout, "stopped")
		return nil
	case <-sctx.Done():
		return fmt.Errorf("stop: parts of the node did not stop within %v; exiting anyway, the data dir left open", stopTimeout)
	}
}

// cpuProfileEnv names a file to which `exopeer run` writes a CPU profile
// of the whole run (go tool pprof reads it), for measurements such as
// internal/loopbench's; not a setting of the node.
const cpuProfileEnv = "EXOPEER_CPUPROFILE"

// startCPUProfile starts profiling the process to the file path; the
// returned stop ends it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cpuProfileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", cpuProfileEnv, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

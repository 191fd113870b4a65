package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

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

func cmdInit(args []string, stdout, stderr io.Writer) error {
	fs, dirFlag := flagSet("init", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	dir, err := dataDir(*dirFlag)
	if err != nil {
		return err
	}
	created, err := datadir.Init(dir)
	if err != nil {
		return err
	}
	if len(created) == 0 {
		fmt.Fprintf(stdout, "data dir %s is already set up; nothing changed\n", dir)
		return nil
	}
	for _, f := range created {
		fmt.Fprintf(stdout, "created %s\n", f)
	}
	fmt.Fprintf(stdout, "edit %s, then start the node with: exopeer run --dir %s\n", filepath.Join(dir, datadir.ConfigFile), dir)
	return nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dirFlag := flagSet("run", stderr)
	var boot listFlag
	fs.Var(&boot, "bootstrap", "a peer to dial and keep connected, as a multiaddr ending in /p2p/<peer ID> (repeatable)")
	port := fs.Int("port", 0, "TCP and QUIC port (default: config, else 4777; -1: any free port)")
	mdns := fs.String("mdns", "", `"true" or "false": find peers on the LAN by multicast DNS (default: config, else true)`)
	dhtMode := fs.String("dht-mode", "", "auto, server or client (default: config, else auto)")
	dhtLAN := fs.String("dht-lan", "", `"true" or "false": run the LAN DHT table (default: config, else true)`)
	apiAddr := fs.String("api", "", "loopback IP:port of the control API (default: config, else 127.0.0.1:0)")
	level := fs.String("log-level", "", "debug, info, warn or error (default: config, else info)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	dir, err := dataDir(*dirFlag)
	if err != nil {
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

	if err := applyRunFlags(&d.Config, *port, *mdns, *dhtMode, *dhtLAN, *apiAddr, *level); err != nil {
		return usageError{err.Error()}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: d.Config.Level()}))
	for _, p := range d.MadePrivate {
		log.Warn("other users could enter this dir; made it private (0700)", "path", p)
	}
	opts, err := peer.NodeOptions(d, boot, log)
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

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// applyRunFlags lays the flags of `exopeer run` over the config and checks
// the result as the config file is checked.
func applyRunFlags(c *datadir.Config, port int, mdns, dhtMode, dhtLAN, api, level string) error {
	if port != 0 {
		c.Network.Port = port
	}
	if mdns != "" {
		v, err := parseBool("--mdns", mdns)
		if err != nil {
			return err
		}
		c.Network.MDNS = &v
	}
	if dhtLAN != "" {
		v, err := parseBool("--dht-lan", dhtLAN)
		if err != nil {
			return err
		}
		c.DHT.LAN = &v
	}
	if dhtMode != "" {
		c.DHT.Mode = dhtMode
	}
	if api != "" {
		c.API.Listen = api
	}
	if level != "" {
		c.Log.Level = level
	}
	return c.Check()
}

func parseBool(name, s string) (bool, error) {
	switch s {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s %q is not true or false", name, s)
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
)

// queryContext bounds a query of the running node.
func queryContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 30*time.Second)
}

// query runs a reading verb that takes no arguments: it asks the running
// node with call (a method expression of the client, such as
// (*client.Client).Status), then prints the answer as JSON (--json) or with
// print.
func query[T any](ctx context.Context, cmd *cli.Command, call func(*client.Client, context.Context) (T, error), print func(io.Writer, T) error) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	v, err := call(c, ctx)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), v)
	}
	return print(stdout(cmd), v)
}

func cmdID(ctx context.Context, cmd *cli.Command) error {
	return query(ctx, cmd, (*client.Client).ID, func(out io.Writer, v api.IDInfo) error {
		fmt.Fprintln(out, v.ID)
		for _, a := range v.Addrs {
			fmt.Fprintln(out, a)
		}
		return nil
	})
}

func cmdStatus(ctx context.Context, cmd *cli.Command) error {
	return query(ctx, cmd, (*client.Client).Status, printStatus)
}

func printStatus(out io.Writer, v api.Status) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "peer ID\t%s\n", v.ID)
	fmt.Fprintf(tw, "version\t%s\n", v.Version)
	fmt.Fprintf(tw, "uptime\t%s\n", v.Uptime)
	fmt.Fprintf(tw, "peers\t%d\n", v.Peers)
	fmt.Fprintf(tw, "reachability\t%s\n", v.Reachability)
	fmt.Fprintf(tw, "DHT mode\t%s (%s)\n", v.DHTMode, strings.Join(v.DHTModes, ", "))
	fmt.Fprintf(tw, "DHT routing table\t%d\n", v.DHTTable)
	fmt.Fprintf(tw, "blocks stored\t%d\n", v.Blocks)
	if v.Removed != "" {
		fmt.Fprintf(tw, "cell\t%s\n", v.Removed)
	}
	for i, a := range v.Addrs {
		label := "addresses"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, a)
	}
	for i, a := range v.AddrReachability {
		label := "reachability by address"
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", label, a.Addr, a.Reachability)
	}
	return tw.Flush()
}

func cmdDoctor(ctx context.Context, cmd *cli.Command) error {
	return query(ctx, cmd, (*client.Client).Doctor, printDoctor)
}

// printDoctor writes each finding on a line of its own, its level first
// (problems and warnings in capitals, to stand out), and its fix under it.
func printDoctor(out io.Writer, v api.DoctorReport) error {
	for _, f := range v.Findings {
		level := string(f.Level)
		if f.Level != api.LevelOK {
			level = strings.ToUpper(level)
		}
		fmt.Fprintf(out, "%-8s %-7s %s\n", level, f.Check, f.Say)
		if f.Fix != "" {
			fmt.Fprintf(out, "%-8s %-7s fix: %s\n", "", "", f.Fix)
		}
	}
	switch {
	case v.Problems > 0:
		_, err := fmt.Fprintf(out, "%d %s, %d %s.\n", v.Problems, plural(v.Problems, "problem", "problems"), v.Warnings, plural(v.Warnings, "warning", "warnings"))
		return err
	case v.Warnings > 0:
		_, err := fmt.Fprintf(out, "No problem, %d %s.\n", v.Warnings, plural(v.Warnings, "warning", "warnings"))
		return err
	}
	_, err := fmt.Fprintln(out, "No problem found.")
	return err
}

func cmdPeers(ctx context.Context, cmd *cli.Command) error {
	return query(ctx, cmd, (*client.Client).Peers, printPeers)
}

func printPeers(out io.Writer, v []api.PeerView) error {
	if len(v) == 0 {
		fmt.Fprintln(out, "no peers connected")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tADDRESS\tPATH\tFOUND BY\tRTT")
	for _, p := range v {
		rtt := "-"
		if p.RTTMillis > 0 {
			rtt = fmt.Sprintf("%.1f ms", p.RTTMillis)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Peer, p.Addr, pathText(p), strings.Join(p.Sources, ","), rtt)
	}
	return tw.Flush()
}

// pathText is a peer's path for the table: direct or relayed (through
// which relay), and the last hole punch when it failed or made the path
// direct ("direct (punched)", "relayed via 12D3…xyz, punch failed: …").
func pathText(p api.PeerView) string {
	s := string(p.Path)
	if p.Path == api.PathRelayed && p.Relay != "" {
		s += " via " + p.Relay
	}
	switch {
	case p.Punch == nil:
	case p.Punch.Ok && p.Path == api.PathDirect:
		s += " (punched)"
	case !p.Punch.Ok && p.Punch.Error != "":
		s += ", punch failed: " + p.Punch.Error
	}
	return s
}

func cmdConnect(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 0, -1)
	if err != nil {
		return err
	}
	if len(a) != 1 {
		return usage(cmd, "want one MULTIADDR ending in /p2p/<peer ID>")
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	v, err := c.Connect(ctx, a[0])
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), v)
	}
	fmt.Fprintf(stdout(cmd), "connected to %s via %s\n", v.Peer, v.Addr)
	return nil
}

// plural is one or many, by n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

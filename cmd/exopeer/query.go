package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/exopeer/exopeer/client"
)

// cmdQuery runs id, status and peers against the running node.
func cmdQuery(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	fs, dirFlag := flagSet(verb, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	c, err := dial(*dirFlag)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch verb {
	case "id":
		v, err := c.ID(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, v)
		}
		fmt.Fprintln(stdout, v.ID)
		for _, a := range v.Addrs {
			fmt.Fprintln(stdout, a)
		}
	case "status":
		v, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, v)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "peer ID\t%s\n", v.ID)
		fmt.Fprintf(tw, "version\t%s\n", v.Version)
		fmt.Fprintf(tw, "uptime\t%s\n", v.Uptime)
		fmt.Fprintf(tw, "peers\t%d\n", v.Peers)
		fmt.Fprintf(tw, "DHT routing table\t%d (%s)\n", v.DHTTable, strings.Join(v.DHTModes, ", "))
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
		return tw.Flush()
	case "peers":
		v, err := c.Peers(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, v)
		}
		if len(v) == 0 {
			fmt.Fprintln(stdout, "no peers connected")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PEER\tADDRESS\tFOUND BY\tRTT")
		for _, p := range v {
			rtt := "-"
			if p.RTTMillis > 0 {
				rtt = fmt.Sprintf("%.1f ms", p.RTTMillis)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Peer, p.Addr, strings.Join(p.Sources, ","), rtt)
		}
		return tw.Flush()
	}
	return nil
}

func cmdConnect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dirFlag := flagSet("connect", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{"want one MULTIADDR ending in /p2p/<peer ID>"}
	}
	c, err := dial(*dirFlag)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	v, err := c.Connect(ctx, fs.Arg(0))
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, v)
	}
	fmt.Fprintf(stdout, "connected to %s via %s\n", v.Peer, v.Addr)
	return nil
}

// dial finds the node running on the data dir of --dir.
func dial(dirFlag string) (*client.Client, error) {
	dir, err := dataDir(dirFlag)
	if err != nil {
		return nil, err
	}
	return client.Dial(dir)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

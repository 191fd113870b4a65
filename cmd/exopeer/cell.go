package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/exopeer/exopeer/api"
)

const cellUsage = `usage:
  exopeer cell create NAME [--member NAME]   make a cell with this node as its admin
  exopeer cell invite [--roles R] [--ttl D]  print a one-time code for a new node (admin)
  exopeer cell join CODE [--member NAME]     join the cell of the node that printed CODE
  exopeer cell members [--json]              the roster and each member's live state
  exopeer cell remove PEER [--now]           remove a member and rotate the cell secret (admin);
                                             --now: a stolen device, do not first take its last entries
`

// cmdCell runs the cell verbs against the running node.
func cmdCell(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, cellUsage)
		return usageError{"want a cell verb"}
	}
	sub, rest := args[0], args[1:]
	fs, dirFlag := flagSet("cell "+sub, stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	var member, roles *string
	var ttl, timeout *time.Duration
	var now *bool
	var want int
	switch sub {
	case "create":
		member = fs.String("member", "", "this node's name on the roster (default: the host name)")
		want = 1
	case "invite":
		roles = fs.String("roles", "chain,store", "the new member's roles: chain, store, relay, mailbox")
		ttl = fs.Duration("ttl", 10*time.Minute, "how long the code stays valid")
	case "join":
		member = fs.String("member", "", "this node's name on the roster (default: the host name)")
		timeout = fs.Duration("timeout", 2*time.Minute, "how long to look for the inviter")
		want = 1
	case "members":
	case "remove":
		now = fs.Bool("now", false, "remove at once (a stolen device): do not first take the entries it holds")
		want = 1
	case "help", "-h", "--help":
		fmt.Fprint(stdout, cellUsage)
		return nil
	default:
		fmt.Fprint(stderr, cellUsage)
		return usageError{fmt.Sprintf("unknown cell verb %q", sub)}
	}
	if err := parse(fs, rest); err != nil {
		return err
	}
	if fs.NArg() != want {
		return usageError{fmt.Sprintf("cell %s takes %d argument(s), got %d", sub, want, fs.NArg())}
	}
	c, err := dial(*dirFlag)
	if err != nil {
		return err
	}
	limit := 30 * time.Second
	if timeout != nil {
		limit = *timeout + 10*time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var view api.CellView
	switch sub {
	case "create":
		view, err = c.CellCreate(ctx, api.CellCreateRequest{Name: fs.Arg(0), Member: *member})
	case "invite":
		inv, err := c.CellInvite(ctx, api.CellInviteRequest{Roles: *roles, TTL: api.Duration(*ttl)})
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, inv)
		}
		fmt.Fprintln(stdout, inv.Code)
		fmt.Fprintf(stderr, "one-time code for a new %s node, valid until %s: on it, run\n  exopeer cell join %s\n",
			inv.Roles, inv.Expires.Local().Format(time.TimeOnly), inv.Code)
		return nil
	case "join":
		view, err = c.CellJoin(ctx, api.CellJoinRequest{Code: fs.Arg(0), Member: *member, Timeout: api.Duration(*timeout)})
	case "members":
		view, err = c.Cell(ctx)
	case "remove":
		view, err = c.CellRemove(ctx, api.CellRemoveRequest{Peer: fs.Arg(0), Now: *now})
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, view)
	}
	return printCell(stdout, view)
}

func printCell(w io.Writer, v api.CellView) error {
	role := "member"
	if v.Admin {
		role = "admin"
	}
	if v.Removed {
		role = "removed from the cell"
	}
	fmt.Fprintf(w, "cell %s %q, roster version %d, key epoch %d; this node: %s\n", v.ID, v.Name, v.Version, v.Epoch, role)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tNAME\tROLES\tSTATE\tLAST SEEN")
	for _, m := range v.Members {
		seen := "-"
		if m.LastSeen != nil {
			seen = time.Since(*m.LastSeen).Round(time.Second).String() + " ago"
		}
		name := m.Name
		if m.Self {
			name += " (this node)"
			seen = "now"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Peer, name, strings.ReplaceAll(m.Roles, ",", ", "), m.State, seen)
	}
	return tw.Flush()
}

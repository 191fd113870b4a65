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
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/client"
)

// cellCall runs one call of a cell verb that takes want arguments and
// prints the cell it answers with; call gets the arguments.
func cellCall(ctx context.Context, cmd *cli.Command, want int, limit time.Duration,
	call func(ctx context.Context, c *client.Client, a []string) (api.CellView, error)) error {
	a, err := args(ctx, cmd, want, want)
	if err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	view, err := call(ctx, c, a)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), view)
	}
	return printCell(stdout(cmd), view)
}

func cmdCellCreate(ctx context.Context, cmd *cli.Command) error {
	return cellCall(ctx, cmd, 1, 30*time.Second, func(ctx context.Context, c *client.Client, a []string) (api.CellView, error) {
		return c.CellCreate(ctx, api.CellCreateRequest{Name: a[0], Member: cmd.String("member")})
	})
}

func cmdCellJoin(ctx context.Context, cmd *cli.Command) error {
	timeout := cmd.Duration("timeout")
	return cellCall(ctx, cmd, 1, timeout+10*time.Second, func(ctx context.Context, c *client.Client, a []string) (api.CellView, error) {
		return c.CellJoin(ctx, api.CellJoinRequest{Code: a[0], Member: cmd.String("member"), Timeout: api.Duration(timeout)})
	})
}

func cmdCellMembers(ctx context.Context, cmd *cli.Command) error {
	return cellCall(ctx, cmd, 0, 30*time.Second, func(ctx context.Context, c *client.Client, _ []string) (api.CellView, error) {
		return c.Cell(ctx)
	})
}

func cmdCellRemove(ctx context.Context, cmd *cli.Command) error {
	return cellCall(ctx, cmd, 1, 30*time.Second, func(ctx context.Context, c *client.Client, a []string) (api.CellView, error) {
		return c.CellRemove(ctx, api.CellRemoveRequest{Peer: a[0], Now: cmd.Bool("now")})
	})
}

func cmdCellInvite(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	if ttl := cmd.Duration("ttl"); ttl <= 0 || ttl > cell.MaxInviteTTL {
		return usage(cmd, "--ttl %v: want more than 0 and at most %v", ttl, cell.MaxInviteTTL)
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	inv, err := c.CellInvite(ctx, api.CellInviteRequest{Roles: cmd.String("roles"), TTL: api.Duration(cmd.Duration("ttl"))})
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), inv)
	}
	fmt.Fprintln(stdout(cmd), inv.Code)
	fmt.Fprintf(stderr(cmd), "one-time code for a new %s node, valid until %s: on it, run\n  exopeer cell join %s\n",
		inv.Roles, inv.Expires.Local().Format(time.TimeOnly), inv.Code)
	return nil
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

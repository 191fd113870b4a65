package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/chain"
	"github.com/exopeer/exopeer/client"
)

// stdin is what `chain append --file -` reads; tests replace it.
var stdin io.Reader = os.Stdin

func cmdChainAppend(ctx context.Context, cmd *cli.Command) error {
	words, err := args(ctx, cmd, 0, -1)
	if err != nil {
		return err
	}
	file := cmd.String("file")
	switch {
	case file != "" && len(words) > 0:
		return usage(cmd, "chain append takes --file or TEXT, not both")
	case file == "" && len(words) == 0:
		return usage(cmd, "chain append wants TEXT or --file F")
	}
	// The node first: with none running, stdin is not read.
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	p, err := appendPayload(file, words)
	if err != nil {
		return err
	}
	return chainAppend(ctx, c, p, cmd.Bool("json"), stdout(cmd))
}

// appendPayload is the payload of `chain append`: the words, or the bytes
// of file ("-": stdin), of which it reads no more than the largest
// payload, and a byte to tell one over it.
func appendPayload(file string, words []string) (api.ChainPayload, error) {
	if file == "" {
		return api.ChainText(strings.Join(words, " ")), nil
	}
	r := stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return api.ChainPayload{}, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, chain.MaxPayload+1))
	if err != nil {
		return api.ChainPayload{}, fmt.Errorf("read %s: %w", file, err)
	}
	if len(data) > chain.MaxPayload {
		return api.ChainPayload{}, fmt.Errorf("%s is over %d bytes, the largest entry (put large data in a blob)", file, chain.MaxPayload)
	}
	return api.ChainData(data), nil
}

func cmdChainLog(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	limit, follow := cmd.Int("limit"), cmd.Bool("follow")
	switch {
	case limit < 0:
		return usage(cmd, "--limit must be positive")
	case follow && limit > 0:
		return usage(cmd, "--limit and --follow do not go together")
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	if follow {
		return chainFollow(ctx, c, cmd.String("after"), cmd.Bool("json"), stdout(cmd))
	}
	return chainLog(ctx, c, cmd.String("after"), limit, cmd.Bool("json"), stdout(cmd), stderr(cmd))
}

func cmdChainStatus(ctx context.Context, cmd *cli.Command) error {
	return query(ctx, cmd, (*client.Client).ChainStatus, printChainStatus)
}

func chainAppend(ctx context.Context, c *client.Client, p api.ChainPayload, asJSON bool, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	e, err := c.ChainAppend(ctx, p)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, e)
	}
	fmt.Fprintf(stdout, "appended %s (seq %d) at %s\n", e.CID, e.Seq, e.Pos)
	return nil
}

// chainLog prints up to limit entries (0: all) after the cursor, a page at
// a time; if it stops short of the end it says how to read on.
func chainLog(ctx context.Context, c *client.Client, after string, limit int, asJSON bool, stdout, stderr io.Writer) error {
	printed := 0
	for limit == 0 || printed < limit {
		n := 1000
		if limit > 0 {
			n = min(n, limit-printed)
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		page, err := c.ChainLog(pctx, after, n)
		cancel()
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			if err := printEntry(stdout, e, asJSON); err != nil {
				return err
			}
		}
		printed += len(page.Entries)
		after = page.Next
		if len(page.Entries) == 0 {
			return nil
		}
	}
	// At the limit: say how to read on if there is more.
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if more, err := c.ChainLog(pctx, after, 1); err == nil && len(more.Entries) > 0 {
		fmt.Fprintf(stderr, "more after this: exopeer chain log --after %s\n", after)
	}
	return nil
}

func chainFollow(ctx context.Context, c *client.Client, after string, asJSON bool, stdout io.Writer) error {
	for e, err := range c.ChainFollow(ctx, after) {
		if err != nil {
			return err
		}
		if err := printEntry(stdout, e, asJSON); err != nil {
			return err
		}
	}
	return nil // ctx ended
}

// printEntry prints e on one line: position, author, seq and text (quoted
// if it holds control characters), or its size if it is not text.
func printEntry(w io.Writer, e api.ChainEntry, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(e)
	}
	body := fmt.Sprintf("<%d bytes>", len(e.Data))
	if e.Text != nil {
		body = *e.Text
		if strings.ContainsFunc(body, unicode.IsControl) {
			body = strconv.Quote(body)
		}
	}
	_, err := fmt.Fprintf(w, "%s  %s  %3d  %s\n", e.Pos, shortPeer(e.Author), e.Seq, body)
	return err
}

// shortPeer shortens a peer ID to its last characters: every Ed25519 ID
// begins with the same ones.
func shortPeer(id string) string {
	if len(id) <= 10 {
		return id
	}
	return "…" + id[len(id)-8:]
}

func printChainStatus(w io.Writer, st api.ChainStatus) error {
	fmt.Fprintf(w, "chain of cell %s: %d entries", st.Cell, st.Length)
	if st.Waiting > 0 {
		fmt.Fprintf(w, ", %d waiting for their parents (%.1f MiB)", st.Waiting, float64(st.WaitingBytes)/(1<<20))
	}
	fmt.Fprintln(w)
	for i, h := range st.Heads {
		label := "heads"
		if len(st.Heads) == 1 {
			label = "head"
		}
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(w, "%-6s %s\n", label, h)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nAUTHOR\tNAME\tLAST SEQ")
	for _, a := range st.Authors {
		name := a.Name
		if name == "" {
			name = "(former member)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\n", a.Peer, name, a.LastSeq)
	}
	fmt.Fprintln(tw, "\nMEMBER\tNAME\tSTATE\tKNOWN\tLENGTH\tSYNC")
	for _, m := range st.Members {
		state, known, length := m.State, "no", "-"
		if state == "" {
			state = "-"
		}
		if m.Known {
			known, length = "yes", strconv.FormatUint(m.Length, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Peer, m.Name, state, known, length, behind(m))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range st.Forks {
		fmt.Fprintf(w, "forked: %s wrote two entries with seq %d: %s\n", f.Author, f.Seq, cidList(f.CIDs))
	}
	s := st.Sync
	fmt.Fprintf(w, "\nsync: %d pulls (%d failed), %d served; entries %d received, %d sent, %d deferred, %d rejected; %d bans; announcements %d sent, %d seen\n",
		s.Pulls, s.PullErrors, s.Served, s.Received, s.Sent, s.Deferred, s.Rejected, s.Banned, s.AnnouncesSent, s.AnnouncesSeen)
	if s.ForkRefused > 0 {
		fmt.Fprintf(w, "%d entries refused as forks past the two kept\n", s.ForkRefused)
	}
	if s.WaitingDropped > 0 {
		fmt.Fprintf(w, "%d entries dropped while waiting for their parents (%d over their author's share); they are fetched again\n", s.WaitingDropped, s.WaitingDroppedAuthor)
	}
	if s.LastRejected != "" {
		at := ""
		if !s.LastRejectedAt.IsZero() {
			at = " at " + s.LastRejectedAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(w, "last refused entry%s, from %s by %s: %s\n", at, s.LastRejectedFrom, s.LastRejectedAuthor, s.LastRejected)
	}
	if s.LastBanned != "" {
		fmt.Fprintf(w, "last cut off: %s: %s\n", s.LastBanned, s.LastBannedBecause)
	}
	return nil
}

func cidList(cs []api.Link) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

// behind says how a member's chain compares with this node's.
func behind(m api.ChainMemberStatus) string {
	switch {
	case m.Self:
		return "this node"
	case !m.Known:
		return "not heard yet"
	case m.Behind > 0 && m.Ahead:
		return fmt.Sprintf("behind %d, ahead", m.Behind)
	case m.Behind > 0:
		return fmt.Sprintf("behind %d", m.Behind)
	case m.Ahead:
		return "ahead"
	}
	return "in sync"
}

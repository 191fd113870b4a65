package main

// Contacts: other cells this cell talks to. A cell hands another its card
// (exo-card:1:..., also as a QR code); the other adds it; both compare
// the safety number.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skip2/go-qrcode"
	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
)

// maxCardInput bounds a card read from stdin (contact.MaxCardText is
// about 10 KiB).
const maxCardInput = 64 << 10

func contactVerbs() []*cli.Command {
	nameFlag := func(usage string) cli.Flag { return &cli.StringFlag{Name: "name", Usage: usage} }
	return []*cli.Command{
		{
			Name:  "card",
			Usage: "print this cell's card (text, and a QR code on a terminal) for another cell to add",
			Flags: []cli.Flag{
				nameFlag("the name on the card (default: the cell's name)"),
				&cli.BoolFlag{Name: "qr", Usage: "print the QR code even when stdout is not a terminal"},
				jsonFlag(),
			},
			Action: action(cmdContactCard),
		},
		{
			Name:      "add",
			Usage:     "add another cell as a contact from its card (- reads it from stdin), or update its devices",
			ArgsUsage: "CARD",
			Flags:     []cli.Flag{nameFlag("what to call the contact (default: the name on its card)"), jsonFlag()},
			Action:    action(cmdContactAdd),
		},
		{
			Name:  "invite",
			Usage: "print a one-time code for another cell to exchange cards with this one",
			Flags: []cli.Flag{
				&cli.DurationFlag{Name: "ttl", Value: 10 * time.Minute, Usage: "how long the code stays valid (at most 24h)"},
				jsonFlag(),
			},
			Action: action(cmdContactInvite),
		},
		{
			Name:      "accept",
			Usage:     "exchange cards with the cell whose device printed CODE, and add it as a contact",
			ArgsUsage: "CODE",
			Flags: []cli.Flag{
				nameFlag("what to call the contact (default: the name on its card)"),
				&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "how long to look for the inviter"},
				jsonFlag(),
			},
			Action: action(cmdContactAccept),
		},
		{
			Name:   "ls",
			Usage:  "the cell's contacts",
			Flags:  []cli.Flag{jsonFlag()},
			Action: action(cmdContactLs),
		},
		{
			Name:      "rm",
			Usage:     "remove a contact",
			ArgsUsage: "NAME",
			Flags:     []cli.Flag{jsonFlag()},
			Action:    action(cmdContactRm),
		},
		{
			Name:      "receipts",
			Usage:     "turn read receipts to a contact on or off (off: it sees its messages delivered, never read)",
			ArgsUsage: "NAME on|off",
			Flags:     []cli.Flag{jsonFlag()},
			Action:    action(cmdContactReceipts),
		},
		{
			Name:      "verify",
			Usage:     "show the safety number to compare with the contact's; --confirm once they match",
			ArgsUsage: "NAME",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "confirm", Usage: "mark the contact verified: the numbers matched"},
				jsonFlag(),
			},
			Action: action(cmdContactVerify),
		},
	}
}

func cmdContactCard(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	if cmd.Bool("json") && cmd.Bool("qr") {
		return usage(cmd, "--qr and --json do not go together")
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	card, err := c.CellCard(ctx, cmd.String("name"))
	if err != nil {
		return err
	}
	out := stdout(cmd)
	if cmd.Bool("json") {
		return printJSON(out, card)
	}
	if cmd.Bool("qr") || isTerminal(out) {
		q, err := qrcode.New(card.Text, qrcode.Low)
		if err != nil {
			return fmt.Errorf("qr code: %w", err)
		}
		fmt.Fprint(out, q.ToSmallString(false))
	}
	fmt.Fprintln(out, card.Text)
	fmt.Fprintf(stderr(cmd), "the card of %q: %d device(s), list version %d; the other cell runs\n  exopeer contact add CARD\n",
		card.Name, len(card.Devices), card.Version)
	return nil
}

func cmdContactAdd(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	text := a[0]
	if text == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, maxCardInput+1))
		if err != nil {
			return fmt.Errorf("read the card from stdin: %w", err)
		}
		if len(b) > maxCardInput {
			return fmt.Errorf("the card on stdin is longer than %d bytes: not a card", maxCardInput)
		}
		text = string(b)
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	added, err := c.ContactAdd(ctx, text, cmd.String("name"))
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), added)
	}
	return printAdded(cmd, added)
}

// printAdded prints what an add or an accept did.
func printAdded(cmd *cli.Command, added api.ContactAdded) error {
	var err error
	v, out := added.Contact, stdout(cmd)
	switch {
	case added.New:
		_, err = fmt.Fprintf(out, "added contact %s: %d device(s), device list version %d, cell %s\n", v.Name, len(v.Devices), v.Version, shortKey(v.Cell))
	case added.Updated:
		_, err = fmt.Fprintf(out, "updated contact %s: %d device(s), device list version %d, cell %s\n", v.Name, len(v.Devices), v.Version, shortKey(v.Cell))
	default:
		_, err = fmt.Fprintf(out, "contact %s: the card has nothing new (device list version %d)\n", v.Name, v.Version)
	}
	if added.New {
		fmt.Fprintf(stderr(cmd), "compare safety numbers with %s: exopeer contact verify %s\n", v.Name, shellWord(v.Name))
	}
	return err
}

func cmdContactInvite(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	if ttl := cmd.Duration("ttl"); ttl <= 0 || ttl > 24*time.Hour {
		return usage(cmd, "--ttl %v: want more than 0 and at most 24h", ttl)
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	inv, err := c.ContactInvite(ctx, api.ContactInviteRequest{TTL: api.Duration(cmd.Duration("ttl"))})
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), inv)
	}
	fmt.Fprintln(stdout(cmd), inv.Code)
	fmt.Fprintf(stderr(cmd), "one-time code for another cell, valid until %s (while this node runs): on one of its devices, run\n  exopeer contact accept %s\n",
		inv.Expires.Local().Format(time.TimeOnly), inv.Code)
	return nil
}

func cmdContactAccept(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	timeout := cmd.Duration("timeout")
	if timeout <= 0 {
		return usage(cmd, "--timeout %v: want more than 0", timeout)
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	added, err := c.ContactAccept(ctx, api.ContactAcceptRequest{Code: a[0], Name: cmd.String("name"), Timeout: api.Duration(timeout)})
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), added)
	}
	return printAdded(cmd, added)
}

func cmdContactLs(ctx context.Context, cmd *cli.Command) error {
	return query(ctx, cmd, (*client.Client).Contacts, printContacts)
}

func printContacts(w io.Writer, cs []api.ContactView) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "no contacts (add one with: exopeer contact add CARD)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCELL\tDEVICES\tLIST VERSION\tVERIFIED\tADDED")
	for _, c := range cs {
		verified := "no"
		if c.Verified {
			verified = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", c.Name, shortKey(c.Cell), len(c.Devices), c.Version, verified, c.Added.Local().Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}

func cmdContactRm(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	v, err := c.ContactRemove(ctx, a[0])
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), v)
	}
	_, err = fmt.Fprintf(stdout(cmd), "removed contact %s\n", v.Name)
	return err
}

func cmdContactReceipts(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 2, 2)
	if err != nil {
		return err
	}
	var on bool
	switch a[1] {
	case "on":
		on = true
	case "off":
	default:
		return usage(cmd, "receipts takes on or off, not %q", a[1])
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	v, err := c.ContactReceipts(ctx, a[0], on)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), v)
	}
	state := "off"
	if v.Receipts {
		state = "on"
	}
	_, err = fmt.Fprintf(stdout(cmd), "read receipts to %s: %s\n", v.Name, state)
	return err
}

func cmdContactVerify(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	s, err := c.ContactVerify(ctx, a[0], cmd.Bool("confirm"))
	if err != nil {
		return err
	}
	out := stdout(cmd)
	if cmd.Bool("json") {
		return printJSON(out, s)
	}
	fmt.Fprintf(out, "safety number with %s:\n", s.Contact.Name)
	groups := strings.Fields(s.Grouped)
	for i := 0; i < len(groups); i += 6 {
		fmt.Fprintf(out, "  %s\n", strings.Join(groups[i:min(i+6, len(groups))], " "))
	}
	switch {
	case cmd.Bool("confirm"):
		fmt.Fprintf(out, "%s is verified\n", s.Contact.Name)
	case s.Contact.Verified:
		fmt.Fprintf(out, "%s is verified\n", s.Contact.Name)
	default:
		fmt.Fprintf(out, "%s is not verified\n", s.Contact.Name)
		fmt.Fprintf(stderr(cmd), "compare it with the number %s sees (in person, or on a call); if they match, run\n  exopeer contact verify %s --confirm\n",
			s.Contact.Name, shellWord(s.Contact.Name))
	}
	return nil
}

// shortKey is the first 16 hex digits of a cell key, for people.
func shortKey(hexKey string) string {
	if len(hexKey) > 16 {
		return hexKey[:16]
	}
	return hexKey
}

// shellWord quotes s for a shell command line, if it needs it.
func shellWord(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

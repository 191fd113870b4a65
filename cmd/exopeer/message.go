package main

// Messages: conversations with contacts, end-to-end encrypted on this
// device and recorded in the cell's chain.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api"
)

// sendTimeout bounds a send: the node tries each device of the contact
// in turn (20 s each at most).
const sendTimeout = 2 * time.Minute

func sendVerb() *cli.Command {
	return &cli.Command{
		Name:      "send",
		Usage:     "send a message to a contact, encrypted on this device, delivered to whichever of its devices is reachable",
		ArgsUsage: "NAME TEXT",
		Flags:     []cli.Flag{jsonFlag()},
		Action:    action(cmdSend),
	}
}

func inboxVerb() *cli.Command {
	return &cli.Command{
		Name:  "inbox",
		Usage: "the latest messages of every conversation (or of one); --follow prints new ones as they come",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "contact", Usage: "only the conversation with this contact"},
			&cli.BoolFlag{Name: "follow", Usage: "keep printing messages as they are recorded"},
			jsonFlag(),
		},
		Action: action(cmdInbox),
	}
}

func readVerb() *cli.Command {
	return &cli.Command{
		Name:      "read",
		Usage:     "mark the conversation with a contact read (up to its last message, or --up-to); unless receipts are off for the contact, its cell is told",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "up-to", Usage: "the order key of the last message read (inbox --json shows it)"},
			jsonFlag(),
		},
		Action: action(cmdRead),
	}
}

func cmdRead(ctx context.Context, cmd *cli.Command) error {
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
	r, err := c.Read(ctx, a[0], cmd.String("up-to"))
	if err != nil {
		return err
	}
	out := stdout(cmd)
	if cmd.Bool("json") {
		return printJSON(out, r)
	}
	if r.UpTo == "" {
		_, err := fmt.Fprintf(out, "no messages with %s\n", a[0])
		return err
	}
	receipt := "nothing newer to tell " + a[0]
	if r.Receipt {
		receipt = "a read receipt goes to " + a[0]
	}
	_, err = fmt.Fprintf(out, "%d message(s) marked read; %s\n", r.Marked, receipt)
	return err
}

func cmdSend(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 2, 2)
	if err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	m, err := c.Send(ctx, a[0], a[1])
	if err != nil {
		return err
	}
	out := stdout(cmd)
	if cmd.Bool("json") {
		return printJSON(out, m)
	}
	_, err = fmt.Fprintf(out, "delivered to %s (message %s)\n", a[0], m.ID)
	return err
}

func cmdInbox(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	out := stdout(cmd)
	asJSON := cmd.Bool("json")
	// The contacts' names, by cell key, for the lines.
	qctx, cancel := queryContext(ctx)
	cs, err := c.Contacts(qctx)
	cancel()
	if err != nil {
		return err
	}
	names := make(map[string]string, len(cs))
	for _, k := range cs {
		names[k.Cell] = k.Name
	}
	n := 0
	for m, err := range c.Inbox(ctx, cmd.String("contact"), cmd.Bool("follow")) {
		if err != nil {
			return err
		}
		n++
		if err := printMessage(out, m, names, asJSON); err != nil {
			return err
		}
	}
	if n == 0 && !asJSON && !cmd.Bool("follow") {
		_, err := fmt.Fprintln(out, "no messages")
		return err
	}
	return nil // ctx ended
}

// printMessage prints m on one line: the sender's time, the contact, an
// arrow (> to the contact, < from it), the text (quoted if it holds
// control characters) and its state unless it is delivered or empty:
// "(sent)", "(stored)", "(read)", "(undeliverable)".
func printMessage(w io.Writer, m api.MessageView, names map[string]string, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(m)
	}
	who := names[m.Conversation]
	if who == "" {
		who = shortKey(m.Conversation)
	}
	arrow := "<"
	if m.Direction == "out" {
		arrow = ">"
	}
	text := m.Text
	if strings.ContainsFunc(text, unicode.IsControl) {
		text = strconv.Quote(text)
	}
	state := ""
	if m.State != "delivered" && m.State != "" {
		state = "  (" + m.State + ")"
	}
	_, err := fmt.Fprintf(w, "%s  %s %s %s%s\n", m.Sent.Local().Format("2006-01-02 15:04:05"), who, arrow, text, state)
	return err
}

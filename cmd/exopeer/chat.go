package main

// chat: a conversation in line mode. Each line read is sent to the
// contact; the conversation's messages are printed as they are recorded.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
)

// maxChatLine bounds a line read by chat; a longer one is refused whole,
// not sent in pieces (a message's text is far shorter anyway).
const maxChatLine = 64 << 10

func chatVerb() *cli.Command {
	return &cli.Command{
		Name:      "chat",
		Usage:     "a conversation in line mode: each line typed is sent to the contact, its messages printed as they come (and marked read); Ctrl-D or Ctrl-C ends it",
		ArgsUsage: "NAME",
		Action:    action(cmdChat),
	}
}

// cmdChat prints the recent conversation with the contact, then sends
// each line of stdin (empty ones skipped) and prints every new message
// of the conversation once: one received as it is recorded, one sent
// once delivered. The conversation is marked read up to its last
// message when it opens, then up to each message received as it is
// printed (a read receipt goes unless receipts are off for the contact). A send that fails is said on stderr and the chat goes
// on. EOF on stdin (Ctrl-D) or Ctrl-C ends it, exit 0; the node ending
// the stream ends it, exit 1. Each line is printed by one write, so that
// output never breaks into a line of its own; in a terminal, a message
// that comes while a line is being typed is printed after what was typed
// so far, which the terminal keeps in its line buffer.
func cmdChat(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	name := a[0]
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

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
	p := &chatPrinter{w: stdout(cmd), names: names, seen: make(map[string]bool)}
	// The conversation open is the conversation read: up to its last
	// message now, then up to each message in as it is printed.
	p.read = func(upTo string) {
		rctx, cancel := queryContext(ctx)
		defer cancel()
		if _, err := c.Read(rctx, name, upTo); err != nil && ctx.Err() == nil {
			p.warn(stderr(cmd), "not marked read: %v\n", err)
		}
	}
	// The recent conversation: every message, as the inbox shows it.
	for m, err := range c.Inbox(ctx, name, false) {
		if err != nil {
			return err
		}
		if err := p.print(m, true); err != nil {
			return err
		}
	}
	p.read("")

	ctx, cancel = context.WithCancel(ctx)
	defer cancel()
	streamErr := make(chan error, 1)
	go func() { streamErr <- p.follow(ctx, c, name) }()
	lines := make(chan chatLine)
	// The reader ends at EOF, or when a send it waits on is no longer
	// wanted; a read it is blocked in ends with the process.
	go readChatLines(ctx, stdin, lines)

	for {
		select {
		case <-ctx.Done():
			return chatEnd(cancel, streamErr)
		case err := <-streamErr:
			return err // the node ended the stream
		case l, ok := <-lines:
			if !ok {
				return chatEnd(cancel, streamErr)
			}
			if l.err != nil {
				p.warn(stderr(cmd), "not sent: %v\n", l.err)
				continue
			}
			sctx, scancel := context.WithTimeout(ctx, sendTimeout)
			m, err := c.Send(sctx, name, l.text)
			scancel()
			switch {
			case err == nil:
				if err := p.print(m, false); err != nil {
					return err
				}
			case ctx.Err() != nil:
				return chatEnd(cancel, streamErr)
			case errors.Is(err, client.ErrNotRunning):
				return err
			default:
				p.warn(stderr(cmd), "not delivered: %v\n", err)
			}
		}
	}
}

// chatEnd stops the stream and waits for it: the chat ends well.
func chatEnd(cancel context.CancelFunc, streamErr <-chan error) error {
	cancel()
	<-streamErr
	return nil
}

// chatLine is a line read, or why one was refused.
type chatLine struct {
	text string
	err  error
}

// readChatLines sends each non-empty line of r to lines (a trailing \r
// dropped) and closes lines at EOF or a read error. A line longer than
// maxChatLine is sent as an error.
func readChatLines(ctx context.Context, r io.Reader, lines chan<- chatLine) {
	defer close(lines)
	br := bufio.NewReaderSize(r, 4096)
	for {
		var line []byte
		long := false
		var err error
		for {
			var part []byte
			var more bool
			part, more, err = br.ReadLine()
			if len(line)+len(part) > maxChatLine {
				long = true
			} else {
				line = append(line, part...)
			}
			if !more || err != nil {
				break
			}
		}
		if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
			return // EOF, or a read error: the chat ends
		}
		var l chatLine
		switch {
		case long:
			l.err = fmt.Errorf("a line of more than %d bytes", maxChatLine)
		case len(line) == 0:
			continue
		default:
			l.text = string(line)
		}
		select {
		case lines <- l:
		case <-ctx.Done():
			return
		}
	}
}

// chatPrinter prints the messages of a chat, each once, one line a
// write; it is safe for concurrent use.
type chatPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	names map[string]string
	seen  map[string]bool // the IDs printed
	// read, if set, marks the conversation read up to an order key.
	read func(upTo string)
}

// print prints m unless it was printed already; a message sent and not
// yet delivered is held back unless all is set (the recent
// conversation, which shows every message as it stands).
func (p *chatPrinter) print(m api.MessageView, all bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[m.ID] || (!all && m.Direction == "out" && m.State != "delivered") {
		return nil
	}
	p.seen[m.ID] = true
	if m.Direction == "in" {
		m.State = "" // read or not: the chat open reads it
	}
	return printMessage(p.w, m, p.names, false)
}

// warn prints a line to w (stderr), never in the middle of a message's.
func (p *chatPrinter) warn(w io.Writer, format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(w, format, a...)
}

// follow prints the conversation's messages as they are recorded until
// ctx ends (nil) or the node ends the stream (its error).
func (p *chatPrinter) follow(ctx context.Context, c *client.Client, name string) error {
	for m, err := range c.Inbox(ctx, name, true) {
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The node answered a moment ago: a connection it refuses or
			// drops now is the node stopping (its stream says so when it
			// was running already; this is the stream asked as it stopped,
			// or after: the client then says no node is running).
			if _, ok := errors.AsType[*net.OpError](err); ok || errors.Is(err, client.ErrNotRunning) {
				return fmt.Errorf("the node stopped: %w", err)
			}
			return err
		}
		if err := p.print(m, false); err != nil {
			return err
		}
		if m.Direction == "in" && m.State == "delivered" && p.read != nil {
			p.read(m.Order)
		}
	}
	return nil
}

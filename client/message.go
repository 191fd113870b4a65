package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"

	"github.com/exopeer/exopeer/api"
)

// The kinds of errors of messages (see ErrNotInCell).
var (
	ErrBadMessage   = errors.New("client: bad message text")
	ErrNotDelivered = errors.New("client: recorded as sent, not delivered yet: no device of the contact is reachable; a device of this cell delivers it later")
)

// Send sends text to the contact named name and returns the message,
// delivered; ErrNotDelivered when no device of the contact acknowledged
// (the message stays recorded as sent, pending: any device of this cell
// that is online delivers it later).
func (c *Client) Send(ctx context.Context, name, text string) (api.MessageView, error) {
	return Answer(c.calls.MessagesSendWithResponse(ctx, api.MessageSendRequest{Contact: name, Text: text}))
}

// Messages returns a page of the conversation with the contact named
// name, oldest first, from after (a page's Next; empty: the start).
func (c *Client) Messages(ctx context.Context, name, after string, limit int) (api.MessagePage, error) {
	return Answer(c.calls.MessagesListWithResponse(ctx, &api.MessagesListParams{Contact: name, After: after, Limit: limit}))
}

// Read marks the conversation with the contact named name read up to
// the order key upTo (empty: its last message) on every device of the
// cell; unless read receipts are off for the contact, its cell is told.
func (c *Client) Read(ctx context.Context, name, upTo string) (api.ConversationRead, error) {
	return Answer(c.calls.ConversationsReadWithResponse(ctx, name, api.ConversationReadRequest{UpTo: upTo}))
}

// Inbox yields the latest messages recorded in the cell (of the contact
// named name, if not empty), oldest first; with follow, then each
// message as it is recorded or its state changes, until ctx ends (the
// sequence ends), the loop stops, or the node ends the stream (it yields
// an error, last). Without follow, the sequence ends after the latest.
func (c *Client) Inbox(ctx context.Context, name string, follow bool) iter.Seq2[api.MessageView, error] {
	return func(yield func(api.MessageView, error) bool) {
		resp, err := c.stream.Inbox(ctx, &api.InboxParams{Contact: name, Follow: follow})
		if err != nil {
			if !errors.Is(err, ErrNotRunning) {
				err = fmt.Errorf("control api: %w", err)
			}
			yield(api.MessageView{}, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			yield(api.MessageView{}, problem(resp.StatusCode, data))
			return
		}
		readLines(ctx, resp.Body, "inbox", func(l api.InboxLine) error {
			switch {
			case l.Error != nil:
				return &StatusError{*l.Error}
			case l.Message == nil:
				return errors.New("control api: inbox: a line with no message")
			}
			return nil
		}, func(l api.InboxLine, err error) bool {
			if err != nil {
				if !follow && errors.Is(err, ErrStreamEnded) {
					return false // the end of the latest
				}
				return yield(api.MessageView{}, err)
			}
			return yield(*l.Message, nil)
		})
	}
}

// Share shares the cell's file named file (its name, entity ID or
// capability) with the contact named name, in a message of text (the
// file's name if empty). The message is recorded even when not
// delivered (the error then names not-delivered).
func (c *Client) Share(ctx context.Context, name, file, text string) (api.MessageView, error) {
	return Answer(c.calls.ContactsShareWithResponse(ctx, name, api.ShareRequest{File: file, Text: text}))
}

package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/message"
	messages "github.com/exopeer/exopeer/message/service"
	"github.com/exopeer/exopeer/store"
)

// MessagesSend implements api.ServerInterface.
func (rt *routes) MessagesSend(w http.ResponseWriter, r *http.Request) {
	var req api.MessageSendRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	m, err := rt.node.Messages().Send(r.Context(), req.Contact, req.Text)
	if err != nil {
		writeMessageErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, messageView(m))
}

// MessagesList implements api.ServerInterface.
func (rt *routes) MessagesList(w http.ResponseWriter, r *http.Request, params api.MessagesListParams) {
	if params.Limit < 0 || params.Limit > store.MaxLimit {
		writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, "limit must be 1 to 1000")
		return
	}
	pg, err := rt.node.Messages().Conversation(r.Context(), params.Contact, params.After, params.Limit)
	if err != nil {
		writeMessageErr(w, err)
		return
	}
	out := api.MessagePage{Messages: make([]api.MessageView, 0, len(pg.Messages)), Next: pg.Next}
	for _, m := range pg.Messages {
		out.Messages = append(out.Messages, messageView(m))
	}
	writeJSON(w, http.StatusOK, out)
}

// ConversationsRead implements api.ServerInterface.
func (rt *routes) ConversationsRead(w http.ResponseWriter, r *http.Request, name string) {
	var req api.ConversationReadRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	m, err := rt.node.Messages().Read(r.Context(), name, req.UpTo)
	if err != nil {
		writeMessageErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ConversationRead{UpTo: m.UpTo, Marked: m.Marked, Receipt: m.Receipt})
}

// Inbox implements api.ServerInterface.
func (rt *routes) Inbox(w http.ResponseWriter, r *http.Request, params api.InboxParams) {
	svc := rt.node.Messages()
	if !params.Follow {
		ms, err := svc.Latest(r.Context(), params.Contact)
		if err != nil {
			writeMessageErr(w, err)
			return
		}
		send := ndjson(w)
		for _, m := range ms {
			v := messageView(m)
			if !send(api.InboxLine{Message: &v}) {
				return
			}
		}
		return
	}
	// The stream ends with the request, or when the API begins to close.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(rt.streams, cancel)
	defer stop()
	ms, err := svc.Inbox(ctx, params.Contact)
	if err != nil {
		if rt.streams.Err() != nil { // asked as the API began to close
			writeProblem(w, http.StatusServiceUnavailable, api.ProblemUnavailable, "the control API is stopping")
			return
		}
		writeMessageErr(w, err)
		return
	}
	send := ndjson(w)
	for m := range ms {
		v := messageView(m)
		if !send(api.InboxLine{Message: &v}) {
			cancel()
			for range ms { // let the watch end
			}
			return
		}
	}
	switch {
	case r.Context().Err() != nil:
	case rt.streams.Err() != nil:
		send(api.InboxLine{Error: lineProblem(http.StatusServiceUnavailable, api.ProblemUnavailable, "the control API is stopping")})
	default:
		send(api.InboxLine{Error: lineProblem(http.StatusServiceUnavailable, api.ProblemUnavailable, "the store ended the watch")})
	}
}

func messageView(m messages.Message) api.MessageView {
	return api.MessageView{
		Entity: m.Entity.String(), ID: m.ID, Conversation: m.Conversation, Direction: m.Direction,
		Cell: m.Cell, Device: m.Device, Sent: m.Sent, Received: m.Received, Order: m.Order,
		Text: m.Text, State: m.State, File: sharedFile(m.File),
	}
}

// messageKind maps the errors of messages to a status and a problem type.
func messageKind(err error) (int, api.ProblemType) {
	switch {
	case errors.Is(err, messages.ErrUnreachable):
		return http.StatusBadGateway, api.ProblemNotDelivered
	case errors.Is(err, messages.ErrTooManyPending):
		return http.StatusTooManyRequests, api.ProblemTooManyPending
	case errors.Is(err, message.ErrTooLong):
		return http.StatusRequestEntityTooLarge, api.ProblemBadMessage
	case errors.Is(err, message.ErrBadEnvelope):
		return http.StatusBadRequest, api.ProblemBadMessage
	case errors.Is(err, message.ErrBadOrderKey):
		return http.StatusBadRequest, api.ProblemBadRequest
	case errors.Is(err, messages.ErrNoCell):
		return http.StatusConflict, api.ProblemNotInCell
	case errors.Is(err, messages.ErrClosed), errors.Is(err, messages.ErrNotStarted):
		return http.StatusServiceUnavailable, api.ProblemUnavailable
	}
	return contactKind(err)
}

func writeMessageErr(w http.ResponseWriter, err error) {
	status, typ := messageKind(err)
	writeProblem(w, status, typ, err.Error())
}

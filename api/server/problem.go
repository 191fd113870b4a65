package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/chain/replica"
)

// titles are the problems' summaries, one a type.
var titles = map[api.ProblemType]string{
	api.ProblemBadRequest:          "bad request",
	api.ProblemPayloadTooLarge:     "payload too large",
	api.ProblemUnauthorized:        "missing or wrong token",
	api.ProblemNotLoopback:         "host is not loopback",
	api.ProblemNotFound:            "not found",
	api.ProblemMethodNotAllowed:    "method not allowed",
	api.ProblemInternal:            "internal error",
	api.ProblemUnavailable:         "unavailable",
	api.ProblemBadMultiaddr:        "bad multiaddr",
	api.ProblemConnectFailed:       "connect failed",
	api.ProblemNotInCell:           "node in no cell",
	api.ProblemNotAdmin:            "node is not the cell's admin",
	api.ProblemAlreadyInCell:       "node already in a cell",
	api.ProblemNotMember:           "not a member of the cell",
	api.ProblemRemoved:             "node removed from its cell",
	api.ProblemBadCode:             "bad invite code",
	api.ProblemWrongCode:           "wrong invite code",
	api.ProblemInviteExpired:       "invite expired",
	api.ProblemInviteExhausted:     "invite void",
	api.ProblemJoinRefused:         "join refused",
	api.ProblemBadRoles:            "bad roles",
	api.ProblemBadPeerID:           "bad peer ID",
	api.ProblemTimeout:             "timed out",
	api.ProblemBadCursor:           "bad cursor",
	api.ProblemBadEntityID:         "bad entity ID",
	api.ProblemBadDocument:         "document refused by its schema",
	api.ProblemBadQuery:            "bad query",
	api.ProblemNotStore:            "node has no store role",
	api.ProblemNoStoreMember:       "no store member reachable",
	api.ProblemBadCapability:       "bad capability",
	api.ProblemNoFile:              "no such file",
	api.ProblemWrongKey:            "wrong key",
	api.ProblemCorruptBlock:        "corrupt block",
	api.ProblemMalformedBlob:       "malformed blob",
	api.ProblemIsDir:               "is a directory",
	api.ProblemNotDir:              "not a directory",
	api.ProblemDiskFull:            "disk full",
	api.ProblemAmbiguousName:       "more than one file has that name",
	api.ProblemRangeNotSatisfiable: "range not satisfiable",
	api.ProblemPreconditionFailed:  "precondition failed",
	// contacts
	api.ProblemBadCard:          "not a card, or a damaged one",
	api.ProblemBadContactName:   "bad contact name",
	api.ProblemNoContact:        "no such contact",
	api.ProblemContactNameTaken: "another contact has that name",
	api.ProblemStaleCard:        "card older than the contact's device list held",
	api.ProblemOwnCard:          "the card is this cell's own",
	api.ProblemNoDeviceList:     "the cell's device list is not signed yet",
	api.ProblemTooManyInvites:   "too many contact invites open",
	// messages
	api.ProblemBadMessage:     "bad message text",
	api.ProblemNotDelivered:   "recorded as sent, not delivered yet: no device of the contact is reachable; it is pending, and a device of this cell delivers it later",
	api.ProblemTooManyPending: "too many messages to this contact are not delivered yet; nothing was recorded",
}

// writeProblem answers an error as application/problem+json.
func writeProblem(w http.ResponseWriter, status int, typ api.ProblemType, detail string) {
	write(w, "application/problem+json", status, api.Problem{Type: typ, Title: titles[typ], Status: status, Detail: detail})
}

// lineProblem is the problem a stream's last line carries (the answer's
// status went out with its first line): detail under the type and status
// of its kind.
func lineProblem(status int, typ api.ProblemType, detail string) *api.Problem {
	return &api.Problem{Type: typ, Title: titles[typ], Status: status, Detail: detail}
}

// writeErr answers err as the problem of its kind.
func writeErr(w http.ResponseWriter, err error) {
	status, typ := kind(err)
	writeProblem(w, status, typ, err.Error())
}

// kind maps an error of the node's parts to an HTTP status and a problem
// type.
func kind(err error) (int, api.ProblemType) {
	switch {
	case errors.Is(err, cell.ErrNoCell):
		return http.StatusNotFound, api.ProblemNotInCell
	case errors.Is(err, replica.ErrNoCell):
		return http.StatusConflict, api.ProblemNotInCell
	case errors.Is(err, replica.ErrRemoved):
		return http.StatusConflict, api.ProblemRemoved
	case errors.Is(err, cell.ErrNotAdmin):
		return http.StatusConflict, api.ProblemNotAdmin
	case errors.Is(err, cell.ErrAlreadyInCell):
		return http.StatusConflict, api.ProblemAlreadyInCell
	case errors.Is(err, cell.ErrNotMember):
		return http.StatusConflict, api.ProblemNotMember
	case errors.Is(err, cell.ErrInviteTTL):
		return http.StatusBadRequest, api.ProblemBadRequest
	case errors.Is(err, cell.ErrBadCode):
		return http.StatusBadRequest, api.ProblemBadCode
	case errors.Is(err, cell.ErrWrongCode):
		return http.StatusBadGateway, api.ProblemWrongCode
	case errors.Is(err, cell.ErrInviteExpired):
		return http.StatusBadGateway, api.ProblemInviteExpired
	case errors.Is(err, cell.ErrInviteExhausted):
		return http.StatusBadGateway, api.ProblemInviteExhausted
	case errors.Is(err, cell.ErrJoinRefused):
		return http.StatusBadGateway, api.ProblemJoinRefused
	case errors.Is(err, replica.ErrClosed):
		return http.StatusServiceUnavailable, api.ProblemUnavailable
	default:
		return http.StatusInternalServerError, api.ProblemInternal
	}
}

// cellKind is kind for the cell's routes, where running out of time
// means the peer did not answer in time.
func cellKind(err error) (int, api.ProblemType) {
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusBadGateway, api.ProblemTimeout
	}
	return kind(err)
}

// chainKind is kind for the chain's routes, where a request that ends
// early finds the node going.
func chainKind(err error) (int, api.ProblemType) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, api.ProblemUnavailable
	}
	return kind(err)
}

// badParam answers a query parameter that does not parse.
func badParam(w http.ResponseWriter, r *http.Request, err error) {
	var pe *api.InvalidParamFormatError
	if errors.As(err, &pe) {
		s := r.URL.Query().Get(pe.ParamName)
		switch pe.ParamName {
		case "limit":
			writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf("limit=%q: want 1 to %d", s, chainLogMax))
		case "follow":
			writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf("follow=%q is not a boolean", s))
		default:
			writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, fmt.Sprintf("%s=%q: %v", pe.ParamName, s, pe.Err))
		}
		return
	}
	writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, err.Error())
}

// maxRequestBody bounds what the API reads from a request but an append.
const maxRequestBody = 64 << 10

// problem is an error answer: its status, type and detail.
type problem struct {
	status int
	typ    api.ProblemType
	detail string
}

func (p *problem) write(w http.ResponseWriter) { writeProblem(w, p.status, p.typ, p.detail) }

// readJSON decodes a request body of at most limit bytes into v, or
// answers the problem and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if p := decodeJSON(http.MaxBytesReader(w, r.Body, limit), v); p != nil {
		p.write(w)
		return false
	}
	return true
}

// decodeJSON decodes a JSON body into v: unknown fields are errors, a body
// over its http.MaxBytesReader's limit is a 413, any other error a 400.
// The body is one JSON value, read to its end: anything after the value
// but white space is refused. (Reading to the end is also what lets
// net/http hear a client that goes away while its answer streams: a watch
// whose body was not read to its end would outlive its client.)
func decodeJSON(body io.Reader, v any) *problem {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		var more json.RawMessage
		switch err = dec.Decode(&more); {
		case errors.Is(err, io.EOF):
			err = nil
		case err == nil:
			err = errors.New("more than one JSON value")
		}
	}
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return &problem{http.StatusRequestEntityTooLarge, api.ProblemPayloadTooLarge, "bad request body: " + err.Error()}
		}
		return &problem{http.StatusBadRequest, api.ProblemBadRequest, "bad request body: " + err.Error()}
	}
	return nil
}

// ndjson begins an NDJSON answer and returns the function that sends one
// line of it, flushed; it returns false once the client is gone.
func ndjson(w http.ResponseWriter) func(v any) bool {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false) // documents as written: < is not \u003c
	return func(v any) bool {
		if enc.Encode(v) != nil || bw.Flush() != nil {
			return false
		}
		return rc.Flush() == nil
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	write(w, "application/json", status, v)
}

// writeDocs answers v, which holds the store's documents, compact: as
// written (encoding/json's indentation re-indents a document, one line
// an element of an array, several times its size), so that an answer's
// size is about its documents' (see hitSize).
func writeDocs(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func write(w http.ResponseWriter, contentType string, status int, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // documents as written: < is not \u003c
	_ = enc.Encode(v)
}

package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/exopeer/exopeer/api"
)

// The kinds of errors callers branch on: a *StatusError of that kind is
// errors.Is each.
var (
	ErrNotInCell       = errors.New("client: the node is in no cell")
	ErrNotAdmin        = errors.New("client: the node is not the cell's admin")
	ErrAlreadyInCell   = errors.New("client: the node is already in a cell")
	ErrNotMember       = errors.New("client: not a member of the cell")
	ErrRemoved         = errors.New("client: the node was removed from its cell")
	ErrBadCode         = errors.New("client: bad invite code")
	ErrWrongCode       = errors.New("client: wrong invite code")
	ErrInviteExpired   = errors.New("client: the invite has expired")
	ErrInviteExhausted = errors.New("client: the invite is void")
	ErrJoinRefused     = errors.New("client: the inviter refused the join")
	ErrUnauthorized    = errors.New("client: missing or wrong token")
	ErrPayloadTooLarge = errors.New("client: payload too large")
	ErrBadCursor       = errors.New("client: bad cursor")
	ErrUnavailable     = errors.New("client: the node is unavailable")
	ErrNotFound        = errors.New("client: not found")
	ErrBadEntityID     = errors.New("client: bad entity id")
	ErrBadDocument     = errors.New("client: the document does not match its schema")
	ErrBadQuery        = errors.New("client: bad query")
	ErrNotStore        = errors.New("client: the node has no store role")
	ErrNoStoreMember   = errors.New("client: no store member of the cell answers")
	ErrNoFile          = errors.New("client: no such file")
	ErrWrongKey        = errors.New("client: wrong key")
	ErrCorruptBlock    = errors.New("client: corrupt block")
	ErrMalformedBlob   = errors.New("client: malformed blob")
	ErrIsDir           = errors.New("client: is a directory")
	ErrNotDir          = errors.New("client: not a directory")
	ErrDiskFull        = errors.New("client: the node's disk is full")
	ErrAmbiguousName   = errors.New("client: more than one file has that name")
)

var kinds = map[api.ProblemType]error{
	api.ProblemNotInCell:           ErrNotInCell,
	api.ProblemNotAdmin:            ErrNotAdmin,
	api.ProblemAlreadyInCell:       ErrAlreadyInCell,
	api.ProblemNotMember:           ErrNotMember,
	api.ProblemRemoved:             ErrRemoved,
	api.ProblemBadCode:             ErrBadCode,
	api.ProblemWrongCode:           ErrWrongCode,
	api.ProblemInviteExpired:       ErrInviteExpired,
	api.ProblemInviteExhausted:     ErrInviteExhausted,
	api.ProblemJoinRefused:         ErrJoinRefused,
	api.ProblemUnauthorized:        ErrUnauthorized,
	api.ProblemPayloadTooLarge:     ErrPayloadTooLarge,
	api.ProblemBadCursor:           ErrBadCursor,
	api.ProblemUnavailable:         ErrUnavailable,
	api.ProblemNotFound:            ErrNotFound,
	api.ProblemBadEntityID:         ErrBadEntityID,
	api.ProblemBadDocument:         ErrBadDocument,
	api.ProblemBadQuery:            ErrBadQuery,
	api.ProblemNotStore:            ErrNotStore,
	api.ProblemNoStoreMember:       ErrNoStoreMember,
	api.ProblemBadCapability:       ErrBadCapability,
	api.ProblemNoFile:              ErrNoFile,
	api.ProblemWrongKey:            ErrWrongKey,
	api.ProblemCorruptBlock:        ErrCorruptBlock,
	api.ProblemMalformedBlob:       ErrMalformedBlob,
	api.ProblemIsDir:               ErrIsDir,
	api.ProblemNotDir:              ErrNotDir,
	api.ProblemDiskFull:            ErrDiskFull,
	api.ProblemAmbiguousName:       ErrAmbiguousName,
	api.ProblemRangeNotSatisfiable: ErrRangeNotSatisfiable,
	// contacts (contact.go)
	api.ProblemBadCard:          ErrBadCard,
	api.ProblemBadContactName:   ErrBadContactName,
	api.ProblemNoContact:        ErrNoContact,
	api.ProblemContactNameTaken: ErrContactNameTaken,
	api.ProblemStaleCard:        ErrStaleCard,
	api.ProblemOwnCard:          ErrOwnCard,
	api.ProblemNoDeviceList:     ErrNoDeviceList,
	api.ProblemTooManyInvites:   ErrTooManyInvites,
	// messages (message.go)
	api.ProblemBadMessage:   ErrBadMessage,
	api.ProblemNotDelivered: ErrNotDelivered,
}

// StatusError is an error answer of the control API, its RFC 9457
// problem details: Status is the HTTP status, Type the kind of error,
// Detail what the node said.
type StatusError struct {
	api.Problem
}

func (p *StatusError) Error() string {
	if p.Detail == "" {
		return fmt.Sprintf("control api: %d %s", p.Status, http.StatusText(p.Status))
	}
	return "node says: " + p.Detail
}

// Unwrap returns the sentinel of the problem's kind (ErrNotInCell, ...),
// or nil.
func (p *StatusError) Unwrap() error { return kinds[p.Type] }

// problem is the error of an answer that is not 200 OK, from its status
// and its body, the problem details. The status is the answer's, whatever
// the body says; a body that is not a problem leaves the rest empty.
func problem(status int, body []byte) *StatusError {
	p := &StatusError{}
	if err := json.Unmarshal(body, &p.Problem); err != nil {
		p.Problem = api.Problem{}
	}
	p.Status = status
	return p
}

package peer

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/cell"
)

// Routes of the cell, on the control API:
//
//	GET  /v1/cell          CellView (404 when the node is in no cell)
//	POST /v1/cell/create   CellCreateRequest → CellView
//	POST /v1/cell/invite   CellInviteRequest → CellInvite
//	POST /v1/cell/join     CellJoinRequest → CellView, once joined
//	POST /v1/cell/remove   CellRemoveRequest → CellView

// CellView is the node's cell: the roster and each member's live state.
type CellView struct {
	ID      string           `json:"id"`
	Name    string           `json:"name"`
	Version uint64           `json:"version"`
	Epoch   uint64           `json:"epoch"`
	Admin   bool             `json:"admin"`
	Removed bool             `json:"removed,omitempty"`
	Members []CellMemberView `json:"members"`
}

// CellMemberView is one member as the API shows it.
type CellMemberView struct {
	Peer     string     `json:"peer"`
	Name     string     `json:"name"`
	Roles    string     `json:"roles"`
	Added    time.Time  `json:"added"`
	Self     bool       `json:"self,omitempty"`
	State    string     `json:"state"`
	LastSeen *time.Time `json:"lastSeen,omitempty"`
}

// CellCreateRequest is the body of /v1/cell/create.
type CellCreateRequest struct {
	Name   string `json:"name"`
	Member string `json:"member,omitempty"` // this node's name on the roster
}

// CellInviteRequest is the body of /v1/cell/invite.
type CellInviteRequest struct {
	Roles string   `json:"roles,omitempty"` // e.g. "chain,store"; default chain,store
	TTL   Duration `json:"ttl,omitempty"`   // default 10 min
}

// CellInvite is an open invite.
type CellInvite struct {
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
	Roles   string    `json:"roles"`
}

// CellJoinRequest is the body of /v1/cell/join.
type CellJoinRequest struct {
	Code    string   `json:"code"`
	Member  string   `json:"member,omitempty"`
	Timeout Duration `json:"timeout,omitempty"` // default 2 min
}

// CellRemoveRequest is the body of /v1/cell/remove.
type CellRemoveRequest struct {
	Peer string `json:"peer"`
	// Now removes at once, for a stolen device: the admin does not first
	// take the entries the member holds, and those no other member has
	// are lost to the cell.
	Now bool `json:"now,omitempty"`
}

func (a *API) cellRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/cell", func(w http.ResponseWriter, r *http.Request) {
		a.writeCell(w)
	})
	mux.HandleFunc("POST /v1/cell/create", func(w http.ResponseWriter, r *http.Request) {
		var req CellCreateRequest
		if !readJSON(w, r, &req) {
			return
		}
		if _, err := a.node.Cell().Create(r.Context(), req.Name, req.Member); err != nil {
			writeJSON(w, cellStatus(err), apiError{err.Error()})
			return
		}
		a.writeCell(w)
	})
	mux.HandleFunc("POST /v1/cell/invite", func(w http.ResponseWriter, r *http.Request) {
		var req CellInviteRequest
		if !readJSON(w, r, &req) {
			return
		}
		roles, err := cell.ParseRoles(req.Roles)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
			return
		}
		code, exp, err := a.node.Cell().Invite(cell.InviteOptions{Roles: roles, TTL: time.Duration(req.TTL)})
		if err != nil {
			writeJSON(w, cellStatus(err), apiError{err.Error()})
			return
		}
		if roles == 0 {
			roles = cell.RoleChain | cell.RoleStore
		}
		writeJSON(w, http.StatusOK, CellInvite{Code: code.String(), Expires: exp, Roles: roles.String()})
	})
	mux.HandleFunc("POST /v1/cell/join", func(w http.ResponseWriter, r *http.Request) {
		var req CellJoinRequest
		if !readJSON(w, r, &req) {
			return
		}
		timeout := time.Duration(req.Timeout)
		if timeout <= 0 {
			timeout = 2 * time.Minute
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		if _, err := a.node.Cell().Join(ctx, req.Code, req.Member); err != nil {
			writeJSON(w, cellStatus(err), apiError{err.Error()})
			return
		}
		a.writeCell(w)
	})
	mux.HandleFunc("POST /v1/cell/remove", func(w http.ResponseWriter, r *http.Request) {
		var req CellRemoveRequest
		if !readJSON(w, r, &req) {
			return
		}
		id, err := peer.Decode(req.Peer)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{"bad peer ID " + req.Peer + ": " + err.Error()})
			return
		}
		if _, err := a.node.Cell().Remove(r.Context(), id, req.Now); err != nil {
			writeJSON(w, cellStatus(err), apiError{err.Error()})
			return
		}
		a.writeCell(w)
	})
}

func (a *API) writeCell(w http.ResponseWriter) {
	info, err := a.node.Cell().Members()
	if err != nil {
		writeJSON(w, cellStatus(err), apiError{err.Error()})
		return
	}
	v := CellView{ID: info.ID, Name: info.Name, Version: info.Version, Epoch: info.Epoch,
		Admin: info.Admin, Removed: info.Removed, Members: []CellMemberView{}}
	for _, m := range info.Members {
		mv := CellMemberView{Peer: m.Peer.String(), Name: m.Name, Roles: m.Roles.String(),
			Added: m.Added, Self: m.Self, State: m.State}
		if !m.LastSeen.IsZero() {
			t := m.LastSeen
			mv.LastSeen = &t
		}
		v.Members = append(v.Members, mv)
	}
	writeJSON(w, http.StatusOK, v)
}

// cellStatus maps a cell error to an HTTP status.
func cellStatus(err error) int {
	switch {
	case errors.Is(err, cell.ErrNoCell):
		return http.StatusNotFound
	case errors.Is(err, cell.ErrNotAdmin), errors.Is(err, cell.ErrAlreadyInCell),
		errors.Is(err, cell.ErrNotMember):
		return http.StatusConflict
	case errors.Is(err, cell.ErrBadCode):
		return http.StatusBadRequest
	case errors.Is(err, cell.ErrWrongCode), errors.Is(err, cell.ErrInviteExpired),
		errors.Is(err, cell.ErrInviteExhausted), errors.Is(err, cell.ErrJoinRefused),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}

// Cell returns the node's cell and each member's state.
func (c *Client) Cell(ctx context.Context) (CellView, error) {
	var v CellView
	return v, c.call(ctx, http.MethodGet, "/v1/cell", nil, &v)
}

// CellCreate creates a cell with the node as its admin.
func (c *Client) CellCreate(ctx context.Context, req CellCreateRequest) (CellView, error) {
	var v CellView
	return v, c.call(ctx, http.MethodPost, "/v1/cell/create", req, &v)
}

// CellInvite opens an invite and returns its code.
func (c *Client) CellInvite(ctx context.Context, req CellInviteRequest) (CellInvite, error) {
	var v CellInvite
	return v, c.call(ctx, http.MethodPost, "/v1/cell/invite", req, &v)
}

// CellJoin joins the cell of an invite code; it blocks until joined.
func (c *Client) CellJoin(ctx context.Context, req CellJoinRequest) (CellView, error) {
	var v CellView
	return v, c.call(ctx, http.MethodPost, "/v1/cell/join", req, &v)
}

// CellRemove removes a member (admin only); see CellRemoveRequest.
func (c *Client) CellRemove(ctx context.Context, req CellRemoveRequest) (CellView, error) {
	var v CellView
	return v, c.call(ctx, http.MethodPost, "/v1/cell/remove", req, &v)
}

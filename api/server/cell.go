package server

import (
	"context"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/cell"
)

// GetCell implements api.ServerInterface.
func (rt *routes) GetCell(w http.ResponseWriter, r *http.Request) {
	rt.writeCell(w)
}

// CellCreate implements api.ServerInterface.
func (rt *routes) CellCreate(w http.ResponseWriter, r *http.Request) {
	var req api.CellCreateRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	if _, err := rt.node.Cell().Create(r.Context(), req.Name, req.Member); err != nil {
		writeCellErr(w, err)
		return
	}
	rt.writeCell(w)
}

// CellInvite implements api.ServerInterface.
func (rt *routes) CellInvite(w http.ResponseWriter, r *http.Request) {
	var req api.CellInviteRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	roles, err := cell.ParseRoles(req.Roles)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, api.ProblemBadRoles, err.Error())
		return
	}
	code, exp, err := rt.node.Cell().Invite(cell.InviteOptions{Roles: roles, TTL: time.Duration(req.TTL)})
	if err != nil {
		writeCellErr(w, err)
		return
	}
	if roles == 0 {
		roles = cell.RoleChain | cell.RoleStore
	}
	writeJSON(w, http.StatusOK, api.CellInvite{Code: code.String(), Expires: exp, Roles: roles.String()})
}

// CellJoin implements api.ServerInterface.
func (rt *routes) CellJoin(w http.ResponseWriter, r *http.Request) {
	var req api.CellJoinRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	timeout := time.Duration(req.Timeout)
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if _, err := rt.node.Cell().Join(ctx, req.Code, req.Member); err != nil {
		writeCellErr(w, err)
		return
	}
	rt.writeCell(w)
}

// CellRemove implements api.ServerInterface.
func (rt *routes) CellRemove(w http.ResponseWriter, r *http.Request) {
	var req api.CellRemoveRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	id, err := peer.Decode(req.Peer)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, api.ProblemBadPeerID, "bad peer ID "+req.Peer+": "+err.Error())
		return
	}
	if _, err := rt.node.Cell().Remove(r.Context(), id, req.Now); err != nil {
		writeCellErr(w, err)
		return
	}
	rt.writeCell(w)
}

func (rt *routes) writeCell(w http.ResponseWriter) {
	info, err := rt.node.Cell().Members()
	if err != nil {
		writeCellErr(w, err)
		return
	}
	v := api.CellView{ID: info.ID, Name: info.Name, Version: info.Version, Epoch: info.Epoch,
		Admin: info.Admin, Removed: info.Removed, Members: []api.CellMemberView{}}
	for _, m := range info.Members {
		mv := api.CellMemberView{Peer: m.Peer.String(), Name: m.Name, Roles: m.Roles.String(),
			Added: m.Added, Self: m.Self, State: m.State}
		if !m.LastSeen.IsZero() {
			t := m.LastSeen
			mv.LastSeen = &t
		}
		v.Members = append(v.Members, mv)
	}
	writeJSON(w, http.StatusOK, v)
}

func writeCellErr(w http.ResponseWriter, err error) {
	status, typ := cellKind(err)
	writeProblem(w, status, typ, err.Error())
}

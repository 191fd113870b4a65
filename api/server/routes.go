package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/doctor"
	"github.com/exopeer/exopeer/peer"
)

// routes implements api.ServerInterface on a node: the node's routes here,
// the cell's in cell.go, the chain's in chain.go, the store's in store.go.
type routes struct {
	node *peer.Node
	// streams ends when the server begins to close.
	streams context.Context
	// spec is the OpenAPI document, as JSON.
	spec []byte
}

var _ api.ServerInterface = (*routes)(nil)

// mux routes every operation of the document to its method.
func (rt *routes) mux() *http.ServeMux {
	mux := http.NewServeMux()
	api.HandlerWithOptions(rt, api.StdHTTPServerOptions{BaseRouter: mux, ErrorHandlerFunc: badParam})
	return mux
}

// GetOpenAPI implements api.ServerInterface.
func (rt *routes) GetOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(rt.spec)
}

// GetID implements api.ServerInterface.
func (rt *routes) GetID(w http.ResponseWriter, r *http.Request) {
	info := api.IDInfo{ID: rt.node.ID().String()}
	for _, m := range rt.node.Addrs() {
		info.Addrs = append(info.Addrs, m.String())
	}
	writeJSON(w, http.StatusOK, info)
}

// GetStatus implements api.ServerInterface.
func (rt *routes) GetStatus(w http.ResponseWriter, r *http.Request) {
	st, err := rt.node.Status(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	out := api.Status{
		ID: st.ID, Version: st.Version, Addrs: st.Addrs, StartedAt: st.StartedAt,
		Uptime: api.Duration(st.Uptime), Peers: st.Peers, DHTTable: st.DHTTable,
		DHTModes: st.DHTModes, Blocks: st.Blocks, Removed: st.Removed,
		DHTMode: api.StatusDhtMode(st.DHTMode), Reachability: api.StatusReachability(st.Reach.Overall),
		AddrReachability: make([]api.AddrReachability, 0, len(st.Reach.Addrs)),
	}
	for _, a := range st.Reach.Addrs {
		out.AddrReachability = append(out.AddrReachability, api.AddrReachability{
			Addr: a.Addr.String(), Reachability: api.AddrReachabilityReachability(a.State),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// GetDoctor implements api.ServerInterface.
func (rt *routes) GetDoctor(w http.ResponseWriter, r *http.Request) {
	out := api.DoctorReport{Findings: []api.DoctorFinding{}}
	for _, f := range rt.node.Doctor(r.Context()) {
		out.Findings = append(out.Findings, api.DoctorFinding{
			Check: api.DoctorFindingCheck(f.Check), Level: api.DoctorFindingLevel(f.Level), Say: f.Say, Fix: f.Fix,
		})
		switch f.Level {
		case doctor.Problem:
			out.Problems++
		case doctor.Warn:
			out.Warnings++
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// GetPeers implements api.ServerInterface.
func (rt *routes) GetPeers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, rt.peers(""))
}

// Connect implements api.ServerInterface.
func (rt *routes) Connect(w http.ResponseWriter, r *http.Request) {
	var req api.ConnectRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	m, err := ma.NewMultiaddr(req.Addr)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, api.ProblemBadMultiaddr, fmt.Sprintf("%q is not a multiaddr: %v", req.Addr, err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	id, err := rt.node.Connect(ctx, m)
	if err != nil {
		if id == "" {
			writeProblem(w, http.StatusBadRequest, api.ProblemBadMultiaddr, err.Error())
		} else {
			writeProblem(w, http.StatusBadGateway, api.ProblemConnectFailed, err.Error())
		}
		return
	}
	views := rt.peers(id.String())
	if len(views) == 0 {
		views = []api.PeerView{{Peer: id.String(), Sources: []string{"manual"}, Path: api.PathNone}}
		pathView(&views[0], rt.node.Path(id))
	}
	writeJSON(w, http.StatusOK, views[0])
}

func (rt *routes) peers(only string) []api.PeerView {
	views := []api.PeerView{}
	for _, p := range rt.node.Discovery().Peers() {
		if only != "" && p.ID.String() != only {
			continue
		}
		v := api.PeerView{
			Peer: p.ID.String(), RTTMillis: float64(p.RTT.Microseconds()) / 1000,
			ConnectedSince: p.ConnectedSince,
		}
		if p.Addr != nil {
			v.Addr = p.Addr.String()
		}
		pathView(&v, rt.node.Path(p.ID))
		for _, s := range p.Sources {
			v.Sources = append(v.Sources, string(s))
		}
		views = append(views, v)
	}
	return views
}

// pathView sets v's path, relay and last punch from the node's connections
// to the peer now (not from discovery's address, which is the connection
// identify ran on and stale once a punch replaced it).
func pathView(v *api.PeerView, p peer.Path) {
	switch {
	case p.Direct:
		v.Path = api.PathDirect
	case p.Relayed:
		v.Path = api.PathRelayed
		if p.Relay != "" {
			v.Relay = p.Relay.String()
		}
	default:
		v.Path = api.PathNone
	}
	if p.Punch != nil {
		v.Punch = &api.PunchView{Ok: p.Punch.OK, Error: p.Punch.Error, Attempts: p.Punch.Attempts, At: p.Punch.At.UTC()}
	}
}

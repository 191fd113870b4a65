package peer

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/exopeer/exopeer/datadir"
	"github.com/exopeer/exopeer/doctor"
)

// DoctorOptions is what `exopeer doctor` checks beyond the node itself;
// NodeOptions fills it from the data dir.
type DoctorOptions struct {
	// DataDir is the data dir whose disk and modes are checked; empty:
	// neither is (simnet).
	DataDir string
	// Port is the port the config asks for (datadir.NetworkConfig.Port);
	// 0 or -1: any port, and no port conflict is reported.
	Port int
}

const (
	// MaxClockPeers bounds the members asked their time at each doctor.
	MaxClockPeers = 8
	// clockWait bounds each ask.
	clockWait = 5 * time.Second
	// kindWait bounds the look-up of a peer among the contacts' devices.
	kindWait = 2 * time.Second
)

// Doctor diagnoses the node's connectivity and data dir (package doctor):
// it gathers the facts as of now, asking up to MaxClockPeers connected
// members their time, and judges them. It blocks for the asks, each at
// most a few seconds, or until ctx ends. Before Start it returns nil.
func (n *Node) Doctor(ctx context.Context) []doctor.Finding {
	if n.doc == nil {
		return nil
	}
	return doctor.Diagnose(n.doctorFacts(ctx))
}

// doctorFacts gathers the facts the doctor judges.
func (n *Node) doctorFacts(ctx context.Context) doctor.Facts {
	o := n.opts.Doctor
	f := doctor.Facts{WantPort: o.Port}
	if o.DataDir != "" {
		f.ConfigPath = filepath.Join(o.DataDir, datadir.ConfigFile)
		f.Disk = diskOf(o.DataDir)
		f.Files = filesOf(o.DataDir)
	}
	for _, a := range n.host.Network().ListenAddresses() {
		if _, relayed := circuitRelay(a); relayed {
			continue // the relay transport's /p2p-circuit: no socket, no port
		}
		f.Listen = append(f.Listen, doctor.Listen{Addr: a.String(), Port: portOf(a)})
	}
	r := n.Reach()
	f.Reachability = string(r.Overall)
	for _, a := range r.Addrs {
		f.Addrs = append(f.Addrs, doctor.Addr{Addr: a.Addr.String(), State: string(a.State), Port: portOf(a.Addr), Relay: relayOf(a.Addr)})
	}
	f.Observations = n.doc.observations(ctx)
	kinds := map[peer.ID]struct{ kind, name string }{}
	var members []peer.ID
	for _, c := range n.host.Network().Conns() {
		p := c.RemotePeer()
		k, seen := kinds[p]
		if !seen {
			k.kind, k.name = n.kindOf(ctx, p)
			kinds[p] = k
			if k.kind == "member" {
				members = append(members, p)
			}
		}
		dc := connFacts(c)
		dc.Kind, dc.Name = k.kind, k.name
		if r := n.lastPunch(p); r != nil {
			dc.Punch = r.Error
			switch {
			case r.OK && r.Attempts == 0:
				dc.Punch = "dialled" // DCUtR's direct dial alone: no NAT punched
			case r.OK:
				dc.Punch = "ok"
			}
		}
		f.Conns = append(f.Conns, dc)
	}
	f.Clocks = n.clocks(ctx, members)
	for i, c := range f.Clocks {
		if id, err := peer.Decode(c.Peer); err == nil {
			f.Clocks[i].Name = kinds[id].name
		}
	}
	return f
}

// connFacts is what the doctor reads of one connection: its peer, remote
// address, direction, and the relay it goes through (with Limited, if the
// relay limits it).
func connFacts(c network.Conn) doctor.Conn {
	st := c.Stat()
	return doctor.Conn{
		Peer: c.RemotePeer().String(), Remote: c.RemoteMultiaddr().String(),
		Relay: relayOf(c.RemoteMultiaddr()), Limited: st.Limited, Inbound: st.Direction == network.DirInbound,
	}
}

// kindOf says what p is to this node, "member" of its cell, "contact" (a
// contact's device), or "", and its name as a member or contact.
func (n *Node) kindOf(ctx context.Context, p peer.ID) (kind, name string) {
	if r := n.cell.Roster(); r != nil && p != n.host.ID() {
		if m, ok := r.Member(p); ok {
			return "member", m.Name
		}
	}
	ctx, cancel := context.WithTimeout(ctx, kindWait)
	defer cancel()
	if cs, err := n.cons.ByDevice(ctx, p); err == nil && len(cs) > 0 {
		return "contact", cs[0].Name
	}
	return "", ""
}

// doctorRule is the doctor part's rule (the time protocol's, and whose
// observed addresses count): the cell's members, from the roster in
// memory, and its contacts' devices, from the contacts (a store read, at
// most kindWait), each named by the set of contacts whose device lists
// name it.
func (n *Node) doctorRule() peerRule {
	return peerRule{
		member: func(p peer.ID) bool {
			r := n.cell.Roster()
			return r != nil && p != n.host.ID() && r.Has(p)
		},
		contact: func(ctx context.Context, p peer.ID) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, kindWait)
			defer cancel()
			cs, err := n.cons.ByDevice(ctx, p)
			if err != nil || len(cs) == 0 {
				return "", err
			}
			return contactsKey(contactIDs(cs)), nil
		},
	}
}

// clocks asks up to MaxClockPeers of members their time, at once.
func (n *Node) clocks(ctx context.Context, members []peer.ID) []doctor.Clock {
	slices.Sort(members)
	members = members[:min(len(members), MaxClockPeers)]
	out := make([]doctor.Clock, len(members))
	var wg sync.WaitGroup
	for i, p := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, clockWait)
			defer cancel()
			c := doctor.Clock{Peer: p.String(), Kind: "member"}
			var err error
			if c.Skew, c.RTT, err = askTime(ctx, n.host, p, n.now); err != nil {
				c.Err = err.Error()
			}
			out[i] = c
		}()
	}
	wg.Wait()
	return out
}

// filesOf are the data dir and its secret files with their modes; none on
// Windows, where modes say nothing of who may read.
func filesOf(dir string) []doctor.File {
	if runtime.GOOS == "windows" {
		return nil
	}
	var out []doctor.File
	for _, name := range []string{"", datadir.KeyFile, datadir.TokenFile} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			out = append(out, doctor.File{Path: p, Dir: name == "", Err: err.Error()})
			continue
		}
		out = append(out, doctor.File{Path: p, Dir: fi.IsDir(), Mode: uint32(fi.Mode().Perm())})
	}
	return out
}

// relayOf is the relay's peer ID in a circuit address
// (.../p2p/<relay>/p2p-circuit...); empty if a has none.
func relayOf(a ma.Multiaddr) string {
	relay := ""
	for _, c := range a {
		switch c.Code() {
		case ma.P_P2P:
			relay = c.Value()
		case ma.P_CIRCUIT:
			return relay
		}
	}
	return ""
}

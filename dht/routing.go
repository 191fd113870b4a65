package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
)

// FindPeer looks up the addresses of id. It blocks until found, the
// lookup ends, or ctx is done.
func (d *DHT) FindPeer(ctx context.Context, id peer.ID) (peer.AddrInfo, error) {
	rt, _, err := d.running()
	if err != nil {
		return peer.AddrInfo{}, err
	}
	var ai peer.AddrInfo
	err = d.do(ctx, func(ctx context.Context) (err error) {
		ai, err = rt.FindPeer(ctx, id)
		return err
	})
	if err != nil {
		if errors.Is(err, routing.ErrNotFound) {
			err = ErrPeerNotFound
		}
		return ai, fmt.Errorf("dht: find peer %s: %w", id, mapErr(err))
	}
	return ai, nil
}

// Routing returns kad-dht as a routing.Routing, or nil before Start.
// Records put through it directly are not republished, and its calls do
// not end with their ctx while kad-dht is held in a write to a peer that
// stopped reading (Close ends them): the DHT's own methods do, so prefer
// them (FindProviders has FindProvidersAsync's shape).
func (d *DHT) Routing() routing.Routing {
	rt, _, _ := d.running()
	return rt
}

// RoutingTableSize returns the number of peers in the routing table(s);
// with LAN on, the sum of the WAN and LAN tables. Zero before Start and
// after Close. It does not block.
func (d *DHT) RoutingTableSize() int {
	_, tables, err := d.running()
	if err != nil {
		return 0
	}
	n := 0
	for _, t := range tables {
		n += t.kad.RoutingTable().Size()
	}
	return n
}

// TableMode is the current state of one routing table, for status output.
type TableMode struct {
	Table    string      // "main" (LAN off), "wan" or "lan"
	Protocol protocol.ID // ProtocolID or LANProtocolID
	Mode     Mode        // ModeServer or ModeClient as of now
	Peers    int         // routing table size
}

// Mode reports each table's current mode: a table is a server while its
// protocol handler is registered on the host, which is how kad-dht
// switches in ModeAuto. Nil before Start and after Close. It does not block.
func (d *DHT) Mode() []TableMode {
	_, tables, err := d.running()
	if err != nil {
		return nil
	}
	handled := d.h.Mux().Protocols()
	out := make([]TableMode, 0, len(tables))
	for _, t := range tables {
		m := ModeClient
		if slices.Contains(handled, t.proto) {
			m = ModeServer
		}
		out = append(out, TableMode{Table: t.name, Protocol: t.proto, Mode: m, Peers: t.kad.RoutingTable().Size()})
	}
	return out
}

// FindProviders streams up to limit providers of key (limit <= 0: all it
// finds), this node included if it provides key. It does not block; the
// channel closes when the search ends or ctx is done, and the caller must
// drain it or cancel ctx. Before Start or after Close the channel is
// closed at once.
func (d *DHT) FindProviders(ctx context.Context, key cid.Cid, limit int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo)
	rt, _, err := d.running()
	if err != nil || !key.Defined() {
		close(out)
		return out
	}
	life, err := d.enter()
	if err != nil {
		close(out)
		return out
	}
	// As in do: the channel closes as soon as ctx is done, even while
	// kad-dht's search is held in a write, and Close waits for the search.
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(life, cancel)
	in := rt.FindProvidersAsync(ctx, key, max(limit, 0))
	go func() {
		defer d.wg.Done()
		defer cancel()
		defer stop()
		defer func() {
			for range in { // until kad-dht's search ends
			}
		}()
		defer close(out)
		for {
			select {
			case ai, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- ai:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// mapErr turns kad-dht's errors into ours where one fits.
func mapErr(err error) error {
	switch {
	case errors.Is(err, kb.ErrLookupFailure):
		return ErrNoPeers
	case errors.Is(err, routing.ErrNotFound):
		return ErrNotFound
	}
	return err
}

// eachTable runs op on every table in parallel and succeeds if one does.
// With one table it is just op.
func eachTable(tables []table, op func(*kaddht.IpfsDHT) error) error {
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		wg.Go(func() { errs[i] = op(t.kad) })
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	for _, err := range errs {
		if !errors.Is(err, kb.ErrLookupFailure) {
			return err
		}
	}
	return ErrNoPeers
}

// SetReachability tells the DHT whether this node is reachable from the
// internet, as the node decides it from AutoNAT v2's verdicts per
// address. In ModeAuto the WAN table (or the only table) is a server while
// the last reachability set is network.ReachabilityPublic and a client
// otherwise, as kad-dht's ModeAuto maps it; AutoNAT v1's verdict for the
// host, which kad-dht would follow on its own, is not seen. In ModeServer
// and ModeClient, and for the LAN table, it changes nothing. It may be
// called before Start (the tables start in the mode it says) and after
// Close (no effect). It does not block: kad-dht switches in its own
// goroutine, so Mode shows the switch a moment later.
func (d *DHT) SetReachability(r network.Reachability) {
	d.th.bus.Set(r)
}

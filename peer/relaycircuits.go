package peer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/multiformats/go-varint"
	pbproto "google.golang.org/protobuf/proto"
)

// The relay's circuits as (source, destination) pairs. go-libp2p's relay
// keeps them to itself: a circuit is an inbound hop stream from its
// source and an outbound stop stream to its destination, and nothing
// outside the relay pairs the two. The relay service gives go-libp2p a
// host (relayHost) whose stop streams read the relay's first message on
// them, the STOP CONNECT that names the source, and note the pair in a
// bounded book (circuitBook). The sweep judges each circuit by its pair
// and resets its stop stream, which ends it.

// maxCircuitBook bounds the book: the relay's own bounds (MaxCircuits per
// peer, its resource scope's streams) keep far fewer open. A circuit that
// finds it full is refused (its handshake fails).
const maxCircuitBook = 4096

// maxStopMsg bounds the first message read off a stop stream: the relay's
// own (go-libp2p's maxMessageSize) and its length prefix.
const maxStopMsg = 4096 + varint.MaxLenUvarint63

type circuit struct{ src, dest peer.ID }

// errCircuitBook is returned by a stop stream's write the book refuses.
var errCircuitBook = errors.New("peer: relay circuit")

// circuitBook is the relay's open circuits, by stop stream (by its ID:
// the basic host hands the relay a wrapper of the stream the connection
// lists). Safe for
// concurrent use.
type circuitBook struct {
	max int

	mu sync.Mutex
	m  map[string]circuit // by stop stream ID (network.Stream's ID); at most max
}

func newCircuitBook(max int) *circuitBook {
	return &circuitBook{max: max, m: make(map[string]circuit)}
}

func (b *circuitBook) add(s string, c circuit) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.m[s]; !ok && len(b.m) >= b.max {
		return fmt.Errorf("%w: %d circuits noted, none more", errCircuitBook, len(b.m))
	}
	b.m[s] = c
	return nil
}

func (b *circuitBook) remove(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, s)
}

func (b *circuitBook) get(s string) (circuit, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.m[s]
	return c, ok
}

// keep drops the circuits whose stop stream live does not report open.
func (b *circuitBook) keep(live func(id string) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.m {
		if !live(s) {
			delete(b.m, s)
		}
	}
}

// ids is the stop streams noted now.
func (b *circuitBook) ids() map[string]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := make(map[string]bool, len(b.m))
	for s := range b.m {
		ids[s] = true
	}
	return ids
}

func (b *circuitBook) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// stopSource decodes the relay's first message on a stop stream, a
// length-prefixed STOP CONNECT, from its first bytes: the source it
// names, or done false while more bytes are needed.
func stopSource(b []byte) (src peer.ID, done bool, err error) {
	n, k, err := varint.FromUvarint(b)
	if err != nil {
		if errors.Is(err, varint.ErrUnderflow) || len(b) == 0 {
			return "", false, nil
		}
		return "", false, fmt.Errorf("%w: stop message length: %w", errCircuitBook, err)
	}
	if n > uint64(maxStopMsg-k) {
		return "", false, fmt.Errorf("%w: stop message of %d bytes", errCircuitBook, n)
	}
	if uint64(len(b)-k) < n {
		return "", false, nil
	}
	var msg pbv2.StopMessage
	if err := pbproto.Unmarshal(b[k:k+int(n)], &msg); err != nil {
		return "", false, fmt.Errorf("%w: stop message: %w", errCircuitBook, err)
	}
	if msg.GetType() != pbv2.StopMessage_CONNECT {
		return "", false, fmt.Errorf("%w: stop message of type %v", errCircuitBook, msg.GetType())
	}
	src, err = peer.IDFromBytes(msg.GetPeer().GetId())
	if err != nil {
		return "", false, fmt.Errorf("%w: stop message source: %w", errCircuitBook, err)
	}
	return src, true, nil
}

// relayHost is the host go-libp2p's relay runs on: h, with its stop
// streams noting their circuit in book, and its reservations told to rsv
// (nil: none).
type relayHost struct {
	host.Host
	book *circuitBook
	rsv  reservationHooks
}

// reservationHooks learns which reservations the relay grants: the ACL
// is asked before the relay's own limits (per IP, in all), which may
// still refuse. relayACL has them.
type reservationHooks interface {
	// reserved: the relay granted p a reservation (go-libp2p tags the
	// peer relayReservationTag once it has, and only then).
	reserved(p peer.ID)
	// hopStarted and hopDone: the relay handles a hop stream of p's (a
	// reservation request or a circuit request), then is done with it
	// (the request granted or refused; a circuit's copying goes on).
	hopStarted(p peer.ID)
	hopDone(p peer.ID)
}

// relayReservationTag is the connection manager tag go-libp2p's relay
// (v0.48, relay.go handleReserve) puts on a peer it granted a reservation.
const relayReservationTag = "relay-reservation"

// SetStreamHandler tells rsv when the relay starts and is done with each
// hop stream.
func (h relayHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if pid != proto.ProtoIDv2Hop || h.rsv == nil {
		h.Host.SetStreamHandler(pid, handler)
		return
	}
	h.Host.SetStreamHandler(pid, func(s network.Stream) {
		p := s.Conn().RemotePeer()
		h.rsv.hopStarted(p)
		defer h.rsv.hopDone(p)
		handler(s)
	})
}

// ConnManager tells rsv of each reservation the relay grants.
func (h relayHost) ConnManager() connmgr.ConnManager {
	cm := h.Host.ConnManager()
	if h.rsv == nil {
		return cm
	}
	return reservationTagger{ConnManager: cm, rsv: h.rsv}
}

type reservationTagger struct {
	connmgr.ConnManager
	rsv reservationHooks
}

func (c reservationTagger) TagPeer(p peer.ID, tag string, weight int) {
	if tag == relayReservationTag {
		c.rsv.reserved(p)
	}
	c.ConnManager.TagPeer(p, tag, weight)
}

func (h relayHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil || len(pids) != 1 || pids[0] != proto.ProtoIDv2Stop {
		return s, err
	}
	return &stopStream{Stream: s, book: h.book}, nil
}

// stopStream is a relay's stop stream: its first message, written by the
// relay, names the circuit's source. Only the relay's goroutine for the
// stream writes to it.
type stopStream struct {
	network.Stream
	book *circuitBook

	noted bool
	first []byte // the first message's bytes so far, at most maxStopMsg
}

func (s *stopStream) Write(b []byte) (int, error) {
	if !s.noted {
		s.first = append(s.first, b[:min(len(b), maxStopMsg-len(s.first))]...)
		src, done, err := stopSource(s.first)
		if err == nil && !done && len(s.first) >= maxStopMsg {
			err = fmt.Errorf("%w: stop message over %d bytes", errCircuitBook, maxStopMsg)
		}
		if err == nil && done {
			err = s.book.add(s.ID(), circuit{src: src, dest: s.Conn().RemotePeer()})
			s.noted, s.first = true, nil
		}
		if err != nil {
			_ = s.Stream.Reset()
			return 0, err
		}
	}
	return s.Stream.Write(b)
}

func (s *stopStream) Close() error {
	s.book.remove(s.ID())
	return s.Stream.Close()
}

func (s *stopStream) Reset() error {
	s.book.remove(s.ID())
	return s.Stream.Reset()
}

package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
)

// Invite windows: a member with an open invite (a cell invite or a
// contact invite) is reached through its cell's relays by anyone until
// the window's end, so that a joiner or a contact who is no member and no
// contact yet can meet it when both are behind NAT. The member announces
// its window on the cell's gossip (topic windowTopic), signed by its own
// peer key; relays keep the windows of members (windowTable) and admit a
// circuit from any source to that member while its window is open, from
// at most windowStrangers sources at once (relayACL). Reservations stay
// for members only; a window opens nothing towards anyone else.

const (
	// windowTopic is the gossip topic of the windows.
	windowTopic = "relay/window"
	// windowLease is how long an announced window lasts; the member
	// renews it every windowRenew while an invite is open, and closes it
	// at once when its last invite ends.
	windowLease = 30 * time.Minute
	windowRenew = windowLease / 3
	// windowMax is the longest a relay keeps a window open past its
	// receipt of the announce, whatever the announce says: the member
	// never asks more than windowLease.
	windowMax = windowLease
	// windowFirst is the longest a relay keeps open a window of a member
	// it holds no announce of (it just started, or the member is new to
	// it): that announce may be an old one replayed, whose member has
	// closed its window since. A member whose window is open renews it
	// within windowRenew, and the renewal, newer, gets the whole lease.
	windowFirst = windowRenew + 2*time.Minute
	// windowStrangers is how many peers other than members and contacts'
	// devices may hold circuits to a member through one relay at once
	// during its window (each with the relay's own per-peer limits).
	windowStrangers = 8
	// maxWindows is the most windows a relay keeps (one per member).
	maxWindows = 1024
	// windowMsgMax is the largest window message: the header, a peer ID
	// (an Ed25519 one is 38 bytes; at most 64 taken) and a signature.
	windowMsgMax = windowHeader + 64 + maxWindowSig
	windowHeader = 1 + 8 + 8 + 1
	maxWindowSig = 128
	windowV1     = 0x01
)

// windowSigContext prefixes what a window's signature covers.
const windowSigContext = "exopeer relay window v1\x00"

// windowMsg is a member's announce: its window is open for until-issued
// (a difference on the member's clock, so that skew does not change it);
// until not after issued closes it. Issued orders a member's announces,
// never compared with another clock: a relay takes only one newer than
// the last it took, and the member keeps its issued growing across
// restarts (invWindows stores its last), whatever its clock does.
type windowMsg struct {
	member        peer.ID
	issued, until time.Time
}

// errWindow wraps every reason a window message is refused.
var errWindow = errors.New("peer: bad relay window")

// signWindow encodes w signed by key, which must be w.member's.
//
//	0x01 | issued (8, Unix ns, big-endian) | until (8) | len (1) | member ID | signature
func signWindow(key crypto.PrivKey, w windowMsg) ([]byte, error) {
	id := []byte(w.member)
	if len(id) == 0 || len(id) > 64 {
		return nil, fmt.Errorf("%w: member ID of %d bytes", errWindow, len(id))
	}
	b := make([]byte, 0, windowMsgMax)
	b = append(b, windowV1)
	b = binary.BigEndian.AppendUint64(b, uint64(w.issued.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(w.until.UnixNano()))
	b = append(b, byte(len(id)))
	b = append(b, id...)
	sig, err := key.Sign(append([]byte(windowSigContext), b...))
	if err != nil {
		return nil, fmt.Errorf("peer: sign relay window: %w", err)
	}
	if len(sig) > maxWindowSig {
		return nil, fmt.Errorf("%w: signature of %d bytes", errWindow, len(sig))
	}
	return append(b, sig...), nil
}

// openWindow decodes msg and checks its signature against the key of the
// member it names.
func openWindow(msg []byte) (windowMsg, error) {
	if len(msg) < windowHeader || msg[0] != windowV1 {
		return windowMsg{}, fmt.Errorf("%w: %d bytes, version %#x", errWindow, len(msg), firstByte(msg))
	}
	n := int(msg[windowHeader-1])
	if n == 0 || n > 64 || len(msg) < windowHeader+n+1 || len(msg) > windowHeader+n+maxWindowSig {
		return windowMsg{}, fmt.Errorf("%w: member ID of %d bytes in %d", errWindow, n, len(msg))
	}
	body, sig := msg[:windowHeader+n], msg[windowHeader+n:]
	id, err := peer.IDFromBytes(body[windowHeader:])
	if err != nil {
		return windowMsg{}, fmt.Errorf("%w: member: %w", errWindow, err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return windowMsg{}, fmt.Errorf("%w: member key: %w", errWindow, err)
	}
	ok, err := pub.Verify(append([]byte(windowSigContext), body...), sig)
	if err != nil || !ok {
		return windowMsg{}, fmt.Errorf("%w: signature does not verify", errWindow)
	}
	return windowMsg{
		member: id,
		issued: time.Unix(0, int64(binary.BigEndian.Uint64(body[1:9]))),
		until:  time.Unix(0, int64(binary.BigEndian.Uint64(body[9:17]))),
	}, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// windowTable is a relay's windows, one per member, and the strangers
// admitted through each. Safe for concurrent use.
type windowTable struct {
	mu sync.Mutex
	m  map[peer.ID]*window // at most maxWindows
}

type window struct {
	issued, until time.Time
	// strangers are the slots taken, each since its last admission: at
	// most windowStrangers.
	strangers map[peer.ID]time.Time
}

// slotGrace is how long a stranger's slot is kept with no circuit: the
// relay's handshake after the ACL's admission (go-libp2p's ConnectTimeout
// to open the stop stream, HandshakeTimeout for the stop exchange). A
// slot is freed once its stranger has no circuit left to the member
// (free), and no sooner than slotGrace after its last admission (a
// stranger that asks again holds it no longer than one that keeps a
// circuit).
const slotGrace = relay.ConnectTimeout + relay.HandshakeTimeout

// put takes w, received at now on the relay's clock, if it is newer (by
// issued alone) than the member's last. An open window ends
// until-issued after now, at most windowMax, or windowFirst when the
// table holds nothing of the member's (a replay of an old announce then
// lasts at most that long, once: the same or an older one is not taken
// again); a closed one is kept, without strangers, so that an older open
// announce arriving late is not taken. A window reopened after it closed
// or ended starts with no strangers' slots. member says who is on the
// roster: only others' windows are dropped when room is needed (the
// roster holds at most cell.MaxMembers, maxWindows), so a member's last
// announce is never forgotten while it is one. It reports whether w was
// taken.
func (t *windowTable) put(w windowMsg, now time.Time, member func(peer.ID) bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[peer.ID]*window)
	}
	old := t.m[w.member]
	if old != nil && !w.issued.After(old.issued) {
		return false
	}
	if old == nil && len(t.m) >= maxWindows {
		for id := range t.m {
			if !member(id) {
				delete(t.m, id)
			}
		}
		if len(t.m) >= maxWindows {
			return false
		}
	}
	life := w.until.Sub(w.issued) // saturates: a made-up pair is clamped below
	if old == nil {
		old = &window{}
		t.m[w.member] = old
		life = min(life, windowFirst)
	}
	if life <= 0 {
		old.issued, old.until, old.strangers = w.issued, time.Time{}, nil
		return true
	}
	if !old.until.After(now) {
		old.strangers = nil // reopened: the old window's slots ended with it
	}
	old.issued, old.until = w.issued, now.Add(min(life, windowMax))
	return true
}

// admit reports whether src may open a circuit to dest at now through
// dest's window: open, and src one of the strangers it holds or a new one
// while it holds fewer than windowStrangers.
func (t *windowTable) admit(src, dest peer.ID, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.m[dest]
	if w == nil || !w.until.After(now) {
		return false
	}
	if _, ok := w.strangers[src]; ok {
		w.strangers[src] = now // its new circuit's handshake has its grace
		return true
	}
	if len(w.strangers) >= windowStrangers {
		return false
	}
	if w.strangers == nil {
		w.strangers = make(map[peer.ID]time.Time, windowStrangers)
	}
	w.strangers[src] = now
	return true
}

// holds reports whether src holds a slot in dest's window, open at now:
// the relay's sweep keeps its circuit to dest while it does, and ends it
// once the window closes or ends.
func (t *windowTable) holds(src, dest peer.ID, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.m[dest]
	if w == nil || !w.until.After(now) {
		return false
	}
	_, ok := w.strangers[src]
	return ok
}

// free frees at now the slots taken slotGrace ago or more whose stranger
// has no circuit to the window's member (live: the relay's circuits now).
func (t *windowTable) free(live func(src, dest peer.ID) bool, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for member, w := range t.m {
		for src, since := range w.strangers {
			if now.Sub(since) >= slotGrace && !live(src, member) {
				delete(w.strangers, src)
			}
		}
	}
}

// len is how many windows the table holds (open or kept closed).
func (t *windowTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

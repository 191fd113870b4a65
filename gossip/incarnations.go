package gossip

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"sync"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Incarnations from push/pull: memberlist's state exchanges (a join, and
// every PushPullInterval) state every member's incarnation. The transport
// sees them encrypted, in the first message of each memberlist stream,
// in both directions, and reads them as it reads packets, so that a
// member that just joined knows every incarnation at once, and one that
// missed a refutation learns it at the next exchange.

// memberlist's stream message types (net.go).
const (
	mlPushPull = 6
	mlEncrypt  = 10
)

// maxTeeSize bounds the first message of a stream that is read for
// incarnations; a larger one (a cell of more than about a thousand
// members) is left to memberlist alone.
const maxTeeSize = 512 << 10

// mlPushPullHeader and mlPushNode are the parts of memberlist's push/pull
// header and node states read here.
type mlPushPullHeader struct {
	Nodes int
}

type mlPushNode struct {
	Name        string
	Incarnation uint32
}

// streamSightings returns the incarnations that the first message of a
// memberlist stream states: msg must be an encrypted push/pull message
// ([10][length, 4 bytes][version 1][nonce][ciphertext], the type and
// length authenticated), readable with one of keys. Anything else (a
// ping, a message no key opens, a malformed one) states nothing; a state
// list cut short yields the states before the cut, at most
// maxIncarnations.
func streamSightings(keys [][]byte, msg []byte) []sighting {
	if len(msg) < 5 || msg[0] != mlEncrypt {
		return nil
	}
	n := binary.BigEndian.Uint32(msg[1:5])
	body := msg[5:]
	if uint64(n) != uint64(len(body)) || len(body) < 1+mlNonceSize+16 || body[0] != mlEncryptionVersion {
		return nil
	}
	var plain []byte
	for _, k := range keys {
		block, err := aes.NewCipher(k)
		if err != nil {
			continue
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			continue
		}
		if p, err := gcm.Open(nil, body[1:1+mlNonceSize], body[1+mlNonceSize:], msg[:5]); err == nil {
			plain = p
			break
		}
	}
	return pushPullSightings(plain)
}

// pushPullSightings reads the node states of a decrypted push/pull
// message.
func pushPullSightings(plain []byte) []sighting {
	if len(plain) < 1 || plain[0] != mlPushPull {
		return nil
	}
	dec := codec.NewDecoder(bytes.NewReader(plain[1:]), &codec.MsgpackHandle{})
	var h mlPushPullHeader
	if err := dec.Decode(&h); err != nil || h.Nodes <= 0 {
		return nil
	}
	var out []sighting
	for range min(h.Nodes, maxIncarnations) {
		var s mlPushNode
		if err := dec.Decode(&s); err != nil {
			break
		}
		if s.Name != "" {
			out = append(out, sighting{node: s.Name, incarnation: s.Incarnation})
		}
	}
	return out
}

// tee keeps the first message written or read on one direction of a
// memberlist stream, up to maxTeeSize, and hands it to done once whole.
type tee struct {
	mu   sync.Mutex
	buf  []byte
	want int  // the message's whole length, once its first 5 bytes are in
	off  bool // done, or given up
	done func([]byte)
}

func newTee(done func([]byte)) *tee { return &tee{done: done} }

// add takes the next bytes of the direction.
func (t *tee) add(b []byte) {
	if t == nil || len(b) == 0 {
		return
	}
	t.mu.Lock()
	if t.off {
		t.mu.Unlock()
		return
	}
	if len(t.buf) == 0 && b[0] != mlEncrypt {
		t.off = true // not an encrypted message: nothing to read
		t.mu.Unlock()
		return
	}
	if t.want == 0 {
		take := min(5-len(t.buf), len(b))
		t.buf, b = append(t.buf, b[:take]...), b[take:]
		if len(t.buf) < 5 {
			t.mu.Unlock()
			return
		}
		n := binary.BigEndian.Uint32(t.buf[1:5])
		if n > maxTeeSize {
			t.off, t.buf = true, nil
			t.mu.Unlock()
			return
		}
		t.want = 5 + int(n)
	}
	t.buf = append(t.buf, b[:min(len(b), t.want-len(t.buf))]...)
	if len(t.buf) < t.want {
		t.mu.Unlock()
		return
	}
	msg := t.buf
	t.off, t.buf = true, nil
	t.mu.Unlock()
	t.done(msg)
}

// noteStream reads the incarnations the first message of a memberlist
// stream states, in either direction (sent: the one this node wrote).
// Called by the stream's tee. This node's own incarnation counts only as
// another member states it: in what this node wrote, it is its own.
func (m *Membership) noteStream(msg []byte, sent bool) {
	for _, s := range streamSightings(m.keyring.GetKeys(), msg) {
		id, err := peer.Decode(s.node)
		if err == nil && id == m.self {
			if !sent {
				m.accused.held(s.incarnation)
			}
			continue
		}
		if err != nil || !m.cfg.Allow(id) {
			continue
		}
		m.incs.note(id, s.incarnation)
	}
}

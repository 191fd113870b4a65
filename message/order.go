package message

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// OrderKey is the key that orders a conversation's messages in the
// sender's order: the sent time (16 hex digits), the device that wrote
// it (Writer, whichever device delivers it), the device's counter (16
// hex digits), joined by "." (doc.go says why).
func (e *Envelope) OrderKey() string { return orderKey(e.Sent, e.Writer(), e.Seq) }

func orderKey(sent int64, author peer.ID, seq uint64) string {
	return fmt.Sprintf("%016x.%s.%016x", uint64(sent), author, seq)
}

// ReadEntityOf is the ID of the store entity that holds this cell's
// read marker of the conversation with the cell key conv (a
// store.EntityID in the shell): the first 16 bytes of
// SHA-256("exopeer read marker v1" || 0x00 || conv). Every device of
// the cell writes this one entity.
func ReadEntityOf(conv ed25519.PublicKey) [16]byte {
	h := sha256.New()
	h.Write([]byte("exopeer read marker v1\x00"))
	h.Write(conv)
	return [16]byte(h.Sum(nil)[:16])
}

// EntityOf is the ID of the store entity of the message id sent by the
// cell key cell (a store.EntityID in the shell): the first 16 bytes of SHA-256("exopeer message entity
// v1" || 0x00 || cell || id). Every device of a cell that records the
// message writes this one entity.
func EntityOf(cell ed25519.PublicKey, id ID) [16]byte {
	h := sha256.New()
	h.Write([]byte("exopeer message entity v1\x00"))
	h.Write(cell)
	h.Write(id[:])
	return [16]byte(h.Sum(nil)[:16])
}

package gossip

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Node metadata: the package documentation describes the format.
const (
	// MaxAppMeta is the most application metadata a node may carry.
	MaxAppMeta = 256

	metaVersion    byte = 2
	metaHeaderSize      = 1 + 1 + 8 + 2 // version, flags, sequence number, app length
	metaSigSize         = ed25519.SignatureSize
	// maxMetaSize is the largest encoded metadata, well below memberlist's
	// limit of 512 bytes.
	maxMetaSize = metaHeaderSize + MaxAppMeta + metaSigSize

	// flagLeaving marks a node that is leaving the cell on purpose: when
	// it then disappears, it Left rather than Failed.
	flagLeaving byte = 1 << 0
	knownFlags       = flagLeaving
)

// metaDomain separates the metadata signature from every other use of a
// node's key.
const metaDomain = "exopeer gossip node metadata v1\x00"

// ErrBadMeta means a node's metadata is malformed or its signature does
// not verify.
var ErrBadMeta = errors.New("gossip: bad node metadata")

// nodeMeta is a node's metadata, decoded. App and Sig alias the encoded
// bytes.
type nodeMeta struct {
	Flags byte
	// Seq grows with every metadata the node signs (see
	// Membership.setMeta): of two signed metadata of one node, the one
	// with the higher Seq is the newer.
	Seq uint64
	App []byte
	Sig []byte
}

func (nm nodeMeta) leaving() bool { return nm.Flags&flagLeaving != 0 }

// appendBody appends the signed part of the encoding (all but the
// signature) to b.
func (nm nodeMeta) appendBody(b []byte) []byte {
	b = append(b, metaVersion, nm.Flags)
	b = binary.BigEndian.AppendUint64(b, nm.Seq)
	b = binary.BigEndian.AppendUint16(b, uint16(len(nm.App)))
	return append(b, nm.App...)
}

// decodeMeta parses encoded metadata. It checks the form only, not the
// signature: see verifyMeta.
func decodeMeta(b []byte) (nodeMeta, error) {
	if len(b) < metaHeaderSize+metaSigSize {
		return nodeMeta{}, fmt.Errorf("%w: %d bytes is too short", ErrBadMeta, len(b))
	}
	if b[0] != metaVersion {
		return nodeMeta{}, fmt.Errorf("%w: version %d", ErrBadMeta, b[0])
	}
	flags := b[1]
	if flags&^knownFlags != 0 {
		return nodeMeta{}, fmt.Errorf("%w: unknown flags %#x", ErrBadMeta, flags)
	}
	seq := binary.BigEndian.Uint64(b[2:10])
	n := int(binary.BigEndian.Uint16(b[10:12]))
	if n > MaxAppMeta {
		return nodeMeta{}, fmt.Errorf("%w: %d bytes of app metadata, at most %d", ErrBadMeta, n, MaxAppMeta)
	}
	if len(b) != metaHeaderSize+n+metaSigSize {
		return nodeMeta{}, fmt.Errorf("%w: length %d, want %d", ErrBadMeta, len(b), metaHeaderSize+n+metaSigSize)
	}
	return nodeMeta{
		Flags: flags,
		Seq:   seq,
		App:   b[metaHeaderSize : metaHeaderSize+n : metaHeaderSize+n],
		Sig:   b[metaHeaderSize+n:],
	}, nil
}

// signedMessage is what a node signs: the domain, the cell tag, its peer
// ID and the metadata body.
func signedMessage(tag [8]byte, id peer.ID, nm nodeMeta) []byte {
	b := make([]byte, 0, len(metaDomain)+8+2+len(id)+metaHeaderSize+len(nm.App))
	b = append(b, metaDomain...)
	b = append(b, tag[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	b = append(b, id...)
	return nm.appendBody(b)
}

// encodeMeta signs and encodes the metadata of node id, whose key is key,
// with sequence number seq.
func encodeMeta(key crypto.PrivKey, tag [8]byte, id peer.ID, seq uint64, flags byte, app []byte) ([]byte, error) {
	if len(app) > MaxAppMeta {
		return nil, fmt.Errorf("gossip: app metadata has %d bytes, at most %d", len(app), MaxAppMeta)
	}
	nm := nodeMeta{Flags: flags, Seq: seq, App: app}
	sig, err := key.Sign(signedMessage(tag, id, nm))
	if err != nil {
		return nil, fmt.Errorf("gossip: sign metadata: %w", err)
	}
	if len(sig) != metaSigSize {
		return nil, fmt.Errorf("gossip: signature of %d bytes, want %d", len(sig), metaSigSize)
	}
	return append(nm.appendBody(make([]byte, 0, maxMetaSize)), sig...), nil
}

// verifyMeta decodes the metadata of node id and checks its signature
// against the Ed25519 public key embedded in id.
func verifyMeta(tag [8]byte, id peer.ID, b []byte) (nodeMeta, error) {
	nm, err := decodeMeta(b)
	if err != nil {
		return nodeMeta{}, err
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nodeMeta{}, fmt.Errorf("%w: no public key in peer ID: %w", ErrBadMeta, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return nodeMeta{}, fmt.Errorf("%w: %v key, not Ed25519", ErrBadMeta, pub.Type())
	}
	ok, err := pub.Verify(signedMessage(tag, id, nm), nm.Sig)
	if err != nil || !ok {
		return nodeMeta{}, fmt.Errorf("%w: signature does not verify", ErrBadMeta)
	}
	return nm, nil
}

// maxSeqs bounds the nodes whose metadata sequence numbers a seqTable
// keeps: more than any roster holds (cell.MaxMembers), and far more than
// memberlist handles.
const maxSeqs = 4096

// Why seqTable.admit refuses metadata.
var (
	errStaleMeta = errors.New("gossip: metadata older than one already seen of that node")
	errSeqsFull  = errors.New("gossip: too many nodes")
)

// seqTable remembers, for each node, the highest sequence number of its
// signed metadata seen, so that an older one, replayed by a member holding
// the gossip key, is refused. Only nodes that passed every other check are
// entered (they are allowed, so on the roster), and Refresh forgets those
// no longer allowed: the table holds at most the roster, and never more
// than maxSeqs nodes. A node is forgotten too when it leaves or fails, so
// that it is admitted again if it comes back with its clock behind. Safe
// for concurrent use.
type seqTable struct {
	mu   sync.Mutex
	seqs map[peer.ID]uint64
}

// admit accepts metadata of node id with sequence number seq if none
// with a higher one was seen, and records seq. Equal is accepted: it is
// the same metadata, gossiped again (a node never signs two with one
// number).
func (t *seqTable) admit(id peer.ID, seq uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	last, ok := t.seqs[id]
	switch {
	case ok && seq < last:
		return fmt.Errorf("%w: sequence number %d, seen %d", errStaleMeta, seq, last)
	case !ok && len(t.seqs) >= maxSeqs:
		return fmt.Errorf("%w: already %d", errSeqsFull, maxSeqs)
	}
	if t.seqs == nil {
		t.seqs = make(map[peer.ID]uint64)
	}
	t.seqs[id] = seq
	return nil
}

// prune forgets every node that keep rejects.
func (t *seqTable) prune(keep func(peer.ID) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id := range t.seqs {
		if !keep(id) {
			delete(t.seqs, id)
		}
	}
}

// forget forgets node id.
func (t *seqTable) forget(id peer.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seqs, id)
}

// len returns how many nodes the table holds.
func (t *seqTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seqs)
}

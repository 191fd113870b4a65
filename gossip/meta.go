package gossip

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Node metadata: the package documentation describes the format.
const (
	// MaxAppMeta is the most application metadata a node may carry.
	MaxAppMeta = 256

	metaVersion    byte = 1
	metaHeaderSize      = 1 + 1 + 2 // version, flags, app length
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
	App   []byte
	Sig   []byte
}

func (nm nodeMeta) leaving() bool { return nm.Flags&flagLeaving != 0 }

// appendBody appends the signed part of the encoding (all but the
// signature) to b.
func (nm nodeMeta) appendBody(b []byte) []byte {
	b = append(b, metaVersion, nm.Flags)
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
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n > MaxAppMeta {
		return nodeMeta{}, fmt.Errorf("%w: %d bytes of app metadata, at most %d", ErrBadMeta, n, MaxAppMeta)
	}
	if len(b) != metaHeaderSize+n+metaSigSize {
		return nodeMeta{}, fmt.Errorf("%w: length %d, want %d", ErrBadMeta, len(b), metaHeaderSize+n+metaSigSize)
	}
	return nodeMeta{
		Flags: flags,
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

// encodeMeta signs and encodes the metadata of node id, whose key is key.
func encodeMeta(key crypto.PrivKey, tag [8]byte, id peer.ID, flags byte, app []byte) ([]byte, error) {
	if len(app) > MaxAppMeta {
		return nil, fmt.Errorf("gossip: app metadata has %d bytes, at most %d", len(app), MaxAppMeta)
	}
	nm := nodeMeta{Flags: flags, App: app}
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

package prekey

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	ds "github.com/ipfs/go-datastore"

	"github.com/exopeer/exopeer/ratchet"
)

// StateKey is the datastore key of the device's prekey state: one
// record, written whole (one Put, then a Sync) at every change, before
// anything that depends on it leaves the node.
//
// Its value, version 1: version (1) = 1; the bundle's sequence number (8,
// big-endian, at least 1); the ratchet.Prekeys encoding (ratchet/doc.go,
// "Private state").
var StateKey = ds.NewKey("/prekeys/state")

const (
	stateVersion = 1
	stateHeader  = 1 + 8
)

// ErrCorruptState is the error of a stored prekey state that does not
// decode. The node does not start: a state made anew would break every
// session under way (see corruptError for what the user can do).
var ErrCorruptState = errors.New("prekey: stored prekey state is corrupt")

// corruptError is ErrCorruptState for why, naming the key and saying how
// to recover.
func corruptError(why error) error {
	return fmt.Errorf("%w (datastore key %s: %w); nothing was replaced: restore the data dir from a backup, "+
		"or delete that key from the datastore to start with new prekeys, after which every session "+
		"started with the old ones fails and its peer must start a new one", ErrCorruptState, StateKey, why)
}

// encodeState is the stored value of keys with bundle sequence seq.
func encodeState(seq uint64, keys *ratchet.Prekeys) []byte {
	enc, _ := keys.MarshalBinary() // never fails
	out := make([]byte, 0, stateHeader+len(enc))
	out = append(out, stateVersion)
	out = binary.BigEndian.AppendUint64(out, seq)
	return append(out, enc...)
}

// decodeState decodes a stored value. Its errors wrap ErrCorruptState.
func decodeState(b []byte) (uint64, *ratchet.Prekeys, error) {
	if len(b) < stateHeader {
		return 0, nil, corruptError(fmt.Errorf("%d bytes", len(b)))
	}
	if b[0] != stateVersion {
		return 0, nil, corruptError(fmt.Errorf("version %d", b[0]))
	}
	seq := binary.BigEndian.Uint64(b[1:stateHeader])
	if seq == 0 {
		return 0, nil, corruptError(errors.New("sequence 0"))
	}
	keys := new(ratchet.Prekeys)
	if err := keys.UnmarshalBinary(b[stateHeader:]); err != nil {
		return 0, nil, corruptError(err)
	}
	return seq, keys, nil
}

// loadState reads the stored state; found is false if there is none.
func loadState(ctx context.Context, d ds.Datastore) (seq uint64, keys *ratchet.Prekeys, found bool, err error) {
	b, err := d.Get(ctx, StateKey)
	if errors.Is(err, ds.ErrNotFound) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("prekey: read %s: %w", StateKey, err)
	}
	seq, keys, err = decodeState(b)
	if err != nil {
		return 0, nil, false, err
	}
	return seq, keys, true, nil
}

// saveState writes the state whole and syncs it.
func saveState(ctx context.Context, d ds.Datastore, seq uint64, keys *ratchet.Prekeys) error {
	if err := d.Put(ctx, StateKey, encodeState(seq, keys)); err != nil {
		return fmt.Errorf("prekey: write %s: %w", StateKey, err)
	}
	if err := d.Sync(ctx, StateKey); err != nil {
		return fmt.Errorf("prekey: sync %s: %w", StateKey, err)
	}
	return nil
}

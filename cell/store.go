package cell

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	ds "github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/namespace"
	"github.com/ipfs/go-datastore/query"
)

// What a node keeps of its cell, under /cell in its datastore:
//
//	/cell/box      the node's X25519 box key (32 bytes), made once
//	/cell/roster   the newest roster it accepted (wire form)
//	/cell/keys     the epoch secrets it holds: (uvarint epoch, 32 bytes)*
//	/cell/cellkey  the cell key's 32-byte seed, on admin devices only
//	/cell/invites/NNNN  each open invite of an admin, by nameplate (invite.go
//	               has the layout): its code, roles, expiry, the attempts
//	               booked against it and the device it admitted, if any
//
// An invite's words are the password of its join: like the cell key, it
// is kept in the node's own datastore, in the data dir that only the
// node's user can read (mode 0700), and nowhere else. It is deleted when
// the invite expires or is exhausted.
//
// Every write is followed by a Sync, before anything that depends on it is
// sent. A record that does not decode stops the node with an error naming
// it: nothing is overwritten.
var (
	keyBox     = ds.NewKey("box")
	keyRoster  = ds.NewKey("roster")
	keyKeys    = ds.NewKey("keys")
	keyCellKey = ds.NewKey("cellkey")
	keyInvites = ds.NewKey("invites")
)

// store is the /cell namespace of the node's datastore.
type store struct{ ds ds.Batching }

func newStore(d ds.Batching) store {
	return store{ds: namespace.Wrap(d, ds.NewKey("/cell"))}
}

// state is everything stored; a zero roster means no cell.
type state struct {
	box     BoxKey
	roster  *Roster
	keys    *Keys
	cellKey ed25519.PrivateKey // nil unless admin
}

// ErrCorruptState means a stored cell record does not decode.
var ErrCorruptState = errors.New("cell: stored state is corrupt")

func (s store) get(ctx context.Context, k ds.Key) ([]byte, bool, error) {
	b, err := s.ds.Get(ctx, k)
	if errors.Is(err, ds.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cell: read /cell%s: %w", k, err)
	}
	return b, true, nil
}

// load reads the stored state, making the box key (from rand) on first
// use.
func (s store) load(ctx context.Context, rand io.Reader) (*state, error) {
	st := &state{}
	b, ok, err := s.get(ctx, keyBox)
	if err != nil {
		return nil, err
	}
	if ok {
		if st.box, err = BoxKeyFromBytes(b); err != nil {
			return nil, fmt.Errorf("%w: /cell/box: %w", ErrCorruptState, err)
		}
	} else {
		if st.box, err = NewBoxKey(rand); err != nil {
			return nil, err
		}
		if err := s.put(ctx, keyBox, st.box.Bytes()); err != nil {
			return nil, err
		}
	}
	if b, ok, err = s.get(ctx, keyRoster); err != nil || !ok {
		return st, err
	}
	if st.roster, err = DecodeRoster(b); err != nil {
		return nil, fmt.Errorf("%w: /cell/roster: %w", ErrCorruptState, err)
	}
	st.keys = NewKeys(st.roster.Cell)
	if b, _, err = s.get(ctx, keyKeys); err != nil {
		return nil, err
	}
	if err := decodeKeys(b, st.keys); err != nil {
		return nil, fmt.Errorf("%w: /cell/keys: %w", ErrCorruptState, err)
	}
	if b, ok, err = s.get(ctx, keyCellKey); err != nil {
		return nil, err
	}
	if ok {
		if len(b) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: /cell/cellkey is %d bytes", ErrCorruptState, len(b))
		}
		st.cellKey = ed25519.NewKeyFromSeed(b)
		if !st.cellKey.Public().(ed25519.PublicKey).Equal(st.roster.Cell) {
			return nil, fmt.Errorf("%w: /cell/cellkey is not the key of the stored cell", ErrCorruptState)
		}
	}
	return st, nil
}

func (s store) put(ctx context.Context, k ds.Key, v []byte) error {
	if err := s.ds.Put(ctx, k, v); err != nil {
		return fmt.Errorf("cell: write /cell%s: %w", k, err)
	}
	if err := s.ds.Sync(ctx, k); err != nil {
		return fmt.Errorf("cell: sync /cell%s: %w", k, err)
	}
	return nil
}

// save writes the roster, the keys and, if given, the cell key. The keys
// go first: a roster on disk is always one whose secret is on disk too.
func (s store) save(ctx context.Context, st *state) error {
	if err := s.put(ctx, keyKeys, encodeKeys(st.keys)); err != nil {
		return err
	}
	if st.cellKey != nil {
		if err := s.put(ctx, keyCellKey, st.cellKey.Seed()); err != nil {
			return err
		}
	}
	return s.put(ctx, keyRoster, st.roster.Encode())
}

func encodeKeys(k *Keys) []byte {
	var b []byte
	for _, e := range k.Epochs() {
		s, _ := k.Secret(e)
		b = binary.AppendUvarint(b, e)
		b = append(b, s[:]...)
	}
	return b
}

func decodeKeys(b []byte, k *Keys) error {
	for len(b) > 0 {
		e, n := binary.Uvarint(b)
		if n <= 0 || len(b)-n < SecretLen {
			return errors.New("truncated")
		}
		k.Add(e, Secret(b[n:n+SecretLen]))
		b = b[n+SecretLen:]
	}
	return nil
}

func inviteKey(nameplate uint16) ds.Key {
	return keyInvites.ChildString(inviteKeyName(nameplate))
}

// putInvite stores an invite as it is now.
func (s store) putInvite(ctx context.Context, inv *invite) error {
	return s.put(ctx, inviteKey(inv.code.Nameplate), inv.encode())
}

// deleteInvite forgets an invite for good.
func (s store) deleteInvite(ctx context.Context, nameplate uint16) error {
	k := inviteKey(nameplate)
	if err := s.ds.Delete(ctx, k); err != nil {
		return fmt.Errorf("cell: delete /cell%s: %w", k, err)
	}
	if err := s.ds.Sync(ctx, k); err != nil {
		return fmt.Errorf("cell: sync /cell%s: %w", k, err)
	}
	return nil
}

// loadInvites reads the stored invites. One that does not decode, or is
// stored under another nameplate's name, stops the node with an error
// naming it, like every other record: nothing is overwritten.
func (s store) loadInvites(ctx context.Context) ([]*invite, error) {
	res, err := s.ds.Query(ctx, query.Query{Prefix: keyInvites.String()})
	if err != nil {
		return nil, fmt.Errorf("cell: read /cell%s: %w", keyInvites, err)
	}
	defer res.Close()
	var invs []*invite
	for e := range res.Next() {
		if e.Error != nil {
			return nil, fmt.Errorf("cell: read /cell%s: %w", keyInvites, e.Error)
		}
		inv, err := decodeInvite(e.Value)
		if err == nil && !validInviteKey(ds.NewKey(e.Key).BaseNamespace(), inv) {
			err = fmt.Errorf("it holds the invite of nameplate %04d", inv.code.Nameplate)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: /cell%s: %w", ErrCorruptState, e.Key, err)
		}
		invs = append(invs, inv)
	}
	return invs, nil
}

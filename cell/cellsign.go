package cell

import (
	"crypto/ed25519"
	"slices"
)

// WithCellKey calls sign with the cell's private key and the roster it
// belongs to, if this node holds the key (an admin), and returns what sign
// returns; ErrNoCell in no cell, ErrNotAdmin on a member without the key.
// sign gets a copy of the key, wiped when it returns; it must not keep it,
// and must sign only domain-separated messages of its own (package
// contact's device lists: "exopeer contact device list v1"), never a
// roster. It must not call the Service. Safe for concurrent use.
func (s *Service) WithCellKey(sign func(key ed25519.PrivateKey, r *Roster) error) error {
	s.mu.Lock()
	if s.state == nil || s.state.roster == nil {
		s.mu.Unlock()
		return ErrNoCell
	}
	if s.state.cellKey == nil {
		s.mu.Unlock()
		return ErrNotAdmin
	}
	key, r := slices.Clone(s.state.cellKey), s.state.roster
	s.mu.Unlock()
	defer clear(key)
	return sign(key, r)
}

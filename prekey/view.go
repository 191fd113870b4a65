package prekey

import "github.com/exopeer/exopeer/ratchet"

// View runs fn on the device's prekey state under the service's lock,
// for a use that changes nothing: the messaging service starts a session
// in fn (ratchet.Initiate reads the identity key). Nothing is stored,
// re-signed or republished; fn must not change k, keep it, nor call the
// Service. It returns fn's error, or ErrNotStarted or ErrClosed.
func (s *Service) View(fn func(k *ratchet.Prekeys) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case !s.started:
		return ErrNotStarted
	}
	return fn(s.keys)
}

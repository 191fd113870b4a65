package service

import "context"

// TypesVersion returns the version of trait types in this node's index
// (index.Index.TypesVersion: a number that moves whenever a commit
// touches one of them, any type when types is empty), and true, when
// this node's reads are answered by its own index, open for its current
// cell. Otherwise (a node without the store role reads from a store
// member, which cannot tell cheaply; an index not open yet; the service
// closed) it returns false, and a caller that keeps what it read must
// read again each time. A caller may keep what it read of these types
// under the number it got just before reading, as long as the number
// is the same. It reads no SQLite, does not block, and opens nothing;
// safe for concurrent use.
func (s *Service) TypesVersion(ctx context.Context, types ...string) (uint64, bool) {
	if s.live() != nil {
		return 0, false
	}
	ro, me, err := s.roster()
	if err != nil || !s.isStore(me) {
		return 0, false
	}
	id := ro.ID()
	s.imu.Lock()
	ix := s.ix
	if s.ixDone || s.ixCell != id {
		ix = nil
	}
	s.imu.Unlock()
	if ix == nil {
		return 0, false
	}
	return ix.TypesVersion(types...), true
}

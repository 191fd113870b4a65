package cell

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/exopeer/exopeer/cell/core"
)

// InviteOptions says what an invite admits.
type InviteOptions struct {
	Roles Role          // the joiner's roles; default chain,store
	TTL   time.Duration // default Config.InviteTTL; at most MaxInviteTTL
}

// MaxInviteTTL is the longest an invite stays valid. An invite code is a
// password of 33 bits guarding the cell: it is meant to be typed in
// on the new device within minutes, not kept.
const MaxInviteTTL = 7 * 24 * time.Hour

// ErrInviteTTL means an invite's TTL is longer than MaxInviteTTL.
var ErrInviteTTL = errors.New("cell: invite TTL too long")

// Invite opens a one-time invitation and returns its code and expiry. The
// node advertises the code's nameplate rendezvous until the invite is used,
// expires or is exhausted.
func (s *Service) Invite(opts InviteOptions) (Code, time.Time, error) {
	if opts.Roles == 0 {
		opts.Roles = RoleChain | RoleStore
	}
	if opts.Roles&RoleAdmin != 0 {
		return Code{}, time.Time{}, errors.New("cell: an invite cannot grant the admin role: the cell key never leaves its device")
	}
	if opts.Roles&^core.AllRoles != 0 {
		return Code{}, time.Time{}, fmt.Errorf("cell: unknown roles %#x", uint8(opts.Roles))
	}
	if opts.TTL <= 0 {
		opts.TTL = s.cfg.InviteTTL
	}
	if opts.TTL > MaxInviteTTL {
		return Code{}, time.Time{}, fmt.Errorf("%w: %v, at most %v", ErrInviteTTL, opts.TTL, MaxInviteTTL)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usableLocked(); err != nil {
		return Code{}, time.Time{}, err
	}
	if s.state.roster == nil || !s.state.roster.Has(s.self) {
		return Code{}, time.Time{}, ErrNoCell
	}
	if s.state.cellKey == nil {
		return Code{}, time.Time{}, ErrNotAdmin
	}
	var code Code
	for {
		c, err := core.NewCode(s.rand)
		if err != nil {
			return Code{}, time.Time{}, err
		}
		if _, taken := s.admin.Invites[c.Nameplate]; !taken {
			code = c
			break
		}
	}
	inv := core.NewInvite(code, opts.Roles, s.now().Add(opts.TTL))
	// Stored before the code is shown: it outlives this process.
	if err := s.st.putInvite(s.ctx, inv); err != nil {
		return Code{}, time.Time{}, err
	}
	s.openInviteLocked(inv)
	s.log.Info("invite opened", "nameplate", code.Nameplate, "expires", inv.Expires.Format(time.TimeOnly), "roles", opts.Roles)
	return code, inv.Expires, nil
}

// inviteRendezvous is the rendezvous secret of a nameplate. It is not
// secret (anyone can compute it for the 10,000 nameplates): it only names
// the meeting place. The code's words, which are secret, never leave the
// PAKE.
func inviteRendezvous(nameplate uint16) []byte {
	return binary.BigEndian.AppendUint16([]byte("exopeer invite v1\x00"), nameplate)
}

// IsInviteRendezvous reports whether secret is an invite nameplate's
// rendezvous (the inviter's, or the joiner's looking it up).
func IsInviteRendezvous(secret []byte) bool {
	return len(secret) == len(inviteRendezvous(0)) && bytes.Equal(secret[:len(secret)-2], inviteRendezvous(0)[:len(secret)-2])
}

// openInviteLocked serves inv and advertises its nameplate.
func (s *Service) openInviteLocked(inv *core.Invite) {
	s.admin.Invites[inv.Code.Nameplate] = inv
	if s.rz != nil {
		s.rz.Rendezvous(inviteRendezvous(inv.Code.Nameplate))
	}
}

// closeInviteLocked stops serving inv in this process; it stays stored.
func (s *Service) closeInviteLocked(inv *core.Invite) {
	if s.admin.Invites[inv.Code.Nameplate] == inv {
		delete(s.admin.Invites, inv.Code.Nameplate)
	}
	if s.rz != nil {
		s.rz.StopRendezvous(inviteRendezvous(inv.Code.Nameplate))
	}
}

// endInviteLocked ends inv for good: expired or exhausted.
func (s *Service) endInviteLocked(inv *core.Invite) {
	s.closeInviteLocked(inv)
	if err := s.st.deleteInvite(s.ctx, inv.Code.Nameplate); err != nil {
		// It is dead anyway: loaded again, it ends again.
		s.log.Warn("stored invite not deleted", "nameplate", inv.Code.Nameplate, "err", err)
	}
}

func (s *Service) expireInvites(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, inv := range s.admin.Expire(now) {
		s.log.Info("invite expired", "nameplate", inv.Code.Nameplate)
		s.endInviteLocked(inv)
	}
}

// loadInvitesLocked serves again the invites stored by an earlier run of
// an admin; those that died meanwhile are deleted.
func (s *Service) loadInvitesLocked(ctx context.Context, now time.Time) error {
	invs, err := s.st.loadInvites(ctx)
	if err != nil {
		return err
	}
	for _, inv := range invs {
		if inv.Dead(now, s.cfg.MaxInviteAttempts) || s.state.cellKey == nil {
			s.endInviteLocked(inv)
			continue
		}
		s.openInviteLocked(inv)
		s.log.Info("invite open again", "nameplate", inv.Code.Nameplate, "expires", inv.Expires.Format(time.TimeOnly))
	}
	return nil
}

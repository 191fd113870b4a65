package cell

import (
	"bufio"
	"errors"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/cell/core"
	"github.com/exopeer/exopeer/internal/ambient"
)

// ProtocolJoin is the join protocol: a CPace exchange keyed by the invite
// code's words, then the joiner's request and the admin's new roster,
// sealed under keys from the PAKE. See doc.go.
const ProtocolJoin protocol.ID = "/exopeer/cell/join/1.0.0"

// serveJoin is the admin's side of a join: the shell of core.Admin. It
// reads each frame, hands it to the machine under mu, and carries out the
// step it returns: store the invite, then send; on Admit, store and spread
// the roster the machine decides on.
func (s *Service) serveJoin(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(ambient.Deadline(streamTimeout))
	from := st.Conn().RemotePeer()
	log := s.log.With("joiner", from)
	rd := bufio.NewReader(st)
	b, err := readFrame(rd, core.MaxHelloFrame)
	if err != nil {
		_ = st.Reset()
		return
	}
	s.mu.Lock()
	run, step := s.admin.Hello(from, b, s.now(), s.rand)
	step = s.carryOutLocked(run, step)
	s.mu.Unlock()
	if !s.send(st, step) || step.Done {
		logRun(log, step.Err)
		return
	}
	if b, err = readFrame(rd, core.MaxConfirmFrame); err != nil {
		log.Info("join abandoned after the PAKE (counted as a failed attempt)", "err", err)
		_ = st.Reset()
		return
	}
	s.mu.Lock()
	step = s.carryOutLocked(run, s.admin.Confirm(run, b))
	if step.Admit {
		step = s.admitLocked(run)
	}
	s.mu.Unlock()
	if s.send(st, step) && step.Err == nil {
		name, _ := run.Request()
		log.Info("member joined by invite", "name", name)
		return
	}
	logRun(log, step.Err)
}

// carryOutLocked does what step asks before its frame goes out: end an
// invite, store one. It returns the step to go on with.
func (s *Service) carryOutLocked(run *core.AdminRun, step core.Step) core.Step {
	if step.End != nil {
		s.log.Info("invite ended", "nameplate", step.End.Code.Nameplate, "failures", step.End.Failures)
		s.endInviteLocked(step.End)
	}
	if step.Store != nil {
		if err := s.st.putInvite(s.ctx, step.Store); err != nil {
			s.log.Warn("invite not stored", "err", err)
			step = s.admin.StoreFailed(run, step)
		}
	}
	return step
}

// admitLocked decides on a joiner that proved the code, stores and
// spreads the roster that adds it, and returns the welcome step.
func (s *Service) admitLocked(run *core.AdminRun) core.Step {
	if err := s.usableLocked(); err != nil {
		return s.admin.Refuse(run, err)
	}
	a := s.admin.Admit(run, s.state.roster, s.state.keys, s.state.cellKey, s.now())
	if a.Err != nil {
		return s.admin.Refuse(run, a.Err)
	}
	if !a.Adopt {
		s.log.Info("welcome sent again", "peer", run.From(), "version", a.Roster.Version)
	} else {
		if err := s.adoptLocked(s.ctx, a.Roster, s.state.keys); err != nil {
			return s.admin.Refuse(run, err)
		}
		var peers []peer.ID
		for _, mem := range a.Roster.Members {
			if mem.Peer != run.From() {
				peers = append(peers, mem.Peer)
			}
		}
		s.spread(a.Roster, peers)
	}
	return s.carryOutLocked(run, s.admin.Admitted(run, a.Roster))
}

// send writes step's frame, if any; false if the stream failed (it is
// reset).
func (s *Service) send(st network.Stream, step core.Step) bool {
	if step.Send == nil {
		return true
	}
	if err := writeFrame(st, step.Send); err != nil {
		_ = st.Reset()
		return false
	}
	return true
}

// logRun logs why a run ended without a member joining.
func logRun(log *slog.Logger, err error) {
	switch {
	case err == nil:
	case errors.Is(err, core.ErrWrongCode):
		log.Warn("join refused: wrong code", "err", err)
	case errors.Is(err, core.ErrReplay):
		log.Info("join refused: replayed hello")
	case errors.Is(err, core.ErrNoInvite), errors.Is(err, core.ErrInviteExpired), errors.Is(err, core.ErrInviteExhausted):
		log.Debug("join refused", "err", err)
	default:
		log.Info("join refused", "err", err)
	}
}

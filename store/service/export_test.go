package service

import (
	"github.com/exopeer/exopeer/chain/replica"
	"github.com/exopeer/exopeer/store/index"
)

// SetCommitHook makes each commit call f before it appends; set it
// before the first write.
func SetCommitHook(s *Service, f func()) { s.commitHook = f }

// Commits returns how many commits the service made (one AppendMany, one
// synced write, each).
func Commits(s *Service) int64 { return s.commits.Load() }

// Queued returns how many writes wait in the queue for a commit.
func Queued(s *Service) int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return len(s.queue)
}

// Arrivals converts the chain's entries for the index as catch-ups do.
func Arrivals(s *Service, es []replica.Entry) []index.Arrival { return s.arrivals(es) }

package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/exopeer/exopeer/internal/ambient"
)

// ProtocolTime is the time protocol that `exopeer doctor` measures clock
// skew with. The asker opens a stream and sends nothing (it closes its
// side); the answerer, if it serves the asker (a member of its cell or a
// contact's device) and its rate allows, writes its clock as 8 bytes, Unix
// nanoseconds big-endian, and closes; otherwise it resets the stream.
const ProtocolTime protocol.ID = "/exopeer/time/1.0.0"

const (
	// timeSize is the size of an answer.
	timeSize = 8
	// TimeRate and TimeBurst bound the answers a node gives, all askers
	// together: TimeRate a second, up to TimeBurst at once.
	TimeRate  = 4
	TimeBurst = 16
	// timeIdle bounds the write of an answer.
	timeIdle = 5 * time.Second
)

// Errors of the time protocol.
var (
	ErrTimeAnswer = errors.New("peer: time: malformed answer")
)

// encodeTime is the answer carrying t.
func encodeTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

// decodeTime reads an answer: exactly timeSize bytes, a time after the
// Unix epoch (a clock before 1970 is no clock to compare with).
func decodeTime(b []byte) (time.Time, error) {
	if len(b) != timeSize {
		return time.Time{}, fmt.Errorf("%w: %d bytes, want %d", ErrTimeAnswer, len(b), timeSize)
	}
	ns := int64(binary.BigEndian.Uint64(b))
	if ns <= 0 {
		return time.Time{}, fmt.Errorf("%w: time %d is not after 1970", ErrTimeAnswer, ns)
	}
	return time.Unix(0, ns), nil
}

// bucket is a token bucket on a given clock: rate tokens a second, up to
// burst. It is safe for concurrent use.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate, burst int) *bucket {
	return &bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst)}
}

// take takes a token at now, and reports whether there was one.
func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	// A clock set back (as the doctor tells a user whose clock is
	// ahead): refill from now on, with no token for the step back.
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// timeServer answers ProtocolTime for the peers allow admits, within its
// bucket's rate.
type timeServer struct {
	allow func(peer.ID) bool
	now   func() time.Time
	rate  *bucket
}

func (t *timeServer) serve(s network.Stream) {
	if !t.allow(s.Conn().RemotePeer()) || !t.rate.take(t.now()) {
		_ = s.Reset()
		return
	}
	_ = s.SetWriteDeadline(ambient.Deadline(timeIdle))
	if _, err := s.Write(encodeTime(t.now())); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// askTime reads p's clock over ProtocolTime on the clock now: it returns
// p's clock minus the midpoint of the ask's send and receive on ours, and
// the round trip. It blocks until the answer or ctx's end.
func askTime(ctx context.Context, h host.Host, p peer.ID, now func() time.Time) (skew, rtt time.Duration, err error) {
	sent := now()
	s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "time"), p, ProtocolTime)
	if err != nil {
		return 0, 0, fmt.Errorf("peer: time %s: %w", p, err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	_ = s.CloseWrite()
	b, err := io.ReadAll(io.LimitReader(s, timeSize+1))
	got := now()
	if err != nil {
		return 0, 0, fmt.Errorf("peer: time %s: %w", p, err)
	}
	theirs, err := decodeTime(b)
	if err != nil {
		_ = s.Reset()
		return 0, 0, fmt.Errorf("peer %s: %w", p, err)
	}
	rtt = got.Sub(sent)
	mid := sent.Add(rtt / 2)
	return theirs.Sub(mid), rtt, nil
}

package simnet

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Tests of the simulated streams: deadlines in virtual time, one-way
// cuts, stream faults. Each runs two or three bare nodes (no cell) and a
// test protocol.

const (
	protoEcho protocol.ID = "/exopeer/test/echo/1.0.0" // answers each line with itself
	protoSink protocol.ID = "/exopeer/test/sink/1.0.0" // reads nothing until told
)

// echo answers each line with itself until the stream ends.
func echo(s network.Stream) {
	defer s.Close()
	br := bufio.NewReader(s)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		if _, err := s.Write(line); err != nil {
			_ = s.Reset()
			return
		}
	}
}

// streamNet starts count bare nodes, each serving protoEcho, and returns
// them; settle closes the network at the end.
func streamNet(t *testing.T, seed uint64, count int) (*Net, []*Node) {
	t.Helper()
	n := New(Config{Seed: seed})
	t.Cleanup(func() { settle(t, n) })
	var nodes []*Node
	for range count {
		nd := addNode(t, context.Background(), n, NodeConfig{})
		nd.Peer().Host().SetStreamHandler(protoEcho, echo)
		nodes = append(nodes, nd)
	}
	return n, nodes
}

// result is one Read's or Write's outcome.
type result struct {
	n   int
	err error
	at  time.Time
}

// within runs op and returns its result, or fails the test if op has not
// returned after limit of virtual time (then cleanup, which must make op
// return, runs before the test ends).
func within(t *testing.T, limit time.Duration, cleanup func(), op func() (int, error)) result {
	t.Helper()
	ch := make(chan result, 1)
	go func() {
		n, err := op()
		ch <- result{n, err, time.Now()}
	}()
	select {
	case r := <-ch:
		return r
	case <-time.After(limit):
		cleanup()
		<-ch
		t.Fatalf("seed %d: still blocked after %v of virtual time", streamSeed, limit)
		return result{}
	}
}

const streamSeed = 51

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

// TestStreamReadDeadline: a Read blocked past its deadline returns a
// timeout at the deadline, in virtual time; the stream stays usable and
// loses nothing; a Read after the deadline fails at once.
func TestStreamReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := streamNet(t, streamSeed, 2)
		a, b := nodes[0], nodes[1]
		release := make(chan struct{})
		b.Peer().Host().SetStreamHandler(protoSink, func(s network.Stream) {
			defer s.Close()
			<-release
			_, _ = s.Write([]byte("late answer\n"))
		})
		s, err := a.Peer().Host().NewStream(t.Context(), b.ID, protoSink)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// An empty read with a deadline, first on the stream, waits for
		// data or the deadline, and takes nothing.
		_ = s.SetReadDeadline(time.Now().Add(time.Second))
		if n, err := s.Read(nil); !isTimeout(err) || n != 0 {
			t.Errorf("seed %d: empty Read = %d, %v; want a timeout", streamSeed, n, err)
		}
		start := time.Now()
		_ = s.SetReadDeadline(start.Add(5 * time.Second))
		buf := make([]byte, 64)
		r := within(t, time.Minute, func() { _ = s.Reset(); close(release) }, func() (int, error) { return s.Read(buf) })
		if !isTimeout(r.err) || r.n != 0 {
			t.Fatalf("seed %d: Read = %d, %v; want a timeout", streamSeed, r.n, r.err)
		}
		if took := r.at.Sub(start); took != 5*time.Second {
			t.Errorf("seed %d: the read deadline fired after %v of virtual time, want 5s", streamSeed, took)
		}
		// Past the deadline: at once.
		if n, err := s.Read(buf); !isTimeout(err) || n != 0 {
			t.Errorf("seed %d: Read past the deadline = %d, %v; want a timeout", streamSeed, n, err)
		}
		// A later deadline: the answer written after the timeout arrives
		// whole.
		close(release)
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "late answer\n" {
			t.Errorf("seed %d: after the timeout read %q, %v; want the whole answer", streamSeed, got, err)
		}
	})
}

// TestStreamDeadlineWhileBlocked: a deadline set while a Read waits
// applies to that Read.
func TestStreamDeadlineWhileBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := streamNet(t, streamSeed, 2)
		a, b := nodes[0], nodes[1]
		s, err := a.Peer().Host().NewStream(t.Context(), b.ID, protoEcho)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_ = s.SetReadDeadline(time.Now().Add(time.Hour))
		go func() {
			time.Sleep(time.Second)
			_ = s.SetReadDeadline(time.Now().Add(time.Second))
		}()
		start := time.Now()
		r := within(t, 2*time.Hour, func() { _ = s.Reset() }, func() (int, error) { return s.Read(make([]byte, 8)) })
		if !isTimeout(r.err) || r.at.Sub(start) != 2*time.Second {
			t.Errorf("seed %d: Read = %v after %v; want a timeout after 2s", streamSeed, r.err, r.at.Sub(start))
		}
	})
}

// TestStreamWriteDeadline: a Write blocked past its deadline (the remote
// reads nothing) returns a timeout at the deadline and resets the stream;
// the remote sees the reset.
func TestStreamWriteDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := streamNet(t, streamSeed, 2)
		a, b := nodes[0], nodes[1]
		ch := make(chan struct{})
		release := sync.OnceFunc(func() { close(ch) })
		remote := make(chan error, 1)
		b.Peer().Host().SetStreamHandler(protoSink, func(s network.Stream) {
			defer s.Close()
			<-ch
			_, err := io.Copy(io.Discard, s)
			remote <- err
		})
		s, err := a.Peer().Host().NewStream(t.Context(), b.ID, protoSink)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		start := time.Now()
		_ = s.SetWriteDeadline(start.Add(5 * time.Second))
		r := within(t, time.Minute, func() { _ = s.Reset(); release() }, func() (int, error) { return s.Write(make([]byte, 1<<20)) })
		release()
		if !isTimeout(r.err) || r.n >= 1<<20 {
			t.Fatalf("seed %d: Write = %d, %v; want a timeout", streamSeed, r.n, r.err)
		}
		if took := r.at.Sub(start); took != 5*time.Second {
			t.Errorf("seed %d: the write deadline fired after %v of virtual time, want 5s", streamSeed, took)
		}
		if err := <-remote; !errors.Is(err, network.ErrReset) {
			t.Errorf("seed %d: the remote read %v, want a reset", streamSeed, err)
		}
		if _, err := s.Write([]byte("x")); err == nil {
			t.Errorf("seed %d: a write after the timeout succeeded", streamSeed)
		}
	})
}

// roundTrip writes line on s and reads it back, within deadline.
func roundTrip(s network.Stream, line string, deadline time.Duration) error {
	_ = s.SetDeadline(time.Now().Add(deadline))
	if _, err := s.Write([]byte(line + "\n")); err != nil {
		return err
	}
	got, err := bufio.NewReader(s).ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return errors.New("echo answered " + got)
	}
	return nil
}

// TestOneWay: with A's data to B cut, a write from A to B waits and times
// out, B's request to A is never answered while A's request gets through
// to B... and after the heal the held write arrives and both directions
// work.
func TestOneWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, nodes := streamNet(t, streamSeed, 2)
		a, b := nodes[0], nodes[1]
		got := make(chan string, 4)
		b.Peer().Host().SetStreamHandler(protoSink, func(s network.Stream) {
			defer s.Close()
			line, _ := bufio.NewReader(s).ReadString('\n')
			got <- line
		})
		n.OneWay([]*Node{a}, []*Node{b})

		// A → B: the write waits until its deadline.
		s, err := a.Peer().Host().NewStream(t.Context(), b.ID, protoEcho)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := roundTrip(s, "a to b", 3*time.Second); !isTimeout(err) || time.Since(start) != 3*time.Second {
			t.Errorf("seed %d: A→B round trip under the cut: %v after %v; want a timeout after 3s", streamSeed, err, time.Since(start))
		}
		// B → A: B's line arrives at A, A's echo does not come back.
		s, err = b.Peer().Host().NewStream(t.Context(), a.ID, protoEcho)
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if err := roundTrip(s, "b to a", 3*time.Second); !isTimeout(err) {
			t.Errorf("seed %d: B→A round trip under the cut: %v after %v; want a timeout", streamSeed, err, time.Since(start))
		}
		_ = s.Reset()

		// A write with no deadline waits for the heal, then arrives.
		s, err = a.Peer().Host().NewStream(t.Context(), b.ID, protoSink)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		go func() {
			time.Sleep(10 * time.Second)
			n.Heal()
		}()
		start = time.Now()
		r := within(t, time.Minute, func() { _ = s.Reset() }, func() (int, error) { return s.Write([]byte("held\n")) })
		if r.err != nil || r.at.Sub(start) != 10*time.Second {
			t.Errorf("seed %d: held write = %v after %v; want it through at the heal, 10s", streamSeed, r.err, r.at.Sub(start))
		}
		if line := <-got; line != "held\n" {
			t.Errorf("seed %d: B got %q, want the held line", streamSeed, line)
		}
		for _, pair := range [][2]*Node{{a, b}, {b, a}} {
			s, err := pair[0].Peer().Host().NewStream(t.Context(), pair[1].ID, protoEcho)
			if err == nil {
				err = roundTrip(s, "healed", 3*time.Second)
				_ = s.Close()
			}
			if err != nil {
				t.Errorf("seed %d: %s after the heal: %v", streamSeed, nodeIndexes(pair[0], pair[1]), err)
			}
		}
	})
}

// TestStallNthStream: a stall of the second echo stream from A to B
// leaves the first and third alone; its round trip times out, and once
// lifted it goes on.
func TestStallNthStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, nodes := streamNet(t, streamSeed, 2)
		a, b := nodes[0], nodes[1]
		lift := n.StallStreams(StreamMatch{From: a, To: b, Protocol: protoEcho, Nth: 2})
		var streams []network.Stream
		for range 3 {
			s, err := a.Peer().Host().NewStream(t.Context(), b.ID, protoEcho)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			streams = append(streams, s)
		}
		for i, s := range streams {
			err := roundTrip(s, "hello", 3*time.Second)
			if stalled := i == 1; stalled != isTimeout(err) {
				t.Errorf("seed %d: stream %d: %v (stalled %v)", streamSeed, i+1, err, stalled)
			}
		}
		// The stalled stream's write timed out and reset it: a new one
		// opened now is not the second any more, and works.
		lift()
		s, err := a.Peer().Host().NewStream(t.Context(), b.ID, protoEcho)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := roundTrip(s, "after", 3*time.Second); err != nil {
			t.Errorf("seed %d: after the lift: %v", streamSeed, err)
		}
	})
}

// TestStallThenLift: a stall struck in the middle of a stream holds its
// data back, and lifting it lets the data through, in order.
func TestStallThenLift(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, nodes := streamNet(t, streamSeed, 2)
		a, b := nodes[0], nodes[1]
		s, err := a.Peer().Host().NewStream(t.Context(), b.ID, protoEcho)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := roundTrip(s, "one", 3*time.Second); err != nil {
			t.Fatalf("seed %d: before the stall: %v", streamSeed, err)
		}
		lift := n.StallStreams(StreamMatch{Protocol: protoEcho})
		_ = s.SetDeadline(time.Time{})
		go func() {
			time.Sleep(7 * time.Second)
			lift()
		}()
		start := time.Now()
		br := bufio.NewReader(s)
		r := within(t, time.Minute, func() { _ = s.Reset() }, func() (int, error) {
			if _, err := s.Write([]byte("two\n")); err != nil {
				return 0, err
			}
			line, err := br.ReadString('\n')
			if err == nil && line != "two\n" {
				err = errors.New("echo answered " + line)
			}
			return len(line), err
		})
		if r.err != nil || r.at.Sub(start) < 7*time.Second {
			t.Errorf("seed %d: round trip across the stall: %v after %v; want it done after the lift at 7s", streamSeed, r.err, r.at.Sub(start))
		}
	})
}

// TestResetStreams: resetting the open echo streams from A ends them (B
// sees the reset); streams opened while the fault holds are reset; after
// the lift new streams work.
func TestResetStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, nodes := streamNet(t, streamSeed, 3)
		a, b, c := nodes[0], nodes[1], nodes[2]
		remote := make(chan error, 1)
		b.Peer().Host().SetStreamHandler(protoSink, func(s network.Stream) {
			defer s.Close()
			_, err := io.Copy(io.Discard, s)
			remote <- err
		})
		s, err := a.Peer().Host().NewStream(t.Context(), b.ID, protoSink)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		other, err := c.Peer().Host().NewStream(t.Context(), b.ID, protoEcho)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		lift := n.ResetStreams(StreamMatch{From: a, Protocol: protoSink})
		if err := <-remote; !errors.Is(err, network.ErrReset) {
			t.Errorf("seed %d: B read %v, want a reset", streamSeed, err)
		}
		if _, err := s.Write([]byte("more\n")); err == nil {
			t.Errorf("seed %d: a write on the reset stream succeeded", streamSeed)
		}
		if err := roundTrip(other, "untouched", 3*time.Second); err != nil {
			t.Errorf("seed %d: C's stream: %v", streamSeed, err)
		}
		s, err = a.Peer().Host().NewStream(t.Context(), b.ID, protoSink)
		if err == nil {
			_, err = s.Write([]byte("again\n"))
		}
		if err == nil {
			t.Errorf("seed %d: a stream opened under the fault works", streamSeed)
		}
		lift()
		s, err = a.Peer().Host().NewStream(t.Context(), b.ID, protoEcho)
		if err == nil {
			err = roundTrip(s, "after", 3*time.Second)
			_ = s.Close()
		}
		if err != nil {
			t.Errorf("seed %d: after the lift: %v", streamSeed, err)
		}
	})
}

// TestStreamCloseAfterDeadline: a Close after the write deadline has
// passed still closes the stream: the remote reads to a clean end.
func TestStreamCloseAfterDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := streamNet(t, streamSeed, 2)
		a, b := nodes[0], nodes[1]
		remote := make(chan error, 1)
		b.Peer().Host().SetStreamHandler(protoSink, func(s network.Stream) {
			defer s.Close()
			_, err := io.Copy(io.Discard, s)
			remote <- err
		})
		s, err := a.Peer().Host().NewStream(t.Context(), b.ID, protoSink)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.SetDeadline(time.Now().Add(time.Second))
		if _, err := s.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if err := s.Close(); err != nil {
			t.Errorf("seed %d: Close after the deadline: %v", streamSeed, err)
		}
		if err := <-remote; err != nil {
			t.Errorf("seed %d: the remote read %v, want a clean end", streamSeed, err)
		}
	})
}

package gossip

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

func TestReachRequestWire(t *testing.T) {
	tag := testTag(1)
	id, err := peer.IDFromPrivateKey(testKey(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	body := func(b []byte) []byte { return b[headerSize:] }
	good := appendReachRequest(nil, tag, id)
	if len(good) != headerSize+2+len(id) || good[headerSize] != reachVersion || int(good[headerSize+1]) != len(id) {
		t.Fatalf("request % x: want header, version %d, length %d, ID", good, reachVersion, len(id))
	}
	// A valid peer ID (an identity multihash) one byte over the bound.
	big, err := mh.Sum(make([]byte, maxReachIDLen-1), mh.IDENTITY, -1)
	if err != nil || len(big) != maxReachIDLen+1 {
		t.Fatalf("identity multihash of %d bytes: %v", len(big), err)
	}
	long := append([]byte{reachVersion, byte(len(big))}, big...)
	for _, tt := range []struct {
		name    string
		in      []byte
		want    peer.ID
		wantErr error
	}{
		{"request", body(good), id, nil},
		{"trailing bytes left unread", append(body(good), 9, 9), id, nil},
		{"other version", append([]byte{2}, body(good)[1:]...), "", errBadReach},
		{"empty ID", []byte{reachVersion, 0}, "", errBadReach},
		{"ID too long", long, "", errBadReach},
		{"not a peer ID", []byte{reachVersion, 3, 1, 2, 3}, "", errBadReach},
		{"nothing", nil, "", io.EOF},
		{"no length", []byte{reachVersion}, "", io.ErrUnexpectedEOF},
		{"short ID", body(good)[:len(body(good))-1], "", io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readReachRequest(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("readReachRequest error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("target = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzReachRequest: arbitrary bytes after a reach request's header never
// panic the reader; a target it accepts is a valid peer ID within bounds
// that re-encodes to the bytes it consumed.
func FuzzReachRequest(f *testing.F) {
	tag := testTag(1)
	id, err := peer.IDFromPrivateKey(testKey(1, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(appendReachRequest(nil, tag, id)[headerSize:])
	f.Add([]byte{reachVersion, 0})
	f.Add([]byte{reachVersion, 255})
	f.Add([]byte{reachVersion, 3, 1, 2, 3})
	f.Add(append([]byte{2}, appendReachRequest(nil, tag, id)[headerSize+1:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		got, err := readReachRequest(r)
		if err != nil {
			if got != "" {
				t.Fatal("target returned with an error")
			}
			return
		}
		if len(got) == 0 || len(got) > maxReachIDLen {
			t.Fatalf("accepted a peer ID of %d bytes", len(got))
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("accepted an invalid peer ID: %v", err)
		}
		consumed := b[:len(b)-r.Len()]
		if again := appendReachRequest(nil, tag, got)[headerSize:]; !bytes.Equal(again, consumed) {
			t.Fatalf("re-encoded % x, consumed % x", again, consumed)
		}
	})
}

func TestReachVerdict(t *testing.T) {
	for _, tt := range []struct {
		v    reachVerdict
		want bool
	}{
		{reachVerdict{asked: 3, unreachable: 1}, true},
		{reachVerdict{asked: 3, unreachable: 3}, true},
		{reachVerdict{asked: 3, unreachable: 2, reachable: 1}, false},
		{reachVerdict{asked: 3}, false}, // nobody answered, or all could not say
		{reachVerdict{}, false},         // nobody to ask
	} {
		if got := tt.v.suspect(); got != tt.want {
			t.Errorf("%+v: suspect = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// TestSimReachAnswers: a member asked about another answers reachable
// while it reaches it, unreachable once it has crashed (before the cell
// declares it failed), and "cannot say" about a peer that is not a member
// or about the asker itself.
func TestSimReachAnswers(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 35)
		c := newSimCell(t, seed, 4)
		c.awaitConvergence(2*time.Minute, all(4)...)
		ctx := t.Context()
		stranger, err := peer.IDFromPrivateKey(testKey(seed, 99))
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name   string
			target peer.ID
			want   byte
		}{
			{"member", c.ids[2], reachReachable},
			{"stranger", stranger, reachCannotSay},
			{"the asker", c.ids[0], reachCannotSay},
			{"the helper", c.ids[1], reachCannotSay},
		} {
			if got := c.ms[0].requestReach(ctx, c.ids[1], tt.target); got != tt.want {
				t.Errorf("seed %d: %s: answer %d, want %d", seed, tt.name, got, tt.want)
			}
		}
		c.crash(2)
		if st, _ := stateOf(c.ms[1], c.ids[2]); st != StateAlive {
			t.Fatalf("seed %d: node 1 already sees the crashed node %v", seed, st)
		}
		if got := c.ms[0].requestReach(ctx, c.ids[1], c.ids[2]); got != reachUnreachable {
			t.Errorf("seed %d: crashed member: answer %d, want %d (unreachable)", seed, got, reachUnreachable)
		}
		// Once the helper sees it dead, it does not check it.
		if _, ok := waitUntil(time.Minute, 100*time.Millisecond, func() bool {
			st, _ := stateOf(c.ms[1], c.ids[2])
			return st == StateDead
		}); !ok {
			t.Fatalf("seed %d: node 1 never saw the crashed node dead", seed)
		}
		if got := c.ms[0].requestReach(ctx, c.ids[1], c.ids[2]); got != reachCannotSay {
			t.Errorf("seed %d: member dead in the helper's view: answer %d, want %d (cannot say)", seed, got, reachCannotSay)
		}
	})
}

// TestSimReachBound: a member runs at most maxReachChecks reach checks at
// once and answers "cannot say" beyond, counted in Stats.ReachBusy.
func TestSimReachBound(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 36)
		c := newSimCell(t, seed, 3)
		c.awaitConvergence(2*time.Minute, all(3)...)
		sem := c.ms[1].tr.reachSem
		for range maxReachChecks {
			sem <- struct{}{} // as many checks as the bound under way
		}
		if got := c.ms[0].requestReach(t.Context(), c.ids[1], c.ids[2]); got != reachCannotSay {
			t.Errorf("seed %d: answer %d past the bound, want %d (cannot say)", seed, got, reachCannotSay)
		}
		if n := c.ms[1].Stats().ReachBusy; n != 1 {
			t.Errorf("seed %d: ReachBusy = %d, want 1", seed, n)
		}
		<-sem
		if got := c.ms[0].requestReach(t.Context(), c.ids[1], c.ids[2]); got != reachReachable {
			t.Errorf("seed %d: answer %d below the bound, want %d (reachable)", seed, got, reachReachable)
		}
		for range maxReachChecks - 1 {
			<-sem
		}
	})
}

// TestSimReachRefusesDisallowed: a peer that the helper does not allow
// gets no answer: its request is reset and counted.
func TestSimReachRefusesDisallowed(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 37)
		c := newSimCell(t, seed, 3)
		c.awaitConvergence(2*time.Minute, all(3)...)
		before := c.ms[1].Stats().RejectedInbound
		c.rosters[1].remove(c.ids[0])
		if got := c.ms[0].requestReach(t.Context(), c.ids[1], c.ids[2]); got != reachCannotSay {
			t.Errorf("seed %d: a peer not allowed got answer %d", seed, got)
		}
		if n := c.ms[1].Stats().RejectedInbound; n <= before {
			t.Errorf("seed %d: the request of a peer not allowed was not counted as rejected", seed)
		}
	})
}

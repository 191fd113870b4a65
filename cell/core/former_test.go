package core

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// removedOne is threeMembers with the last member removed (epoch 2).
func removedOne(t testing.TB) (r *Roster, cellKey ed25519.PrivateKey, keys *Keys, ids []peer.ID, boxes []BoxKey) {
	t.Helper()
	r, cellKey, keys, ids, boxes = threeMembers(t)
	r, err := r.Without(ids[2], testCut, keys, cellKey, t0.Add(time.Hour), rand.Reader)
	if err != nil {
		t.Fatalf("Without: %v", err)
	}
	return r, cellKey, keys, ids, boxes
}

// testCut is the cut-off removedOne records: sequence number 7, two
// entries (a fork), sorted.
var testCut = Cutoff{Seq: 7, Last: sortedCIDs(testCID("a"), testCID("b"))}

func sortedCIDs(cs ...cid.Cid) []cid.Cid {
	slices.SortFunc(cs, func(a, b cid.Cid) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	return cs
}

func testCID(s string) cid.Cid {
	h, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		panic(err)
	}
	c := cid.NewCidV1(cid.DagCBOR, h)
	return c
}

// cidCmp compares CIDs for cmp.
var cidCmp = cmp.Comparer(cid.Cid.Equals)

// signAnyway signs r's body as Sign would, without checking it first, so
// that the decoder's checks are what refuses it.
func signAnyway(r *Roster, key ed25519.PrivateKey) {
	r.Sig = ed25519.Sign(key, append([]byte(sigContext), r.body()...))
}

func TestWithoutRecordsFormer(t *testing.T) {
	r, cellKey, keys, ids, boxes := removedOne(t)
	if diff := cmp.Diff([]Former{{Peer: ids[2], Until: 2, Cutoff: testCut}}, r.Former, cidCmp); diff != "" {
		t.Fatalf("Former after removal (-want +got):\n%s", diff)
	}
	got, err := DecodeRoster(r.Encode())
	if err != nil {
		t.Fatalf("DecodeRoster: %v", err)
	}
	if diff := cmp.Diff(r.Former, got.Former, cidCmp); diff != "" {
		t.Errorf("decoded Former (-sent +got):\n%s", diff)
	}
	if !bytes.Equal(got.Encode(), r.Encode()) {
		t.Error("re-encoding differs")
	}

	// A second removal keeps Former sorted; the first is still there.
	r2, err := r.Without(ids[1], Cutoff{}, keys, cellKey, t0.Add(2*time.Hour), rand.Reader)
	if err != nil {
		t.Fatalf("Without: %v", err)
	}
	want := []Former{{Peer: ids[2], Until: 2, Cutoff: testCut}, {Peer: ids[1], Until: 3}}
	slices.SortFunc(want, func(a, b Former) int { return bytes.Compare([]byte(a.Peer), []byte(b.Peer)) })
	if diff := cmp.Diff(want, r2.Former, cidCmp); diff != "" {
		t.Errorf("Former after two removals (-want +got):\n%s", diff)
	}
	if _, err := DecodeRoster(r2.Encode()); err != nil {
		t.Errorf("DecodeRoster: %v", err)
	}
	// The earlier version is untouched.
	if len(r.Former) != 1 {
		t.Errorf("Without changed the roster it started from: Former %v", r.Former)
	}

	// Added again, the node leaves Former; removed again, it is back with
	// the new epoch.
	r3, err := r2.WithMember(Member{Peer: ids[2], Name: "server", Roles: RoleStore, BoxKey: boxes[2].Public()}, keys, cellKey, t0.Add(3*time.Hour), rand.Reader)
	if err != nil {
		t.Fatalf("WithMember: %v", err)
	}
	if _, ok := r3.FormerOf(ids[2]); ok || !r3.Has(ids[2]) {
		t.Errorf("re-added member: former %v, member %v; want false, true", ok, r3.Has(ids[2]))
	}
	if diff := cmp.Diff([]Former{{Peer: ids[1], Until: 3}}, r3.Former, cidCmp); diff != "" {
		t.Errorf("Former after re-adding (-want +got):\n%s", diff)
	}
	if _, err := DecodeRoster(r3.Encode()); err != nil {
		t.Errorf("DecodeRoster: %v", err)
	}
	if f, _ := r2.FormerOf(ids[2]); f.Until != 2 {
		t.Errorf("WithMember changed the roster it started from: %+v", f)
	}
	r4, err := r3.Without(ids[2], Cutoff{}, keys, cellKey, t0.Add(4*time.Hour), rand.Reader)
	if err != nil {
		t.Fatalf("Without: %v", err)
	}
	if f, ok := r4.FormerOf(ids[2]); !ok || f.Until != 4 || r4.Epoch != 4 {
		t.Errorf("removed twice: %+v, %v at epoch %d; want until 4", f, ok, r4.Epoch)
	}
}

func TestSignatureCoversFormer(t *testing.T) {
	r, _, _, ids, _ := removedOne(t)
	for name, tamper := range map[string]func(r *Roster){
		"until moved on":     func(r *Roster) { r.Former[0].Until = 1 },
		"cut-off moved on":   func(r *Roster) { r.Former[0].Seq++ },
		"last entry dropped": func(r *Roster) { r.Former[0].Last = r.Former[0].Last[:1] },
		"former dropped":     func(r *Roster) { r.Former = nil },
		"another removed": func(r *Roster) {
			r.Former[0].Peer = ids[1]
			r.Members = slices.DeleteFunc(r.Members, func(m Member) bool { return m.Peer == ids[1] })
		},
	} {
		t.Run(name, func(t *testing.T) {
			bad := *r
			bad.Members = slices.Clone(r.Members)
			bad.Former = slices.Clone(r.Former)
			tamper(&bad)
			if err := bad.Verify(); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify: %v, want ErrBadSignature", err)
			}
			if _, err := DecodeRoster(bad.Encode()); !errors.Is(err, ErrBadSignature) {
				t.Errorf("DecodeRoster: %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestCanAuthor(t *testing.T) {
	// ids[2] is removed in epoch 2, ids[1] in epoch 3.
	r, cellKey, keys, ids, _ := removedOne(t)
	r, err := r.Without(ids[1], Cutoff{}, keys, cellKey, t0.Add(2*time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := testPeer(t)
	for _, tt := range []struct {
		name  string
		id    peer.ID
		epoch uint64
		want  bool
	}{
		{"member, epoch 1", ids[0], 1, true},
		{"member, current epoch", ids[0], 3, true},
		{"member, later epoch", ids[0], 9, true},
		{"former, before its removal", ids[2], 1, true},
		{"former, epoch of its removal", ids[2], 2, false},
		{"former, after its removal", ids[2], 3, false},
		{"later former, epoch 2", ids[1], 2, true},
		{"later former, epoch 3", ids[1], 3, false},
		{"stranger", stranger, 1, false},
		{"stranger, epoch 0", stranger, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.CanAuthor(tt.id, tt.epoch); got != tt.want {
				t.Errorf("CanAuthor(%s, %d) = %v, want %v", tt.id, tt.epoch, got, tt.want)
			}
		})
	}
}

func TestDecoderRejectsBadFormer(t *testing.T) {
	r, cellKey, keys, ids, _ := removedOne(t)
	r, err := r.Without(ids[1], Cutoff{}, keys, cellKey, t0.Add(2*time.Hour), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Former) != 2 || r.Epoch != 3 {
		t.Fatalf("Former %v at epoch %d, want two at epoch 3", r.Former, r.Epoch)
	}
	many := make([]Former, MaxFormer+1)
	for i := range many {
		many[i] = Former{Peer: peer.ID([]byte{0, 4, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}), Until: 1}
	}
	for _, tt := range []struct {
		name   string
		tamper func(r *Roster)
	}{
		{"unsorted", func(r *Roster) { r.Former[0], r.Former[1] = r.Former[1], r.Former[0] }},
		{"duplicate", func(r *Roster) { r.Former[1] = r.Former[0] }},
		{"also a member", func(r *Roster) { r.Former = []Former{{Peer: ids[0], Until: 1}} }},
		{"until 0", func(r *Roster) { r.Former[0].Until = 0 }},
		{"until after the epoch", func(r *Roster) { r.Former[1].Until = r.Epoch + 1 }},
		{"not a peer ID", func(r *Roster) { r.Former[0].Peer = "nope" }},
		{"too many", func(r *Roster) { r.Former = many }},
		{"seq 0 with last entries", func(r *Roster) { r.Former[0].Cutoff = Cutoff{Last: []cid.Cid{testCID("a")}} }},
		{"seq without last entries", func(r *Roster) { r.Former[0].Cutoff = Cutoff{Seq: 3} }},
		{"last entries unsorted", func(r *Roster) {
			r.Former[0].Cutoff = Cutoff{Seq: 3, Last: []cid.Cid{testCut.Last[1], testCut.Last[0]}}
		}},
		{"last entry twice", func(r *Roster) {
			r.Former[0].Cutoff = Cutoff{Seq: 3, Last: []cid.Cid{testCut.Last[0], testCut.Last[0]}}
		}},
		{"too many last entries", func(r *Roster) {
			var last []cid.Cid
			for i := range MaxLast + 1 {
				last = append(last, testCID(fmt.Sprint(i)))
			}
			r.Former[0].Cutoff = Cutoff{Seq: 3, Last: sortedCIDs(last...)}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bad := *r
			bad.Former = slices.Clone(r.Former)
			tt.tamper(&bad)
			if err := bad.Sign(cellKey); !errors.Is(err, ErrBadRoster) {
				t.Errorf("Sign: %v, want ErrBadRoster", err)
			}
			signAnyway(&bad, cellKey)
			if _, err := DecodeRoster(bad.Encode()); !errors.Is(err, ErrBadRoster) {
				t.Errorf("DecodeRoster: %v, want ErrBadRoster", err)
			}
		})
	}
	// The untampered roster passes, so the cases above fail for their
	// own reason.
	if _, err := DecodeRoster(r.Encode()); err != nil {
		t.Fatalf("DecodeRoster: %v", err)
	}
}

// TestCutoff: the roster records a removed member's cut-off, signed, and
// gives it to the chain; a member has none.
func TestCutoff(t *testing.T) {
	r, _, _, ids, _ := removedOne(t)
	seq, last, ok := r.Cutoff(ids[2])
	if !ok || seq != testCut.Seq || !slices.EqualFunc(last, testCut.Last, cid.Cid.Equals) {
		t.Errorf("Cutoff(removed) = %d, %v, %v; want %d, %v, true", seq, last, ok, testCut.Seq, testCut.Last)
	}
	got, err := DecodeRoster(r.Encode())
	if err != nil {
		t.Fatalf("DecodeRoster: %v", err)
	}
	if diff := cmp.Diff(r.Former, got.Former, cidCmp); diff != "" {
		t.Errorf("decoded cut-off (-sent +got):\n%s", diff)
	}
	if _, _, ok := r.Cutoff(ids[0]); ok {
		t.Error("a member has a cut-off")
	}
}

// A roster stored before cut-offs existed is refused with an error that
// says so, not as something that is no roster at all.
func TestDecoderNamesTheFormBeforeCutoffs(t *testing.T) {
	r, _, _, _, _ := removedOne(t)
	b := r.Encode()
	copy(b, "EXR1")
	_, err := DecodeRoster(b)
	if !errors.Is(err, ErrBadRoster) || !strings.Contains(err.Error(), "before cut-offs (EXR1)") {
		t.Fatalf("DecodeRoster of an EXR1 roster: %v", err)
	}
}

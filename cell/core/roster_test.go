package core

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// testPeer returns a peer ID and box key.
func testPeer(t testing.TB) (peer.ID, BoxKey) {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id, testBoxKey(t)
}

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// threeMembers builds a cell of an admin and two more members.
func threeMembers(t testing.TB) (r *Roster, cellKey ed25519.PrivateKey, keys *Keys, ids []peer.ID, boxes []BoxKey) {
	t.Helper()
	admin, abox := testPeer(t)
	r, cellKey, keys, err := NewCell("home", Founder{Peer: admin, Name: "laptop", BoxKey: abox.Public()}, t0, rand.Reader)
	if err != nil {
		t.Fatalf("NewCell: %v", err)
	}
	ids, boxes = []peer.ID{admin}, []BoxKey{abox}
	for i, name := range []string{"phone", "server"} {
		id, box := testPeer(t)
		r, err = r.WithMember(Member{Peer: id, Name: name, Roles: RoleChain | RoleStore, BoxKey: box.Public()}, keys, cellKey, t0.Add(time.Duration(i+1)*time.Minute), rand.Reader)
		if err != nil {
			t.Fatalf("WithMember: %v", err)
		}
		ids, boxes = append(ids, id), append(boxes, box)
	}
	return r, cellKey, keys, ids, boxes
}

func TestRosterRoundTrip(t *testing.T) {
	r, _, _, ids, _ := threeMembers(t)
	if r.Version != 3 || r.Epoch != 1 || len(r.Members) != 3 {
		t.Fatalf("version %d epoch %d members %d, want 3, 1, 3", r.Version, r.Epoch, len(r.Members))
	}
	got, err := DecodeRoster(r.Encode())
	if err != nil {
		t.Fatalf("DecodeRoster: %v", err)
	}
	if !bytes.Equal(got.Encode(), r.Encode()) {
		t.Error("re-encoding differs")
	}
	for _, id := range ids {
		if !got.Has(id) {
			t.Errorf("member %s missing", id)
		}
	}
	if m, _ := got.Member(ids[1]); m.Name != "phone" || m.Roles != RoleChain|RoleStore || !m.Added.Equal(t0.Add(time.Minute)) {
		t.Errorf("member = %+v", m)
	}
}

func TestEveryMemberOpensItsGrant(t *testing.T) {
	r, _, keys, ids, boxes := threeMembers(t)
	want, _ := keys.Secret(1)
	for i, id := range ids {
		k := NewKeys(r.Cell)
		if err := r.Accept(id, boxes[i], k); err != nil {
			t.Fatalf("member %d: Accept: %v", i, err)
		}
		if got, _ := k.Secret(1); got != want {
			t.Errorf("member %d: wrong secret", i)
		}
	}
	// A stranger, or a member with another's box key, opens nothing.
	stranger, sbox := testPeer(t)
	if err := r.Accept(stranger, sbox, NewKeys(r.Cell)); !errors.Is(err, ErrNotMember) {
		t.Errorf("stranger: err = %v, want ErrNotMember", err)
	}
	if err := r.Accept(ids[1], boxes[2], NewKeys(r.Cell)); err == nil {
		t.Error("a member with the wrong box key opened its grant")
	}
}

func TestRemovalRotatesTheSecret(t *testing.T) {
	r, cellKey, keys, ids, boxes := threeMembers(t)
	removedKeys := NewKeys(r.Cell)
	if err := r.Accept(ids[2], boxes[2], removedKeys); err != nil {
		t.Fatal(err)
	}
	old, _ := removedKeys.Seal(1, []byte("before"), nil, rand.Reader)

	r2, err := r.Without(ids[2], Cutoff{}, keys, cellKey, t0.Add(time.Hour), rand.Reader)
	if err != nil {
		t.Fatalf("Without: %v", err)
	}
	if r2.Version != 4 || r2.Epoch != 2 || r2.Has(ids[2]) {
		t.Fatalf("version %d epoch %d has-removed %v", r2.Version, r2.Epoch, r2.Has(ids[2]))
	}
	if _, err := DecodeRoster(r2.Encode()); err != nil {
		t.Fatalf("DecodeRoster: %v", err)
	}
	// A remaining member gets epoch 2 and, through the history, epoch 1.
	k := NewKeys(r.Cell)
	if err := r2.Accept(ids[1], boxes[1], k); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if got := k.Epochs(); len(got) != 2 {
		t.Fatalf("epochs held: %v, want [1 2]", got)
	}
	if pt, err := k.Open(1, old, nil); err != nil || string(pt) != "before" {
		t.Errorf("remaining member reading epoch 1: %q, %v", pt, err)
	}
	after, err := k.Seal(2, []byte("after"), nil, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The removed node cannot accept the new roster nor read epoch 2.
	if err := r2.Accept(ids[2], boxes[2], removedKeys); !errors.Is(err, ErrNotMember) {
		t.Errorf("removed node Accept: %v, want ErrNotMember", err)
	}
	if _, err := removedKeys.Open(2, after, nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("removed node Open epoch 2: %v, want ErrNoKey", err)
	}
	// Even with epoch 1's secret, no key of epoch 2 can be derived.
	s1, _ := removedKeys.Secret(1)
	forged := NewKeys(r.Cell)
	forged.Add(2, s1)
	if _, err := forged.Open(2, after, nil); !errors.Is(err, ErrDecrypt) {
		t.Errorf("epoch 1 secret opening epoch 2: %v, want ErrDecrypt", err)
	}
	// The only admin cannot be removed.
	if _, err := r2.Without(ids[0], Cutoff{}, keys, cellKey, t0, rand.Reader); err == nil {
		t.Error("removed the only admin")
	}
}

func TestTamperedRosterIsRejected(t *testing.T) {
	r, _, _, _, _ := threeMembers(t)
	good := r.Encode()
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		if _, err := DecodeRoster(b); err == nil {
			t.Fatalf("flipping a bit of byte %d was accepted", i)
		}
	}
	// Signed by another key.
	_, other, _ := ed25519.GenerateKey(nil)
	bad := *r
	bad.Sig = nil
	if err := bad.Sign(other); !errors.Is(err, ErrNotAdmin) {
		t.Errorf("Sign with a foreign key: %v, want ErrNotAdmin", err)
	}
	bad.Sig = ed25519.Sign(other, bad.body())
	if _, err := DecodeRoster(bad.Encode()); !errors.Is(err, ErrBadSignature) {
		t.Errorf("foreign signature: %v, want ErrBadSignature", err)
	}
	if _, err := DecodeRoster(append(good, 0)); !errors.Is(err, ErrBadRoster) {
		t.Errorf("trailing byte: %v, want ErrBadRoster", err)
	}
	if _, err := DecodeRoster(good[:len(good)-1]); !errors.Is(err, ErrBadRoster) {
		t.Errorf("truncated: %v, want ErrBadRoster", err)
	}
}

func TestParseRoles(t *testing.T) {
	r, err := ParseRoles(" chain, Store ,mailbox")
	if err != nil || r != RoleChain|RoleStore|RoleMailbox || r.String() != "chain,store,mailbox" {
		t.Errorf("ParseRoles = %v (%s), %v", r, r, err)
	}
	if _, err := ParseRoles("chain,king"); err == nil {
		t.Error("unknown role accepted")
	}
}

// FuzzDecodeRoster's seeds that are rosters (one with Former, cut-off and
// History) are files in testdata/fuzz/FuzzDecodeRoster: seeds made here
// would differ in every process (the keys are random), and the fuzzing
// engine then makes no progress.
func FuzzDecodeRoster(f *testing.F) {
	f.Add([]byte(rosterMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeRoster(b)
		if err != nil {
			if !errors.Is(err, ErrBadRoster) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("error %v wraps neither ErrBadRoster nor ErrBadSignature", err)
			}
			return
		}
		if !bytes.Equal(got.Encode(), b) {
			t.Fatal("accepted roster does not re-encode to its bytes")
		}
	})
}

func FuzzJoinMessages(f *testing.F) {
	var h hello
	h.Version, h.Nameplate = 1, 4721
	f.Add(h.encode())
	f.Add(reply{Status: StatusOK}.encode())
	f.Add(reply{Status: StatusExpired}.encode())
	f.Add(confirm{Sealed: []byte("x")}.encode())
	f.Add(welcome{Status: StatusOK, Sealed: []byte("x")}.encode())
	f.Add(welcome{Status: StatusWrongCode}.encode())
	f.Add(append([]byte{joinVersion}, make([]byte, BoxKeyLen+4)...))
	f.Add(RosterMsg{Type: MsgPull, Version: 3}.Encode())
	f.Add(RosterMsg{Type: MsgPush, Roster: []byte("r")}.Encode())
	f.Add(RosterMsg{Type: MsgRoster, Status: StatusRefused}.Encode())
	f.Add(EncodeMeta(3, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Every decoder either fails with ErrBadMessage or returns a
		// message that encodes back to the same bytes.
		check := func(name string, enc func() []byte, err error) {
			if err != nil {
				if !errors.Is(err, ErrBadMessage) {
					t.Fatalf("%s: error %v does not wrap ErrBadMessage", name, err)
				}
				return
			}
			if got := enc(); !bytes.Equal(got, b) {
				t.Fatalf("%s: re-encodes to %x, not %x", name, got, b)
			}
		}
		hm, err := decodeHello(b)
		check("hello", hm.encode, err)
		rm, err := decodeReply(b)
		check("reply", rm.encode, err)
		cm, err := decodeConfirm(b)
		check("confirm", cm.encode, err)
		wm, err := decodeWelcome(b)
		check("welcome", wm.encode, err)
		jr, err := decodeJoinRequest(b)
		check("join request", jr.encode, err)
		ro, err := DecodeRosterMsg(b)
		check("roster message", ro.Encode, err)
		v, e, err := DecodeMeta(b)
		check("meta", func() []byte { return EncodeMeta(v, e) }, err)
	})
}

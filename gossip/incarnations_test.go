package gossip

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
)

// pushNodeState and pushPullHeader are memberlist's (net.go), for
// building its push/pull messages.
type pushNodeState struct {
	Name        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Incarnation uint32
	State       uint8
	Vsn         []uint8
}

type pushPullHeader struct {
	Nodes        int
	UserStateLen int
	Join         bool
}

// pushPullPlain encodes a push/pull message as memberlist does, before
// encryption, followed by user state.
func pushPullPlain(t testing.TB, nodes []pushNodeState, user []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(mlPushPull)
	enc := codec.NewEncoder(&buf, &codec.MsgpackHandle{})
	if err := enc.Encode(&pushPullHeader{Nodes: len(nodes), UserStateLen: len(user)}); err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		if err := enc.Encode(&nodes[i]); err != nil {
			t.Fatal(err)
		}
	}
	buf.Write(user)
	return buf.Bytes()
}

// sealStream encrypts plain as memberlist's encryptLocalState does: type
// and length in the clear and authenticated, then version, nonce and
// ciphertext.
func sealStream(t testing.TB, key, plain []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	out := []byte{mlEncrypt}
	out = binary.BigEndian.AppendUint32(out, uint32(1+mlNonceSize+len(plain)+gcm.Overhead()))
	nonce := make([]byte, mlNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	body := append([]byte{mlEncryptionVersion}, nonce...)
	body = gcm.Seal(body, nonce, plain, out[:5])
	return append(out, body...)
}

func TestStreamSightings(t *testing.T) {
	key, other := gossipKey(1, 0), gossipKey(1, 1)
	nodes := []pushNodeState{
		{Name: "a", Addr: []byte{1, 2, 3, 4}, Port: FakePort, Meta: []byte("meta"), Incarnation: 7, Vsn: []uint8{1, 5, 5, 2, 5, 5}},
		{Name: "b", Incarnation: 1<<32 - 1, State: 2},
	}
	plain := pushPullPlain(t, nodes, []byte("user state"))
	msg := sealStream(t, key, plain)
	want := []sighting{{"a", 7, 0}, {"b", 1<<32 - 1, 0}}
	tampered := bytes.Clone(msg)
	tampered[4]++ // the length is authenticated
	ping := sealStream(t, key, append([]byte{0}, plain[1:]...))
	cut := pushPullPlain(t, nodes, nil)
	cut = cut[:len(cut)-3]
	for _, tt := range []struct {
		name string
		keys [][]byte
		msg  []byte
		want []sighting
	}{
		{"push/pull", [][]byte{key}, msg, want},
		{"second key", [][]byte{other, key}, msg, want},
		{"wrong key", [][]byte{other}, msg, nil},
		{"length tampered", [][]byte{key}, tampered, nil},
		{"trailing byte", [][]byte{key}, append(bytes.Clone(msg), 0), nil},
		{"not a push/pull", [][]byte{key}, ping, nil},
		{"state list cut short", [][]byte{key}, sealStream(t, key, cut), want[:1]},
		{"not encrypted", [][]byte{key}, plain, nil},
		{"empty", [][]byte{key}, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := streamSightings(tt.keys, tt.msg); !slices.Equal(got, tt.want) {
				t.Errorf("streamSightings = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTee: the first message of a direction is handed on once, whole,
// however its bytes arrive, and nothing else is; an oversized or
// unencrypted one is dropped without being kept.
func TestTee(t *testing.T) {
	msg := sealStream(t, gossipKey(1, 0), pushPullPlain(t, []pushNodeState{{Name: "a", Incarnation: 3}}, nil))
	for _, chunk := range []int{1, 2, 5, 7, len(msg), len(msg) + 10} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			var got [][]byte
			tt := newTee(func(b []byte) { got = append(got, bytes.Clone(b)) })
			in := append(bytes.Clone(msg), msg...) // a second message follows
			for len(in) > 0 {
				n := min(chunk, len(in))
				tt.add(in[:n])
				in = in[n:]
			}
			if len(got) != 1 || !bytes.Equal(got[0], msg) {
				t.Errorf("handed on %d messages, want the first, once", len(got))
			}
		})
	}
	for name, first := range map[string][]byte{
		"oversized":     binary.BigEndian.AppendUint32([]byte{mlEncrypt}, maxTeeSize+1),
		"not encrypted": {mlPushPull, 1, 2, 3, 4, 5},
	} {
		called := false
		tt := newTee(func([]byte) { called = true })
		tt.add(first)
		tt.add(make([]byte, 100))
		if called || tt.buf != nil {
			t.Errorf("%s: handed on %v, kept %d bytes", name, called, len(tt.buf))
		}
	}
}

// FuzzStreamSightings: arbitrary bytes as the first message of a stream,
// or as a decrypted one, never panic the readers, and every sighting names
// a node.
func FuzzStreamSightings(f *testing.F) {
	key := gossipKey(1, 0)
	plain := pushPullPlain(f, []pushNodeState{{Name: "a", Incarnation: 7}, {Name: "b", Incarnation: 9}}, []byte("u"))
	for _, seed := range [][]byte{nil, plain, sealStream(f, key, plain), plain[:len(plain)/2], {mlPushPull, 0x81, 0xa5, 'N', 'o', 'd', 'e', 's', 0xce, 0xff, 0xff, 0xff, 0xff}, {mlEncrypt, 0, 0, 0, 1, 1}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, got := range [][]sighting{streamSightings([][]byte{key}, b), pushPullSightings(b)} {
			if len(got) > maxIncarnations {
				t.Fatalf("%d sightings", len(got))
			}
			for _, s := range got {
				if s.node == "" {
					t.Errorf("sighting without a node: %v", s)
				}
			}
		}
		tt := newTee(func(msg []byte) {
			if len(msg) > 5+maxTeeSize {
				t.Errorf("handed on %d bytes", len(msg))
			}
		})
		tt.add(b)
	})
}

// TestSimIncarnationsFromJoin: a member that reads no packet learns every
// member's incarnation from its join's push/pull alone, on real
// memberlist streams.
func TestSimIncarnationsFromJoin(t *testing.T) {
	bubble(t, func(t *testing.T) {
		seed := testSeed(t, 41)
		const n = 4
		mn := mocknet.New()
		defer func() {
			_ = mn.Close()
			time.Sleep(time.Minute)
		}()
		var ids []peer.ID
		var ms []*Membership
		for i := range n {
			h, err := mn.AddPeer(testKey(seed, i), ma.StringCast(fmt.Sprintf("/ip4/10.0.0.%d/tcp/4001", i+1)))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, h.ID())
		}
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		ros := newRoster(ids...)
		for i := range n {
			m, err := New(mn.Host(ids[i]), testConfig(seed, testKey(seed, i), ros, Timing{}))
			if err != nil {
				t.Fatal(err)
			}
			if i == n-1 {
				m.tr.onPacket = nil // the joiner reads no packet
			}
			if err := m.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ms = append(ms, m)
		}
		for i := 1; i < n-1; i++ {
			if _, err := ms[i].Join(t.Context(), ids[:1]); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Second) // the first members gossip their joins
		joiner := ms[n-1]
		if _, err := joiner.Join(t.Context(), ids[:1]); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids[:n-1] {
			if _, ok := joiner.incs.get(id); !ok {
				t.Errorf("seed %d: the joiner has no incarnation of %s after its join", seed, id)
			}
		}
	})
}

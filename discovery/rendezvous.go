package discovery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// Router is what rendezvous needs of the DHT. dht.DHT implements it.
type Router interface {
	// Provide announces this node as a provider of key, and keeps
	// announcing it until Unprovide. It blocks until the first announce.
	Provide(ctx context.Context, key cid.Cid) error
	// Unprovide stops re-announcing key.
	Unprovide(key cid.Cid)
	// FindProviders streams up to limit providers of key; the channel is
	// closed when the search ends or ctx does.
	FindProviders(ctx context.Context, key cid.Cid, limit int) <-chan peer.AddrInfo
}

// rendezvousDomain separates rendezvous keys from every other use of a secret.
const rendezvousDomain = "exopeer rendezvous v1"

// RendezvousKey derives the DHT key under which the holders of secret meet
// during epoch: the CIDv1 (raw, sha2-256) of HMAC-SHA256(secret, domain ||
// epoch). Without the secret the key is unlinkable to it and to the keys of
// other epochs, so nothing on the DHT names a cell or an invite. secret must
// be a fixed-length random value (32 bytes): HMAC pads short keys with
// zeros and hashes long ones, so secrets of free form could collide.
func RendezvousKey(secret []byte, epoch uint64) cid.Cid {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(rendezvousDomain))
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], epoch)
	m.Write(e[:])
	sum, err := mh.Encode(m.Sum(nil), mh.SHA2_256)
	if err != nil {
		panic(err) // a 32-byte digest always encodes
	}
	return cid.NewCidV1(cid.Raw, sum)
}

// Epoch numbers the period of length d that t falls in.
func Epoch(t time.Time, d time.Duration) uint64 {
	return uint64(t.UnixNano() / int64(d))
}

// advertiserDomain separates advertiser ranks from every other use of a
// secret.
const advertiserDomain = "exopeer rendezvous advertiser v1"

// advertiserRank orders the members of a group for epoch: the lower, the
// sooner a member advertises. It is HMAC-SHA256(secret, domain || epoch ||
// id), so that only members can tell who will advertise, and the choice
// changes every epoch.
func advertiserRank(secret []byte, epoch uint64, id peer.ID) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(advertiserDomain))
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], epoch)
	m.Write(e[:])
	m.Write([]byte(id))
	return m.Sum(nil)
}

// advertises reports whether member self advertises (and looks up) the
// group's rendezvous in epoch: whether it is among the k lowest-ranked of
// itself and the members it is connected to. All members connected to each
// other agree on the same k; a member connected to none always advertises,
// and so does one of each group cut off from the others, so that every
// group can be found. connected must not hold self; k is at least 1.
func advertises(secret []byte, epoch uint64, self peer.ID, connected []peer.ID, k int) bool {
	mine := advertiserRank(secret, epoch, self)
	lower := 0
	for _, id := range connected {
		if bytes.Compare(advertiserRank(secret, epoch, id), mine) < 0 {
			lower++
			if lower >= k {
				return false
			}
		}
	}
	return true
}

package service

import (
	"encoding/binary"
	"errors"

	ds "github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/exopeer/exopeer/contact"
	"github.com/exopeer/exopeer/ratchet"
)

// Stored state (doc.go has the layouts).
const (
	// MaxSessions is the most sessions kept with one remote device, the
	// newest first; the newest of this run sends (restore.go).
	MaxSessions = 4
	// sessionsVersion is the version byte of a stored record: 2, with
	// the flags byte and, in each session, the run that made it; a
	// record of sessionsVersion1 (no flags, no run) is read too, as one
	// whose list carried no mailbox key and whose sessions no run of
	// this device may seal with.
	sessionsVersion  = 2
	sessionsVersion1 = 1
	// listKeyedFlag marks, in a record's flags, that the acknowledged
	// device list carried the mailbox key.
	listKeyedFlag = 1
	// maxStoredSession bounds one stored session (a session's own
	// encoding is at most some 200 KB: 2000 skipped keys, its AD).
	maxStoredSession = 1 << 20
	// maxStoredHeader bounds a pending session's initial header.
	maxStoredHeader = 4096
)

// sessionsPrefix is where the sessions are kept, one key per remote
// device; counterKey the device's counter.
var (
	sessionsPrefix = ds.NewKey("/messages/sessions")
	counterKey     = ds.NewKey("/messages/counter")
)

var errCorruptRecord = errors.New("message: corrupt stored sessions")

// stored is one session with a remote device.
type stored struct {
	id [8]byte // this device's own name for it, random
	// run is the run of the service that made the session (Service.run,
	// random at each New): only a session of this run seals (restore.go).
	run  [8]byte
	sess *ratchet.Session
	// header is the initial header of a session this device started and
	// that no answer confirmed yet (nil once confirmed): it goes with
	// each message until then, so that a device that lost the first one
	// can still open the session.
	header []byte
}

// peerRecord is what is kept of one remote device.
type peerRecord struct {
	// listSent is the version of this cell's device list the remote
	// device acknowledged a message carrying (0: none).
	listSent uint64
	// listKeyed: that list carried the cell's mailbox key. A list of
	// the same version with the key (contact.Newer's upgrade of a list
	// an older binary signed) is news to a device that acknowledged it
	// without.
	listKeyed bool
	sessions  []stored // newest first, at most MaxSessions
}

// listNews says whether l is to go to the remote device: newer than the
// list it acknowledged, by version or, at the same version, by the
// mailbox key that list lacked.
func (r *peerRecord) listNews(l *contact.DeviceList) bool {
	return l.Version > r.listSent || l.Version == r.listSent && l.Mailbox != nil && !r.listKeyed
}

// ackList records that the remote device acknowledged a message carrying
// l; it says whether that changed the record.
func (r *peerRecord) ackList(l *contact.DeviceList) bool {
	if !r.listNews(l) {
		return false
	}
	r.listSent, r.listKeyed = l.Version, l.Mailbox != nil
	return true
}

func sessionKey(id peer.ID) ds.Key { return sessionsPrefix.ChildString(id.String()) }

// encode returns r's stored form.
func (r *peerRecord) encode() ([]byte, error) {
	b := []byte{sessionsVersion}
	b = binary.BigEndian.AppendUint64(b, r.listSent)
	var flags byte
	if r.listKeyed {
		flags |= listKeyedFlag
	}
	b = append(b, flags, byte(len(r.sessions)))
	for _, st := range r.sessions {
		enc, err := st.sess.MarshalBinary()
		if err != nil {
			return nil, err
		}
		b = append(b, st.id[:]...)
		b = append(b, st.run[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(st.header)))
		b = append(b, st.header...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(enc)))
		b = append(b, enc...)
	}
	return b, nil
}

// size returns the length of r's stored form (encode), computed without
// encoding it: what the session cache counts r for.
func (r *peerRecord) size() int {
	n := 1 + 8 + 1 + 1
	for _, st := range r.sessions {
		n += 8 + 8 + 2 + len(st.header) + 4 + st.sess.Size()
	}
	return n
}

// decodeRecord reads a stored record. A session that does not decode is
// dropped and counted in bad; a record whose frame is corrupt is
// errCorruptRecord.
func decodeRecord(b []byte) (r peerRecord, bad int, err error) {
	head := 10 // version, listSent, count
	if len(b) > 0 && b[0] == sessionsVersion {
		head = 11 // and flags
	}
	if len(b) < head || b[0] != sessionsVersion && b[0] != sessionsVersion1 || int(b[head-1]) > MaxSessions {
		return peerRecord{}, 0, errCorruptRecord
	}
	current := b[0] == sessionsVersion // with the flags byte and the runs
	r.listSent = binary.BigEndian.Uint64(b[1:9])
	if current {
		if b[9]&^listKeyedFlag != 0 {
			return peerRecord{}, 0, errCorruptRecord
		}
		r.listKeyed = b[9]&listKeyedFlag != 0
	}
	n := int(b[head-1])
	b = b[head:]
	for range n {
		if len(b) < 10 {
			return peerRecord{}, 0, errCorruptRecord
		}
		id := [8]byte(b[:8])
		b = b[8:]
		var run [8]byte
		if current {
			if len(b) < 10 {
				return peerRecord{}, 0, errCorruptRecord
			}
			run = [8]byte(b[:8])
			b = b[8:]
		}
		hl := int(binary.BigEndian.Uint16(b))
		if hl > maxStoredHeader || len(b) < 2+hl+4 {
			return peerRecord{}, 0, errCorruptRecord
		}
		var header []byte
		if hl > 0 {
			header = append([]byte(nil), b[2:2+hl]...)
		}
		b = b[2+hl:]
		sl := int(binary.BigEndian.Uint32(b))
		if sl > maxStoredSession || len(b) < 4+sl {
			return peerRecord{}, 0, errCorruptRecord
		}
		sess := new(ratchet.Session)
		if err := sess.UnmarshalBinary(b[4 : 4+sl]); err != nil {
			bad++
		} else {
			r.sessions = append(r.sessions, stored{id: id, run: run, sess: sess, header: header})
		}
		b = b[4+sl:]
	}
	if len(b) != 0 {
		return peerRecord{}, 0, errCorruptRecord
	}
	return r, bad, nil
}

// front moves the session at i to the front (the newest, which sends).
func (r *peerRecord) front(i int) {
	st := r.sessions[i]
	copy(r.sessions[1:i+1], r.sessions[:i])
	r.sessions[0] = st
}

// push adds st as the newest session, forgetting the oldest past
// MaxSessions.
func (r *peerRecord) push(st stored) {
	r.sessions = append([]stored{st}, r.sessions...)
	if len(r.sessions) > MaxSessions {
		r.sessions = r.sessions[:MaxSessions]
	}
}

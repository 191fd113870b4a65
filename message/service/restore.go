package service

// A datastore restored from an older copy (a backup, a disk image, a
// copied data directory) holds ratchet sessions behind their peers: the
// messages sealed after the copy was taken stepped states the copy
// lacks, and sealing again from the copy's state would use the same
// message keys for other plaintexts. Nothing in the datastore can tell
// such a copy from the datastore a clean restart left: any marker in it
// is copied with it. The chain, which other devices replicate, records
// the messages this device wrote (author device, seq), but not which
// session sealed them, nor the courier's deliveries of other devices'
// messages, and the counter's lease covers 1,000 seqs: a copy taken
// within one lease, or before the chain synced, would pass.
//
// So no run of the service seals with a session an earlier run made.
// Each run draws a random run ID (Service.run, at New); every session
// made by a handshake or answered on the prekeys carries the run that
// made it, in its stored record (layout 2). A session read from disk
// that another run made opens messages (its receiving chains are safe
// to use again: a key of a message this device already opened opens
// only that message again, recorded once by its entity ID) and seals
// none: the first message to the device after a start makes a new
// session, which the peer takes as the newest and answers on. The cost
// is one handshake per device written to after each start (on the
// device's last-resort prekey: only the first session with a device
// takes a one-time prekey, so that restarts do not drain them; and the
// initial header on the messages until an answer confirms the session).
//
// The receiving side: a peer that sends on a session whose state the
// restored device lacks (a ratchet key it never saw) is refused, drops
// that session and makes a new one (send.go), so its message is
// delivered once.

// sealer returns the index of the newest session made by the run run,
// the one that seals (-1: none; a handshake makes one).
func (r *peerRecord) sealer(run [8]byte) int {
	for i, st := range r.sessions {
		if st.run == run {
			return i
		}
	}
	return -1
}

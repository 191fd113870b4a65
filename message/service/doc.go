// Package service is the node's part "messages" (package message is its
// pure core): conversations between this cell and its contacts, over
// Double Ratchet sessions (package ratchet) between this device and
// each device of the contact's cell, delivered directly on
// /exopeer/msg/1.0.0 and recorded in each cell's chain as exo.message
// entities (store.MessageSchema), so that every device of both cells
// has the conversation, encrypted at rest under its own cell's key.
//
// # Sending
//
// Send records the message (state "sent") in this cell's chain first,
// then tries the contact's devices, those connected first, until one
// acknowledges; then it records the state "delivered". For each device
// it uses the newest session held with it, or makes one: it connects to
// the device first if it is not connected (its peerstore addresses, else
// those the Finder finds), so that the device itself answers for its
// verified prekey bundle (prekey.Fetch asks a connected device, else
// reads its DHT record, which serves a device that is offline or one
// just started whose record is not stored yet), ratchet.Initiate (PQXDH when
// the bundle has an ML-KEM key), the initial header kept with the
// session until an answer confirms it, so that every message until then
// travels as an initial message (a device that lost the first one can
// still open the session; one that has it opens the message with it).
// The session is stored after Encrypt and before the frame leaves. A
// refusal drops the session used and one new handshake is tried. If no
// device acknowledges, Send returns ErrUnreachable and the message stays
// "sent" (delivering it later is issue 14).
//
// # Receiving
//
// A stream is answered with a refusal, and nothing is read or recorded,
// unless its remote peer is on the current device list of one of the
// cell's contacts. The frame (at most message.MaxFrameBody) is opened by
// the sessions held with that device, newest first; an initial message
// no session opens is answered on the prekeys (prekey.Accept:
// ratchet.Respond under their lock, stored if it succeeds), and its
// header's Ed25519 key must be the stream's peer's. The envelope must be
// the contact's cell's and the stream's device's; a device list it
// carries replaces an older one held (contact/service.UpdateDevices),
// and is ignored when it is older (a current device whose cell's store
// lags: the device is on the list held, so its message stands). The message is then recorded
// (state "delivered", idempotent by its entity ID), the session stored
// (made the newest), and only then acknowledged. Any failure is a
// refusal with no detail, and leaves the sessions, the prekeys and the
// chain unchanged.
//
// # Stored state
//
// In the node's datastore, one key per remote device,
// /messages/sessions/<peer ID>: version (1) = 1; the version of this
// cell's device list the device acknowledged (8); the number of sessions
// (1, at most MaxSessions = 4), newest first, each: this device's id for
// it (8, random), the length of its pending initial header (2) and the
// header, the length of the session (4) and ratchet's encoding of it. A
// record whose frame is corrupt, or a session inside that does not
// decode, is dropped with a log line: the next message makes a new
// session. /messages/counter holds the device's last sent time (8, Unix
// ms) and counter (8), stored before a message uses them.
//
// # Bounds
//
// A frame's length is checked before its body is allocated; a stream
// reads one frame under Config.Timeout; a peer on no contact's current
// list (a device its cell removed) is refused before anything is read,
// so it holds no stream for that time (TestUnlistedPeerHoldsNoStream);
// the resource manager bounds the inbound streams of each peer on the
// protocol, 16 at once by default (network.resources.protocol_peer_streams,
// peer/resources.go, TestResourceLimitsPerProtocol); sessions are
// kept only with devices of contacts, at most MaxSessions each.
package service

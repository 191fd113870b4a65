// Package prekey is the shell around ratchet's prekeys: a device's
// private prekey state on disk, its signed prekey bundle published as a
// DHT record and served directly to connected peers, the bundle's upkeep
// (the signed prekey rotated weekly, one-time prekeys replenished as they
// are used), and the bundles of other devices, fetched, verified and
// cached. It is the node's part "prekeys" (peer/node.go). The pure core,
// with the bundle's and the state's byte formats, is package ratchet
// (ratchet/doc.go).
//
// # State
//
// The device's ratchet.Prekeys, with the bundle's sequence number, is one
// record of the node's datastore, StateKey ("/prekeys/state"), in the
// private data dir: version (1) = 1, sequence (8, big-endian, at least 1),
// the ratchet.Prekeys encoding. It is written whole (one Put, then a
// Sync) at every change, and every change takes the next sequence
// number: before a bundle that depends on it is served or published, and
// before Accept returns, so before the answer to an initial message that
// consumed a one-time prekey is acknowledged. A restart therefore keeps
// consumed prekeys consumed and the replay guard's ephemeral keys
// remembered. On the first start the service makes the state
// (ratchet.NewPrekeys, then Config.OneTime one-time prekeys, 100 by
// default). A stored state that does not decode stops the node with
// ErrCorruptState naming the key: it is never replaced behind the user's
// back, since new prekeys would break every session under way.
//
// # Upkeep
//
// A maintenance loop, on the node's clock, rotates the signed prekey when
// ratchet's RotationDue says so (7 days), replenishes the one-time
// prekeys to Config.OneTime once fewer than Config.LowWater are left (75
// of 100), stores the state, and then publishes the new bundle. It wakes
// when the rotation is due, when Accept changed the state, when a store
// held back (see Publication) is due, and every Config.CheckInterval
// (1 h).
//
// # Publication
//
// The bundle (ratchet/doc.go, at most ratchet.MaxBundleSize, 5648 bytes,
// under the DHT's 16 KiB dht.MaxValueSize) is the value of the signed DHT
// record "prekeys" of the device's peer ID, "/exo/<peer ID>/prekeys",
// stored at start and after changes; the DHT republishes it. Its
// sequence number orders a device's bundles; the DHT record's own
// sequence number orders the record's versions. Only the maintenance
// loop stores it, so one store at most is under way, and a store starts
// no sooner than Config.PublishInterval (10 s) after the last one that
// succeeded: the changes made meanwhile (an Accept per
// initial message) are coalesced into one store of the latest bundle,
// so a peer sending many initial messages does not make the device put
// many DHT records. Protocol serves the current bundle at all times. A
// store that fails (at start, before the DHT knows a peer) is tried
// again after Config.RetryInterval (2 s), doubling up to
// Config.CheckInterval while it keeps failing.
//
// # Protocol
//
// On /exopeer/prekeys/1.0.0 (Protocol) a peer asks a device it is
// connected to for its current bundle, answered from memory:
//
//	request: version (1) = 1, then the asker closes its side
//	answer:  version (1) = 1, length n (2, big-endian, 1 <= n <= 5648),
//	         the bundle (n bytes), then the device closes the stream
//
// Each side reads under a deadline (Config.Timeout, 10 s), refuses
// anything else (a longer request, another version, a length out of
// bounds before reading the bundle, bytes after the answer) and resets
// the stream on any error. The resource manager bounds the streams of
// each peer (peer/resources.go), and each asker is answered at most
// ServeBurst times at once, then once every ServeEvery (a token bucket
// per asker, at most MaxServeAskers kept: past that, a new asker takes
// the place of a full bucket, or else of the least recently used one, so
// that a flood of askers never locks a contact's device out,
// TestServeRateAskersBounded; serverate.go): past its tokens the
// stream is reset (counted in Stats.Throttled) and the asker reads the
// DHT record instead (Fetch does), so a peer asking in a loop costs this
// device little
// (TestFetchLoopBounded). Asking takes no one-time prekey: only the
// answer to an initial message consumes one (Accept), and a device
// that already had a session with this one makes its new ones on the
// last-resort prekey (message/service).
//
// # Fetching
//
// Fetch asks a connected device directly, else (or if that fails) reads
// its DHT record. Whichever way, the bundle must verify
// (ratchet.VerifyBundle) and be signed by the Ed25519 key of the peer ID
// asked for (ErrWrongPeer otherwise): a peer cannot answer for another,
// nor a DHT node alter a record. The newest verified bundle of each
// device is kept in a bounded cache (Config.CacheSize, least recently
// used out first), and Fetch never goes back to an older one than the
// one it holds, unless that one is Stale: its signed prekey was made
// RotationPeriod + GracePeriod (14 days) ago or more, so the device
// refuses it; then what Fetch finds replaces it whatever its sequence.
// Fetch does not dial: the messaging service connects to a device
// before it asks for its bundle (message/service), so that a device
// that is online answers directly even before its record is on the
// DHT; the record serves a device that is offline.
package prekey

// Package gossip runs a cell's membership: hashicorp/memberlist (SWIM
// failure detection and gossip) over the node's libp2p host, admitting
// only the peers the caller allows, each proven by a signature of its own
// key.
//
// The package knows nothing of rosters: the caller says who may be a
// member (Config.Allow), may check each member's application metadata
// (Config.CheckMeta), and supplies the cell's tag and gossip key. A
// Membership is built with New, started with Start, pointed at known
// members with Join, and stopped with Close; Members and Subscribe tell
// who is alive.
//
// # Topics
//
// Gossip carries many riders (the chain's announcements, later blobs and
// presence): each registers a Handler under a named topic in a Topics
// registry (Config.Topics), with its own size limit and counters
// (Topics.Stats). Broadcast(topic, msg) reaches the handlers of that topic
// on the other members, and a StateHandler's state travels in memberlist's
// push/pull exchanges, so that a member that missed a broadcast catches
// up. A rider sees only its own topic. A message over the topic's limit
// is refused by Broadcast (ErrTooLarge) and, if a member with a larger
// limit sent it, dropped and counted on receipt (not relayed); a message
// of a topic the receiver has not registered is counted and dropped but
// relayed, for the members that know the topic; a topic not registered
// here is refused on send (ErrUnknownTopic). Topics may be registered at
// any time, also while gossip runs, never twice; one registry outlives
// the Memberships that use it.
//
// # Liveness
//
// Failure detection is memberlist's (SWIM with Lifeguard): each node
// probes one member per Timing.ProbeInterval, round robin, asks
// IndirectChecks others to probe it when it does not answer, and then
// suspects it; a suspected member that hears of it refutes (a new
// incarnation), and one that does not is declared failed when the
// suspicion times out: SuspicionMult × max(1, log10(n)) probe intervals
// once SuspicionMult−2 other members confirmed it, up to
// SuspicionMaxTimeoutMult times that while nobody does. memberlist
// refutes only a suspicion at an incarnation at least its own; one at a
// lower incarnation (the others missed this node's later alives, such as
// those of metadata updates made before its join completed) it ignores,
// while every other member counts it down to a failure. So a suspect or
// dead message naming this node, read from the packets, makes it
// re-announce itself (new signed metadata, a higher incarnation), at most
// once per probe interval (Stats.Refutes), and not for a retransmit of an
// accusation already answered: memberlist keeps gossiping one for a
// while after it was refuted, so once another member states this node
// (in an alive it gossips or in its push/pull state) above anything
// stated or accused before the answer, accusations at the incarnation
// answered or below are old news (refute.go).
//
// Liveness also follows the libp2p connections. When this node loses its
// last connection to a member (the host's Disconnected notification, and
// the network's Connectedness NotConnected when the check starts and when
// it ends: a connection that replaced it, or a relayed one, keeps it), it does at
// once, each within Timing.ProbeTimeout, what a failed probe leads to:
// it redials the member, and it asks IndirectChecks other members, picked
// at random (Config.Rand) among those alive in its view, still allowed and
// connected to it, whether they reach the member (the reach check, below). It
// suspects the member only if the redial failed, at least one helper
// answered that it cannot reach it and none answered that it can,
// decided when all have answered or the probe timeout has passed; then it
// hands memberlist a suspect message of its own, as a failed probe would
// make, without waiting for its turn to be probed. memberlist gossips it,
// starts its suspicion timer and counts the other members' suspicions as
// confirmations, so that when a member crashes, every member connected to
// it suspects it at the same moment and each declares it failed after the
// shortest suspicion. A suspicion is not a verdict: a member that is alive
// hears of it from the others (gossip, and the suspect message memberlist
// sends with its probes of a suspected member) and refutes it.
//
// What the checks spare: a connection that drops while the member stays
// reachable is redialled and makes no suspicion (TestSimDropRedialed); a
// link down between this node and the member only, while others reach
// it, makes none either (Stats.LostReachable; TestSimCutPairNotSuspected,
// and TestCutLinkNoFalseFailure in simnet, which without the reach check
// saw a member declared failed in 2 to 5 runs of 20); and a node that
// nobody answers (cut off itself, or its helpers of an older version)
// suspects nobody on its own lost connections and leaves them to
// memberlist's probes (Stats.LostUndecided). A member holding the gossip
// key can answer falsely, and so withhold or cause a suspicion, which it
// could spread anyway.
//
// A helper asked about a member answers "cannot say" if the member is not
// one alive in its own view, is the asker or itself, or if it already runs
// 16 checks (Stats.ReachBusy). Otherwise, if it has no connection to the
// member and cannot dial one within ProbeTimeout (a relayed one counts),
// it answers "unreachable" at once, as it does in a crash, its own
// connection having closed too; else it pings the member as memberlist
// does and answers "reachable" on an ack within ProbeTimeout, and
// "unreachable" without one. Only allowed peers are answered.
//
// memberlist takes a suspicion only at the member's current incarnation
// or above, and does not expose incarnations. The transport therefore
// decrypts each packet it receives from an allowed peer (it holds the
// keyring) and reads the incarnations of the alive, suspect and dead
// messages in it, alone or in a compound message, and it reads those of
// the node states of every push/pull exchange, in the first message of
// each direction of a memberlist stream (up to 512 KiB), so that a member
// that just joined knows them all at once; it keeps the highest
// seen of each allowed member (at most 4096, pruned by Refresh, dropped
// when the member leaves or fails). A member whose incarnation it has not
// seen is left to the probes (Stats.LostUnknown). The queue of lost peers
// to check holds each peer once, allowed peers only, at most 4096, and at
// most 16 are checked at once; the lost connections checked count in
// Stats.LostChecked, the suspicions made in Stats.SuspectedLost.
//
// The transport's streams may use limited connections
// (network.WithAllowLimitedConn): a member reachable only through a
// circuit relay is probed, and gossiped with, over it, and is not declared
// dead for want of a direct connection, as long as its round trip stays
// below Timing.ProbeInterval (a late ack counts until the end of the probe
// round; TestSlowMemberNotFailed in simnet; TestRelayOnlyMemberNotFailed:
// two members linked only through a relay with default limits). A relay with default limits ends
// such a connection after 2 minutes or 128 KiB; the lost connection then
// makes a suspicion that the member refutes once libp2p reconnects.
//
// # Security
//
// Three layers protect the cell. libp2p authenticates every connection's
// peer ID (Noise or TLS), and the transport exchanges nothing with a peer
// that Allow rejects: its streams are reset, and nothing is sent to it.
// memberlist encrypts and authenticates every message with the cell's
// gossip key (AES-256-GCM), so a node without the current key cannot take
// part. And every node's metadata carries an Ed25519 signature by the key
// embedded in its peer ID, checked (with Allow and CheckMeta) whenever
// gossip says a node is alive: an insider cannot invent a member.
//
// Signed metadata carries a sequence number that grows with each
// signature (the signer's clock in Unix nanoseconds, forced upwards); a
// node refuses metadata of a member older than one it has seen of that
// member, so a member holding the gossip key cannot replay another's older
// metadata (an older roster version, or the leaving flag of an earlier
// run) even under a higher memberlist incarnation. Such refusals count in
// Stats.StaleMeta. The table of sequence numbers holds one entry per
// allowed node (pruned by Refresh, at most 4096); a node's entry is
// dropped when it leaves or fails, so that it is admitted again if it
// restarts with its clock behind; and a node that restarts, clock behind,
// before the others noticed it had gone, sees its earlier metadata in
// their gossip and signs again above it. While a member is gone, a forged alive
// message can show it alive again, with any metadata it once signed,
// until probes fail, as memberlist always allowed.
//
// What it does not give: user broadcasts say only that some member sent
// them (sign inside the message if the author matters); a member holding
// the gossip key can still spread false suspicions or death notices (not
// signed by memberlist), which the accused refutes, as with any SWIM
// implementation.
//
// # Wire format
//
// Three libp2p protocols, the same for every cell (identify announces
// protocol IDs to every connected peer, so they must not name the cell):
//
//	/exopeer/gossip/packet/1.0.0   one memberlist packet per stream
//	/exopeer/gossip/stream/1.0.0   one memberlist stream per stream
//	/exopeer/gossip/reach/1.0.0    one reach check per stream
//
// Every stream starts with a 9-byte header, written by the peer that opens
// it:
//
//	byte 0      0xE1: magic and format version
//	bytes 1–8   the cell tag (Config.Tag)
//
// A stream whose first byte is not 0xE1 or whose tag is not ours is reset,
// as is any stream from a peer that Allow rejects. The receiver reads the
// header within Timing.StreamTimeout.
//
// A packet stream goes on with the packet and is then closed:
//
//	bytes 9–12  payload length n, unsigned big-endian, 1 ≤ n ≤ 65536 (MaxPacketSize)
//	bytes 13…   n bytes of payload: one memberlist packet, encrypted by memberlist
//
// A longer length resets the stream; nothing after the payload is read;
// the whole packet must arrive within Timing.PacketTimeout. Nothing is
// ever sent back. Packets are fire and forget, like the UDP they replace:
// one that cannot be sent within PacketTimeout, or while
// MaxPacketsInFlight others are being sent, is lost.
//
// A reach stream goes on with the request, and the helper answers with one
// byte and closes it:
//
//	byte 9      1: reach request version (others are refused)
//	byte 10     n: length of the member's peer ID, 1 ≤ n ≤ 64
//	bytes 11…   the member's peer ID (binary), which must be valid
//
//	answer      0: unreachable, 1: reachable, 2: cannot say
//
// A malformed request resets the stream; the request must arrive, and the
// answer goes out, each within Timing.ProbeTimeout. The asker reads only
// the answer, within its own probe timeout, and counts any other byte,
// and no answer, as "cannot say".
//
// A memberlist stream carries, after the header, memberlist's own stream
// protocol (push/pull state exchanges and fallback pings), encrypted
// by memberlist, in both directions, until either side closes it. At most
// MaxStreamSize (2 MiB) is read from one stream; past it the stream is
// reset. A packet's buffer grows as its bytes arrive.
//
// A Broadcast message travels as a memberlist user message, inside
// memberlist's encryption, with a 17-byte envelope:
//
//	byte 0      2: broadcast version (1, before topics, is refused)
//	bytes 1–16  message ID, random, chosen by the sender
//	bytes 17…   the topic message, 3 to 8225 bytes:
//	  byte 0      n: length of the topic name, 1 ≤ n ≤ 32 (MaxTopicLen)
//	  n bytes     the topic name: a–z, 0–9, '.', '-', '_', '/'
//	  the rest    the message, 1 to 8192 bytes (MaxBroadcastSize), and at
//	              most the topic's limit
//
// A member handles the first copy of an ID it sees: it delivers the message
// to its topic's Handler and queues the envelope, unchanged, for gossip of
// its own (a message of a topic it does not know is queued, not delivered;
// one over its topic's limit, or whose topic message is malformed, is
// neither). It drops later copies (it remembers the last 4096 IDs) and
// malformed envelopes.
//
// The application state of a push/pull exchange (memberlist's user state)
// is the set of the topics' states, sent only if one topic has a state:
//
//	byte 0      1: state set version
//	byte 1      k: number of states, 1 ≤ k ≤ 16 (MaxTopics)
//	k times, in strictly ascending order of topic name:
//	  byte        n: length of the topic name, 1 ≤ n ≤ 32
//	  n bytes     the topic name
//	  2 bytes     length s of the state, unsigned big-endian, 1 ≤ s ≤ 8192
//	  s bytes     the topic's state, at most the topic's limit
//
// Nothing may follow the last state. A malformed set is dropped whole and
// counted; a state of an unknown topic, or over its topic's limit, is
// dropped and counted, and the others are merged.
//
// Node names are peer IDs (base58 text). memberlist also wants an IP
// address and port for each node; a node's is FakeIP(id) and FakePort, a
// unique local IPv6 address derived from the peer ID, never used for
// anything but naming. JoinAddress gives the form memberlist's Join takes.
//
// A node's metadata (memberlist's NodeMeta, at most 332 bytes here) is:
//
//	byte 0      2: metadata version (1, without a sequence number, is refused)
//	byte 1      flags; bit 0 = leaving (set by Leave); other bits must be 0
//	bytes 2–9   sequence number, unsigned big-endian: greater than that of
//	            every earlier metadata the node signed
//	bytes 10–11 length a of the app metadata, unsigned big-endian, a ≤ 256
//	bytes 12…   a bytes of app metadata (Config.AppMeta)
//	last 64     Ed25519 signature
//
// The signature covers "exopeer gossip node metadata v1\x00" || tag (8
// bytes) || length of the peer ID's bytes (2 bytes, big-endian) || the
// peer ID's bytes || bytes 0 to 11+a above, and verifies against the
// public key embedded in the node's peer ID (Ed25519 peer IDs embed it).
// A node accepts a member's metadata only if its sequence number is not
// below the highest it has seen of that member.
//
// # memberlist's goroutines
//
// memberlist's Shutdown does not wait for its goroutines. Close shuts the
// transport down first (resetting every open stream and waiting for the
// transport's own goroutines), so memberlist's listeners, packet handler
// and stream handlers return at once, and its gossip and push/pull
// goroutines as soon as they see their stop channel. The one that lingers
// is a probe in progress ((*Memberlist).probeNode): it waits for its ack
// timer, which runs to the end of the probe round, ProbeInterval scaled by
// memberlist's health awareness (up to 8 times it on a node that has seen
// failed probes). Measured on loopback with 200 ms probes and a member
// down: one probeNode goroutine, gone 0.4–0.5 s after Close. With the
// default timing, allow up to 1 s, 8 s in the worst case, before checking
// for leaked goroutines, or ignore that function. memberlist's suspicion
// and ack timers may also fire after Close (timers, not goroutines, until
// they fire); what they report is ignored.
package gossip

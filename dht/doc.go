// Package dht is exopeer's private Kademlia DHT: go-libp2p-kad-dht on its
// own protocol, so it never joins the public IPFS DHT, plus signed records
// that it keeps alive by republishing them.
//
// # Protocol
//
// The routing protocol is kad-dht's, unchanged, on /exopeer/kad/1.0.0
// (ProtocolID). With Config.LAN on, a second table runs beside it on
// /exopeer/lan/kad/1.0.0 (LANProtocolID), as Kubo runs its LAN DHT: the
// WAN table keeps public addresses and peers only, the LAN table private,
// non-loopback ones. Reads query both tables; writes (records, provider
// records) go to both and succeed if either does. A node is a server (answers
// queries, is routed through) or a client: the WAN table follows
// Config.Mode; in ModeAuto it is a server while the node's reachability,
// last given by SetReachability, is public, a client otherwise (also while
// unknown, and until the first call). The node decides that from AutoNAT
// v2's verdicts per address (package peer: public once some address is
// confirmed reachable). kad-dht's own ModeAuto follows AutoNAT v1's
// verdict for the host as a whole (EvtLocalReachabilityChanged); the host
// kad-dht is given (trackHost) hands it a bus on which that one event
// comes from SetReachability instead (internal/reachbus). The LAN table is always a
// server.
//
// Provider records are kad-dht's, for rendezvous keys (CIDs); peers keep
// them for 48h, and this package re-announces ours every
// Config.RepublishInterval.
//
// # Bootstrap
//
// kad-dht bootstraps, when its routing table runs empty (at start, too),
// from DHT.BootstrapPeers: Config.Bootstrap and then the peers of
// Config.BootstrapFunc, read at that moment. The node gives as
// BootstrapFunc discovery's known table: its cell's members and contacts
// last seen with a public address (package discovery), so that a node
// that met its cell once joins the DHT with no bootstrap list. Start and
// DHT.Bootstrap dial Config.Bootstrap alone, and wait for it; discovery
// dials the known peers itself, in the background.
//
// # Cancellation
//
// kad-dht sets no write deadline and does not watch ctx while it writes: a
// peer that stops reading would hold a lookup until the stream resets. So
// every call that reaches peers returns once its ctx ends, leaving kad-dht
// to a goroutine the DHT counts, and Close resets the streams kad-dht holds
// (opened or accepted through the host wrapper trackHost) before it waits.
//
// # Records
//
// A record is a value that a node publishes under a name. Its DHT key is
//
//	"/exo/" + <owner peer ID, canonical string form> + "/" + <name>
//
// for example "/exo/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/prekeys".
// The name is 1 to 128 bytes of UTF-8 (MaxNameLen) and may contain '/'.
//
// The DHT value is an envelope, version 1, all integers big-endian:
//
//	offset   size  field
//	0        1     version, 0x01
//	1        2     k: length of the owner public key, at most 64
//	3        k     owner public key, libp2p crypto protobuf (Ed25519 only)
//	3+k      4     n: length of the value, at most 16384 (MaxValueSize)
//	7+k      n     value
//	7+k+n    8     sequence number, uint64
//	15+k+n   8     expiry, int64 unix nanoseconds
//	23+k+n   2     s: length of the signature, at most 64
//	25+k+n   s     Ed25519 signature
//
// with no bytes after the signature. The signature is by the owner's key over
//
//	"exopeer/dht/record/v1" 0x00
//	uint16 length of the DHT key, the key
//	uint32 length of the value, the value
//	uint64 sequence number
//	int64 expiry
//
// so it binds the owner (the key holds the peer ID) and the name.
//
// A record is valid when it decodes strictly, its public key is Ed25519 and
// hashes to the peer ID in its key, the signature verifies, the expiry is in
// the future and at most MaxRecordTTL (7 days) plus one hour of clock skew
// ahead. Among valid records the highest sequence number wins, then the
// latest expiry. The owner republishes each record every RepublishInterval
// with the same sequence number and a new expiry; a new value takes
// sequence max(previous+1, unix nanoseconds now).
//
// The owner need not be a node: SealRecord signs a record with any Ed25519
// key and OpenRecord verifies one and gives its sequence number and expiry,
// both pure. Blind mailboxes (package message/mailbox) sign with a
// throwaway key per slot; the Validator checks such records as any other.
// DHT.PutSigned stores such a record once (validated first, never
// republished) and DHT.GetSigned finds the best one under a key, with its
// sequence number.
package dht

// Package remote is the protocol by which a member of a cell without the
// store role (a phone, a thin device) sends its store reads to a store
// member of its cell: Get, Query and Watch, with the answers and the
// errors the member's own store gives. A Server answers from a Backend
// (the node's store); a Client asks a given peer (choosing the store
// member, and falling back to another, is the node's business).
//
// # Streams and frames
//
// The libp2p protocol is Protocol, /exopeer/store/1.0.0. Each request is
// a stream of its own. Every message on it is a frame: an unsigned varint
// (LEB128, as Go's encoding/binary, at most 4 bytes) giving the length n
// of the body, 1 ≤ n, then n bytes of a JSON object whose "v" is Version,
// 1. A receiver refuses a frame of another version, a length over the cap
// of its direction (see below) from the length alone, and allocates the
// body as its bytes arrive (package growbuf), so a length prefix and
// nothing else costs a few KiB.
//
// The client opens the stream and sends one request frame:
//
//	{"v":1,"op":"get","id":"<32 hex digits>","traits":["exo.note"]}
//	{"v":1,"op":"query","query":{...}}
//	{"v":1,"op":"watch","query":{...}}
//
// "traits" is the projection: absent for every trait, [] for none. A query
// is store.Query's JSON ("type", "match", "where": [{"field", "op",
// "value"}], "order", "asc", "desc", "limit", "after", "traits"), except
// that "refers_to" is an entity ID's 32 hex digits and "traits" keeps the
// difference between absent and []. For a get or a query the client then
// closes its side for writing.
//
// The server answers with one message (a watch: a message per event),
// a message being one frame, or several when a page does not fit in one.
// A frame is exactly one of:
//
//	{"v":1,"err":{"code":"query","msg":"..."}}         an error: the stream's last frame
//	{"v":1,"entity":{...}}                             a get's answer
//	{"v":1,"page":true,"hits":[...],"next":"..."}      a query's page, a watch's first event
//	{"v":1,"changes":[{"kind":"added","hit":{...}}]}   a watch's later event
//	{"v":1,"ping":true}                                a watch's keep-alive, between events
//
// A page or changes frame with "more":true is continued by the next
// frame, of the same kind, whose hits or changes follow its own (a
// continued frame carries at least one; the cursor "next" is in the last
// frame only). An entity is {"id": hex, "traits": [{"type", "id", "doc",
// "created", "modified"}]}: "doc" is the document's bytes in base64 (so
// that they cross byte for byte: JSON embedded in JSON would be re-spaced
// and re-escaped on the way), the times are RFC 3339 in UTC. A hit is
// {"entity", "rank"}; a removed change's hit holds only the entity's ID.
//
// A get or a query ends after its answer: the server closes its side, the
// client closes its own. A watch stays open: the server sends the first
// page, then each event of its backend, and a keep-alive after Config.Ping
// (20 s) of nothing, so that a client that hears nothing for
// ClientConfig.WatchIdle (60 s) knows the member is gone. It ends when the
// client closes or resets the stream (the client sends nothing after its
// request: the server takes any read that returns as the client leaving,
// and ends the backend's watch), when ctx ends on the client (which
// resets the stream), or when the server ends it with an error frame
// ("closed": its index or itself is closing; a get or a query in progress
// when the server closes gets "closed" too).
//
// # Errors
//
// An error crosses as a code and the message of the member's error, word
// for word (at most 1 KiB): query (store.ErrQuery), not_found
// (store.ErrNotFound), not_member (ErrNotMember), busy (ErrBusy),
// too_large (ErrTooLarge), protocol (ErrProtocol), closed (ErrClosed);
// any other code is a failure of the member (ErrRemote). The client
// returns an *Error, whose message is the member's and which unwraps to
// the sentinel, so that errors.Is holds as it would locally.
//
// # Access and bounds
//
// The server asks allow at every stream (a roster changes); a peer it
// refuses gets a not_member error and nothing else, before the server
// reads its request. It asks again before each event and keep-alive of a
// watch: a watcher removed from the cell gets nothing written after, and
// its watch ends with a not_member error. A peer has at most Config.StreamsPerPeer (8) gets and
// queries in progress and Config.WatchesPerPeer (16) watches open; the
// server at most Config.Streams (64) and Config.Watches (256); beyond, the
// answer is busy. Every read and write has a deadline: a request must
// arrive within Config.ReadTimeout (10 s), every frame must be written
// within Config.WriteTimeout (30 s), every frame of an answer must arrive
// before the client's ClientConfig.Timeout (30 s) or, in a watch, within
// ClientConfig.WatchIdle (60 s) of the last. The one read without a
// deadline is the server's wait for a watching client to leave: it costs
// a goroutine within the peer's watch share, and ends with the client's
// connection. Close does not wait for the deadlines: a request still
// awaited is given up at once, a frame being written gets a second more.
// The client reads a watch's stream as
// fast as it comes, whatever its consumer does, coalescing events for a
// slow consumer (see store.WatchEvent), so that the member's writes do not
// stall.
//
// # Caps, and why
//
// A request frame is at most MaxRequest (851,336 bytes): the largest
// query the caps allow (store.MaxPredicates predicates as ParseWhere takes
// them, store.MaxMatch, a cursor of MaxCursor, MaxTraits projected types)
// with every string escaped at its worst. A response frame is at most
// MaxFrame (16 MiB): one entity must fit in one frame, and 16 MiB holds
// an entity of some 190 traits of store.MaxDoc documents in base64, far
// more than entities hold, while a frame read whole stays a bounded cost.
// A message (a page, an event) is at most MaxMessage (128 MiB) in all, a
// page's hits at most store.MaxLimit and an event's changes at most
// MaxChanges: a page of store.MaxLimit hits each with a document of
// store.MaxDoc is some 90 MiB on the wire. A page over MaxMessage (a
// query's, a watch's first) is asked of the backend again, shorter, with
// the cursor that reads on, as the control API cuts its own pages; a
// server that cannot send an entity in one frame, or a watch's changes
// in one message, answers too_large (project fewer traits). An error
// message is at most MaxErrorMsg (1 KiB).
package remote

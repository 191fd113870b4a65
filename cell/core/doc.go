// Package core is the pure core of a cell (package cell): its values and
// its rules, with no I/O, no clock, no randomness of its own, no goroutine
// and no logging (TestPure checks it, transitively: package
// internal/purity). Time and randomness come in as arguments (now
// time.Time, rand io.Reader); package cell is the shell that reads and
// writes the streams, stores the state and runs the machines below.
//
// It holds:
//
//   - the roster: its members, former members and their cut-offs, its
//     canonical wire form (EXR2), its signature, and the operations that
//     make the next version (NewCell, WithMember, Without, Accept);
//   - the keys: the epoch secrets and what is derived from them (gossip,
//     data and rendezvous keys), the history of earlier epochs, and the
//     grants sealed to members' box keys (HPKE);
//   - invite codes (NNNN-word-word-word) and the invites an admin keeps,
//     with their attempt budgets and stored form (EXI1);
//   - the messages of the join and roster protocols, and the join
//     protocol as two state machines, in the manner of etcd's raft: Admin
//     (the inviter's invites and its side of each run, AdminRun) takes a
//     frame and returns a Step (what to store, then what to send, whether
//     to admit, whether the run is over); JoinerRun (the joiner's side of
//     one run) takes each frame and returns the next one or the outcome;
//     JoinPlan is the joiner's bookkeeping of the peers it asks.
//
// The CPace exchange (package internal/cpace) is driven by the machines:
// the admin books an attempt before its CPace message goes out and
// settles it when the joiner proves the code; admission is idempotent for
// one device (Admin.Admit). testdata/join/*.txt are transcripts of the
// machines (TestJoinTranscripts; rewrite them with -rewrite).
//
// Package cell's doc gives the wire layouts and the protocols' rules. The
// errors keep the prefix "cell:": they are the cell's, whichever package
// of it returns them.
package core

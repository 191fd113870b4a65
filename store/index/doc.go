// Package index is the store's index: the state of store.State kept in a
// SQLite database on disk (modernc.org/sqlite, pure Go, FTS5 compiled in),
// updated incrementally as chain entries arrive, queried and watched. It
// is a shell over the pure core in package store: it decodes, checks and
// validates mutations with store's own functions and applies them with
// store.State's rule, in SQL, so that it reaches the same state as
// store.State for the same set of entries, whatever order they arrive in
// (the tests check Get against State.Get, and queries byte for byte,
// across seeded arrival orders). An arrival its caller marks Validated
// (the entries of the node's own writes, validated before they were
// appended) is decoded and checked but its documents are not validated
// again.
//
// # Layout
//
// One database, index.db, in the directory given to Open:
//
//   - traits: the winning write of every (entity, trait): a live trait
//     (type, document, created, modified) or a tombstone (dead), with the
//     position of the operation that wrote it (clock, key, op index);
//     a live trait's created is the earliest of its puts' since its
//     latest delete, and firsts what keeps it so (firsts.go: that
//     delete's position and the puts that could still be the earliest);
//   - tombs: each entity's latest delete-entity position;
//   - terms: one row per keyword, number, time and reference value of a
//     live trait of a registered type, with the trait's entity and
//     modified time, keyed (trait, field, value) for deletes, predicates
//     checked per trait and ordering, and indexed (field, value,
//     modified, entity) for the predicates and references that drive a
//     query;
//   - fts: a contentless FTS5 table (contentless_delete=1, tokenizer
//     unicode61 remove_diacritics 2) over the trait's text fields joined
//     by newlines, rowid = the trait's row;
//   - meta: the checkpoint (next arrival, last CID), the fingerprint of
//     the registry's schemas, the skip counters.
//
// Entity IDs are 16-byte blobs; times are 12-byte blobs that sort as the
// instants (seconds since year 0, then nanoseconds, big-endian); numbers
// are REALs (float64: integers beyond 2^53 lose precision).
//
// # Applying
//
// Apply takes arrivals in this node's arrival order, starting at the
// checkpoint, and applies them in one transaction that also advances the
// checkpoint: a crash loses a whole Apply or nothing, and the caller
// re-applies from Checkpoint. For each operation at position a (entry's
// Pos, then op index): a delete-entity later than the entity's tomb
// replaces it and deletes the rows before it; a put or delete-trait
// before the tomb is ignored; otherwise it replaces the trait's row when
// it is later than the row's position (a tombstone is a row). So a late
// entry that sorts earlier changes exactly the rows whose latest write it
// is. A put that loses to a later put still counts for the trait's
// created time, unless the trait's latest delete is after it; a
// delete-trait that loses, or a delete-entity, drops from it the puts
// before the delete (store.State's rule). A replaced or deleted live trait's terms and text are deleted with
// it; a live trait put again (a message's state changing) keeps the terms
// it still has, moved to its new modified time in place, and its text
// when the same (its old document is extracted again to know): only what
// changed is written.
//
// # Schemas
//
// meta holds a hash of the registry's schemas, of this layout's version
// and of SQLite's (another SQLite may tokenise or rank text otherwise).
// Open, finding another one (a binary with other schemas or another
// engine), empties the index; Emptied reports it, and the caller re-applies the
// chain. A file SQLite finds damaged (not a database, corrupt) is removed
// and made again at Open, reported the same way. The index logs nothing.
//
// # Queries
//
// A query is validated against the registry first (errors wrap
// store.ErrQuery and name the part at fault), then compiled to one SQL
// statement, and one more fetches the hits' traits, both in one read
// transaction (one snapshot). Full-text words are each quoted as an FTS5
// string, so a query cannot use FTS5's operators; ranks are bm25 rounded
// to 1e-6 so that every node prints the same. A cursor holds the last
// hit's key and entity and a fingerprint of the query (see cursor.go);
// paging is stable under changes. An entity's sort key is its best
// matching trait's (for a list field, its best value), its rank its best
// rank; entities without the ordering field come last.
//
// Three plans. A full-text match by relevance with no predicate reads
// the matches in FTS5's own rank order (ORDER BY rank, sorted inside the
// virtual table), joins each to its trait only as it is read, and orders
// rows of equal rounded rank by entity in Go; a page after a cursor
// reads from the first match again (ranking needs every match anyway). A
// listing by modified time, of a type or with an equality
// predicate first ("notes, newest first", "notes tagged work, newest
// first"), streams: it reads traits_type or terms_v in order and keeps
// each entity's first row (its best) until Limit+1 entities, so its cost
// is the page, whatever the number of candidates. Every other query is
// grouped: the candidates come from the full-text match, else the first
// predicate (equalities first; the other bounds of a one-value field
// narrow the range), else the references, else the type (a fixed join
// order), each other condition is checked per candidate on the terms'
// key, and the candidates are grouped by entity and sorted: its cost
// grows with the candidates (a word in a fifth of the notes, a range over
// most tasks), while only Limit+1 rows come out. See README.md for the
// figures.
//
// # Watches
//
// A watched query keeps the page it last sent. Its first page is
// computed without the writer's lock (Apply goes on meanwhile), under the
// refresher's, so that no commit is missed. After each Apply that
// changed anything commits, the refresher (one goroutine, started with
// the first watch) recomputes every watch's page from the latest snapshot,
// commits made meanwhile coalesced into its next round; the watch's
// goroutine sends the difference (Diff) with what it last sent. Apply
// waits neither for the watches' queries (a watch of a costly query, a
// common word over 20,000 notes, used to make every Apply wait 70 ms per
// such watch) nor for a reader: a slow reader gets the changes since its
// last event, coalesced.
//
// A round runs again only the watches whose types a commit touched
// since their page (TypesVersion of the query's Type and of the trait
// types it returns): an inbox watch is not run for a contact's change. A
// watch of any type, of every trait (Traits nil: an entity may gain a
// trait of any type) or of words (a rank depends on every text) runs for
// every commit.
//
// # Types' versions
//
// Apply notes the trait types each commit touches: the type of a trait
// put, of a live trait replaced or deleted, of each live trait of an
// entity deleted (Reset: all). TypesVersion(types...) is a number that
// moves whenever a commit touched one of them, read from memory (atomics,
// no SQLite), moved before Apply returns; while such a commit is under
// way it is a number never given otherwise, so that a cache kept under
// it is never used for data older than what a query would read. Each
// registered type has its counter, as do the first 64 other types seen;
// later ones share one. The numbers come from one sequence for the
// process, so an index opened again never gives a number given before.
//
// # Pragmas
//
// WAL, so that queries read a snapshot while Apply writes; synchronous
// NORMAL: a power loss may lose the last transactions, never corrupt the
// database, and the chain is the source of truth: the checkpoint goes back
// with them and the service re-applies what is missing. The writer's
// connection has a 64 MiB page cache (Options.CacheKiB) and the WAL is
// checkpointed every 8,192 pages (32 MiB): indexing touches index pages
// all over the b-trees, and keeping them in cache across Apply calls made
// indexing 100,000 entities 1.5 times faster than 16 MiB and the default
// 1,000-page checkpoints. Readers have 8 MiB each (the OS's file cache
// serves the rest). A cache fills only as pages are used: an empty index
// costs little memory; a large one, up to the caches' sum.
//
// # Concurrency
//
// Apply and Reset hold a mutex and write on one dedicated connection with
// statements prepared once; Get, Query, Stats and Watch's refreshes read
// on a pool of up to Options.Readers pinned connections (reader.go), each
// read in a read transaction begun and ended by statements prepared once.
// Each reader keeps the statements it runs prepared, by SQL text, at
// most 128 (the least recently used closed past them), so that SQLite
// parses a statement once per connection, not once per call (the parser
// was half of a Get's CPU); fetch pads its list of IDs to a power of two
// so that a few texts serve every page. A query's plan is compiled to the
// same text for the same shape of query (its values are parameters).
// Close waits for the readers in use and closes every statement. The
// checkpoint is kept in memory from the last commit (read from meta
// after Open, Reset or a failed Apply).
// Watches are bounded (Options.MaxWatches); each has one goroutine, the
// refresher one more, and Close waits for them.
package index

// Package store is the pure core of exopeer's store: a person's data as
// entities made of typed traits, changed by mutations carried on the chain.
// It holds the model, the mutations' encoding, the trait schemas and the
// convergent state; it does no I/O, reads no clock, starts no goroutine and
// does not log. The index engine, the queries and the node's wiring are
// shells built on it.
//
// # Model
//
// An entity has an EntityID (16 random bytes, 32 hex digits in text) and a
// set of traits. A trait has a type (e.g. "exo.note"), a TraitID within its
// entity, a JSON document (at most MaxDoc, 64 KiB) and the writer's created
// and modified times. Mutations are operations: PutTrait (write a trait
// whole), DeleteTrait, DeleteEntity; a Transaction is a batch of 1 to MaxOps
// (1,000) of them, the payload of one chain entry (Encode, Decode: a magic
// byte 0xE5, a version byte, then the operations; canonical, capped, and
// fuzzed by FuzzDecodeMutation), or one of up to MaxBatch transactions in
// a batch entry (EncodeBatch, Split: version 2), each of which is
// decoded, checked and applied or skipped on its own.
//
// Trait types are registered in a Registry with a Schema: the fields that
// are indexed and how (keyword, text, number, time, reference to another
// entity), which are required, and which are kept (checked, not
// indexed: Field.Kept). Registry.Validate refuses a document
// that does not match with a *FieldError naming the field's path. A type
// that is not registered is accepted, kept and returned, not indexed.
// exo.note (title text, body text and required, tags a keyword list) is the
// first type.
//
// # One state everywhere
//
// State is a reducer: State.Apply(pos, payload) applies the entry at chain
// position pos. The rule: for each trait, the operation latest in chain
// order wins (an operation's place is its entry's Pos, then OpPlace of
// its transaction's index in the entry and its index in the transaction); a delete is a tombstone with a position, so a put
// before it in chain order stays deleted and a put after it wins;
// DeleteEntity is a tombstone for every trait of the entity written before
// it. A live trait has the type, document and Modified of its winning put,
// and as Created the earliest Created of the puts of that trait after its
// latest delete (of the trait, or of the entity), in chain order: a put
// that loses still counts, a put with a zero Created counts for none
// (zero means "keep the one held"; zero if none has one). So a record two
// devices wrote apart (a message each received) keeps the first one's
// time, whichever of them the chain orders last. A transaction applies
// all or nothing: one malformed operation or one document its schema
// refuses skips the whole transaction (the whole
// entry, but for a batch, whose other transactions apply), counted by
// reason in Stats and returned as an error wrapping ErrSkipped; it never
// panics.
//
// Why this converges: the chain's order (Lamport clock, then CID) is a
// total order on entries that every node holding the same entries computes
// the same, whatever order the entries arrived in. State keeps, for each
// trait, the maximum in that order of the operations on it after the
// entity's latest delete, and for each entity the maximum of its deletes.
// A trait's Created is a minimum over a set that is a function of the
// entries as well (its puts with a Created after the maximum of its own
// and its entity's deletes); State keeps the puts of it that a later
// delete could leave the earliest (those that no put after them matches
// with a Created as early; of one entry's, the earliest only: no other
// entry sorts between them), so a delete that arrives late cuts the set as
// if it had come first. A maximum and a minimum do not depend on the
// order their elements are seen in, and an entry's validity depends on
// the entry alone, so the state is a function of the set of entries: a
// late entry that sorts earlier (a device that wrote offline) changes
// exactly the traits whose latest write it is, or whose Created it is
// the earliest of, and nothing else. The tests apply one set of entries in many seeded random
// orders and compare State.Canonical byte for byte.
//
// # Queries
//
// query.go holds the shapes a query and its answers take everywhere (Query,
// Predicate, Page, Hit, WatchEvent); ParseWhere reads a predicate's text
// form (FIELD OP VALUE, as the CLI's --where takes it) and Predicate.String
// writes it back (fuzzed by FuzzParseWhere).
package store

package index

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/exopeer/exopeer/store"

	"modernc.org/sqlite" // the "sqlite" database/sql driver, FTS5 compiled in
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors.
var (
	// ErrClosed is a call on a closed Index.
	ErrClosed = errors.New("index: closed")
	// ErrOrder is an Apply whose first arrival is not the checkpoint's Next,
	// or whose arrivals are not consecutive.
	ErrOrder = errors.New("index: arrivals out of order")
	// ErrTooManyWatches is a Watch over Options.MaxWatches.
	ErrTooManyWatches = errors.New("index: too many watches")
)

// format is the version of the tables' layout: part of the fingerprint, so
// that a binary with another layout rebuilds the index.
const format = "exopeer-index-4"

// Options tune an Index. The zero Options is DefaultOptions.
type Options struct {
	// CacheKiB is SQLite's page cache of the writer's connection (Apply),
	// in KiB (0: 65,536, that is 64 MiB, filled only as pages are
	// written or read: an empty index uses little). Indexing 100,000
	// entities ran 1.6x faster with 64 MiB than with 16 MiB.
	CacheKiB int
	// ReaderCacheKiB is the page cache of each reader's connection, in
	// KiB (0: 8,192); the OS's file cache serves them beyond it.
	ReaderCacheKiB int
	// Readers is the number of connections queries use at once (0: 4).
	// Apply has its own connection. A reader's connection, once made,
	// stays open until Close, with up to 128 prepared statements.
	Readers int
	// MaxWatches bounds the watched queries open at once (0: 256); Watch
	// past it returns ErrTooManyWatches.
	MaxWatches int
}

func (o Options) withDefaults() Options {
	if o.CacheKiB <= 0 {
		o.CacheKiB = 64 << 10
	}
	if o.ReaderCacheKiB <= 0 {
		o.ReaderCacheKiB = 8 << 10
	}
	if o.Readers <= 0 {
		o.Readers = 4
	}
	if o.MaxWatches <= 0 {
		o.MaxWatches = 256
	}
	return o
}

// Index is the store's index in one SQLite database. Its methods are safe
// for concurrent use: Apply and Reset are serialised, queries run
// concurrently with them on snapshots (WAL).
type Index struct {
	reg     *store.Registry
	opts    Options
	db      *sql.DB   // the connections' pool
	rd      *readers  // the readers' connections, pinned
	wc      *sql.Conn // the writer's connection
	fields  fieldMap
	emptied bool
	engine  string // SQLite's version: part of the fingerprint

	mu     sync.Mutex // serialises writers; guards closed, st and cp
	closed bool
	st     stmts
	// typeStmts is the writer's read of the types a delete of an entity touches
	// (types.go), guarded by mu; types their versions.
	typeStmts [1]*sql.Stmt
	types     *typeVersions
	// cp is the checkpoint as the last Apply committed it (nil: read it
	// from meta, after Open, Reset or a failed Apply).
	cp *Checkpoint

	rmu     sync.Mutex    // serialises refresh rounds and watches' first pages
	rq      chan struct{} // capacity 1: a commit asks the refresher for a round
	rOn     bool          // the refresher runs (guarded by mu)
	wmu     sync.Mutex    // guards watches
	watches map[*watch]struct{}
	wg      sync.WaitGroup
	done    chan struct{}

	// watchRuns counts the watches' queries run by refreshes (the
	// tests read it).
	watchRuns atomic.Int64
}

// Open opens the index in directory path, creating it (0700) and its
// database when missing. When the database was made for other schemas
// than reg's (or by another layout of this package), Open empties it:
// Checkpoint is then 0 and Emptied reports true, so that the caller
// re-applies the chain. A database file that SQLite finds damaged (not a
// database, or corrupt) is removed and made again, empty, and Emptied
// reports true too: the index is derived from the chain, and a node
// should not fail at every start for it. reg must not change afterwards.
func Open(path string, reg *store.Registry, opts Options) (*Index, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("index: open: %w", err)
	}
	file := filepath.Join(path, "index.db")
	ix, err := openFile(file, reg, opts)
	if err == nil || !damaged(err) {
		return ix, err
	}
	for _, f := range []string{file, file + "-wal", file + "-shm"} {
		if rerr := os.Remove(f); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return nil, errors.Join(err, rerr)
		}
	}
	if ix, err = openFile(file, reg, opts); err != nil {
		return nil, err
	}
	ix.emptied = true
	return ix, nil
}

// damaged reports whether err is SQLite's finding that the database file
// is not one, or is corrupt.
func damaged(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code() & 0xff // the primary result code
	return c == sqlite3.SQLITE_NOTADB || c == sqlite3.SQLITE_CORRUPT
}

func openFile(file string, reg *store.Registry, opts Options) (*Index, error) {
	dsn := "file:" + file + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(8192)" +
		"&_pragma=cache_size(-" + strconv.Itoa(opts.ReaderCacheKiB) + ")"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", file, err)
	}
	db.SetMaxOpenConns(opts.Readers + 1)
	db.SetMaxIdleConns(opts.Readers + 1)
	ctx := context.Background()
	ix := &Index{reg: reg, opts: opts, db: db, rd: newReaders(db, opts.Readers), fields: newFieldMap(reg), types: newTypeVersions(reg), watches: make(map[*watch]struct{}), done: make(chan struct{}), rq: make(chan struct{}, 1)}
	if err := ix.open(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return ix, nil
}

func (ix *Index) open(ctx context.Context) error {
	wc, err := ix.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("index: open: %w", err)
	}
	ix.wc = wc
	if _, err := wc.ExecContext(ctx, "PRAGMA cache_size(-"+strconv.Itoa(ix.opts.CacheKiB)+")"); err != nil {
		return fmt.Errorf("index: open: %w", err)
	}
	// The engine's version is part of the fingerprint: another SQLite may
	// tokenise or rank text otherwise, and every node must answer alike.
	if err := wc.QueryRowContext(ctx, `SELECT sqlite_version()`).Scan(&ix.engine); err != nil {
		return fmt.Errorf("index: open: %w", err)
	}
	var fp string
	err = wc.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'fingerprint'`).Scan(&fp)
	switch {
	case err == nil && fp == fingerprint(ix.reg, ix.engine):
	default:
		// A new database (no meta table: an error), or one made for
		// other schemas: start empty.
		ix.emptied = err == nil
		if err := ix.recreate(ctx); err != nil {
			return err
		}
	}
	if ix.st, err = prepare(ctx, wc); err != nil {
		return err
	}
	return nil
}

// recreate drops every table and creates them empty, in one transaction.
func (ix *Index) recreate(ctx context.Context) error {
	stmts := []string{`BEGIN IMMEDIATE`}
	for _, t := range []string{"meta", "traits", "tombs", "terms", "fts"} {
		stmts = append(stmts, `DROP TABLE IF EXISTS `+t)
	}
	stmts = append(stmts, schema...)
	stmts = append(stmts, `INSERT INTO meta(k, v) VALUES('fingerprint', '`+fingerprint(ix.reg, ix.engine)+`'), ('next', 0), ('live.traits', 0), ('live.entities', 0)`, `COMMIT`)
	for _, q := range stmts {
		if _, err := ix.wc.ExecContext(ctx, q); err != nil {
			_, _ = ix.wc.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)
			return fmt.Errorf("index: create tables: %.40q: %w", q, err)
		}
	}
	return nil
}

// schema is the tables. Entity IDs are 16-byte blobs; times are 12-byte
// blobs that sort as the instants do (timeKey); a position is (clock, key,
// op).
var schema = []string{
	// meta: the checkpoint (next, last), the fingerprint of the schemas,
	// the skip counters (skip.<reason>), the live traits and entities
	// (live.traits, live.entities).
	`CREATE TABLE meta(k TEXT PRIMARY KEY, v) WITHOUT ROWID`,
	// traits: the winning write of every (entity, trait), live (dead 0)
	// or a tombstone (dead 1, no document). id is the FTS5 rowid and the
	// terms' trait. created is the earliest of the trait's puts' since
	// its latest delete, firsts what keeps it so (firsts.go).
	`CREATE TABLE traits(
		id INTEGER PRIMARY KEY,
		entity BLOB NOT NULL,
		trait TEXT NOT NULL,
		type TEXT NOT NULL,
		doc BLOB,
		created BLOB,
		modified BLOB,
		clock INTEGER NOT NULL,
		key BLOB NOT NULL,
		op INTEGER NOT NULL,
		dead INTEGER NOT NULL,
		text INTEGER NOT NULL,
		firsts BLOB,
		UNIQUE(entity, trait))`,
	`CREATE INDEX traits_type ON traits(type, modified) WHERE dead = 0`,
	// tombs: the latest delete-entity of each entity.
	`CREATE TABLE tombs(entity BLOB PRIMARY KEY, clock INTEGER NOT NULL, key BLOB NOT NULL, op INTEGER NOT NULL) WITHOUT ROWID`,
	// terms: one row per indexed keyword, number, time or reference value
	// of a live trait; field is fieldMap's number for (type, field); the
	// trait's entity and modified time are repeated so that terms_v gives
	// the traits with a value newest first without reading traits. The
	// key serves deletes, predicates checked per trait and a trait's
	// value for ordering; terms_v drives predicates and references.
	`CREATE TABLE terms(trait INTEGER NOT NULL, field INTEGER NOT NULL, v NOT NULL, entity BLOB NOT NULL, mod BLOB NOT NULL,
		PRIMARY KEY(trait, field, v)) WITHOUT ROWID`,
	`CREATE INDEX terms_v ON terms(field, v, mod, entity)`,
	// fts: the text fields of each live trait of a registered type,
	// joined by newlines; rowid = traits.id.
	`CREATE VIRTUAL TABLE fts USING fts5(text, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2')`,
}

// readVersions are the store payload versions this build applies
// (store.Version, store.BatchVersion): part of the fingerprint, since a
// build that does not read a version skips its entries for good
// (store.ErrVersion, a SkipDecode the checkpoint has passed), so a build
// that reads it must rebuild an index made without it, or it would
// never apply them and differ from store.State and the other devices.
var readVersions = []byte{store.Version, store.BatchVersion}

// fingerprint is a hash of the layout's version, the payload versions
// this build reads and reg's schemas.
func fingerprint(reg *store.Registry, engine string) string {
	return fingerprintOf(reg, engine, readVersions)
}

func fingerprintOf(reg *store.Registry, engine string, versions []byte) string {
	h := sha256.New()
	h.Write([]byte(format))
	fmt.Fprintf(h, "\x00sqlite %q", engine)
	if !slices.Equal(versions, []byte{store.Version}) { // the fingerprint of a build reading version 1 only, as before
		fmt.Fprintf(h, "\x00versions %x", versions)
	}
	for _, s := range reg.Types() {
		fmt.Fprintf(h, "\x00type %q", s.Type)
		for _, f := range s.Fields {
			fmt.Fprintf(h, "\x00field %q %d %t %t", f.Name, f.Kind, f.List, f.Required)
			if f.Kept {
				h.Write([]byte(" kept")) // so that a schema of before Kept keeps its fingerprint
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Emptied reports whether Open found an index made for other schemas (or
// another layout) and emptied it: the caller then re-applies the chain
// from the start. A new index is not counted as emptied.
func (ix *Index) Emptied() bool { return ix.emptied }

// Checkpoint returns how far Apply has gone.
func (ix *Index) Checkpoint(ctx context.Context) (Checkpoint, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return Checkpoint{}, ErrClosed
	}
	return ix.checkpoint(ctx)
}

func (ix *Index) checkpoint(ctx context.Context) (Checkpoint, error) {
	if ix.st.getCheckpoint == nil { // a Reset could not prepare them again
		return Checkpoint{}, errors.New("index: the writer's statements are not prepared (a failed Reset): reopen the index")
	}
	if ix.cp == nil {
		var c Checkpoint
		if err := ix.st.getCheckpoint.QueryRowContext(ctx).Scan(&c.Next, &c.Last); err != nil {
			return Checkpoint{}, fmt.Errorf("index: checkpoint: %w", err)
		}
		ix.cp = &c
	}
	return Checkpoint{Next: ix.cp.Next, Last: bytes.Clone(ix.cp.Last)}, nil
}

// Reset empties the index: no entity, checkpoint 0, skip counters 0. The
// caller then re-applies the chain (a reindex). Watches stay open and are
// sent the emptied first page.
func (ix *Index) Reset(ctx context.Context) error {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return ErrClosed
	}
	// Not canceled halfway: the tables are recreated in one short
	// transaction, and the writer's statements are prepared again
	// whatever happened (a canceled caller used to leave them closed,
	// and the next Apply panicked).
	wctx := context.WithoutCancel(ctx)
	ix.cp = nil
	ix.st.close()
	ix.closeTypeStmts()
	all := ix.types.all() // every type's version moves
	ix.types.begin(all)
	err := ix.recreate(wctx)
	ix.types.end(all)
	var perr error
	ix.st, perr = prepare(wctx, ix.wc)
	ix.mu.Unlock()
	if err = errors.Join(err, perr); err != nil {
		return err
	}
	ix.kickRefresh()
	return nil
}

// Stats is what Stats reports.
type Stats struct {
	// Next is the checkpoint: the arrivals applied so far.
	Next uint64
	// Entities and Traits count the entities with a live trait and the
	// live traits.
	Entities, Traits int64
	// Skipped counts the transactions skipped, by reason
	// (store.SkipDecode, store.SkipSchema): a batch entry's one by one, a
	// payload that does not split (store.Split) once, as store.Stats.
	Skipped map[string]int64
	// Bytes is the database's size on disk (its write-ahead log included).
	Bytes int64
	// Watches is the number of open watched queries.
	Watches int
}

// Stats counts what the index holds: the counts are kept by Apply, so
// Stats reads a few rows.
func (ix *Index) Stats(ctx context.Context) (Stats, error) {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return Stats{}, ErrClosed
	}
	ix.mu.Unlock()
	r, err := ix.read(ctx)
	if err != nil {
		return Stats{}, err
	}
	defer r.Rollback()
	s := Stats{Skipped: make(map[string]int64)}
	row, err := r.queryRow(ctx, `SELECT (SELECT v FROM meta WHERE k = 'next'),
		(SELECT v FROM meta WHERE k = 'live.entities'), (SELECT v FROM meta WHERE k = 'live.traits')`)
	if err == nil {
		err = row.Scan(&s.Next, &s.Entities, &s.Traits)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("index: stats: %w", err)
	}
	rows, err := r.query(ctx, `SELECT substr(k, 6), v FROM meta WHERE k >= 'skip.' AND k < 'skip/'`)
	if err != nil {
		return Stats{}, fmt.Errorf("index: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			return Stats{}, fmt.Errorf("index: stats: %w", err)
		}
		s.Skipped[k] = v
	}
	if err := rows.Err(); err != nil {
		return Stats{}, fmt.Errorf("index: stats: %w", err)
	}
	var file string
	row, err = r.queryRow(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`)
	if err == nil {
		err = row.Scan(&file)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("index: stats: %w", err)
	}
	for _, f := range []string{file, file + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			s.Bytes += fi.Size()
		}
	}
	ix.wmu.Lock()
	s.Watches = len(ix.watches)
	ix.wmu.Unlock()
	return s, nil
}

// Close closes the watches (their channels), waits for their goroutines
// and closes the database. It is idempotent.
func (ix *Index) Close() error {
	ix.mu.Lock()
	if ix.closed {
		ix.mu.Unlock()
		return nil
	}
	ix.closed = true
	close(ix.done)
	ix.st.close()
	ix.closeTypeStmts()
	err := ix.wc.Close()
	ix.mu.Unlock()
	ix.wg.Wait()
	return errors.Join(err, ix.rd.close(), ix.db.Close())
}

package index

import (
	"container/list"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// maxReaderStmts bounds each reader connection's cache of prepared
// statements (see stmtCache).
const maxReaderStmts = 128

// A reader is one of the readers' connections, pinned: its read
// transaction is begun and ended with statements prepared once, and the
// statements it runs (Get's and fetch's, the queries' plans) are
// prepared on it once and cached by their SQL text, so that SQLite's
// parser runs once per text and connection, not once per call.
// Statements prepared through *sql.DB are prepared again on each
// connection they meet, and a sql.Tx's own statements last one
// transaction: pinning the connection keeps the prepared statement
// under the caller's hand. A reader is used by one goroutine at a time.
type reader struct {
	rs              *readers // its pool
	conn            *sql.Conn
	begin, rollback *sql.Stmt
	stmts           *stmtCache
}

// query runs q (a SELECT) in the reader's read transaction, with its
// statement from the cache.
func (r *reader) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := r.stmts.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// Rollback ends r's read transaction and gives r back to its pool, as
// sql.Tx's Rollback ends a read: r is not used afterwards.
func (r *reader) Rollback() { r.rs.release(r) }

// queryRow is query for one row: its Scan's error, or prepare's.
func (r *reader) queryRow(ctx context.Context, q string, args ...any) (*sql.Row, error) {
	st, err := r.stmts.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

func (r *reader) close() error {
	r.stmts.close()
	return errors.Join(r.begin.Close(), r.rollback.Close(), r.conn.Close())
}

// readers is the pool of reader connections: at most max, made as they
// are first needed, idle ones kept.
type readers struct {
	db   *sql.DB
	sem  chan struct{} // a token per reader in use or being made; capacity max
	mu   sync.Mutex    // guards idle and closed
	idle []*reader
	// closed is set by close: a reader released afterwards is closed.
	closed bool
}

func newReaders(db *sql.DB, max int) *readers {
	return &readers{db: db, sem: make(chan struct{}, max)}
}

// acquire returns a reader in a read transaction (one snapshot, taken
// at its first read), blocking while all are in use; the caller gives
// it back with its Rollback. done is the index's closing.
func (rs *readers) acquire(ctx context.Context, done <-chan struct{}) (*reader, error) {
	select {
	case rs.sem <- struct{}{}:
	case <-done:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("index: read: %w", ctx.Err())
	}
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		<-rs.sem
		return nil, ErrClosed
	}
	var r *reader
	if n := len(rs.idle); n > 0 {
		r, rs.idle = rs.idle[n-1], rs.idle[:n-1]
	}
	rs.mu.Unlock()
	if r == nil {
		var err error
		if r, err = rs.open(ctx); err != nil {
			<-rs.sem
			return nil, fmt.Errorf("index: read: %w", err)
		}
	}
	// BEGIN (deferred) reads nothing: not under ctx, which modernc would
	// watch with a goroutine.
	if _, err := r.begin.ExecContext(context.WithoutCancel(ctx)); err != nil {
		rs.discard(r)
		return nil, fmt.Errorf("index: read: begin: %w", err)
	}
	return r, nil
}

func (rs *readers) open(ctx context.Context) (*reader, error) {
	c, err := rs.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	r := &reader{rs: rs, conn: c, stmts: newStmtCache(c, maxReaderStmts)}
	if r.begin, err = c.PrepareContext(ctx, `BEGIN`); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	if r.rollback, err = c.PrepareContext(ctx, `ROLLBACK`); err != nil {
		return nil, errors.Join(err, r.begin.Close(), c.Close())
	}
	return r, nil
}

// release ends r's read transaction and makes it idle (closed, when the
// pool is closed or r's connection failed).
func (rs *readers) release(r *reader) {
	if _, err := r.rollback.ExecContext(context.Background()); err != nil {
		rs.discard(r)
		return
	}
	rs.mu.Lock()
	if rs.closed {
		rs.mu.Unlock()
		r.close()
		<-rs.sem
		return
	}
	rs.idle = append(rs.idle, r)
	rs.mu.Unlock()
	<-rs.sem
}

// discard closes r (a connection whose transaction is in an unknown
// state) and frees its place.
func (rs *readers) discard(r *reader) {
	r.close()
	<-rs.sem
}

// close closes the idle readers, waiting for those in use to be
// released (a read is short: a Get, a query's page). Later acquires
// return ErrClosed.
func (rs *readers) close() error {
	rs.mu.Lock()
	rs.closed = true
	rs.mu.Unlock()
	for range cap(rs.sem) {
		rs.sem <- struct{}{}
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var err error
	for _, r := range rs.idle {
		err = errors.Join(err, r.close())
	}
	rs.idle = nil
	return err
}

// stmtCache holds statements prepared on one connection, by their SQL
// text: at most max, the least recently used closed and dropped past
// it. It is not safe for concurrent use (its reader is used by one
// goroutine at a time).
type stmtCache struct {
	conn *sql.Conn
	max  int
	m    map[string]*list.Element
	lru  list.List // of *cachedStmt, the most recently used first
	// prepares counts the statements prepared (for the tests).
	prepares int
}

type cachedStmt struct {
	q  string
	st *sql.Stmt
}

func newStmtCache(c *sql.Conn, max int) *stmtCache {
	return &stmtCache{conn: c, max: max, m: make(map[string]*list.Element)}
}

// get returns q's statement, preparing it the first time (and when it
// was evicted since).
func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	if e, ok := c.m[q]; ok {
		c.lru.MoveToFront(e)
		return e.Value.(*cachedStmt).st, nil
	}
	st, err := c.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.prepares++
	c.m[q] = c.lru.PushFront(&cachedStmt{q: q, st: st})
	if c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*cachedStmt)
		delete(c.m, old.q)
		old.st.Close()
	}
	return st, nil
}

// len is the number of statements cached.
func (c *stmtCache) len() int { return c.lru.Len() }

// close closes every cached statement.
func (c *stmtCache) close() {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedStmt).st.Close()
	}
	c.lru.Init()
	clear(c.m)
}

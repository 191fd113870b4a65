// Package ncruces opens an enginebench database through github.com/ncruces/go-sqlite3
// (SQLite translated from WASM to Go by wasm2go; no cgo) with FTS5 registered on every
// connection.
package ncruces

import (
	"database/sql"
	"fmt"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"
	"github.com/ncruces/go-sqlite3/ext/fts5"
)

// Name is the driver's name in the figures.
const Name = "ncruces"

// Open opens (creating if needed) the SQLite database at path.
func Open(path string) (*sql.DB, error) {
	db, err := driver.Open("file:"+path, func(c *sqlite3.Conn) error {
		if err := fts5.Register(c); err != nil {
			return fmt.Errorf("ncruces: register fts5: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ncruces: open %s: %w", path, err)
	}
	return db, nil
}

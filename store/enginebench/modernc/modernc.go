// Package modernc opens an enginebench database through modernc.org/sqlite (SQLite
// transpiled from C to Go; no cgo), whose build includes FTS5.
package modernc

import (
	"database/sql"
	"fmt"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Name is the driver's name in the figures.
const Name = "modernc"

// Open opens (creating if needed) the SQLite database at path.
func Open(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return nil, fmt.Errorf("modernc: open %s: %w", path, err)
	}
	return db, nil
}

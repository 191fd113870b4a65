package index

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/exopeer/exopeer/store"
)

// Trait returns entity e's live trait id, or an error wrapping
// store.ErrNotFound when it has none. It is one point read on the
// writer's connection, under the lock Apply holds (so it waits for an
// Apply under way): the writer's page cache holds what the last Apply
// wrote, where a reader's is emptied by every commit it has not seen, so
// that reading what was just written (a message's duplicate check,
// before it is recorded) costs a fraction of a Get. ctx is checked
// first; the read is not interrupted. Safe for concurrent use.
func (ix *Index) Trait(ctx context.Context, e store.EntityID, id store.TraitID) (store.Trait, error) {
	if err := ctx.Err(); err != nil {
		return store.Trait{}, fmt.Errorf("index: trait %s/%s: %w", e, id, err)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return store.Trait{}, ErrClosed
	}
	if ix.st.getLive == nil { // a Reset could not prepare them again
		return store.Trait{}, errors.New("index: the writer's statements are not prepared (a failed Reset): reopen the index")
	}
	t := store.Trait{ID: id}
	var doc, created, modified []byte
	// Not under ctx: modernc watches a cancelable context with a
	// goroutine per statement.
	err := ix.st.getLive.QueryRowContext(context.WithoutCancel(ctx), e[:], string(id)).Scan(&t.Type, &doc, &created, &modified)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Trait{}, fmt.Errorf("index: trait %s/%s: %w", e, id, store.ErrNotFound)
	case err != nil:
		return store.Trait{}, fmt.Errorf("index: trait %s/%s: %w", e, id, err)
	}
	t.Doc = json.RawMessage(doc)
	if t.Created, err = keyTime(created); err != nil {
		return store.Trait{}, err
	}
	if t.Modified, err = keyTime(modified); err != nil {
		return store.Trait{}, err
	}
	return t, nil
}

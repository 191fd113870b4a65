package main

// Notes: the first entity type, and the example of how a feature defines
// one. A type is two things:
//
//   - its schema, registered in every node (store.NoteSchema: exo.note,
//     the fields the index keeps: title and body as text for full-text
//     search, tags as a keyword list for tags=work), so that every store
//     node indexes it the same way and refuses a document that does not
//     match;
//   - its verbs, here: each is a call of the generic store routes (put,
//     query) with the type's document and query, and a line to print a
//     hit. No route is note-specific: a note is an entity with one
//     exo.note trait.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/store"
)

// note is the document of an exo.note trait.
type note struct {
	Title string   `json:"title,omitempty"`
	Body  string   `json:"body"`
	Tags  []string `json:"tags,omitempty"`
}

func cmdNoteAdd(ctx context.Context, cmd *cli.Command) error {
	words, err := args(ctx, cmd, 1, -1)
	if err != nil {
		return err
	}
	doc, err := json.Marshal(note{Title: cmd.String("title"), Body: strings.Join(words, " "), Tags: cmd.StringSlice("tag")})
	if err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, err := c.StorePut(ctx, api.StorePutRequest{Traits: []api.StoreTraitInput{{Type: store.NoteSchema.Type, Doc: doc}}})
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), w)
	}
	_, err = fmt.Fprintf(stdout(cmd), "added note %s\n", w.Entity)
	return err
}

// noteQuery is the query of the notes: only their exo.note trait.
func noteQuery() api.StoreQuery {
	return api.StoreQuery{Type: store.NoteSchema.Type, Traits: &[]string{store.NoteSchema.Type}}
}

func cmdNoteLs(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	q := noteQuery()
	for _, t := range cmd.StringSlice("tag") {
		q.Where = append(q.Where, api.StorePredicate{Field: "tags", Op: string(store.Eq), Value: t})
	}
	if q.Limit = cmd.Int("limit"); cmd.IsSet("limit") && (q.Limit < 1 || q.Limit > store.MaxLimit) {
		return usage(cmd, "--limit must be 1 to %d", store.MaxLimit)
	}
	q.After = cmd.String("after")
	return queryPage(ctx, cmd, q, "notes", printNote)
}

func cmdNoteSearch(ctx context.Context, cmd *cli.Command) error {
	words, err := args(ctx, cmd, 1, -1)
	if err != nil {
		return err
	}
	q := noteQuery()
	q.Match = strings.Join(words, " ")
	if q.Limit = cmd.Int("limit"); cmd.IsSet("limit") && (q.Limit < 1 || q.Limit > store.MaxLimit) {
		return usage(cmd, "--limit must be 1 to %d", store.MaxLimit)
	}
	q.After = cmd.String("after") // the page's last line says it
	return queryPage(ctx, cmd, q, "notes", printNote)
}

// printNote prints a note on one line: its ID, when it was last changed,
// its title or else its body, and its tags.
func printNote(w io.Writer, h api.StoreHit) error {
	for _, t := range h.Entity.Traits {
		if t.Type != store.NoteSchema.Type {
			continue
		}
		var n note
		if err := json.Unmarshal(t.Doc, &n); err != nil {
			break
		}
		text := n.Title
		if text == "" {
			text = n.Body
		}
		line := fmt.Sprintf("%s  %s  %s", h.Entity.ID, t.Modified.Local().Format(time.DateTime), short(text, 60))
		for _, tag := range n.Tags {
			line += "  #" + printable(tag)
		}
		_, err := fmt.Fprintln(w, line)
		return err
	}
	return printHit(w, h)
}

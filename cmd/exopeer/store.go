package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v3"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/client"
	"github.com/exopeer/exopeer/store"
)

// The store's verbs: each is one call of the store's routes, but watch,
// which streams.

// storeQueryFlags are the flags of store query and store watch.
func storeQueryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "type", Usage: "entities with a trait of this type (where and order name its fields)"},
		&cli.StringFlag{Name: "match", Usage: "full-text search: every word in a text field"},
		&cli.StringSliceFlag{Name: "where", Usage: "a condition FIELD OP VALUE, OP one of = < <= > >= ^= (prefix), such as tags=work (repeatable: all hold)"},
		&cli.StringFlag{Name: "refers", Usage: "entities with a reference field naming this entity ID"},
		&cli.StringFlag{Name: "order", Usage: "relevance, modified, created or a field of --type (default: relevance with --match, else modified)"},
		&cli.BoolFlag{Name: "asc", Usage: "ascending (relevance and times are descending by default)"},
		&cli.BoolFlag{Name: "desc", Usage: "descending (fields are ascending by default)"},
		&cli.IntFlag{Name: "limit", Usage: fmt.Sprintf("the page's size, 1 to %d (default %d)", store.MaxLimit, store.DefaultLimit), HideDefault: true},
		&cli.StringFlag{Name: "after", Usage: "the cursor of the previous page, to read the next"},
		&cli.StringFlag{Name: "traits", Usage: `the trait types to show, comma-separated ("" for IDs only; default all)`},
		jsonFlag(),
	}
}

func cmdStorePut(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 2, 2)
	if err != nil {
		return err
	}
	// An argument is checked first; stdin is read once a node runs.
	var doc json.RawMessage
	if a[1] != "-" {
		if doc, err = docArg(cmd, a[1]); err != nil {
			return err
		}
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	if a[1] == "-" {
		if doc, err = docArg(cmd, a[1]); err != nil {
			return err
		}
	}
	req := api.StorePutRequest{Entity: cmd.String("entity"),
		Traits: []api.StoreTraitInput{{Type: a[0], ID: cmd.String("trait"), Doc: doc}}}
	return storeWrite(ctx, cmd, func(ctx context.Context) (api.StoreWritten, error) { return c.StorePut(ctx, req) })
}

// docArg is the document of store put: the JSON argument, or the JSON
// read from stdin for "-" (no more than the largest document: a byte more
// says it is too large, as the node would).
func docArg(cmd *cli.Command, s string) (json.RawMessage, error) {
	doc := []byte(s)
	if s == "-" {
		b, err := io.ReadAll(io.LimitReader(stdin, store.MaxDoc+1))
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		if len(b) > store.MaxDoc {
			return nil, fmt.Errorf("stdin holds a document of more than %d bytes, the largest (put large data in a blob)", store.MaxDoc)
		}
		doc = b
	}
	if !json.Valid(doc) {
		var v any
		err := json.Unmarshal(doc, &v)
		if s == "-" {
			return nil, fmt.Errorf("stdin is not JSON (%v)", err)
		}
		return nil, usage(cmd, "the document is not JSON (%v); quote it for the shell: '{\"body\": \"...\"}'", err)
	}
	return doc, nil
}

func cmdStoreGet(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	e, err := c.StoreGet(ctx, a[0], traitsFlag(cmd))
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), e)
	}
	return printEntity(stdout(cmd), e)
}

func cmdStoreRm(ctx context.Context, cmd *cli.Command) error {
	a, err := args(ctx, cmd, 1, 1)
	if err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	traits := cmd.StringSlice("trait")
	return storeWrite(ctx, cmd, func(ctx context.Context) (api.StoreWritten, error) { return c.StoreDelete(ctx, a[0], traits) })
}

// storeWrite runs a write (put, rm) and prints what it wrote.
func storeWrite(ctx context.Context, cmd *cli.Command, write func(context.Context) (api.StoreWritten, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	w, err := write(ctx)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), w)
	}
	verb := "wrote"
	if cmd.Name == "rm" {
		verb = "deleted"
		if ts := cmd.StringSlice("trait"); len(ts) > 0 {
			verb += " " + strings.Join(ts, ", ") + " of"
		}
	}
	_, err = fmt.Fprintf(stdout(cmd), "%s entity %s at %s\n", verb, w.Entity, w.Pos)
	return err
}

// traitsFlag is --traits as a projection: nil when not given (every
// trait), empty when given empty (IDs only).
func traitsFlag(cmd *cli.Command) []string {
	if !cmd.IsSet("traits") {
		return nil
	}
	out := []string{}
	for _, t := range strings.Split(cmd.String("traits"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// storeQuery is the query of the flags of store query and store watch.
func storeQuery(cmd *cli.Command) (api.StoreQuery, error) {
	q := api.StoreQuery{
		Type: cmd.String("type"), Match: cmd.String("match"), RefersTo: cmd.String("refers"),
		Order: cmd.String("order"), Asc: cmd.Bool("asc"), Desc: cmd.Bool("desc"),
		Limit: cmd.Int("limit"), After: cmd.String("after"),
	}
	if q.Asc && q.Desc {
		return q, usage(cmd, "--asc and --desc do not go together")
	}
	if cmd.IsSet("limit") && (q.Limit < 1 || q.Limit > store.MaxLimit) {
		return q, usage(cmd, "--limit must be 1 to %d", store.MaxLimit)
	}
	for _, w := range cmd.StringSlice("where") {
		p, err := store.ParseWhere(w)
		if err != nil {
			return q, usage(cmd, "--%v", err)
		}
		q.Where = append(q.Where, api.StorePredicate{Field: p.Field, Op: string(p.Op), Value: p.Value})
	}
	if ts := traitsFlag(cmd); ts != nil {
		q.Traits = &ts
	}
	return q, nil
}

func cmdStoreQuery(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	q, err := storeQuery(cmd)
	if err != nil {
		return err
	}
	return queryPage(ctx, cmd, q, "entities", printHit)
}

// queryPage runs q and prints its page: as JSON, or one line a hit with
// line (or that no what were found), then how to read the next page.
func queryPage(ctx context.Context, cmd *cli.Command, q api.StoreQuery, what string, line func(io.Writer, api.StoreHit) error) error {
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := queryContext(ctx)
	defer cancel()
	page, err := c.StoreQuery(ctx, q)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), page)
	}
	out := stdout(cmd)
	if len(page.Hits) == 0 {
		fmt.Fprintf(out, "no %s found\n", what)
	}
	for _, h := range page.Hits {
		if err := line(out, h); err != nil {
			return err
		}
	}
	if page.Next != "" {
		fmt.Fprintf(stderr(cmd), "more after this: --after %s\n", page.Next)
	}
	return nil
}

func cmdStoreWatch(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	q, err := storeQuery(cmd)
	if err != nil {
		return err
	}
	return watch(ctx, cmd, q, printHit)
}

// watch prints the first page of q, then each change to it as it comes,
// until interrupted: as JSON, one object a line, or one line a hit with
// line, then one line a change.
func watch(ctx context.Context, cmd *cli.Command, q api.StoreQuery, line func(io.Writer, api.StoreHit) error) error {
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	out := stdout(cmd)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false) // documents as written: < is not \u003c
	for l, err := range c.StoreWatch(ctx, q) {
		if err != nil {
			return err
		}
		if cmd.Bool("json") {
			if err := enc.Encode(l); err != nil {
				return err
			}
			continue
		}
		if l.Page != nil {
			for _, h := range l.Page.Hits {
				if err := line(out, h); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "watching: %d entities; changes follow\n", len(l.Page.Hits))
		}
		for _, ch := range l.Changes {
			fmt.Fprintf(out, "%-8s ", ch.Kind)
			if ch.Kind == "removed" {
				fmt.Fprintln(out, ch.Hit.Entity.ID)
				continue
			}
			if err := line(out, ch.Hit); err != nil {
				return err
			}
		}
	}
	return nil // ctx ended
}

func cmdStoreTypes(ctx context.Context, cmd *cli.Command) error {
	return query(ctx, cmd, (*client.Client).StoreTypes, func(out io.Writer, ts []api.StoreSchema) error {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TYPE\tINDEXED FIELDS")
		for _, s := range ts {
			fs := make([]string, len(s.Fields))
			for i, f := range s.Fields {
				fs[i] = f.Name + " " + f.Kind
				if f.List {
					fs[i] += " list"
				}
				if f.Required {
					fs[i] += " (required)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\n", s.Type, strings.Join(fs, ", "))
		}
		return tw.Flush()
	})
}

func cmdStoreReindex(ctx context.Context, cmd *cli.Command) error {
	if _, err := args(ctx, cmd, 0, 0); err != nil {
		return err
	}
	c, err := dial(cmd)
	if err != nil {
		return err
	}
	// A reindex reads the whole chain: minutes for a large one.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	r, err := c.StoreReindex(ctx)
	if err != nil {
		return err
	}
	if cmd.Bool("json") {
		return printJSON(stdout(cmd), r)
	}
	_, err = fmt.Fprintf(stdout(cmd), "reindexed %d chain entries: %d entities, in %s\n",
		r.Entries, r.Entities, time.Duration(r.Took).Round(time.Millisecond))
	return err
}

func cmdStoreStatus(ctx context.Context, cmd *cli.Command) error {
	return query(ctx, cmd, (*client.Client).StoreStatus, printStoreStatus)
}

func printStoreStatus(out io.Writer, st api.StoreStatus) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	// A remote node keeps no index: no counts of its own to show (zeros
	// would read as an empty store).
	switch {
	case st.Role == "remote" && st.Member != "":
		fmt.Fprintf(tw, "role\tremote: queries go to the store member %s (this node keeps no index)\n", st.Member)
		return tw.Flush()
	case st.Role == "remote":
		fmt.Fprintf(tw, "role\tremote: queries go to a store member (this node keeps no index)\n")
		return tw.Flush()
	default:
		fmt.Fprintf(tw, "role\t%s: this node indexes the chain\n", st.Role)
	}
	fmt.Fprintf(tw, "indexed\t%d chain entries, %d behind\n", st.Next, st.Behind)
	fmt.Fprintf(tw, "entities\t%d (%d traits)\n", st.Entities, st.Traits)
	skipped := "none"
	if len(st.Skipped) > 0 {
		var ss []string
		for _, r := range slices.Sorted(maps.Keys(st.Skipped)) {
			ss = append(ss, fmt.Sprintf("%d (%s)", st.Skipped[r], r))
		}
		skipped = strings.Join(ss, ", ")
	}
	fmt.Fprintf(tw, "skipped entries\t%s\n", skipped)
	fmt.Fprintf(tw, "index size\t%.1f MiB\n", float64(st.Bytes)/(1<<20))
	return tw.Flush()
}

// printEntity prints an entity: its ID, then each trait (its type, its ID
// when it is not its type, when it was modified) and its document, on one
// line when it is short.
func printEntity(w io.Writer, e api.StoreEntity) error {
	fmt.Fprintf(w, "entity %s\n", e.ID)
	for _, t := range e.Traits {
		name := printable(t.Type)
		if t.ID != t.Type {
			name += " " + printable(t.ID)
		}
		fmt.Fprintf(w, "  %s, modified %s\n", name, t.Modified.Local().Format(time.DateTime))
		doc := compact(t.Doc)
		var b bytes.Buffer
		if len(doc) > 100 && json.Indent(&b, []byte(doc), "    ", "  ") == nil {
			doc = b.String()
		}
		// The line breaks are Indent's: the document's own control
		// characters can only be in its strings, where \uXXXX says the
		// same.
		lines := strings.Split(doc, "\n")
		for i, l := range lines {
			lines[i] = printable(l)
		}
		fmt.Fprintf(w, "    %s\n", strings.Join(lines, "\n"))
	}
	return nil
}

// compact returns a document on one line (the node indents its answers).
func compact(doc json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, doc) != nil {
		return string(doc)
	}
	return b.String()
}

// printHit prints a hit on one line: the entity's ID, then each trait's
// type and document, cut short.
func printHit(w io.Writer, h api.StoreHit) error {
	var b strings.Builder
	b.WriteString(h.Entity.ID)
	for _, t := range h.Entity.Traits {
		fmt.Fprintf(&b, "  %s %s", printable(t.Type), short(compact(t.Doc), 72))
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}

// short returns s on one line, cut to at most n runes.
func short(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unprintable(r) {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// printable returns s with its control characters (a terminal's escape
// sequences, C1 codes, line breaks) and bidirectional controls written as
// \uXXXX: what another member of the cell wrote (a type, a trait ID, a
// tag, a document) is shown, and cannot drive the terminal or forge a
// line.
func printable(s string) string {
	if !strings.ContainsFunc(s, unprintable) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unprintable(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unprintable(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }

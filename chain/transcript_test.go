package chain

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestStateTranscripts drives a State through the transcripts of
// testdata/state: entries are written by name, added in any order (each
// verified against the roster first, as the shell does), authors removed
// with a cut-off; each command shows what the State did. Run with
// -rewrite to regenerate them.
//
// Commands:
//
//	write name=X author=A [seq=N] [parents=(P,Q)] [epoch=E]
//	    author A (a, b or c) signs entry X; seq defaults to one more than
//	    A's last written entry, parents to none, epoch to 1; its clock is
//	    one more than its parents' largest
//	add X Y ...      verify, then add the entries, in this order
//	remove author=A [seq=N] [last=(X,Y)]
//	    the roster removes A with that cut-off
//	limits waiting=N the waiting budget, in entries
//	show             heads, chain order, vector, forks
func TestStateTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata/state", func(t *testing.T, path string) {
		h := newStateHarness(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := h.do(t, d)
			if err != nil {
				out = "error: " + err.Error() + "\n"
			}
			return h.names().Replace(out)
		})
	})
}

type stateHarness struct {
	c       *testCell
	s       *State
	authors map[string]testAuthor
	entries map[string]*Entry
	order   []string          // entry names, as written
	lastSeq map[string]uint64 // per author name
}

func newStateHarness(t *testing.T) *stateHarness {
	h := &stateHarness{
		c:       newTestCell(t, 1, 3),
		authors: make(map[string]testAuthor),
		entries: make(map[string]*Entry),
		lastSeq: make(map[string]uint64),
	}
	h.c.roster.cut = make(map[peer.ID]testCut)
	for i, name := range []string{"a", "b", "c"} {
		h.authors[name] = h.c.authors[i]
	}
	h.s = NewState(h.c.key)
	return h
}

// names replaces CIDs and peer IDs by the transcript's names.
func (h *stateHarness) names() *strings.Replacer {
	var pairs []string
	for name, e := range h.entries {
		pairs = append(pairs, e.CID().String(), name)
	}
	for name, a := range h.authors {
		pairs = append(pairs, a.id.String(), name)
	}
	return strings.NewReplacer(pairs...)
}

func (h *stateHarness) list(d *datadriven.TestData, key string) []cid.Cid {
	var out []cid.Cid
	for _, arg := range d.CmdArgs {
		if arg.Key != key {
			continue
		}
		for _, v := range arg.Vals {
			e, ok := h.entries[v]
			if !ok {
				d.Fatalf(nil, "no entry %q", v)
			}
			out = append(out, e.CID())
		}
	}
	return out
}

func (h *stateHarness) do(t *testing.T, d *datadriven.TestData) (string, error) {
	switch d.Cmd {
	case "write":
		var name, author string
		d.ScanArgs(t, "name", &name)
		d.ScanArgs(t, "author", &author)
		a, ok := h.authors[author]
		if !ok {
			return "", fmt.Errorf("no author %q", author)
		}
		seq := h.lastSeq[author] + 1
		if d.HasArg("seq") {
			d.ScanArgs(t, "seq", &seq)
		}
		epoch := uint64(testEpoch)
		if d.HasArg("epoch") {
			d.ScanArgs(t, "epoch", &epoch)
		}
		parents := SortCIDs(h.list(d, "parents"))
		var clock uint64
		for _, p := range parents {
			for _, e := range h.entries {
				if e.CID().Equals(p) {
					clock = max(clock, e.Clock)
				}
			}
		}
		e := h.c.write(t, a, Draft{Cell: h.c.key, Seq: seq, Clock: clock + 1, Parents: parents, Epoch: epoch}, []byte(name))
		h.entries[name] = e
		h.order = append(h.order, name)
		h.lastSeq[author] = max(h.lastSeq[author], seq)
		return fmt.Sprintf("%s: author %s, seq %d, clock %d\n", name, author, seq, clock+1), nil
	case "add":
		var b strings.Builder
		var es []*Entry
		for _, arg := range d.CmdArgs {
			e, ok := h.entries[arg.Key]
			if !ok {
				return "", fmt.Errorf("no entry %q", arg.Key)
			}
			if _, err := Verify(e, h.c.key, h.c.roster, h.c.secret); err != nil {
				fmt.Fprintf(&b, "%s refused by Verify: %v\n", arg.Key, err)
				continue
			}
			es = append(es, e)
		}
		rd := h.s.Add(es)
		for _, e := range rd.Accepted {
			fmt.Fprintf(&b, "accepted %s\n", e.CID())
		}
		for _, r := range rd.Rejected {
			fmt.Fprintf(&b, "rejected %s: %v\n", r.CID, r.Err)
		}
		for _, f := range rd.Forks {
			fmt.Fprintf(&b, "fork of %s at seq %d: %v\n", f.Author, f.Seq, f.CIDs)
		}
		fmt.Fprintf(&b, "waiting %d", rd.Waiting)
		if rd.Dropped > 0 {
			fmt.Fprintf(&b, ", dropped %d", rd.Dropped)
		}
		b.WriteString("\n")
		return b.String(), nil
	case "remove":
		var author string
		d.ScanArgs(t, "author", &author)
		a, ok := h.authors[author]
		if !ok {
			return "", fmt.Errorf("no author %q", author)
		}
		var seq uint64
		if d.HasArg("seq") {
			d.ScanArgs(t, "seq", &seq)
		}
		delete(h.c.roster.authors, a.id)
		h.c.roster.cut[a.id] = testCut{seq: seq, last: SortCIDs(h.list(d, "last"))}
		return fmt.Sprintf("%s removed, cut-off at seq %d %v\n", author, seq, h.c.roster.cut[a.id].last), nil
	case "limits":
		var n int
		d.ScanArgs(t, "waiting", &n)
		h.s.SetLimits(Limits{Waiting: n})
		return "", nil
	case "show":
		var b strings.Builder
		fmt.Fprintf(&b, "heads %v\n", h.s.Heads())
		fmt.Fprintf(&b, "order %v\n", h.s.Log(Pos{}, h.s.Len()))
		v := h.s.Vector()
		var vs []string
		for name, a := range h.authors {
			if n, ok := v[a.id]; ok {
				vs = append(vs, name+":"+strconv.FormatUint(n, 10))
			}
		}
		slices.Sort(vs)
		fmt.Fprintf(&b, "vector %v\n", vs)
		for _, f := range h.s.Forks() {
			fmt.Fprintf(&b, "forked %s at seq %d: %v\n", f.Author, f.Seq, f.CIDs)
		}
		return b.String(), nil
	}
	return "", fmt.Errorf("unknown command %q", d.Cmd)
}

package simnet

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMessagesPeople: 20 people with cells of 1 to 3 devices talk in
// seeded pairs while seeded partitions (between cells, and of a device
// from its cell) and crashes strike: every message reported delivered is
// held exactly once, delivered, on every device of both cells, each
// sender's messages in the order sent, and nothing no one sent is held
// anywhere, nothing reported undelivered on the recipient's side
// (ScenarioMessages checks; the report counts).
func TestMessagesPeople(t *testing.T) {
	const seed = 1301
	dir := t.TempDir()
	rep, err := RunInBubble(t, func(ctx context.Context, n *Net, o Options) (Report, error) {
		defer n.Close() // before the directory goes
		return ScenarioMessages(ctx, n, MessageOptions{People: 20, Pairs: 20, PerPair: 2, Dir: dir})
	}, Config{Seed: seed}, Options{})
	var sb strings.Builder
	_ = rep.WriteText(&sb)
	t.Logf("seed %d:\n%s", seed, sb.String())
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	m := rep.Messages
	if m.Violations() != 0 {
		t.Errorf("seed %d: %d duplicates, %d order violations, %d missing, %d unknown", seed, m.Duplicates, m.OrderViolations, m.Missing, m.Unknown)
	}
	if m.Delivered == 0 || m.Partitions == 0 || m.Crashes == 0 {
		t.Errorf("seed %d: %d delivered under %d partitions and %d crashes: the scenario tested nothing", seed, m.Delivered, m.Partitions, m.Crashes)
	}
	// A send reported failed whose message the recipient holds: its
	// acknowledgement was lost to a fault. Possible in principle (no
	// sender can know), it would show here as a text the recipient
	// holds twice once the user sent it again.
	if m.AckLost != 0 {
		t.Errorf("seed %d: the recipients hold %d messages reported not delivered", seed, m.AckLost)
	}
	if m.Undelivered != 0 {
		t.Errorf("seed %d: %d texts never delivered after the heal", seed, m.Undelivered)
	}
}

// TestMessagesPlanDeterministic: one seed, one plan; two seeds, two. The
// plan has cells of 1 to 3 devices, distinct pairs, every kind of fault,
// and a partition inside a cell isolates a device of a cell of several.
func TestMessagesPlanDeterministic(t *testing.T) {
	rnd := func(seed uint64) func(string) *rand.Rand { return (&Net{cfg: Config{Seed: seed}}).Rand }
	o := MessageOptions{Faults: 6}.withDefaults()
	a, b, c := planMessages(rnd(1), o).digest(), planMessages(rnd(1), o).digest(), planMessages(rnd(2), o).digest()
	if a != b || a == c {
		t.Errorf("digests %s, %s (seed 1 twice), %s (seed 2)", a, b, c)
	}
	for seed := range uint64(20) {
		p := planMessages(rnd(seed), o)
		if len(p.pairs) != 30 || len(p.talks) != 60 {
			t.Fatalf("seed %d: %d pairs, %d talks; want 30, 60", seed, len(p.pairs), len(p.talks))
		}
		pairs := map[[2]int]bool{}
		for _, pr := range p.pairs {
			if pr[0] >= pr[1] || pairs[pr] {
				t.Fatalf("seed %d: pair %v twice or not ordered", seed, pr)
			}
			pairs[pr] = true
		}
		for i, s := range p.sizes {
			if s < 1 || s > 3 {
				t.Fatalf("seed %d: person %d has %d devices", seed, i, s)
			}
		}
		kinds := map[string]int{}
		for _, f := range p.faults {
			switch {
			case f.inside:
				kinds["inside"]++
				if p.sizes[f.cell] < 2 {
					t.Errorf("seed %d: a partition inside a cell of %d device", seed, p.sizes[f.cell])
				}
			case f.side != nil:
				kinds["between"]++
			default:
				kinds["crash"]++
			}
			if f.dur <= 0 {
				t.Errorf("seed %d: a fault of %v", seed, f.dur)
			}
		}
		if len(kinds) != 3 {
			t.Errorf("seed %d: faults %v, want every kind", seed, kinds)
		}
	}
}

package simnet

import (
	"context"
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

package simnet

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
)

// peopleCI is the people scenario small enough for `go test ./simnet`
// that still has every case.
var peopleCI = PeopleOptions{People: 10, Minutes: 40, Pairs: 8, PerHour: 6, ShareEvery: 6, MaxFile: 256 << 10}

// TestMessagesPeopleScale: the people scenario at the size of CI: an
// always-on device with the mailbox role, phones online a few minutes at
// a time, a pair of phones never online together, shared files, crashes
// and partitions. Every message is held exactly once on every device of
// both cells, in order, delivered; every file whole; and the report
// shows each case happened: messages delivered directly, by a courier,
// through a blind mailbox before the final phase, files held.
func TestMessagesPeopleScale(t *testing.T) {
	const seed = 1407
	o := peopleCI
	o.Dir = t.TempDir()
	rep, err := RunInBubble(t, func(ctx context.Context, n *Net, _ Options) (Report, error) {
		defer n.Close() // before the directory goes
		return ScenarioPeople(ctx, n, o)
	}, Config{Seed: seed}, Options{})
	var sb strings.Builder
	_ = rep.WriteText(&sb)
	t.Logf("seed %d:\n%s", seed, sb.String())
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	p := rep.People
	if v := p.Violations(); v != 0 {
		t.Errorf("seed %d: %d violations", seed, v)
	}
	for _, c := range []struct {
		name string
		n    int
	}{
		{"messages delivered directly", p.Direct.Arrived},
		{"messages delivered by a courier", p.Courier.Arrived},
		{"messages carried by a blind mailbox", p.Mailbox.Arrived},
		{"frames received from a mailbox", int(p.MailboxReceived)},
		{"files held", p.Files.Arrived},
		{"phone sessions", p.PhoneSessions},
		{"crashes", p.Crashes},
		{"partitions", p.Partitions},
		{"pairs never online together", p.ApartPairs},
		{"mailbox records", p.MailboxRecords},
	} {
		if c.n == 0 {
			t.Errorf("seed %d: no %s: the scenario did not test that case", seed, c.name)
		}
	}
	if p.BytesBy["messages"] == 0 || p.BytesBy["dht"] == 0 || p.BytesBy["blobs"] == 0 {
		t.Errorf("seed %d: bytes by protocol %v", seed, p.BytesBy)
	}
}

// TestPeoplePlan: one seed, one plan; two seeds, two. For every seed of
// 0 to 19, at the size of CI and at the (100 people, an hour),
// the plan has every case: people with an always-on device and with
// phones only, phone sessions, messages between a pair never online
// together, a file shared, a crash and a partition; and a pair it calls
// apart has no device online together.
func TestPeoplePlan(t *testing.T) {
	rnd := func(seed uint64) func(string) *rand.Rand { return (&Net{cfg: Config{Seed: seed}}).Rand }
	o := peopleCI.withDefaults()
	a, b, c := planPeople(rnd(1), o).digest(), planPeople(rnd(1), o).digest(), planPeople(rnd(2), o).digest()
	if a != b || a == c {
		t.Errorf("digests %s, %s (seed 1 twice), %s (seed 2)", a, b, c)
	}
	for _, o := range []PeopleOptions{peopleCI.withDefaults(), PeopleOptions{People: 100, Minutes: 60}.withDefaults()} {
		for seed := range uint64(20) {
			p := planPeople(rnd(seed), o)
			kinds := map[personKind]int{}
			for _, k := range p.kinds {
				kinds[k]++
			}
			sessions := 0
			for _, ds := range p.devices {
				for _, d := range ds {
					if !d.alwaysOn {
						sessions += len(d.on)
					}
				}
			}
			apartSends := 0
			for _, tk := range p.talks {
				for i, pr := range p.pairs {
					if p.apart[i] && (pr == [2]int{tk.from, tk.to} || pr == [2]int{tk.to, tk.from}) {
						apartSends += len(tk.sends)
					}
				}
			}
			for i, pr := range p.pairs {
				if p.apart[i] && p.meet(pr[0], pr[1]) {
					t.Errorf("%d people, seed %d: pair %v is apart and meets", o.People, seed, pr)
				}
			}
			if kinds[kindHome] == 0 || kinds[kindPhones] == 0 || kinds[kindDay] == 0 || kinds[kindNight] == 0 ||
				sessions == 0 || apartSends == 0 || p.shares() == 0 || p.crashes == 0 || len(p.partitions) == 0 {
				t.Errorf("%d people, seed %d: kinds %v, %d sessions, %d sends between pairs apart, %d shares, %d crashes, %d partitions",
					o.People, seed, kinds, sessions, apartSends, p.shares(), p.crashes, len(p.partitions))
			}
		}
	}
}

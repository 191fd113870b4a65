package peer

import (
	"slices"
	"testing"
	"time"
)

// TestUnrelayable: a peer's relayed connections close only once one of
// its direct connections has been open for the grace; direct ones never.
func TestUnrelayable(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const g = 30 * time.Second
	rel := connView{relayed: true, opened: t0}
	dir := connView{opened: t0.Add(time.Second)}
	for _, c := range []struct {
		name  string
		conns []connView
		now   time.Time
		want  []int
	}{
		{"none", nil, t0.Add(time.Hour), nil},
		{"relayed only", []connView{rel, rel}, t0.Add(time.Hour), nil},
		{"direct only", []connView{dir}, t0.Add(time.Hour), nil},
		{"direct too young", []connView{rel, dir}, t0.Add(time.Second + g - 1), nil},
		{"direct at the grace", []connView{rel, dir}, t0.Add(time.Second + g), []int{0}},
		{"two relayed", []connView{rel, dir, rel}, t0.Add(time.Hour), []int{0, 2}},
		{"an old direct among young", []connView{{opened: t0.Add(time.Hour)}, rel, {opened: t0}}, t0.Add(g), []int{1}},
	} {
		if got := unrelayable(c.conns, c.now, g); !slices.Equal(got, c.want) {
			t.Errorf("%s: unrelayable = %v, want %v", c.name, got, c.want)
		}
	}
}

package simnet

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestPeoplePlanTimeline replays the events the people scenario's driver
// runs (peoplePlan.events), apart from the plan's own meet: for runs of
// several lengths, every event falls within the workload (the final
// phase starts at its end), each device's events alternate going off
// and coming back, and no device of a pair the plan calls apart is up
// while one of the other's is.
func TestPeoplePlanTimeline(t *testing.T) {
	rnd := func(seed uint64) func(string) *rand.Rand { return (&Net{cfg: Config{Seed: seed}}).Rand }
	for _, minutes := range []int{5, 15, 40, 45, 50, 60} {
		o := PeopleOptions{People: 10, Minutes: minutes, Pairs: 8}.withDefaults()
		for seed := range uint64(10) {
			p := planPeople(rnd(seed), o)
			// Each device's spans up, from the events: every device is
			// up when the workload starts (the set-up had them all).
			type key [2]int
			up := map[key][]window{}
			since := map[key]time.Duration{}
			isUp := map[key]bool{}
			for who, ds := range p.devices {
				for dev := range ds {
					isUp[key{who, dev}] = true
				}
			}
			bad := 0
			for _, e := range p.events() {
				if e.who < 0 {
					continue
				}
				if e.at < 0 || e.at > p.span {
					if bad++; bad <= 3 {
						t.Errorf("%d min, seed %d: device %d.%d %s at %v, outside the workload (%v)", minutes, seed, e.who, e.dev, onOff(e.up), e.at, p.span)
					}
				}
				k := key{e.who, e.dev}
				if isUp[k] == e.up {
					t.Errorf("%d min, seed %d: device %d.%d %s at %v twice", minutes, seed, e.who, e.dev, onOff(e.up), e.at)
				}
				if e.up {
					since[k] = e.at
				} else {
					up[k] = append(up[k], window{since[k], e.at})
				}
				isUp[k] = e.up
			}
			for k, u := range isUp {
				if u {
					up[k] = append(up[k], window{since[k], p.span})
				}
			}
			for i, pr := range p.pairs {
				if !p.apart[i] {
					continue
				}
				for da := range p.devices[pr[0]] {
					for db := range p.devices[pr[1]] {
						for _, wa := range up[key{pr[0], da}] {
							for _, wb := range up[key{pr[1], db}] {
								if wa.from < wb.to && wb.from < wa.to {
									t.Errorf("%d min, seed %d: pair %v is apart, but device %d.%d is up over %v and %d.%d over %v", minutes, seed, pr, pr[0], da, wa, pr[1], db, wb)
								}
							}
						}
					}
				}
			}
		}
	}
}

func onOff(up bool) string {
	if up {
		return "comes back"
	}
	return "goes off"
}

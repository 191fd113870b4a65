package simnet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// PeopleOptions shapes the people scenario (ScenarioPeople). Zero fields
// take defaults.
type PeopleOptions struct {
	// People is the number of people, each a cell of 1 to 3 devices.
	// Default 20; at least 5 (two with an always-on device, a pair of
	// phones that never meet, one more with phones only).
	People int
	// Minutes is the length of the workload, in virtual minutes: the
	// phones' sessions, the sends (all but the last fifth), the faults.
	// Default 20.
	Minutes int
	// Pairs is how many pairs of people, besides the pairs of phones
	// that never meet, are contacts and talk (seeded). Default People.
	Pairs int
	// PerHour is how many messages each person of a pair sends the
	// other in an hour of the workload (at least 1 each). Default 6.
	PerHour int
	// ShareEvery: about one message in ShareEvery shares a file (at
	// least one in the whole plan). Default 8.
	ShareEvery int
	// MaxFile bounds a shared file, bytes; files are 4 KiB to MaxFile.
	// Default 1 MiB.
	MaxFile int
	// Faults is how many crashes of always-on devices, and as many
	// partitions between groups of cells, strike during the workload.
	// Default one each per 10 minutes (at least one); negative: none.
	Faults int
	// Dir is the directory under which each device keeps its index.
	// Required.
	Dir string
	// Deadline bounds each wait of the set-up and the final phase, in
	// virtual time. Default 20 min.
	Deadline time.Duration
}

func (o PeopleOptions) withDefaults() PeopleOptions {
	if o.People <= 0 {
		o.People = 20
	}
	if o.Minutes <= 0 {
		o.Minutes = 20
	}
	if o.Pairs <= 0 {
		o.Pairs = o.People
	}
	if o.PerHour <= 0 {
		o.PerHour = 6
	}
	if o.ShareEvery <= 0 {
		o.ShareEvery = 8
	}
	if o.MaxFile <= 0 {
		o.MaxFile = 1 << 20
	}
	o.MaxFile = max(o.MaxFile, 4<<10)
	if o.Faults == 0 {
		o.Faults = max(1, o.Minutes/10)
	}
	if o.Deadline <= 0 {
		o.Deadline = 20 * time.Minute
	}
	return o
}

// personKind is how a person's devices are online.
type personKind int

const (
	// kindHome: an always-on device (a DHT server, the mailbox role,
	// the cell's admin) and 0 to 2 phones.
	kindHome personKind = iota
	// kindPhones: 1 to 3 phones, each online a few minutes at a time.
	kindPhones
	// kindDay and kindNight: 1 or 2 phones, online only in the first
	// (day) or second (night) half of each period: a day person and a
	// night person never have a device online together.
	kindDay
	kindNight
)

func (k personKind) String() string {
	return [...]string{"home", "phones", "day", "night"}[k]
}

// window is a span of the workload, [from, to).
type window struct{ from, to time.Duration }

// planDevice is one device: always on (but for its down windows, the
// crashes) or a phone (on only in its windows).
type planDevice struct {
	alwaysOn bool
	on       []window // a phone's sessions
	down     []window // an always-on device's crashes
}

// online reports whether the device is up for all of [t, t+d), and
// has been for sessionWarmup (its restart done, its DHT and contacts
// reconnecting).
func (d planDevice) online(t, d2 time.Duration) bool {
	if d.alwaysOn {
		return !slices.ContainsFunc(d.down, func(w window) bool { return w.from < t+d2 && t < w.to+sessionWarmup })
	}
	return slices.ContainsFunc(d.on, func(w window) bool { return w.from+sessionWarmup <= t && t+d2 <= w.to })
}

// plannedSend is one message of a talk: at its time, from device dev of
// the sender; file > 0 shares a file of that many bytes.
type plannedSend struct {
	at   time.Duration
	dev  int
	file int
}

// peopleTalk is what one person sends another, in order.
type peopleTalk struct {
	from, to int
	sends    []plannedSend
}

// planPartition cuts the cells of side from everyone else over w.
type planPartition struct {
	w    window
	side []int
}

// peoplePlan is what the seed decides of a people scenario.
type peoplePlan struct {
	span       time.Duration // the workload
	sendEnd    time.Duration // no send starts after it
	kinds      []personKind
	devices    [][]planDevice
	pairs      [][2]int
	apart      []bool // pairs[i]'s cells never have a device online together
	talks      []peopleTalk
	partitions []planPartition
	crashes    int
}

const (
	// sendMargin: a send starts only on a device that stays up that
	// long, so that no send races its device's going off.
	sendMargin = time.Minute
	// sessionWarmup: a device sends no sooner than this after it came
	// on (its DHT and contacts reconnect first).
	sessionWarmup = 20 * time.Second
)

// dayPeriod is the period of the day and night phones: each half holds
// at most one session of each of them.
func dayPeriod(span time.Duration) time.Duration {
	if span >= 40*time.Minute {
		return 20 * time.Minute
	}
	return 10 * time.Minute
}

func planPeople(rnd func(purpose string) *rand.Rand, o PeopleOptions) peoplePlan {
	p := peoplePlan{span: time.Duration(o.Minutes) * time.Minute}
	p.sendEnd = p.span - p.span/5
	r := rnd("people kinds")
	homes := max(2, (o.People*2+4)/5)
	apartPairs := max(1, o.People/10)
	perm := r.Perm(o.People)
	p.kinds = make([]personKind, o.People)
	var day, night []int
	for i, who := range perm {
		switch {
		case i < homes:
			p.kinds[who] = kindHome
		case i < homes+2*apartPairs && (i-homes)%2 == 0:
			p.kinds[who] = kindDay
			day = append(day, who)
		case i < homes+2*apartPairs:
			p.kinds[who] = kindNight
			night = append(night, who)
		default:
			p.kinds[who] = kindPhones
		}
	}

	r = rnd("people devices")
	period := dayPeriod(p.span)
	half := period/2 - 30*time.Second
	for _, k := range p.kinds {
		var ds []planDevice
		switch k {
		case kindHome:
			ds = append(ds, planDevice{alwaysOn: true})
			for range r.IntN(3) {
				ds = append(ds, planDevice{on: phoneSessions(r, p.span)})
			}
		case kindPhones:
			for range 1 + r.IntN(3) {
				ds = append(ds, planDevice{on: phoneSessions(r, p.span)})
			}
		default:
			off := time.Duration(0)
			if k == kindNight {
				off = period / 2
			}
			for j := range 1 + r.IntN(2) {
				var on []window
				for start := time.Duration(0); start < p.span; start += period {
					if j > 0 && r.IntN(5) == 0 {
						continue // a period without a session of the second phone
					}
					length := seconds(r, 2*time.Minute, min(6*time.Minute, half))
					at := start + off + seconds(r, 0, half-length)
					if at >= p.span {
						continue // the run ends within the period's first half
					}
					on = append(on, window{at, min(at+length, p.span)})
				}
				ds = append(ds, planDevice{on: on})
			}
		}
		p.devices = append(p.devices, ds)
	}

	if o.Faults > 0 {
		r = rnd("people faults")
		slot := p.span / time.Duration(o.Faults)
		for i := range o.Faults {
			// A crash of an always-on device, restarted on its data.
			who := r.IntN(o.People)
			for p.kinds[who] != kindHome {
				who = (who + 1) % o.People
			}
			at := time.Duration(i)*slot + seconds(r, 0, slot/4)
			dur := seconds(r, slot/4, slot/2)
			p.devices[who][0].down = append(p.devices[who][0].down, window{at, at + dur})
			p.crashes++
			// A partition of a group of cells from the rest.
			at = time.Duration(i)*slot + seconds(r, 0, slot/4)
			dur = seconds(r, slot/4, slot/2)
			side := slices.Sorted(slices.Values(r.Perm(o.People)[:1+r.IntN(max(1, o.People/2))]))
			p.partitions = append(p.partitions, planPartition{window{at, at + dur}, side})
		}
	}

	r = rnd("people pairs")
	forced := map[[2]int]bool{}
	for i := range day {
		pr := [2]int{min(day[i], night[i]), max(day[i], night[i])}
		forced[pr] = true
		p.pairs = append(p.pairs, pr)
	}
	var all [][2]int
	for a := range o.People {
		for b := a + 1; b < o.People; b++ {
			if !forced[[2]int{a, b}] {
				all = append(all, [2]int{a, b})
			}
		}
	}
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	p.pairs = append(p.pairs, all[:min(o.Pairs, len(all))]...)
	slices.SortFunc(p.pairs, func(a, b [2]int) int {
		if a[0] != b[0] {
			return a[0] - b[0]
		}
		return a[1] - b[1]
	})
	for _, pr := range p.pairs {
		p.apart = append(p.apart, !p.meet(pr[0], pr[1]))
	}

	r = rnd("people talks")
	count := max(1, o.PerHour*o.Minutes/60)
	for _, pr := range p.pairs {
		for _, d := range [][2]int{{pr[0], pr[1]}, {pr[1], pr[0]}} {
			tk := peopleTalk{from: d[0], to: d[1]}
			var times []time.Duration
			for range count {
				times = append(times, seconds(r, 0, p.sendEnd))
			}
			slices.Sort(times)
			last := time.Duration(-1)
			for _, t := range times {
				t = max(t, last+time.Second)
				at, dev, ok := p.sendable(d[0], t, r)
				if !ok {
					continue
				}
				s := plannedSend{at: at, dev: dev}
				if r.IntN(o.ShareEvery) == 0 {
					s.file = fileSize(r, o.MaxFile)
				}
				tk.sends = append(tk.sends, s)
				last = at
			}
			p.talks = append(p.talks, tk)
		}
	}
	if p.shares() == 0 {
		for i := range p.talks {
			if len(p.talks[i].sends) > 0 {
				p.talks[i].sends[0].file = fileSize(r, o.MaxFile)
				break
			}
		}
	}
	return p
}

// phoneSessions draws a phone's sessions over span: off 0 to 10 min
// first, then on 2 to 6 min, off 5 to 30 min, in turn.
func phoneSessions(r *rand.Rand, span time.Duration) []window {
	var on []window
	t := seconds(r, 0, 10*time.Minute)
	for t < span {
		length := seconds(r, 2*time.Minute, 6*time.Minute)
		on = append(on, window{t, min(t+length, span)})
		t += length + seconds(r, 5*time.Minute, 30*time.Minute)
	}
	return on
}

// seconds draws a duration in [lo, hi], whole seconds.
func seconds(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo.Round(time.Second)
	}
	return lo.Round(time.Second) + time.Duration(r.Int64N(int64((hi-lo)/time.Second)+1))*time.Second
}

// fileSize draws a file size between 4 KiB and max, about evenly on a
// log scale.
func fileSize(r *rand.Rand, maxSize int) int {
	s := 4 << 10
	for s*2 <= maxSize && r.IntN(2) == 0 {
		s *= 2
	}
	return min(maxSize, s+r.IntN(s))
}

// sendable is the first time from t at which a device of person who is
// up for sendMargin (a phone past its warm-up), and that device (one of
// those up, drawn from r); false if none is before the end of the sends.
func (p peoplePlan) sendable(who int, t time.Duration, r *rand.Rand) (time.Duration, int, bool) {
	for t < p.sendEnd {
		var up []int
		for i, d := range p.devices[who] {
			if d.online(t, sendMargin) {
				up = append(up, i)
			}
		}
		if len(up) > 0 {
			return t, up[r.IntN(len(up))], true
		}
		next := p.sendEnd
		for _, d := range p.devices[who] {
			for _, w := range append(slices.Clone(d.on), d.down...) {
				// a phone's session starts, or a crash ends
				at := w.from + sessionWarmup
				if d.alwaysOn {
					at = w.to + sessionWarmup
				}
				if at > t && at < next {
					next = at
				}
			}
		}
		t = next
	}
	return 0, 0, false
}

// meet reports whether a device of a and a device of b are ever online
// together during the workload.
func (p peoplePlan) meet(a, b int) bool {
	for _, da := range p.devices[a] {
		for _, db := range p.devices[b] {
			if da.alwaysOn || db.alwaysOn {
				return true // with a phone's session, or another always-on device
			}
			for _, wa := range da.on {
				for _, wb := range db.on {
					if wa.from < wb.to && wb.from < wa.to {
						return true
					}
				}
			}
		}
	}
	return false
}

func (p peoplePlan) shares() int {
	n := 0
	for _, tk := range p.talks {
		for _, s := range tk.sends {
			if s.file > 0 {
				n++
			}
		}
	}
	return n
}

func (p peoplePlan) digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "span %v kinds %v pairs %v apart %v\n", p.span, p.kinds, p.pairs, p.apart)
	for i, ds := range p.devices {
		for j, d := range ds {
			fmt.Fprintf(h, "device %d.%d %v %v %v\n", i, j, d.alwaysOn, d.on, d.down)
		}
	}
	for _, tk := range p.talks {
		fmt.Fprintf(h, "talk %d→%d %v\n", tk.from, tk.to, tk.sends)
	}
	for _, pt := range p.partitions {
		fmt.Fprintf(h, "partition %v %v\n", pt.w, pt.side)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

package simnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/exopeer/exopeer/blob"
	blobservice "github.com/exopeer/exopeer/blob/service"
	"github.com/exopeer/exopeer/dht"
	messages "github.com/exopeer/exopeer/message/service"
	"github.com/exopeer/exopeer/prekey"
	"github.com/exopeer/exopeer/ratchet"
)

// ScenarioPeople runs people's lives over virtual time: People cells of
// 1 to 3 devices (seeded) of four kinds: with an always-on device (a DHT
// server, the cell's admin, with the mailbox role) and phones; phones
// only, each online a few minutes at a time (seeded sessions: a phone
// going off is a crash, coming back a restart on its data); and pairs of
// phone-only people whose phones are never online together (a day and a
// night person), so that only a blind mailbox carries their messages.
// Phones are DHT clients: the DHT is the always-on devices. Seeded pairs
// of contacts talk for Minutes: each message sent at its seeded time by
// a device of the sender online then (a send no device of the recipient
// acknowledges is recorded pending, not sent again), some sharing a
// file; always-on devices crash and restart, groups of cells are cut
// off. Then every device comes online, and once every conversation is
// whole (bounded by Deadline) it checks: every message held exactly once
// on every device of both cells, each sender's in the order sent,
// nothing no one sent, the sender's delivered; each shared file held
// whole by every device of the recipient's cell, its bytes those shared.
// The report gives the delivery latency by case (direct, courier,
// mailbox, shares), the bytes sent per message by protocol, the DHT
// records used. It must run inside a synctest bubble.
func ScenarioPeople(ctx context.Context, n *Net, o PeopleOptions) (Report, error) {
	o = o.withDefaults()
	switch {
	case o.Dir == "":
		return Report{}, errors.New("simnet: the people scenario needs PeopleOptions.Dir")
	case o.People < 5:
		return Report{}, fmt.Errorf("simnet: the people scenario needs at least 5 people, not %d", o.People)
	}
	began := time.Now()
	plan := planPeople(n.Rand, o)
	w := &peopleRun{n: n, o: o, plan: plan, log: &sendLog{}, sentAt: map[string]time.Time{}}
	pr := &PeopleReport{People: o.People, Pairs: len(plan.pairs), Minutes: o.Minutes}
	w.rep = Report{Scenario: "messages", Seed: n.Seed(), Timings: map[string]Dist{}, People: pr, Workload: plan.digest()}
	if err := w.setUp(ctx); err != nil {
		return w.rep, err
	}
	stop := n.Capture(w.bytes.capture)
	w.start = time.Now()
	var wg sync.WaitGroup
	for _, tk := range plan.talks {
		wg.Go(func() { w.talk(ctx, tk) })
	}
	watch, stopWatch := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	watcher.Go(func() { w.watchShares(watch) })
	driveErr := w.drive(ctx)
	wg.Wait()
	if driveErr != nil {
		stopWatch()
		watcher.Wait()
		stop()
		return w.rep, driveErr
	}

	// The final phase (from w.final, set by drive before it heals and
	// restarts): every device online, every cut healed.
	var counts checkCounts
	var files fileCounts
	_, ok := pollUntil(o.Deadline, 30*time.Second, func() bool {
		counts = checkConversations(ctx, w.people, plan.pairs, w.log)
		files = w.checkFiles(ctx, false)
		return counts.missing == 0 && files.missing == 0
	})
	pr.ConvergedMs = ms(time.Since(w.final))
	w.rep.Crashed = pr.Crashes
	stopWatch()
	watcher.Wait()
	stop()
	files = w.checkFiles(ctx, true)
	w.report(ctx, counts, files)
	w.rep.VirtualTime = time.Since(began).Seconds()
	if !ok {
		return w.rep, fmt.Errorf("%d messages and %d shared files still missing on some device %v after every device came online", counts.missing, files.missing, o.Deadline)
	}
	if v := pr.Violations(); v > 0 {
		return w.rep, fmt.Errorf("%d violations (%d duplicates, %d out of order, %d unknown, %d files wrong, %d sends failed)", v, pr.Duplicates, pr.OrderViolations, pr.Unknown, pr.FilesWrong, pr.SendsFailed)
	}
	return w.rep, nil
}

// peopleRun is one run of the people scenario.
type peopleRun struct {
	n      *Net
	o      PeopleOptions
	plan   peoplePlan
	rep    Report
	people []*person
	log    *sendLog
	start  time.Time // the workload's
	final  time.Time // the final phase's
	bytes  byteCounter

	mu      sync.Mutex
	sentAt  map[string]time.Time // message ID → when its Send began
	shares  []*share
	mailbox messages.MailboxStats // summed over the devices' ended lives
	lag     time.Duration         // the latest an event ran after its time
}

// share is a file sent in a message, and when a device of the
// recipient's cell first held it whole.
type share struct {
	a      *attempt
	cap    blob.Capability
	held   int64 // the bytes of the blob's blocks, as the sender holds them
	sum    [32]byte
	heldAt time.Time
}

// setUp starts the devices, the always-on ones first (each bootstraps
// from up to three of them and its cell's admin), forms the cells,
// makes the pairs contacts, and waits until each device's prekey bundle
// is on the DHT.
func (w *peopleRun) setUp(ctx context.Context) error {
	pr := w.rep.People
	w.people = make([]*person, len(w.plan.kinds))
	var hubs []*Node
	add := func(who, dev int) (*Node, error) {
		p := w.people[who]
		cfg := NodeConfig{Dir: fmt.Sprintf("%s/node-%d-%d", w.o.Dir, who, dev), Bootstrap: slices.Clone(hubs[:min(3, len(hubs))])}
		if !w.plan.devices[who][dev].alwaysOn {
			dc := dht.DefaultConfig()
			dc.LAN, dc.Mode = false, dht.ModeClient
			cfg.DHT = &dc
		}
		if dev > 0 && !slices.Contains(cfg.Bootstrap, p.devices[0]) {
			cfg.Bootstrap = append(cfg.Bootstrap, p.devices[0])
		}
		nd, err := w.n.AddNode(ctx, cfg)
		if err != nil {
			return nil, err
		}
		if dev == 0 {
			if _, err := nd.Peer().Cell().Create(ctx, p.name, fmt.Sprintf("%s-0", p.name)); err != nil {
				return nil, fmt.Errorf("%s: create: %w", p.name, err)
			}
		} else if err := joinCell(ctx, p.devices[0], nd, fmt.Sprintf("%s-%d", p.name, dev)); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		p.devices = append(p.devices, nd)
		return nd, nil
	}
	for who, k := range w.plan.kinds {
		w.people[who] = &person{name: fmt.Sprintf("p%02d", who)}
		if k == kindHome {
			nd, err := add(who, 0)
			if err != nil {
				return err
			}
			hubs = append(hubs, nd)
			pr.AlwaysOn++
		}
	}
	for who, ds := range w.plan.devices {
		for dev := range ds {
			if dev == 0 && w.plan.kinds[who] == kindHome {
				continue
			}
			if _, err := add(who, dev); err != nil {
				return err
			}
			pr.Phones++
		}
	}
	for who, p := range w.people {
		pr.Devices += len(p.devices)
		if w.plan.kinds[who] != kindHome {
			pr.PhoneOnly++
		}
		if at := awaitViews(p.devices, w.o.Deadline, allAlive(p.devices)); len(at) < len(p.devices) {
			return fmt.Errorf("%s: the cell's gossip did not converge within %v", p.name, w.o.Deadline)
		}
	}
	for i := range w.plan.pairs {
		if w.plan.apart[i] {
			pr.ApartPairs++
		}
	}
	w.rep.Nodes = pr.Devices
	if err := introduce(ctx, w.people, w.plan.pairs, w.o.Deadline); err != nil {
		return err
	}
	for _, p := range w.people {
		for _, nd := range p.devices {
			if _, ok := pollUntil(w.o.Deadline, 5*time.Second, func() bool { return hasBundle(ctx, hubs[0], nd) }); !ok {
				return fmt.Errorf("node %d of %s: no prekey bundle on the DHT within %v", nd.Index, p.name, w.o.Deadline)
			}
		}
	}
	return nil
}

// hasBundle reports whether from finds nd's prekey bundle on the DHT.
func hasBundle(ctx context.Context, from, nd *Node) bool {
	v, err := from.Peer().DHT().GetRecord(ctx, nd.ID, prekey.RecordName)
	if err != nil {
		return false
	}
	_, err = ratchet.VerifyBundle(v)
	return err == nil
}

// peopleEvent is a change of the network at a time of the workload: a
// device goes off or comes back; a partition starts or heals.
type peopleEvent struct {
	at       time.Duration
	up       bool // a device comes back, or the partition heals
	who, dev int  // the device; -1 for a partition
	side     []int
}

func (p peoplePlan) events() []peopleEvent {
	var ev []peopleEvent
	for who, ds := range p.devices {
		for dev, d := range ds {
			if !d.alwaysOn && (len(d.on) == 0 || d.on[0].from > 0) {
				ev = append(ev, peopleEvent{at: 0, who: who, dev: dev})
			}
			for _, w := range d.on {
				if w.from > 0 {
					ev = append(ev, peopleEvent{at: w.from, up: true, who: who, dev: dev})
				}
				if w.to < p.span {
					ev = append(ev, peopleEvent{at: w.to, who: who, dev: dev})
				}
			}
			for _, w := range d.down {
				ev = append(ev, peopleEvent{at: w.from, who: who, dev: dev}, peopleEvent{at: w.to, up: true, who: who, dev: dev})
			}
		}
	}
	for _, pt := range p.partitions {
		ev = append(ev, peopleEvent{at: pt.w.from, who: -1, side: pt.side}, peopleEvent{at: pt.w.to, up: true, who: -1})
	}
	slices.SortStableFunc(ev, func(a, b peopleEvent) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		switch { // what ends first
		case a.up && !b.up:
			return -1
		case b.up && !a.up:
			return 1
		}
		return 0
	})
	return ev
}

// drive runs the plan's events at their times, then, at the end of the
// workload, heals every cut and brings every device back. Each device's
// events, and the partitions, run in order on a goroutine of their own,
// so that a crash or a restart that takes a while (virtual) delays no
// other device's.
func (w *peopleRun) drive(ctx context.Context) error {
	pr := w.rep.People
	byKey := map[[2]int][]peopleEvent{}
	var keys [][2]int
	for _, e := range w.plan.events() {
		k := [2]int{e.who, e.dev}
		if e.who < 0 {
			k = [2]int{-1, -1}
		}
		if byKey[k] == nil {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], e)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	for i, k := range keys {
		wg.Go(func() { errs[i] = w.run(ctx, byKey[k]) })
	}
	wg.Wait()
	time.Sleep(time.Until(w.start.Add(w.plan.span)))
	// The final phase starts here: what arrives while the devices come
	// back (two phones apart, both on again) arrived in it.
	w.final = time.Now()
	w.n.Heal()
	for _, p := range w.people {
		for _, nd := range p.devices {
			if !nd.Up() {
				if err := w.n.Restart(ctx, nd); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	w.mu.Lock()
	pr.EventLagMs = ms(w.lag)
	w.mu.Unlock()
	return errors.Join(errs...)
}

// run runs the events evs, in order, each at its time.
func (w *peopleRun) run(ctx context.Context, evs []peopleEvent) error {
	pr := w.rep.People
	for _, e := range evs {
		time.Sleep(time.Until(w.start.Add(e.at)))
		w.mu.Lock()
		w.lag = max(w.lag, time.Since(w.start.Add(e.at)))
		w.mu.Unlock()
		switch {
		case e.who < 0 && e.up:
			w.n.Heal()
		case e.who < 0:
			var side []*Node
			for _, who := range e.side {
				side = append(side, w.people[who].devices...)
			}
			w.n.Partition(side)
			w.count(&pr.Partitions)
		case e.up:
			if err := w.n.Restart(ctx, w.people[e.who].devices[e.dev]); err != nil {
				return err
			}
		default:
			if err := w.down(w.people[e.who].devices[e.dev]); err != nil {
				return err
			}
			if w.plan.devices[e.who][e.dev].alwaysOn {
				w.count(&pr.Crashes)
			} else {
				w.count(&pr.PhoneSessions)
			}
		}
	}
	return nil
}

func (w *peopleRun) count(n *int) {
	w.mu.Lock()
	*n++
	w.mu.Unlock()
}

// down crashes nd, its mailbox counts kept first.
func (w *peopleRun) down(nd *Node) error {
	if p := nd.Peer(); p != nil {
		w.addMailbox(p.Messages().Mailbox())
	}
	return w.n.Crash(nd)
}

func (w *peopleRun) addMailbox(st messages.MailboxStats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := &w.mailbox
	m.Reads += st.Reads
	m.Writes += st.Writes
	m.Stored += st.Stored
	m.Received += st.Received
	m.Acked += st.Acked
	m.Dropped += st.Dropped
}

// talk sends tk's messages at their times from their devices.
func (w *peopleRun) talk(ctx context.Context, tk peopleTalk) {
	from, to := w.people[tk.from], w.people[tk.to]
	for k, s := range tk.sends {
		time.Sleep(time.Until(w.start.Add(s.at)))
		a := &attempt{from: tk.from, to: tk.to, seq: k, text: fmt.Sprintf("%s to %s, text %d", from.name, to.name, k)}
		nd := from.devices[s.dev]
		p := nd.Peer()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		began := time.Now()
		var m messages.Message
		var err error
		var sh *share
		switch {
		case p == nil:
			err = fmt.Errorf("node %d is down", nd.Index)
		case s.file > 0:
			a.text = fmt.Sprintf("%s-to-%s-%d.bin", from.name, to.name, k)
			sh, err = w.shareFile(sctx, nd, a.text, s.file, tk, k)
			if err == nil {
				m, err = p.Messages().SendFile(sctx, to.name, messages.File{Cap: sh.cap.String(), Name: a.text, Size: int64(s.file)}, "")
			}
		default:
			m, err = p.Messages().Send(sctx, to.name, a.text)
		}
		cancel()
		a.id, a.took = m.ID, time.Since(began)
		if err != nil {
			a.err = fmt.Errorf("node %d sends %q: %w", nd.Index, a.text, err)
		}
		a.pending = a.id != "" && errors.Is(err, messages.ErrUnreachable)
		w.log.add(a)
		w.mu.Lock()
		if a.id != "" {
			w.sentAt[a.id] = began
		}
		if sh != nil && a.id != "" {
			sh.a = a
			w.shares = append(w.shares, sh)
		}
		w.mu.Unlock()
	}
}

// shareFile adds a file of size seeded bytes to nd's cell.
func (w *peopleRun) shareFile(ctx context.Context, nd *Node, name string, size int, tk peopleTalk, k int) (*share, error) {
	r := w.n.Rand(fmt.Sprintf("people file %d %d %d", tk.from, tk.to, k))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	f, err := nd.Peer().Blobs().AddFileReader(ctx, name, bytes.NewReader(data), blobservice.AddOptions{})
	if err != nil {
		return nil, err
	}
	return &share{cap: f.Cap, held: f.Held, sum: sha256.Sum256(data)}, nil
}

// watchShares notes, every 30 s until ctx ends, when a device of each
// share's recipient cell first holds its file whole.
func (w *peopleRun) watchShares(ctx context.Context) {
	for {
		w.mu.Lock()
		open := slices.DeleteFunc(slices.Clone(w.shares), func(s *share) bool { return !s.heldAt.IsZero() })
		w.mu.Unlock()
		for _, s := range open {
			for _, nd := range w.people[s.a.to].devices {
				if held, _ := holdsWhole(ctx, nd, s); held {
					w.mu.Lock()
					s.heldAt = time.Now()
					w.mu.Unlock()
					break
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(30 * time.Second):
		}
	}
}

// holdsWhole reports whether nd lists s's file, from the sender's cell,
// and holds every byte of its blocks.
func holdsWhole(ctx context.Context, nd *Node, s *share) (bool, error) {
	p := nd.Peer()
	if p == nil {
		return false, fmt.Errorf("node %d is down", nd.Index)
	}
	fs, err := p.Blobs().Files(ctx)
	if err != nil {
		return false, err
	}
	for _, f := range fs {
		if f.Cap.String() == s.cap.String() {
			return f.Held >= s.held && f.Pinned, nil
		}
	}
	return false, nil
}

// fileCounts is what checkFiles found.
type fileCounts struct {
	missing, wrong int
	samples        []string
}

// checkFiles checks every share: held whole on every device of the
// recipient's cell; with bytes, that each of them reads the bytes
// shared.
func (w *peopleRun) checkFiles(ctx context.Context, readBytes bool) fileCounts {
	w.mu.Lock()
	shares := slices.Clone(w.shares)
	w.mu.Unlock()
	var c fileCounts
	for _, s := range shares {
		for _, nd := range w.people[s.a.to].devices {
			held, err := holdsWhole(ctx, nd, s)
			if !held {
				c.missing++
				if len(c.samples) < maxFailuresReported {
					c.samples = append(c.samples, fmt.Sprintf("node %d does not hold %s whole (%v)", nd.Index, s.a.text, err))
				}
				continue
			}
			if !readBytes {
				continue
			}
			if sum, err := readSum(ctx, nd, s.cap); err != nil || sum != s.sum {
				c.wrong++
				if len(c.samples) < maxFailuresReported {
					c.samples = append(c.samples, fmt.Sprintf("node %d reads %s wrong (%v)", nd.Index, s.a.text, err))
				}
			}
		}
	}
	return c
}

func readSum(ctx context.Context, nd *Node, c blob.Capability) ([32]byte, error) {
	r, err := nd.Peer().Blobs().Open(ctx, c)
	if err != nil {
		return [32]byte{}, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

package core

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestJoinTranscripts drives the join protocol's machines (Admin, its
// AdminRuns, JoinerRun) through the transcripts of testdata/join: each
// command delivers, loses or replays a frame, or moves the clock, and
// shows what the machines do. Run with -rewrite to regenerate them.
//
// Commands:
//
//	cell name=N                   the admin makes a cell (its device: laptop)
//	limits per-peer=N total=N     the invites' attempt budgets
//	invite [ttl=D]                the admin opens an invite
//	start run=R joiner=J [wrong]  J starts run R with the code (or a wrong one)
//	deliver run=R                 the frame in flight on run R arrives
//	lose run=R                    the frame in flight on run R is lost
//	replay run=R from=R2 [as=J]   run R starts with R2's hello, sent by J
//	forge run=R from=R2           run R sends the frame R2 has on its way to the admin
//	tick D [before-maintenance]   the clock moves on by D (and expired
//	                              invites end, unless before-maintenance)
//	invites                       the admin's open invites
//	roster                        the admin's roster
func TestJoinTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata/join", func(t *testing.T, path string) {
		h := newJoinHarness(t)
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := h.do(d)
			if err != nil {
				return "error: " + h.names.Replace(err.Error()) + "\n"
			}
			return h.names.Replace(out)
		})
	})
}

// transcriptRun is one join run of a transcript.
type transcriptRun struct {
	joiner  string
	admin   *AdminRun
	j       *JoinerRun
	frame   []byte // in flight
	toAdmin bool   // its direction
}

type joinHarness struct {
	t       *testing.T
	rand    *rand.ChaCha8
	now     time.Time
	self    peer.ID
	peers   map[string]peer.ID
	boxes   map[string]BoxKey
	names   *strings.Replacer
	admin   *Admin
	roster  *Roster
	keys    *Keys
	cellKey ed25519.PrivateKey
	code    Code
	runs    map[string]*transcriptRun
}

func newJoinHarness(t *testing.T) *joinHarness {
	h := &joinHarness{
		t: t, rand: rand.NewChaCha8([32]byte{'j', 'o', 'i', 'n'}),
		now:   time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
		peers: make(map[string]peer.ID), boxes: make(map[string]BoxKey),
		runs: make(map[string]*transcriptRun),
	}
	var pairs []string
	for i, name := range []string{"laptop", "phone", "tablet", "mallory", "eve"} {
		seed := binary.BigEndian.AppendUint64(make([]byte, ed25519.SeedSize-8), uint64(i+1))
		k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		box, err := NewBoxKey(h.rand)
		if err != nil {
			t.Fatal(err)
		}
		h.peers[name], h.boxes[name] = id, box
		pairs = append(pairs, id.String(), name)
	}
	h.self = h.peers["laptop"]
	h.names = strings.NewReplacer(pairs...)
	h.admin = NewAdmin(h.self, Limits{PerPeer: 3, Total: 20})
	return h
}

func (h *joinHarness) do(d *datadriven.TestData) (string, error) {
	switch d.Cmd {
	case "cell":
		var name string
		d.ScanArgs(h.t, "name", &name)
		r, key, keys, err := NewCell(name, Founder{Peer: h.self, Name: "laptop", BoxKey: h.boxes["laptop"].Public()}, h.now, h.rand)
		if err != nil {
			return "", err
		}
		h.roster, h.cellKey, h.keys = r, key, keys
		return h.showRoster(), nil
	case "limits":
		d.ScanArgs(h.t, "per-peer", &h.admin.Limits.PerPeer)
		d.ScanArgs(h.t, "total", &h.admin.Limits.Total)
		return "", nil
	case "invite":
		ttl := 10 * time.Minute
		if d.HasArg("ttl") {
			var s string
			d.ScanArgs(h.t, "ttl", &s)
			var err error
			if ttl, err = time.ParseDuration(s); err != nil {
				return "", err
			}
		}
		c, err := NewCode(h.rand)
		if err != nil {
			return "", err
		}
		h.code = c
		h.admin.Invites[c.Nameplate] = NewInvite(c, RoleChain|RoleStore, h.now.Add(ttl))
		return fmt.Sprintf("invite %s, expires in %s\n", c, ttl), nil
	case "start":
		var name, joiner string
		d.ScanArgs(h.t, "run", &name)
		d.ScanArgs(h.t, "joiner", &joiner)
		c := h.code
		if d.HasArg("wrong") {
			c.Words[2] = (c.Words[2] + 1) % codeWordListSize
		}
		j, hello, err := NewJoinerRun(c, h.self, h.peers[joiner], h.boxes[joiner].Public(), joiner, h.rand)
		if err != nil {
			return "", err
		}
		h.runs[name] = &transcriptRun{joiner: joiner, j: j, frame: hello, toAdmin: true}
		return fmt.Sprintf("%s -> laptop: %s\n", joiner, showFrame(hello)), nil
	case "deliver":
		return h.deliver(h.run(d))
	case "lose":
		run := h.run(d)
		frame := run.frame
		run.frame = nil
		if frame == nil {
			return "", errors.New("nothing in flight")
		}
		if run.toAdmin {
			return "lost; laptop: the stream breaks, the run ends (what was booked stays booked)\n", nil
		}
		return fmt.Sprintf("lost; %s: %v\n", run.joiner, run.j.Broken(io.ErrUnexpectedEOF)), nil
	case "replay":
		var name, from string
		d.ScanArgs(h.t, "run", &name)
		d.ScanArgs(h.t, "from", &from)
		src := h.runs[from]
		if src == nil {
			return "", fmt.Errorf("no run %s", from)
		}
		as := src.joiner
		if d.HasArg("as") {
			d.ScanArgs(h.t, "as", &as)
		}
		hello := src.j.h.encode()
		h.runs[name] = &transcriptRun{joiner: as, frame: hello, toAdmin: true}
		return fmt.Sprintf("%s -> laptop: %s (the hello of run %s)\n", as, showFrame(hello), from), nil
	case "forge":
		var from string
		d.ScanArgs(h.t, "from", &from)
		run, src := h.run(d), h.runs[from]
		if src == nil || src.frame == nil || !src.toAdmin {
			return "", fmt.Errorf("run %s has no frame on its way to the admin", from)
		}
		run.frame, run.toAdmin, src.frame = src.frame, true, nil
		return fmt.Sprintf("%s -> laptop: %s (the frame of run %s)\n", run.joiner, showFrame(run.frame), from), nil
	case "tick":
		dur, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			return "", err
		}
		h.now = h.now.Add(dur)
		var b strings.Builder
		fmt.Fprintf(&b, "clock +%s\n", dur)
		if d.HasArg("before-maintenance") {
			return b.String(), nil // the shell's maintenance has not run Expire yet
		}
		for _, inv := range h.admin.Expire(h.now) {
			fmt.Fprintf(&b, "laptop: invite %04d expired: end it\n", inv.Code.Nameplate)
		}
		return b.String(), nil
	case "invites":
		return h.showInvites(), nil
	case "roster":
		return h.showRoster(), nil
	}
	return "", fmt.Errorf("unknown command %q", d.Cmd)
}

func (h *joinHarness) run(d *datadriven.TestData) *transcriptRun {
	var name string
	d.ScanArgs(h.t, "run", &name)
	r := h.runs[name]
	if r == nil {
		h.t.Fatalf("%s: no run %q", d.Pos, name)
	}
	return r
}

// deliver hands the frame in flight on run to its receiver and shows
// what the receiver's machine does.
func (h *joinHarness) deliver(run *transcriptRun) (string, error) {
	frame := run.frame
	run.frame = nil
	if frame == nil {
		return "", errors.New("nothing in flight")
	}
	var b strings.Builder
	if !run.toAdmin {
		switch frame[0] {
		case msgReply:
			conf, err := run.j.Reply(frame)
			if err != nil {
				fmt.Fprintf(&b, "%s: %s\n", run.joiner, showJoinErr(err))
				return b.String(), nil
			}
			run.frame, run.toAdmin = conf, true
			fmt.Fprintf(&b, "%s -> laptop: %s\n", run.joiner, showFrame(conf))
		default:
			r, err := run.j.Welcome(frame)
			if err != nil {
				fmt.Fprintf(&b, "%s: %s\n", run.joiner, showJoinErr(err))
				return b.String(), nil
			}
			keys := NewKeys(r.Cell)
			if err := r.Accept(h.peers[run.joiner], h.boxes[run.joiner], keys); err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "%s: joined %q, roster v%d, holds the secrets of epochs %v\n", run.joiner, r.Name, r.Version, keys.Epochs())
		}
		return b.String(), nil
	}
	var step Step
	if run.admin == nil {
		run.admin, step = h.admin.Hello(h.peers[run.joiner], frame, h.now, h.rand)
	} else {
		step = h.admin.Confirm(run.admin, frame)
	}
	h.show(&b, step, run.joiner)
	if step.Admit {
		a := h.admin.Admit(run.admin, h.roster, h.keys, h.cellKey, h.now)
		switch {
		case a.Err != nil:
			fmt.Fprintf(&b, "laptop: admit: refused: %v\n", a.Err)
			step = h.admin.Refuse(run.admin, a.Err)
		case a.Adopt:
			fmt.Fprintf(&b, "laptop: admit: store and spread roster v%d\n", a.Roster.Version)
			h.roster = a.Roster
			step = h.admin.Admitted(run.admin, a.Roster)
		default:
			fmt.Fprintf(&b, "laptop: admit: already on roster v%d, welcome it again\n", a.Roster.Version)
			step = h.admin.Admitted(run.admin, a.Roster)
		}
		h.show(&b, step, run.joiner)
	}
	if step.Send != nil {
		run.frame, run.toAdmin = step.Send, false
	}
	return b.String(), nil
}

// show writes what a step asks, in the order the shell does it.
func (h *joinHarness) show(b *strings.Builder, step Step, joiner string) {
	if step.End != nil {
		fmt.Fprintf(b, "laptop: end invite %04d (stop serving it, delete it)\n", step.End.Code.Nameplate)
	}
	if step.Store != nil {
		fmt.Fprintf(b, "laptop: store invite %04d (%s)\n", step.Store.Code.Nameplate, showInvite(step.Store))
	}
	if step.Send != nil {
		fmt.Fprintf(b, "laptop -> %s: %s\n", joiner, showFrame(step.Send))
	}
	if step.Admit {
		b.WriteString("laptop: the joiner proved the code\n")
	}
	if step.Done {
		b.WriteString("laptop: run over")
		if step.Err != nil {
			fmt.Fprintf(b, ": %v", step.Err)
		}
		b.WriteString("\n")
	}
}

func showJoinErr(err error) string {
	var final *FinalError
	kind := "network"
	switch {
	case errors.As(err, &final):
		kind = "final"
	case IsAnswer(err):
		kind = "answer"
	case errors.Is(err, ErrWrongCode):
		kind = "wrong code: reset the stream"
	}
	return fmt.Sprintf("%s (%s)", err, kind)
}

func showInvite(inv *Invite) string {
	s := fmt.Sprintf("failures %d", inv.Failures)
	if len(inv.byPeer) > 0 {
		var ps []string
		for id, n := range inv.byPeer {
			ps = append(ps, fmt.Sprintf("%s:%d", id, n))
		}
		slices.Sort(ps)
		s += " [" + strings.Join(ps, " ") + "]"
	}
	if inv.Joiner != "" {
		s += ", bound to " + inv.Joiner.String()
	}
	return s
}

func (h *joinHarness) showInvites() string {
	if len(h.admin.Invites) == 0 {
		return "no open invite\n"
	}
	var b strings.Builder
	for _, np := range slices.Sorted(func(yield func(uint16) bool) {
		for np := range h.admin.Invites {
			if !yield(np) {
				return
			}
		}
	}) {
		inv := h.admin.Invites[np]
		fmt.Fprintf(&b, "%04d: %s, expires in %s\n", np, showInvite(inv), inv.Expires.Sub(h.now))
	}
	return b.String()
}

func (h *joinHarness) showRoster() string {
	r := h.roster
	var ms []string
	for _, m := range r.Members {
		ms = append(ms, fmt.Sprintf("%s(%s)", m.Name, m.Roles))
	}
	slices.Sort(ms)
	return fmt.Sprintf("roster v%d epoch %d of %q: %s\n", r.Version, r.Epoch, r.Name, strings.Join(ms, " "))
}

// showFrame names a frame of the join protocol and its status.
func showFrame(b []byte) string {
	status := func(s byte) string {
		if s == StatusOK {
			return "ok"
		}
		return fmt.Sprintf("status %d: %v", s, statusErr(s))
	}
	switch b[0] {
	case msgHello:
		m, err := decodeHello(b)
		if err != nil {
			return fmt.Sprintf("bad hello: %v", err)
		}
		return fmt.Sprintf("hello, nameplate %04d (%d bytes)", m.Nameplate, len(b))
	case msgReply:
		m, err := decodeReply(b)
		if err != nil {
			return fmt.Sprintf("bad reply: %v", err)
		}
		return fmt.Sprintf("reply, %s (%d bytes)", status(m.Status), len(b))
	case msgConfirm:
		return fmt.Sprintf("confirm (%d bytes)", len(b))
	case msgWelcome:
		m, err := decodeWelcome(b)
		if err != nil {
			return fmt.Sprintf("bad welcome: %v", err)
		}
		if m.Status == StatusOK {
			return "welcome, ok, with the sealed roster"
		}
		return fmt.Sprintf("welcome, %s", status(m.Status))
	}
	return fmt.Sprintf("frame of type %d", b[0])
}

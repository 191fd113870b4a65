package simnet

import (
	"context"
	"encoding/base32"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// PeopleReport is what the people scenario (ScenarioPeople) counted.
type PeopleReport struct {
	People  int `json:"people"`
	Devices int `json:"devices"`
	// AlwaysOn and Phones count the devices of each kind; PhoneOnly the
	// people with phones only.
	AlwaysOn  int `json:"alwaysOn"`
	Phones    int `json:"phones"`
	PhoneOnly int `json:"phoneOnly"`
	Minutes   int `json:"minutes"`
	// Pairs talk; ApartPairs of them never have a device online together
	// during the workload (their messages are the mailbox case).
	Pairs      int `json:"pairs"`
	ApartPairs int `json:"apartPairs"`
	// Messages counts the messages sent (shares included), Shares the
	// files shared; SendsFailed the sends that recorded nothing (must
	// be 0).
	Messages    int `json:"messages"`
	Shares      int `json:"shares"`
	SendsFailed int `json:"sendsFailed"`
	// Delivery latency by case, from the send to the first device of the
	// recipient's cell recording the message (for shares: holding the
	// file whole, seen every 30 s), in virtual time. Direct: delivered
	// while Send ran; courier: recorded pending, delivered once a device
	// of the recipient came online; mailbox: between pairs that never
	// meet.
	Direct  CaseStats `json:"direct"`
	Courier CaseStats `json:"courier"`
	Mailbox CaseStats `json:"mailbox"`
	Files   CaseStats `json:"files"`
	// PhoneSessions counts the phones going off; Crashes the crashes of
	// always-on devices; Partitions the cuts between groups of cells.
	PhoneSessions int `json:"phoneSessions"`
	Crashes       int `json:"crashes"`
	Partitions    int `json:"partitions"`
	// EventLagMs is the latest a phone's going off or coming back, a
	// crash or a partition ran after its planned time (virtual): a crash
	// or a restart takes a while.
	EventLagMs float64 `json:"eventLagMs"`
	// The checks, all must be 0: a message held twice on a device, held
	// out of its sender's order, held though no one sent it, missing on
	// a device of either cell (or not delivered on the sender's side)
	// when the final phase ended; a shared file not held whole by a
	// device of the recipient's cell, or whose bytes differ.
	Duplicates      int `json:"duplicates"`
	OrderViolations int `json:"orderViolations"`
	Unknown         int `json:"unknown"`
	Missing         int `json:"missing"`
	FilesMissing    int `json:"filesMissing"`
	FilesWrong      int `json:"filesWrong"`
	// ConvergedMs is the virtual time from the end of the workload (every
	// device online) until every conversation and file was whole.
	ConvergedMs float64 `json:"convergedMs"`
	// The blind mailboxes, summed over every device's lives: slot
	// records read and written, messages left in slots, frames recorded
	// from slots, messages made delivered by an ack read from a slot.
	MailboxReads    int64 `json:"mailboxReads"`
	MailboxWrites   int64 `json:"mailboxWrites"`
	MailboxStored   int64 `json:"mailboxStored"`
	MailboxReceived int64 `json:"mailboxReceived"`
	MailboxAcked    int64 `json:"mailboxAcked"`
	// Records held in the DHT servers' stores at the end, by kind
	// (mailbox slots, prekey bundles, the others), replicas counted.
	MailboxRecords int `json:"mailboxRecords"`
	PrekeyRecords  int `json:"prekeyRecords"`
	OtherRecords   int `json:"otherRecords"`
	// PhoneRecords is how many of them phones hold: a phone is a DHT
	// client, so no one puts records on it, but kad-dht keeps a copy of
	// each record its own node puts.
	PhoneRecords int `json:"phoneRecords"`
	// Bytes written on streams from the start of the workload to the
	// end of the final phase, by protocol family, and per message.
	Bytes           int64            `json:"bytes"`
	BytesPerMessage float64          `json:"bytesPerMessage"`
	BytesBy         map[string]int64 `json:"bytesBy"`
}

// CaseStats is one case's messages: how many, how many arrived before
// the final phase, and the delivery latency of those that arrived.
type CaseStats struct {
	N       int     `json:"n"`
	Arrived int     `json:"arrivedBeforeFinal"`
	P50Ms   float64 `json:"p50Ms"`
	P99Ms   float64 `json:"p99Ms"`
}

// Violations is the sum of the counts that must be 0.
func (r *PeopleReport) Violations() int {
	return r.Duplicates + r.OrderViolations + r.Unknown + r.Missing + r.FilesMissing + r.FilesWrong + r.SendsFailed
}

// protocolFamilies name the protocols whose bytes are counted apart;
// the rest are "other" (the cell's roster and joins, contacts, prekeys,
// remote store reads).
var protocolFamilies = []struct{ name, prefix string }{
	{"messages", "/exopeer/msg/"},
	{"chain", "/exopeer/chain/"},
	{"dht", "/exopeer/kad/"},
	{"dht", "/exopeer/lan/kad/"},
	{"gossip", "/exopeer/gossip/"},
	{"blobs", "/exopeer/ipfs/bitswap"},
	{"other", ""},
}

// byteCounter counts the bytes written on streams by protocol family.
type byteCounter struct {
	n [7]atomic.Int64 // by protocolFamilies' index
}

func (c *byteCounter) capture(_, _ peer.ID, p protocol.ID, b []byte) {
	for i, f := range protocolFamilies {
		if strings.HasPrefix(string(p), f.prefix) {
			c.n[i].Add(int64(len(b)))
			return
		}
	}
}

// report fills the report from the log, the checks and the devices.
func (w *peopleRun) report(ctx context.Context, counts checkCounts, files fileCounts) {
	pr := w.rep.People
	pr.Duplicates, pr.OrderViolations, pr.Unknown, pr.Missing = counts.dups, counts.order, counts.unknown, counts.missing
	pr.FilesMissing, pr.FilesWrong = files.missing, files.wrong
	for _, s := range append(counts.samples, files.samples...) {
		if len(w.rep.Failures) < maxFailuresReported {
			w.rep.Failures = append(w.rep.Failures, s)
		}
	}

	// The first time a device of the recipient's cell recorded each
	// message, from the records (their received time is the virtual
	// clock's).
	received := map[string]time.Time{}
	for _, pr := range w.plan.pairs {
		for _, side := range [][2]int{{pr[0], pr[1]}, {pr[1], pr[0]}} {
			for _, nd := range w.people[side[0]].devices {
				ms, err := conversation(ctx, nd, w.people[side[1]].name)
				if err != nil {
					continue
				}
				for _, m := range ms {
					if m.Received == nil {
						continue
					}
					if t, ok := received[m.ID]; !ok || m.Received.Before(t) {
						received[m.ID] = *m.Received
					}
				}
			}
		}
	}
	apart := map[[2]int]bool{}
	for i, p := range w.plan.pairs {
		apart[p], apart[[2]int{p[1], p[0]}] = w.plan.apart[i], w.plan.apart[i]
	}
	var ops []opResult
	lat := map[*CaseStats][]float64{}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.log.sends {
		if a.id == "" || a.err != nil && !a.pending {
			pr.SendsFailed++
			ops = append(ops, opResult{err: a.err})
			if a.err == nil {
				ops[len(ops)-1].err = fmt.Errorf("%q recorded no message", a.text)
			}
			continue
		}
		pr.Messages++
		c := &pr.Courier
		switch {
		case apart[[2]int{a.from, a.to}]:
			c = &pr.Mailbox
		case a.err == nil:
			c = &pr.Direct
		}
		c.N++
		at, ok := received[a.id]
		if !ok {
			ops = append(ops, opResult{err: fmt.Errorf("%q: no device of the recipient records it received", a.text)})
			continue
		}
		d := at.Sub(w.sentAt[a.id])
		ops = append(ops, opResult{latency: d})
		if at.Before(w.final) {
			c.Arrived++
			lat[c] = append(lat[c], ms(d))
		}
	}
	for _, s := range w.shares {
		pr.Shares++
		pr.Files.N++
		if !s.heldAt.IsZero() && s.heldAt.Before(w.final) {
			pr.Files.Arrived++
			lat[&pr.Files] = append(lat[&pr.Files], ms(s.heldAt.Sub(w.sentAt[s.a.id])))
		}
	}
	for _, c := range []*CaseStats{&pr.Direct, &pr.Courier, &pr.Mailbox, &pr.Files} {
		c.P50Ms, c.P99Ms = percentile(lat[c], 0.5), percentile(lat[c], 0.99)
	}
	w.rep.tally(ops)
	w.rep.Timings["converge"] = NewDist([]float64{pr.ConvergedMs})

	m := w.mailbox
	for who, p := range w.people {
		for dev, nd := range p.devices {
			if pp := nd.Peer(); pp != nil {
				st := pp.Messages().Mailbox()
				m.Reads, m.Writes, m.Stored, m.Received, m.Acked = m.Reads+st.Reads, m.Writes+st.Writes, m.Stored+st.Stored, m.Received+st.Received, m.Acked+st.Acked
			}
			mb, pk, other := dhtRecords(ctx, nd)
			pr.MailboxRecords += mb
			pr.PrekeyRecords += pk
			pr.OtherRecords += other
			if !w.plan.devices[who][dev].alwaysOn {
				pr.PhoneRecords += mb + pk + other
			}
		}
	}
	pr.MailboxReads, pr.MailboxWrites, pr.MailboxStored, pr.MailboxReceived, pr.MailboxAcked = m.Reads, m.Writes, m.Stored, m.Received, m.Acked

	pr.BytesBy = map[string]int64{}
	for i, f := range protocolFamilies {
		if b := w.bytes.n[i].Load(); b > 0 {
			pr.BytesBy[f.name] += b
			pr.Bytes += b
		}
	}
	pr.BytesPerMessage = float64(pr.Bytes) / float64(max(pr.Messages, 1))
}

// dhtRecords counts the DHT records nd's datastore holds, by kind. The
// DHT keeps each under its key in base32 (go-libp2p-kad-dht's mkDsKey);
// exopeer's keys are "/exo/<peer ID>/<name>" (dht/doc.go).
func dhtRecords(ctx context.Context, nd *Node) (mailbox, prekeys, other int) {
	res, err := nd.store.Query(ctx, query.Query{KeysOnly: true})
	if err != nil {
		return 0, 0, 0
	}
	defer res.Close()
	for e := range res.Next() {
		if e.Error != nil {
			return
		}
		i := strings.LastIndexByte(e.Key, '/')
		k, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Key[i+1:])
		if err != nil || !strings.HasPrefix(string(k), "/exo/") {
			continue
		}
		switch {
		case strings.HasSuffix(string(k), "/mailbox"):
			mailbox++
		case strings.HasSuffix(string(k), "/prekeys"):
			prekeys++
		default:
			other++
		}
	}
	return
}

// writeText writes r for people, on the report's tab writer.
func (r *PeopleReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "people\t%d (%d devices: %d always on, %d phones; %d people with phones only), %d min\n", r.People, r.Devices, r.AlwaysOn, r.Phones, r.PhoneOnly, r.Minutes)
	fmt.Fprintf(w, "talks\t%d pairs (%d never online together), %d messages, %d files shared, %d sends failed\n", r.Pairs, r.ApartPairs, r.Messages, r.Shares, r.SendsFailed)
	for _, c := range []struct {
		name string
		c    CaseStats
	}{{"direct", r.Direct}, {"courier", r.Courier}, {"mailbox", r.Mailbox}, {"files", r.Files}} {
		fmt.Fprintf(w, "%s\t%d, %d arrived before the final phase: p50 %s  p99 %s (virtual)\n", c.name, c.c.N, c.c.Arrived,
			time.Duration(c.c.P50Ms*float64(time.Millisecond)).Round(time.Millisecond), time.Duration(c.c.P99Ms*float64(time.Millisecond)).Round(time.Millisecond))
	}
	fmt.Fprintf(w, "churn\t%d phone sessions ended, %d crashes, %d partitions (each at most %.1f s late); every device whole %.1f s after the workload\n", r.PhoneSessions, r.Crashes, r.Partitions, r.EventLagMs/1000, r.ConvergedMs/1000)
	fmt.Fprintf(w, "checks\t%d duplicates, %d out of order, %d unknown, %d missing; files: %d not held whole, %d wrong\n", r.Duplicates, r.OrderViolations, r.Unknown, r.Missing, r.FilesMissing, r.FilesWrong)
	fmt.Fprintf(w, "mailboxes\t%d slot reads, %d writes; %d messages stored, %d received, %d acked\n", r.MailboxReads, r.MailboxWrites, r.MailboxStored, r.MailboxReceived, r.MailboxAcked)
	fmt.Fprintf(w, "DHT records\t%d mailbox slots, %d prekey bundles, %d others (replicas counted; %d on phones)\n", r.MailboxRecords, r.PrekeyRecords, r.OtherRecords, r.PhoneRecords)
	var by []string
	seen := map[string]bool{}
	for _, f := range protocolFamilies {
		if b, ok := r.BytesBy[f.name]; ok && !seen[f.name] {
			seen[f.name] = true
			by = append(by, fmt.Sprintf("%s %.1f KiB", f.name, float64(b)/1024/float64(max(r.Messages, 1))))
		}
	}
	fmt.Fprintf(w, "bytes\t%.1f MiB, %.1f KiB per message (%s)\n", float64(r.Bytes)/(1<<20), r.BytesPerMessage/1024, strings.Join(by, ", "))
}

package simnet

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a scenario measured. Counts are fixed by the seed;
// timings and hop counts depend on goroutine scheduling, which is not under
// our control, and are given as distributions.
type Report struct {
	Scenario string `json:"scenario"`
	Seed     uint64 `json:"seed"`
	Nodes    int    `json:"nodes"`
	Crashed  int    `json:"crashed"`
	// Workload is a digest of the operations the scenario chose (which
	// node did what to which, when): fixed by the seed, so two runs with
	// one seed show the same.
	Workload    string  `json:"workload"`
	Operations  int     `json:"operations"`
	Succeeded   int     `json:"succeeded"`
	SuccessRate float64 `json:"successRate"`
	// Hops of each successful operation (for a DHT lookup: the depth, in
	// referrals from the lookup's first peers, of the peer that answered).
	Hops Dist `json:"hops"`
	// VirtualLatency of each successful operation, in milliseconds of
	// virtual time.
	VirtualLatency Dist `json:"virtualLatencyMs"`
	// Timings are distributions of the scenario's phases, in milliseconds
	// of virtual time (e.g. the cell scenario's join, converge, detect,
	// heal).
	Timings map[string]Dist `json:"timingsMs,omitempty"`
	// VirtualTime is the protocol time the whole scenario covered, seconds.
	VirtualTime float64 `json:"virtualTimeS"`
	// WallTime is the real time it took, seconds.
	WallTime float64 `json:"wallTimeS"`
	// PeakHeap is the largest heap seen while it ran, bytes (0 when not
	// sampled).
	PeakHeap uint64 `json:"peakHeapBytes"`
	// PeakLiveHeap is the largest live heap (as of a collection), bytes.
	PeakLiveHeap uint64 `json:"peakLiveHeapBytes"`
	// Goroutines is the number of goroutines when the scenario ended,
	// before the network closed.
	Goroutines int `json:"goroutines"`
	// Chain is what the chain scenario counted; nil for the others.
	Chain *ChainReport `json:"chain,omitempty"`
	// Store is what the store scenario counted; nil for the others.
	Store *StoreReport `json:"store,omitempty"`
	// Blob is what the blob scenario measured; nil for the others.
	Blob *BlobReport `json:"blob,omitempty"`
	// Messages is what the messages scenario counted; nil for the others.
	Messages *MessagesReport `json:"messages,omitempty"`
	// Cell is what the cell scenario counted; nil for the others.
	Cell *CellReport `json:"cell,omitempty"`
	// People is what the people scenario counted; nil for the others.
	People *PeopleReport `json:"people,omitempty"`
	// Failures lists a sample of what failed, for diagnosis.
	Failures []string `json:"failures,omitempty"`
}

// CellReport is what the cell scenario counted.
type CellReport struct {
	// DetectP99Ms is the 99th percentile (nearest rank) of the detection
	// times, ms of virtual time.
	DetectP99Ms float64 `json:"detectP99Ms"`
	// FalseFailures counts the pairs of live members of which one saw the
	// other dead, from the crash until the watch ended (the partition
	// after it is not counted).
	FalseFailures int `json:"falseFailures"`
	// SuspectedLost and LostUnknown sum the live members' gossip counters
	// of the same names: suspicions on a lost connection, and lost
	// connections left to the probes.
	SuspectedLost uint64 `json:"suspectedLost"`
	LostUnknown   uint64 `json:"lostUnknown"`
}

// ChainReport is what the chain scenario counted.
type ChainReport struct {
	// Entries is the length of the chain every node holds at the end
	// (node 0's, when they differ).
	Entries int `json:"entries"`
	// Attempted and Appended count the entries the nodes were asked to
	// append and those whose append returned success (the others went to
	// a node that was down).
	Attempted int `json:"attempted"`
	Appended  int `json:"appended"`
	// Partitions and Crashes count the faults.
	Partitions int `json:"partitions"`
	Crashes    int `json:"crashes"`
	// ConvergedMs is the virtual time from the heal (every fault over,
	// every append returned) until the last node held every entry.
	ConvergedMs float64 `json:"convergedMs"`
	// Sync sums the nodes' sync counters over all their lives.
	Pulls      uint64 `json:"pulls"`
	PullErrors uint64 `json:"pullErrors"`
	Served     uint64 `json:"served"`
	Received   uint64 `json:"received"`
	Sent       uint64 `json:"sent"`
	Rejected   uint64 `json:"rejected"`
	Banned     uint64 `json:"banned"`
	Announces  uint64 `json:"announces"`
	// Bans says, for each node life that cut a member off, why it last
	// did: honest nodes should never.
	Bans []string `json:"bans,omitempty"`
}

// Dist summarises a distribution.
type Dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

// NewDist summarises samples (nearest-rank percentiles).
func NewDist(samples []float64) Dist {
	if len(samples) == 0 {
		return Dist{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Dist{N: len(s), P50: rank(0.50), P95: rank(0.95), Max: s[len(s)-1]}
}

// maxFailuresReported bounds Report.Failures.
const maxFailuresReported = 20

// tally fills the counts, the rate and the distributions of r from the
// outcomes of its operations.
func (r *Report) tally(ops []opResult) {
	var hops, lat []float64
	r.Operations = len(ops)
	for _, o := range ops {
		if o.err != nil {
			if len(r.Failures) < maxFailuresReported {
				r.Failures = append(r.Failures, o.err.Error())
			}
			continue
		}
		r.Succeeded++
		hops = append(hops, float64(o.hops))
		lat = append(lat, float64(o.latency)/float64(time.Millisecond))
	}
	if r.Operations > 0 {
		r.SuccessRate = float64(r.Succeeded) / float64(r.Operations)
	}
	r.Hops, r.VirtualLatency = NewDist(hops), NewDist(lat)
}

// opResult is the outcome of one operation of a scenario.
type opResult struct {
	hops    int
	latency time.Duration
	err     error
}

// WriteJSON writes r as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes r for people.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s (seed %d)\n", r.Scenario, r.Seed)
	fmt.Fprintf(tw, "nodes\t%d (%d crashed)\n", r.Nodes, r.Crashed)
	fmt.Fprintf(tw, "workload\t%s\n", r.Workload)
	fmt.Fprintf(tw, "operations\t%d, %d succeeded (%.2f%%)\n", r.Operations, r.Succeeded, 100*r.SuccessRate)
	fmt.Fprintf(tw, "hops\tp50 %.0f  p95 %.0f  max %.0f\n", r.Hops.P50, r.Hops.P95, r.Hops.Max)
	fmt.Fprintf(tw, "virtual latency\tp50 %.1f ms  p95 %.1f ms  max %.1f ms\n", r.VirtualLatency.P50, r.VirtualLatency.P95, r.VirtualLatency.Max)
	for _, k := range slices.Sorted(maps.Keys(r.Timings)) {
		d := r.Timings[k]
		fmt.Fprintf(tw, "%s\tn %d  p50 %.1f ms  p95 %.1f ms  max %.1f ms\n", k, d.N, d.P50, d.P95, d.Max)
	}
	fmt.Fprintf(tw, "virtual time\t%s\n", time.Duration(r.VirtualTime*float64(time.Second)).Round(time.Millisecond))
	fmt.Fprintf(tw, "wall time\t%s\n", time.Duration(r.WallTime*float64(time.Second)).Round(time.Millisecond))
	if c := r.Chain; c != nil {
		fmt.Fprintf(tw, "chain\t%d entries on every node; %d of %d appends succeeded\n", c.Entries, c.Appended, c.Attempted)
		fmt.Fprintf(tw, "faults\t%d partitions, %d crashes; converged %.1f ms after the heal\n", c.Partitions, c.Crashes, c.ConvergedMs)
		fmt.Fprintf(tw, "sync\t%d pulls (%d failed), %d served, %d entries received, %d sent, %d rejected, %d bans, %d announces\n",
			c.Pulls, c.PullErrors, c.Served, c.Received, c.Sent, c.Rejected, c.Banned, c.Announces)
		if len(c.Bans) > 0 {
			fmt.Fprintf(tw, "bans\t%s\n", strings.Join(c.Bans, "\n\t"))
		}
	}
	if c := r.Store; c != nil {
		fmt.Fprintf(tw, "store\t%d mutations written, %d chain entries, %d live entities; %d answer bytes compared\n", c.Written, c.Entries, c.Live, c.AnswerBytes)
		fmt.Fprintf(tw, "faults\t%d partitions, %d crashes; indexes caught up %.1f ms after the heal\n", c.Partitions, c.Crashes, c.ConvergedMs)
	}
	if b := r.Blob; b != nil {
		fmt.Fprintf(tw, "blob\t%.1f MiB (%d blocks, %.1f MiB of blocks); links %.1f Mbit/s\n",
			float64(b.Size)/(1<<20), b.Blocks, float64(b.Bytes)/(1<<20), b.Bandwidth*8/1e6)
		for _, f := range []BlobFetch{b.One, b.Many} {
			fmt.Fprintf(tw, "fetch from %d\t%.2f s virtual, %.2f MiB/s, %.0f%% of the links' capacity; shares %.2f\n",
				f.Seeders, f.VirtualS, f.MiBps, 100*f.OfCapacity, f.PerSeeder)
		}
		fmt.Fprintf(tw, "ratio\t%.2f× faster from %d seeders than from 1\n", b.Ratio, b.Many.Seeders)
	}
	if m := r.Messages; m != nil {
		fmt.Fprintf(tw, "people\t%d (%d devices), %d pairs talking\n", m.People, m.Devices, m.Pairs)
		fmt.Fprintf(tw, "messages\t%d sends, %d delivered (%d retries), %d pending (delivered by a courier), %d texts never delivered\n", m.Sent, m.Delivered, m.Retries, m.Pending, m.Undelivered)
		fmt.Fprintf(tw, "checks\t%d duplicates, %d order violations, %d missing, %d unknown; %d acknowledgements lost\n", m.Duplicates, m.OrderViolations, m.Missing, m.Unknown, m.AckLost)
		fmt.Fprintf(tw, "delivery\tp50 %.1f ms  p99 %.1f ms (virtual)\n", m.LatencyP50Ms, m.LatencyP99Ms)
		fmt.Fprintf(tw, "faults\t%d partitions, %d crashes; every device whole %.1f ms after the last send\n", m.Partitions, m.Crashes, m.ConvergedMs)
	}
	if c := r.Cell; c != nil {
		fmt.Fprintf(tw, "liveness\tdetect p99 %.1f ms; %d false failures; %d suspicions on a lost connection (%d left to the probes)\n", c.DetectP99Ms, c.FalseFailures, c.SuspectedLost, c.LostUnknown)
	}
	if p := r.People; p != nil {
		p.writeText(tw)
	}
	if r.PeakHeap > 0 {
		fmt.Fprintf(tw, "peak heap\t%.1f MiB (%.1f KiB per node); live %.1f MiB (%.1f KiB per node)\n",
			float64(r.PeakHeap)/(1<<20), float64(r.PeakHeap)/1024/float64(max(r.Nodes, 1)),
			float64(r.PeakLiveHeap)/(1<<20), float64(r.PeakLiveHeap)/1024/float64(max(r.Nodes, 1)))
	}
	if r.Goroutines > 0 {
		fmt.Fprintf(tw, "goroutines\t%d at the end (%d per node)\n", r.Goroutines, r.Goroutines/max(r.Nodes, 1))
	}
	if len(r.Failures) > 0 {
		fmt.Fprintf(tw, "failures\t%s\n", strings.Join(r.Failures, "\n\t"))
	}
	return tw.Flush()
}

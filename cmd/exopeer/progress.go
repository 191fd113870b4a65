package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a bar of bytes on stderr, when stderr is a terminal, and
// nothing otherwise: a bar never goes to stdout, nor into a file or a
// pipe. Its methods are safe on a nil *progress; they are not safe for
// concurrent use.
type progress struct {
	bar *progressbar.ProgressBar
	max int64
}

// isTerminal tells a writer that is a terminal.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns a bar of total bytes (0 or less: unknown, a
// spinner) described by what, on w if w is a terminal; else nil.
func newProgress(w io.Writer, what string, total int64) *progress {
	if !isTerminal(w) {
		return nil
	}
	max := total
	if max <= 0 {
		max = -1
	}
	return &progress{max: max, bar: progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

// set shows done bytes of total (0: unchanged).
func (p *progress) set(done, total int64) {
	if p == nil {
		return
	}
	if total > 0 && total != p.max {
		p.max = total
		p.bar.ChangeMax64(total)
	}
	if p.max > 0 {
		done = min(done, p.max)
	}
	_ = p.bar.Set64(done)
}

// describe changes the bar's words.
func (p *progress) describe(what string) {
	if p != nil {
		p.bar.Describe(what)
	}
}

// done ends the bar: full on success, cleared on failure.
func (p *progress) done(ok bool) {
	if p == nil {
		return
	}
	if ok {
		_ = p.bar.Finish()
		return
	}
	_ = p.bar.Clear()
	_ = p.bar.Exit()
}

// reader counts what is read through it on the bar.
func (p *progress) reader(r io.Reader) io.Reader {
	if p == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
	n int64
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.n += int64(n)
	r.p.set(r.n, 0)
	return n, err
}

// sizeText is a size for a person: bytes, KiB, MiB, GiB.
func sizeText(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	}
}

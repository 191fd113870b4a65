// Package leaktest checks, for a whole test binary, that no goroutine
// outlives the tests: every part of exopeer must stop what it started.
package leaktest

import (
	"fmt"
	"os"
	"time"

	"go.uber.org/goleak"
)

// leveldbLinger covers goleveldb v1.0.0's (*DB).mpoolDrain, which stops up
// to a second after DB.Close. The check waits it out rather than ignoring
// the function, which would hide a datastore left open.
const leveldbLinger = 1100 * time.Millisecond

// VerifyTestMain runs the tests of m and fails the binary if goroutines
// remain afterwards. Call it from TestMain with its *testing.M, or with a
// wrapper whose Run does more around the tests.
func VerifyTestMain(m goleak.TestingM, opts ...goleak.Option) {
	goleak.VerifyTestMain(lingerM{m}, opts...)
}

type lingerM struct{ m goleak.TestingM }

func (l lingerM) Run() int {
	code := l.m.Run()
	time.Sleep(leveldbLinger)
	return code
}

// M wraps m for a TestMain that hands its *testing.M to another runner
// (testscript.Main): its Run runs the tests, then fails the binary if
// goroutines remain, as VerifyTestMain does.
func M(m goleak.TestingM, opts ...goleak.Option) interface{ Run() int } {
	return checkM{lingerM{m}, opts}
}

type checkM struct {
	m    lingerM
	opts []goleak.Option
}

func (c checkM) Run() int {
	code := c.m.Run()
	if code != 0 {
		return code
	}
	if err := goleak.Find(c.opts...); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
		return 1
	}
	return 0
}

package peer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The registry's tests use fake parts that record every call in one
// journal, so that the order of calls across parts is what is checked.

type journal struct{ calls []string }

func (j *journal) note(format string, args ...any) {
	j.calls = append(j.calls, fmt.Sprintf(format, args...))
}

// fakePart is a Start/Close part; startErr and closeErr are what its
// methods return.
type fakePart struct {
	j                  *journal
	name               string
	startErr, closeErr error
}

func (p *fakePart) Start(ctx context.Context) error {
	p.j.note("start %s", p.name)
	return p.startErr
}

func (p *fakePart) Close() error {
	p.j.note("close %s", p.name)
	return p.closeErr
}

// fakeRunner is a Run part: it notes when it runs and when it returns,
// and returns runErr, when its context ends or at once if early is set.
type fakeRunner struct {
	j       *journal
	name    string
	runErr  error
	early   bool
	running chan struct{} // closed once Run has begun
}

func (r *fakeRunner) Run(ctx context.Context) error {
	close(r.running)
	if !r.early {
		<-ctx.Done()
	}
	return r.runErr
}

func newRunner(j *journal, name string, runErr error, early bool) *fakeRunner {
	return &fakeRunner{j: j, name: name, runErr: runErr, early: early, running: make(chan struct{})}
}

func TestPartsStartInOrderCloseInReverse(t *testing.T) {
	j := new(journal)
	ps := newParts(nil)
	for _, name := range []string{"host", "exchange", "discovery"} {
		ps.add(name, &fakePart{j: j, name: name})
	}
	if err := ps.start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A second batch, registered after the first started, starts after it
	// and is stopped before it.
	for _, name := range []string{"dht", "cell"} {
		ps.add(name, &fakePart{j: j, name: name})
	}
	if err := ps.start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := ps.close(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"start host", "start exchange", "start discovery", "start dht", "start cell",
		"close cell", "close dht", "close discovery", "close exchange", "close host",
	}
	if diff := cmp.Diff(want, j.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// Close is idempotent: nothing is closed twice.
	if err := ps.close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if diff := cmp.Diff(want, j.calls); diff != "" {
		t.Errorf("calls after a second close (-want +got):\n%s", diff)
	}
	if err := ps.start(t.Context()); !errors.Is(err, errPartsClosed) {
		t.Errorf("start after close = %v, want errPartsClosed", err)
	}
}

func TestPartsStartFailure(t *testing.T) {
	boom := errors.New("boom")
	closeErr := errors.New("stuck")
	tests := []struct {
		name      string
		parts     []*fakePart
		wantCalls []string
		wantErrs  []string // each must appear in the error
	}{
		{
			name: "first part fails",
			parts: []*fakePart{
				{name: "host", startErr: boom}, {name: "exchange"},
			},
			wantCalls: []string{"start host", "close host"},
			wantErrs:  []string{"peer: start host: boom"},
		},
		{
			name: "middle part fails",
			parts: []*fakePart{
				{name: "host"}, {name: "exchange"}, {name: "dht", startErr: boom}, {name: "cell"},
			},
			// The failed part is closed too (its Start may have started
			// something); the part after it is never touched.
			wantCalls: []string{"start host", "start exchange", "start dht", "close dht", "close exchange", "close host"},
			wantErrs:  []string{"peer: start dht: boom"},
		},
		{
			name: "closes after the failure fail too",
			parts: []*fakePart{
				{name: "host", closeErr: closeErr}, {name: "dht", startErr: boom},
			},
			wantCalls: []string{"start host", "start dht", "close dht", "close host"},
			wantErrs:  []string{"peer: start dht: boom", "peer: close host: stuck"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := new(journal)
			ps := newParts(nil)
			for _, p := range tt.parts {
				p.j = j
				ps.add(p.name, p)
			}
			err := ps.start(t.Context())
			if err == nil {
				t.Fatal("start succeeded")
			}
			if !errors.Is(err, boom) {
				t.Errorf("start error %q does not wrap the part's error", err)
			}
			for _, w := range tt.wantErrs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("start error %q does not say %q", err, w)
				}
			}
			if diff := cmp.Diff(tt.wantCalls, j.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			// The registry closed itself: a close now does nothing.
			if err := ps.close(); err != nil {
				t.Errorf("close after a failed start: %v", err)
			}
			if diff := cmp.Diff(tt.wantCalls, j.calls); diff != "" {
				t.Errorf("calls after close (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPartsCloseErrorsNameTheirParts(t *testing.T) {
	j := new(journal)
	ps := newParts(nil)
	errA, errC := errors.New("a failed"), errors.New("c failed")
	ps.add("a", &fakePart{j: j, name: "a", closeErr: errA})
	ps.add("b", &fakePart{j: j, name: "b"})
	ps.add("c", &fakePart{j: j, name: "c", closeErr: errC})
	if err := ps.start(t.Context()); err != nil {
		t.Fatal(err)
	}
	err := ps.close()
	if !errors.Is(err, errA) || !errors.Is(err, errC) {
		t.Fatalf("close = %v, want both parts' errors", err)
	}
	// In the order of the closes: c first.
	if want := "peer: close c: c failed\npeer: close a: a failed"; err.Error() != want {
		t.Errorf("close = %q, want %q", err, want)
	}
	// Every part was closed despite the errors.
	if diff := cmp.Diff([]string{"start a", "start b", "start c", "close c", "close b", "close a"}, j.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestPartsRun(t *testing.T) {
	failed := errors.New("disk gone")
	tests := []struct {
		name    string
		runErr  error
		early   bool   // Run returns before close
		wantErr string // "" for none
	}{
		{name: "stops when cancelled", runErr: nil},
		{name: "returns the cancellation", runErr: context.Canceled},
		{name: "returns the cancellation wrapped", runErr: fmt.Errorf("serve: %w", context.Canceled)},
		{name: "fails when stopped", runErr: failed, wantErr: "peer: close store: disk gone"},
		{name: "fails on its own", runErr: failed, early: true, wantErr: "peer: close store: disk gone"},
		{name: "cancelled on its own", runErr: context.Canceled, early: true, wantErr: "peer: close store: context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := new(journal)
			ps := newParts(nil)
			r := newRunner(j, "store", tt.runErr, tt.early)
			ps.add("host", &fakePart{j: j, name: "host"})
			ps.addRun("store", r)
			ps.add("cell", &fakePart{j: j, name: "cell"})
			if err := ps.start(t.Context()); err != nil {
				t.Fatal(err)
			}
			<-r.running
			err := ps.close()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("close = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("close = %v, want %q", err, tt.wantErr)
			}
			// The Run part stops at its place: after cell, before host.
			if diff := cmp.Diff([]string{"start host", "start cell", "close cell", "close host"}, j.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPartsRunStoppedOnFailure: a Run part started before a part that
// fails is stopped (its context cancelled, its goroutine waited for).
func TestPartsRunStoppedOnFailure(t *testing.T) {
	j := new(journal)
	ps := newParts(nil)
	r := newRunner(j, "store", nil, false)
	ps.addRun("store", r)
	ps.add("dht", &fakePart{j: j, name: "dht", startErr: errors.New("no table")})
	err := ps.start(t.Context())
	if err == nil || err.Error() != "peer: start dht: no table" {
		t.Fatalf("start = %v", err)
	}
	select {
	case <-r.running:
	default:
		t.Fatal("the Run part never ran")
	}
	// close waited for Run to return, so done is closed by now.
	select {
	case <-ps.list[0].done:
	default:
		t.Error("the Run part still runs after the failed start")
	}
}

// TestPartsRunNotStartedOnCancelledContext: a start whose context has
// ended starts no Run part and reports it, naming the part.
func TestPartsRunNotStartedOnCancelledContext(t *testing.T) {
	j := new(journal)
	ps := newParts(nil)
	ps.add("host", &fakePart{j: j, name: "host"})
	ps.addRun("store", newRunner(j, "store", nil, false))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := ps.start(ctx)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "peer: start store: ") {
		t.Errorf("start = %v, want the cancellation, naming store", err)
	}
	if diff := cmp.Diff([]string{"start host", "close host"}, j.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestPartsRegistrationMistakesPanic(t *testing.T) {
	tests := []struct {
		name string
		do   func(ps *parts)
	}{
		{"same name twice", func(ps *parts) {
			ps.add("dht", &fakePart{j: new(journal), name: "dht"})
			ps.addRun("dht", newRunner(new(journal), "dht", nil, false))
		}},
		{"after close", func(ps *parts) {
			_ = ps.close()
			ps.add("dht", &fakePart{j: new(journal), name: "dht"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.do(newParts(nil))
		})
	}
}

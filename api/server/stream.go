package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/exopeer/exopeer/api"
)

// progressEvery is how often, at most, a long operation (an import, a
// fetch) sends a line of progress.
const progressEvery = 100 * time.Millisecond

// progressStream answers a long operation as NDJSON: a line of progress
// now and then, then a last line, the result or the error. It begins the
// answer only with its first line, so that an operation that fails before
// any progress (a bad request, a node in no cell) is answered with the
// problem's status, not 200.
//
// update may be called from any goroutine; finish once, from the
// handler's, after the operation returned.
type progressStream struct {
	w http.ResponseWriter

	mu  sync.Mutex
	cur any // the latest progress line not yet sent; nil: none

	// send is set by the first line; the loop's, then finish's once the
	// loop ended.
	send func(v any) bool
	// lineErr, set by the handler before finish, makes an error a line
	// even when no line went yet: it carries a partial result.
	lineErr bool
	stop    chan struct{}
	done    chan struct{}
}

func newProgressStream(w http.ResponseWriter) *progressStream {
	s := &progressStream{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *progressStream) loop() {
	defer close(s.done)
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.flush()
	}
}

// flush sends the latest progress line, if a new one came.
func (s *progressStream) flush() {
	s.mu.Lock()
	l := s.cur
	s.cur = nil
	s.mu.Unlock()
	if l == nil {
		return
	}
	if s.send == nil {
		s.send = ndjson(s.w)
	}
	s.send(l)
}

// update sets the progress line to send next.
func (s *progressStream) update(l any) {
	s.mu.Lock()
	s.cur = l
	s.mu.Unlock()
}

// finish stops the progress and sends the last line: last when err is
// nil, else the problem of err (with status, when no line went yet; as
// the line onErr makes, after).
func (s *progressStream) finish(last any, err error, kind func(error) (int, api.ProblemType), onErr func(*api.Problem) any) {
	close(s.stop)
	<-s.done
	if err != nil {
		status, typ := kind(err)
		if s.send == nil && !s.lineErr {
			writeProblem(s.w, status, typ, err.Error())
			return
		}
		last = onErr(&api.Problem{Type: typ, Title: titles[typ], Status: status, Detail: err.Error()})
	}
	if s.send == nil {
		s.send = ndjson(s.w)
	}
	s.send(last)
}

// streamContext is the context of a long request: it ends with the
// request, or when the API begins to close. The caller calls the cancel
// function.
func (rt *routes) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(rt.streams, cancel)
	return ctx, func() { stop(); cancel() }
}

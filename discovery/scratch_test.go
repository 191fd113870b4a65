package discovery

import (
	"fmt"
	"log/slog"
	"os"
	"flag"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
)

func TestScratchPreStart(t *testing.T) {
	bh := newHost(t)
	bh.SetStreamHandler(ProtocolPing, servePing)
	h := newHost(t)
	if err := h.Connect(t.Context(), info(bh)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // scratch only: let pushes settle
	sub, err := h.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerProtocolsUpdated), new(event.EvtPeerConnectednessChanged)})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	go func() {
		for ev := range sub.Out() {
			switch e := ev.(type) {
			case event.EvtPeerIdentificationCompleted:
				fmt.Fprintf(os.Stderr, "SUB "+"%v idcompleted %v %v", time.Now().Format("05.000"), e.Conn.Stat().Direction, e.Conn.ID())
			default:
				fmt.Fprintf(os.Stderr, "SUB "+"%v %T %+v", time.Now().Format("05.000"), ev, ev)
			}
		}
	}()
	t.Logf("%v start", time.Now().Format("05.000"))
	if *flagStep >= 1 {
		h.SetStreamHandler(ProtocolPing, servePing)
	}
	time.Sleep(300 * time.Millisecond)
	t.Logf("%v svc", time.Now().Format("05.000"))
	svc, _ := New(h, testConfig(), nil, nil, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { svc.Close() })
	svc.Start(t.Context())
	time.Sleep(300 * time.Millisecond)
	t.Logf("%v connect", time.Now().Format("05.000"))
	if *flagStep >= 2 {
		t.Log(svc.Connect(t.Context(), info(bh)))
	} else {
		svc.Found(SourceManual, info(bh))
	}
	time.Sleep(1 * time.Second)
	t.Logf("conns %d; peers %v", len(h.Network().ConnsToPeer(bh.ID())), svc.Peers())
}
var flagStep = flag.Int("step", 0, "")

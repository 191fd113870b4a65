package main

import (
	"strings"
	"testing"

	"github.com/exopeer/exopeer/api"
)

// TestPathText: the peers table says direct or relayed, through which
// relay, and a punch's outcome when it matters.
func TestPathText(t *testing.T) {
	for _, c := range []struct {
		v    api.PeerView
		want string
	}{
		{api.PeerView{Path: api.PathDirect}, "direct"},
		{api.PeerView{Path: api.PathDirect, Punch: &api.PunchView{Ok: true}}, "direct (punched)"},
		{api.PeerView{Path: api.PathRelayed, Relay: "12D3KooWR"}, "relayed via 12D3KooWR"},
		{api.PeerView{Path: api.PathRelayed, Relay: "12D3KooWR", Punch: &api.PunchView{Error: "all retries failed"}},
			"relayed via 12D3KooWR, punch failed: all retries failed"},
		{api.PeerView{Path: api.PathNone}, "none"},
	} {
		if got := pathText(c.v); got != c.want {
			t.Errorf("pathText(%+v) = %q, want %q", c.v, got, c.want)
		}
	}
}

// TestPathTextOneLine: a failed punch's error is go-libp2p's, often a
// swarm DialError, which lists each address tried on a line of its own
// ("failed to dial …:\n  * [/ip4/…] …"). The peers table keeps one line
// per peer.
func TestPathTextOneLine(t *testing.T) {
	dialErr := "failed to dial 12D3KooWA: all dials failed\n  * [/ip4/1.2.3.4/udp/4001/quic-v1] timeout: no recent network activity\n  * [/ip4/10.0.0.2/udp/4001/quic-v1] timeout"
	v := api.PeerView{Peer: "12D3KooWA", Path: api.PathRelayed, Relay: "12D3KooWR", Punch: &api.PunchView{Error: dialErr}}
	var b strings.Builder
	if err := printPeers(&b, []api.PeerView{v}); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n"); len(lines) != 2 {
		t.Errorf("the peers table for one peer has %d lines, want a header and one row:\n%s", len(lines), b.String())
	}
}

// TestPathTextNoControl: a punch error may end in the remote's QUIC close
// reason, text the peer chose; the peers table writes no control
// characters of it to the terminal.
func TestPathTextNoControl(t *testing.T) {
	v := api.PeerView{Path: api.PathRelayed, Punch: &api.PunchView{Error: "Application error 0x0 (remote): \x1b[2J\x1b]0;owned\x07"}}
	if got := pathText(v); strings.ContainsAny(got, "\x1b\x07") {
		t.Errorf("pathText = %q: control characters from the punch error", got)
	}
}

package main

import (
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

package doctor

import (
	"strings"
	"testing"
)

// TestPunchErrorOneSafeLine: the last punch's error is go-libp2p's text:
// a swarm DialError puts each address on a line of its own, and a QUIC
// close from the remote ("Application error 0x0 (remote): …") carries
// the peer's own reason phrase, any bytes it likes. The finding is one
// line, printed to a terminal (`exopeer doctor`), and a peer's text
// writes no control characters there (names are quoted for the same
// reason: "bob\x1b[2J").
func TestPunchErrorOneSafeLine(t *testing.T) {
	punch := "failed to dial B:\n  * [/ip4/198.51.100.3/udp/4777/quic-v1] Application error 0x0 (remote): \x1b[2J\x1b]0;owned\x07"
	for _, f := range Diagnose(Facts{Conns: []Conn{{Peer: "B", Kind: "member", Relay: "R", Punch: punch}}}) {
		if f.Check != CheckPeers {
			continue
		}
		if strings.ContainsAny(f.Say, "\n\r\x1b\x07") {
			t.Errorf("finding %q: a line break or control character from the punch error", f.Say)
		}
	}
}

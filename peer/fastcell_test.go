package peer

import (
	"time"

	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/gossip"
)

// fastCell probes every 200 ms, so that the test is quick and memberlist's
// last probe is over before the leak check.
var fastCell = cell.Config{Gossip: gossip.Timing{ProbeInterval: 200 * time.Millisecond}, MaintainInterval: 200 * time.Millisecond}

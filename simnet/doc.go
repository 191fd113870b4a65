// Package simnet runs whole exopeer networks in one process: complete
// peer.Nodes, the very code `exopeer run` runs, on a simulated libp2p
// network (go-libp2p's mocknet), inside a testing/synctest bubble so that
// protocol time is virtual — minutes of protocol time run in seconds.
//
// A Net builds nodes from a seed (keys, topology and every random choice of
// a scenario come from it), joins them by links with a latency that may
// depend on the two nodes and an optional bandwidth, and injects faults:
// partitions and heals, crashes and restarts that keep the node's data,
// nodes that join late. Segments simulate LANs on which LAN discovery works
// as mDNS does on a real one.
//
// Scenarios (ScenarioDHT, ...) run a workload and return a Report;
// RunInBubble runs one inside a synctest bubble under a test, and Main runs
// one from a program, which is how `exopeer-sim` measures the system. See
// docs/simnet.md.
package simnet

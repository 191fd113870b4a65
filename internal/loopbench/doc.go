// Package loopbench measures the fetch of a blob, and messages, between
// two real exopeer processes on this host's loopback: the built binary
// (netnstest.Binary), two data dirs, mDNS off, the second node
// bootstrapped to the first, both in one cell (for messages, each in a
// cell of its own, the cells contacts). It holds benchmarks, which run
// under -bench and never as tests, and one test of real processes,
// TestRestoredNodeNeverReusesKeys (a node whose data dir is restored from
// an older copy; skipped with -short):
//
//	go test ./internal/loopbench -run '^$' -bench . -benchtime 1x [-loopbench.mib 1024] [-loopbench.kubo /path/to/ipfs] [-loopbench.transport any|tcp|quic]
//
// The figures (MiB/s, and CPU-seconds of both processes per GiB, read from
// /proc/PID/stat) are in blocks/README.md. BenchmarkFetchFloor measures,
// with the standard library alone, the part of those CPU-seconds that no
// protocol can avoid on this machine (reading, TLS at both ends, SHA-256,
// writing).
//
// BenchmarkMessagesTwoProcesses measures messages between two cells that
// are contacts, one node each: latency p50 and p99 of sequential sends,
// then messages/s of parallel senders:
//
//	go test ./internal/loopbench -run '^$' -bench Messages -benchtime 1x [-loopbench.latency 500] [-loopbench.sustain 4000] [-loopbench.senders 16]
package loopbench

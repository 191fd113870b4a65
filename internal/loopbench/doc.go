// Package loopbench measures the fetch of a blob between two real exopeer
// processes on this host's loopback: the built binary (netnstest.Binary),
// two data dirs, mDNS off, the second node bootstrapped to the first,
// both in one cell. It holds benchmarks only; they run under -bench and
// never as tests:
//
//	go test ./internal/loopbench -run '^$' -bench . -benchtime 1x [-loopbench.mib 1024] [-loopbench.kubo /path/to/ipfs] [-loopbench.transport any|tcp|quic]
//
// The figures (MiB/s, and CPU-seconds of both processes per GiB, read from
// /proc/PID/stat) are in blocks/README.md. BenchmarkFetchFloor measures,
// with the standard library alone, the part of those CPU-seconds that no
// protocol can avoid on this machine (reading, TLS at both ends, SHA-256,
// writing).
package loopbench

// Package storebench measures the datastores a node could keep blob
// blocks in (go-ds-leveldb, go-ds-flatfs, go-ds-pebble) with blocks of
// 256 KiB and 1 MiB: batched writes made durable at the end of each batch,
// reads in random order, batched deletes, and the disk space used after
// writing 1 GiB and after deleting half of it. It holds only benchmarks
// (so that pebble stays a dependency of tests alone); blocks/README.md
// gives the figures, the command and the choice they led to.
package storebench

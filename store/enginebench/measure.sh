#!/bin/sh
# measure.sh [ENTITIES]: the figures the Go benchmarks cannot give from inside one test
# binary. For the baseline program and each driver's tiny program: the cold build time
# (empty GOCACHE; modules already downloaded) and the binary size; then, in clean
# processes, each driver populates a database with ENTITIES entities (default 100000),
# its size on disk, and three runs of open + first query with the idle memory after.
# Run from store/enginebench on an otherwise idle machine.
set -eu
n=${1:-100000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

for p in baseline ncruces modernc; do
	cache=$(mktemp -d)
	start=$(date +%s%N)
	GOCACHE=$cache go build -o "$out/$p" "./cmd/$p"
	echo "$p: cold build $(ms "$start") ms, binary $(stat -c %s "$out/$p") bytes"
	rm -rf "$cache"
done
"$out/baseline"
for p in ncruces modernc; do
	"$out/$p" -populate "$n" "$out/$p.db"
	echo "$p: database $(stat -c %s "$out/$p.db") bytes for $n entities"
	for i in 1 2 3; do
		start=$(date +%s%N)
		"$out/$p" "$out/$p.db"
		echo "$p: process run $(ms "$start") ms"
	done
done

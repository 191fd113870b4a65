#!/usr/bin/env bash
# fuzz.sh: run every fuzz target of the module (each `func FuzzX` in a
# _test.go file) for FUZZTIME each, and print one line per target with the
# executions it made, the new interesting inputs it found and its result,
# then a summary. Exits 1 if any target failed (a crash, a panic or a broken
# property: the failing input is written under the package's
# testdata/fuzz/FuzzX/ by go test itself, ready to commit as a regression).
#
# Usage, from the repository root:
#   bash scripts/fuzz.sh                  # 15 s a target (what CI runs)
#   FUZZTIME=10m bash scripts/fuzz.sh     # the longer opt-in run
#   FUZZ_ONLY='chain|cell' bash scripts/fuzz.sh   # packages matching a regexp
#   FUZZ_TARGETS='Decode' bash scripts/fuzz.sh     # targets matching a regexp
#   bash scripts/fuzz.sh --keep 20        # then copy up to 20 of the inputs the
#                                         # fuzzer found interesting (smallest
#                                         # first) into testdata/fuzz/FuzzX/, so
#                                         # that they become seed corpus files
#
# Every package keeps its seed corpus in testdata/fuzz/FuzzX/ (go test runs
# those inputs as ordinary tests in `go test ./...`); the generated corpus
# in $GOCACHE/fuzz is the fuzzer's working set and is not committed unless
# --keep is given.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
if [ "${1:-}" = "--keep" ]; then
	keep=${2:?--keep needs a count}
fi
fuzztime=${FUZZTIME:-15s}
# Minimizing a new interesting input may take 60 s each by default, which
# made a 15 s run of a target with large inputs (message/mailbox's 16 KiB
# values) last minutes; 5 s each keeps a run near its fuzztime.
minimize=${FUZZMINIMIZETIME:-5s}
only=${FUZZ_ONLY:-.}
targets=${FUZZ_TARGETS:-.}
cache=$(go env GOCACHE)/fuzz
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# count DIR: the number of files in DIR, 0 if it does not exist.
count() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }

failed=0
total=0
summary=()
for pkg in $(go list ./... | grep -E "$only"); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u | grep -E "$targets" || true); do
		total=$((total + 1))
		echo "-- $target in $pkg ($fuzztime)"
		before=$(count "$cache/$pkg/$target")
		result=ok
		if ! go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" >"$log" 2>&1; then
			if grep -q 'context deadline exceeded' "$log" && ! grep -qE 'Failing input written|panic:|hung or terminated' "$log"; then
				# Go's fuzz coordinator (before Go 1.27, go.dev/issue/75804)
				# can report its own -fuzztime deadline as a failure when a
				# worker is still busy at that moment; it writes no failing
				# input, and it is no finding.
				result="ok (stopped at its deadline while busy)"
			else
				result=FAIL
				failed=$((failed + 1))
				tail -n 30 "$log"
			fi
		fi
		execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || true)
		after=$(count "$cache/$pkg/$target")
		line=$(printf '%-28s %-48s execs %-12s new inputs %-6s %s' "$target" "${pkg#github.com/exopeer/exopeer/}" "${execs:-0}" "$((after - before))" "$result")
		echo "$line"
		summary+=("$line")
		if [ "$keep" -gt 0 ] && [ -d "$cache/$pkg/$target" ]; then
			mkdir -p "$dir/testdata/fuzz/$target"
			# Smallest first: small inputs are the cheapest seeds to run and read.
			find "$cache/$pkg/$target" -type f -printf '%s %p\n' | sort -n | head -n "$keep" |
				while read -r _ f; do cp -n "$f" "$dir/testdata/fuzz/$target/"; done
		fi
	done
done

echo "== fuzz summary ($total targets, $fuzztime each)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -gt 0 ]; then
	echo "fuzz: $failed of $total targets failed" >&2
	exit 1
fi

#!/usr/bin/env bash
# gencheck.sh: fail if the code generated from the control API's OpenAPI
# document (api/openapi.yaml) is stale, that is if `go generate` on api/ and
# client/ changes or adds a file. Run from anywhere in the repository; CI
# runs it. It regenerates in place: on failure, commit what it wrote.
set -euo pipefail
cd "$(dirname "$0")/.."

go generate ./api/... ./client/...

status=0
if ! git diff --exit-code --stat -- api client; then
	echo "gencheck: the generated code above is stale: run go generate ./api/... ./client/... and commit" >&2
	status=1
fi
new=$(git status --porcelain --untracked-files=all -- api client | grep '^??' || true)
if [ -n "$new" ]; then
	echo "$new" >&2
	echo "gencheck: go generate made files that are not committed" >&2
	status=1
fi
[ $status -eq 0 ] && echo "gencheck: generated code is up to date"
exit $status

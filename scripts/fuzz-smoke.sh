#!/usr/bin/env bash
# Runs every fuzz target of the module for a short while (FUZZTIME, 3s by
# default), one after another. Targets are found, not listed: every
# `func FuzzX(` in a package's test files (as `go list` sees them for this
# platform), so a new target is picked up without touching this script.
#
# A failure leaves the crasher in the package's testdata/fuzz/FuzzX/; commit
# it with the fix, and every `go test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3s}

# "import/path file" for every test file of every package.
files=$($GO list -f '{{$p := .ImportPath}}{{$d := .Dir}}{{range .TestGoFiles}}{{$p}} {{$d}}/{{.}}
{{end}}{{range .XTestGoFiles}}{{$p}} {{$d}}/{{.}}
{{end}}' ./...)

targets=()
while read -r pkg file; do
	[ -n "$file" ] || continue
	for fn in $(grep -ho '^func Fuzz[A-Za-z0-9_]*(' "$file" | sed 's/^func //; s/($//'); do
		targets+=("$pkg $fn")
	done
done <<<"$files"

if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz-smoke: no fuzz targets found" >&2
	exit 1
fi

failed=()
for t in "${targets[@]}"; do
	read -r pkg fn <<<"$t"
	echo "fuzz-smoke: $fn ($pkg, $FUZZTIME)"
	if ! $GO test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "$pkg"; then
		failed+=("$fn ($pkg)")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz-smoke: ${#failed[@]} of ${#targets[@]} targets failed:" >&2
	printf '  %s\n' "${failed[@]}" >&2
	echo "fuzz-smoke: the inputs are in each package's testdata/fuzz/; fix the code and commit them" >&2
	exit 1
fi
echo "fuzz-smoke: ${#targets[@]} targets passed"

#!/usr/bin/env bash
# What the open dashboard window costs: the summed PSS of `lastseen` and its
# WebKit processes next to an empty Wails window (lastseen-emptywindow, same
# size and options) started in the same run on the same private X server;
# CPU of each while untouched; then the agent alone once both are closed,
# and no process of either left behind. Prints a table with PASS/FAIL and
# exits non-zero on a missed target (PSS ratio ≤ 1.15, CPU ≤ 1 % of a core).
#   scripts/bench-window.sh                          15 s settle, 60 s untouched, 30 s agent alone
#   scripts/bench-window.sh --settle 5s --measure 20s --after 10s
# Uses build/bin (make build; LASTSEEN_BIN_DIR overrides) and builds
# lastseen-emptywindow there. Needs: Go, the GTK/WebKit development
# packages, Xvfb, xdotool, dbus (dbus-daemon, dbus-run-session), imagemagick.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
bin=${LASTSEEN_BIN_DIR:-build/bin}
settle=15s measure=60s after=30s
while [ $# -gt 0 ]; do
	case "$1" in
	--settle) settle=$2; shift 2 ;;
	--measure) measure=$2; shift 2 ;;
	--after) after=$2; shift 2 ;;
	*) echo "bench-window: unknown argument $1 (--settle D, --measure D, --after D)" >&2; exit 2 ;;
	esac
done

for b in lastseen-agent lastseen; do
	if [ ! -x "$bin/$b" ]; then
		echo "bench-window: $bin/$b is missing; run \`make build\` first" >&2
		exit 1
	fi
done
for tool in Xvfb xdotool dbus-daemon dbus-run-session import; do
	command -v "$tool" >/dev/null || { echo "bench-window: $tool is not installed" >&2; exit 1; }
done

# The yardstick is built the way `make build` builds the window.
"$GO" build -tags desktop,production,webkit2_41 -ldflags '-s -w' -o "$bin/lastseen-emptywindow" ./measure/cmd/lastseen-emptywindow

LASTSEEN_BIN_DIR=$(cd "$bin" && pwd)
export LASTSEEN_BIN_DIR
exec dbus-run-session -- env LASTSEEN_WINDOW_COST=1 LASTSEEN_BENCH_SETTLE="$settle" \
	LASTSEEN_BENCH_MEASURE="$measure" LASTSEEN_BENCH_AFTER="$after" \
	"$GO" test -count=1 -v -timeout 30m -run '^TestWindowCost$' ./app/e2e/

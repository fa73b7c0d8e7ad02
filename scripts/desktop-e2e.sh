#!/usr/bin/env bash
# The desktop stage of `make test`: the built lastseen-agent and lastseen
# window (and lastseend, for remote mode) run for real on a private X server
# (the test starts its own Xvfb) with a private session bus. The tray opens
# the dashboard, real input turns the user active and then idle (read from
# the window's title), screenshots land in app/e2e/screenshots/, and closing
# the window leaves the agent beating with nothing else behind. See app/e2e.
#   scripts/desktop-e2e.sh            uses build/bin (make build)
#   LASTSEEN_BIN_DIR=DIR scripts/desktop-e2e.sh
# Needs: Go, Xvfb (xvfb), xdotool, dbus-daemon and dbus-run-session (dbus),
# import (imagemagick). Exits non-zero when a binary, a tool or a check is
# missing or fails.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
bin=${LASTSEEN_BIN_DIR:-build/bin}

status=0
for b in lastseen-agent lastseen lastseend; do
	if [ ! -x "$bin/$b" ]; then
		echo "desktop-e2e: $bin/$b is missing; run \`make build\` first" >&2
		status=1
	fi
done
for tool in Xvfb xdotool dbus-daemon dbus-run-session import; do
	if ! command -v "$tool" >/dev/null; then
		echo "desktop-e2e: $tool is not installed (\`make deps-test\` installs it)" >&2
		status=1
	fi
done
[ "$status" -eq 0 ] || exit "$status"

LASTSEEN_BIN_DIR=$(cd "$bin" && pwd)
export LASTSEEN_BIN_DIR
exec dbus-run-session -- env LASTSEEN_DESKTOP_E2E=1 "$GO" test -race -count=1 -v -timeout 10m ./app/e2e/

#!/usr/bin/env bash
# Measures what the always-on lastseen-agent costs: RSS/PSS, CPU and wakeups
# of `lastseen-agent --headless` and of the agent with its tray, each next to
# a bare Go 2 s ticker loop started at the same moment, on a private X server
# (Xvfb) and a private D-Bus session bus. Builds the agent as `make build`
# does, then runs measure/cmd/lastseen-agentcost; every argument goes to it.
#   scripts/bench-agent.sh                    10 minutes, the benchmark
#   scripts/bench-agent.sh --duration 60s     a quick look
#   scripts/bench-agent.sh --strict           exit 1 on a missed target
# Needs: Go, Xvfb (xvfb), dbus-daemon (dbus), ldd; strace (strace) for the
# wake-burst count, installed here as scripts/deps.sh installs packages, or
# skipped with a note when that cannot be done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v strace >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  echo "bench-agent: installing strace (wake bursts are counted with it)"
  export DEBIAN_FRONTEND=noninteractive
  { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends strace; } >/dev/null ||
    echo "bench-agent: could not install strace; wake bursts will not be counted" >&2
fi

GO=${GO:-go}
out=$(mktemp -d "${TMPDIR:-/tmp}/lastseen-bench-agent.XXXXXX")
trap 'rm -rf "$out"' EXIT

version=$(git describe --always --dirty 2>/dev/null || echo dev)
"$GO" build -ldflags "-s -w -X main.version=$version" -o "$out/lastseen-agent" ./app/cmd/lastseen-agent
"$GO" build -ldflags "-s -w" -o "$out/lastseen-agentcost-baseline" ./measure/cmd/lastseen-agentcost/baseline
"$GO" build -o "$out/lastseen-agentcost" ./measure/cmd/lastseen-agentcost

"$out/lastseen-agentcost" --agent "$out/lastseen-agent" --baseline "$out/lastseen-agentcost-baseline" "$@"

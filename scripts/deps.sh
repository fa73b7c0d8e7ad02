#!/usr/bin/env bash
# Installs what building and testing Lastseen needs on Debian/Ubuntu, and
# nothing that is already there. Idempotent; safe to run on every `make`.
#   scripts/deps.sh build   GTK/WebKit dev libraries, Node and npm packages
#   scripts/deps.sh test    the above, plus Xvfb, D-Bus, xdotool, sway, wtype, Chromium, PostgreSQL, ImageMagick,
#                           and the package checkers (lintian, appstreamcli, desktop-file-validate,
#                           systemd-analyze, rpm), and the Windows build's tools and Wine
#   scripts/deps.sh windows the build set, plus mingw-w64 and NSIS (make dist-windows)
set -euo pipefail
cd "$(dirname "$0")/.."

want=(build-essential pkg-config libgtk-3-dev libwebkit2gtk-4.1-dev)
if [ "${1:-build}" = test ]; then
  want+=(xvfb xauth xdotool sway wtype dbus dbus-x11 chromium postgresql imagemagick procps)
  want+=(lintian appstream desktop-file-utils systemd rpm)
  want+=(wine wine64) # make test-wine runs the Windows build under Wine
fi
# The Windows build (make dist-windows): mingw-w64 for cgo SQLite, NSIS.
if [ "${1:-build}" = test ] || [ "${1:-build}" = windows ]; then
  want+=(gcc-mingw-w64-x86-64 nsis)
fi
command -v node >/dev/null 2>&1 || want+=(nodejs npm)

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v go >/dev/null 2>&1; then
  echo "deps: Go is missing: install Go 1.26 (https://go.dev/dl) or any Go >= 1.21, which fetches 1.26 by itself" >&2
  exit 1
fi

# npm packages, exactly as locked; only when the lock changed since the last install.
if [ -f frontend/package-lock.json ]; then
  stamp=frontend/node_modules/.lastseen-lock
  if [ ! -f "$stamp" ] || ! cmp -s frontend/package-lock.json "$stamp"; then
    echo "deps: npm ci"
    (cd frontend && npm ci --no-audit --no-fund)
    cp frontend/package-lock.json "$stamp"
  fi
fi

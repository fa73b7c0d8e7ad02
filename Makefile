# Lastseen. `make run` opens the dashboard (local mode); `make test` runs every test.
# Both install what is missing first (scripts/deps.sh: apt with sudo when not root, npm ci).

GO        ?= go
BIN       := build/bin
DESKTOP   := desktop,production,webkit2_41
GOFLAGS_T ?= -race -count=1 -timeout 20m
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/lastseen/lastseen/internal/version.Version=$(VERSION)
DIST      := build/dist
# Release binaries: position-independent (Debian wants PIE) and free of this
# machine's paths.
DISTFLAGS := -buildmode=pie -trimpath
DISTLD    := $(LDFLAGS) -extldflags=-Wl,-z,relro,-z,now

.PHONY: all deps deps-test frontend build run server test test-go fuzz-smoke test-frontend test-browser \
        test-desktop test-dist lint bench load bench-agent bench-window clean dist dist-linux dist-macos

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

frontend: deps
	cd frontend && npm run build

# The three binaries side by side: the window finds the agent next to itself.
build: frontend
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/lastseend ./backend/cmd/lastseend
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/lastseen-agent ./app/cmd/lastseen-agent
	$(GO) build -tags $(DESKTOP) -ldflags '$(LDFLAGS)' -o $(BIN)/lastseen .

# Release artefacts in build/dist/: the .deb and .rpm, the Windows installer
# and .exe files (build/windows/windows.mk), the macOS bundle layout, and
# SHA256SUMS over all of them. VERSION=1.2.3 overrides the version from git.
dist: dist-linux dist-macos dist-windows
	cd $(DIST) && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum > SHA256SUMS
	@echo "make dist: $(DIST)/SHA256SUMS"

dist-linux: frontend
	rm -rf build/dist-bin/linux && rm -f $(DIST)/lastseen_*.deb $(DIST)/lastseen-*.rpm
	$(GO) build $(DISTFLAGS) -ldflags '$(DISTLD)' -o build/dist-bin/linux/lastseend ./backend/cmd/lastseend
	$(GO) build $(DISTFLAGS) -ldflags '$(DISTLD)' -o build/dist-bin/linux/lastseen-agent ./app/cmd/lastseen-agent
	$(GO) build $(DISTFLAGS) -tags $(DESKTOP) -ldflags '$(DISTLD)' -o build/dist-bin/linux/lastseen .
	$(GO) run ./packaging/cmd/lastseen-pkg linux --version '$(VERSION)' --bin build/dist-bin/linux --out $(DIST)

# The bundle layout only: building and signing the binaries needs a Mac (README).
dist-macos:
	$(GO) run ./packaging/cmd/lastseen-pkg macos --version '$(VERSION)' --out $(DIST)/macos

# Opens the dashboard window in local mode; the window starts the agent.
run: build
	$(BIN)/lastseen

# The service alone, for a browser at http://127.0.0.1:8080.
server: frontend
	$(GO) run ./backend/cmd/lastseend serve --addr 127.0.0.1:8080 --db ./lastseen.db

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags $(DESKTOP) . ./app/... ./measure/cmd/lastseen-emptywindow
	GOOS=windows $(GO) vet ./backend/activity/... ./backend/autostart/... ./backend/sysinfo/... ./app/ ./app/tray/...
	GOOS=darwin CGO_ENABLED=0 $(GO) vet ./backend/activity/... ./backend/autostart/... ./backend/sysinfo/...

test: deps-test build lint test-go fuzz-smoke test-frontend test-browser test-desktop test-dist
	@echo "make test: all suites passed"

test-go:
	$(GO) test $(GOFLAGS_T) ./...

# Every fuzz target for a few seconds each (FUZZTIME=3s); crashers land in
# the package's testdata/fuzz/ and replay in every go test from then on.
fuzz-smoke:
	GO=$(GO) scripts/fuzz-smoke.sh

test-frontend:
	cd frontend && npm test

test-browser:
	cd frontend && LASTSEEND_BIN=$(CURDIR)/$(BIN)/lastseend npm run e2e
	cd frontend && LASTSEEND_BIN=$(CURDIR)/$(BIN)/lastseend node e2e/widget.mjs
	cd frontend && LASTSEEND_BIN=$(CURDIR)/$(BIN)/lastseend node e2e/screens.mjs
	cd frontend && LASTSEEND_BIN=$(CURDIR)/$(BIN)/lastseend LASTSEEN_AGENT_BIN=$(CURDIR)/$(BIN)/lastseen-agent node e2e/people.mjs

test-desktop:
	scripts/desktop-e2e.sh

# `make dist`, then: SHA256SUMS checked; the packages through lintian,
# desktop-file-validate, appstreamcli and systemd-analyze; the .deb installed
# on this machine (as root) and removed; the macOS plists parsed.
test-dist: dist
	LASTSEEN_DIST_DIR=$(CURDIR)/$(DIST) LASTSEEN_DIST_VERSION='$(VERSION)' $(GO) test -count=1 -timeout 5m -run 'TestDist' -v ./packaging/cmd/lastseen-pkg

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./backend/...

load:
	$(GO) run ./measure/cmd/lastseen-load

# The agent's RSS, CPU and wakeups next to a bare Go ticker loop (10 minutes).
bench-agent: build
	scripts/bench-agent.sh

# The open window's memory (PSS, WebKit helpers included) next to an empty Wails window.
bench-window: build
	scripts/bench-window.sh

include build/windows/windows.mk

clean:
	rm -rf $(BIN) $(DIST) build/dist-bin frontend/node_modules
	find frontend/dist -mindepth 1 ! -name .gitkeep -delete

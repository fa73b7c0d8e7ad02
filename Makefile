# Lastseen. `make run` opens the dashboard (local mode); `make test` runs every test.
# Both install what is missing first (scripts/deps.sh: apt with sudo when not root, npm ci).

GO        ?= go
BIN       := build/bin
DESKTOP   := desktop,production,webkit2_41
GOFLAGS_T ?= -race -count=1 -timeout 20m
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)

.PHONY: all deps deps-test frontend build run server test test-go fuzz-smoke test-frontend test-browser \
        test-desktop lint bench load bench-agent bench-window clean

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

test: deps-test build lint test-go fuzz-smoke test-frontend test-browser test-desktop
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

test-desktop:
	scripts/desktop-e2e.sh

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

clean:
	rm -rf $(BIN) frontend/node_modules
	find frontend/dist -mindepth 1 ! -name .gitkeep -delete

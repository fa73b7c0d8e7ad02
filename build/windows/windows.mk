# Windows: the three .exe cross-built with mingw-w64 (cgo SQLite) and the
# NSIS installer, and the smoke test that runs them under Wine. Included by
# the Makefile, which defines GO and VERSION.
#
#   make dist-windows   build/dist/windows/: lastseen.exe, lastseen-agent.exe,
#                       lastseend.exe, Lastseen-Setup-$(VERSION).exe
#   make test-wine      dist-windows, then internal/winetest under Wine

WINDIST   := build/dist/windows
WINCC     ?= x86_64-w64-mingw32-gcc
WINENV    := CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=$(WINCC)
# Icon, manifest and version resource: a pinned tool, run from the module
# proxy like any dependency; its .syso output lives only during the build.
WINRES    := $(GO) run github.com/tc-hib/go-winres@v0.3.3
WINLDFLAGS := -s -w -X github.com/lastseen/lastseen/internal/version.Version=$(VERSION)
# Windows wants a.b.c.d in version resources and the installer: taken from a
# tag-like VERSION (v1.2.3-4-gabc → 1.2.3.0), else 0.0.0.0.
WINNUMVER := $(or $(shell printf '%s' '$(VERSION)' | sed -nE 's/^v?([0-9]+(\.[0-9]+){1,3}).*/\1/p' | awk -F. '{printf "%d.%d.%d.%d", $$1, $$2, $$3, $$4}'),0.0.0.0)
WINSETUP  := $(WINDIST)/Lastseen-Setup-$(VERSION).exe
WINTAGS   := desktop,production

.PHONY: dist-windows test-wine

# winexe NAME, PACKAGE DIR, EXTRA GO FLAGS, EXTRA LDFLAGS: writes the
# package's resource .syso, builds, and removes the .syso whatever happened
# (a stray one is ignored off Windows, but must not be committed).
define winexe
	@syso=$(2)/zz_winres_windows_amd64.syso; trap 'rm -f $$syso' EXIT; \
	$(WINRES) make --in build/windows/$(1).winres.json --arch amd64 --no-suffix --out $$syso \
	  --product-version '$(VERSION)' --file-version '$(WINNUMVER)' && \
	echo "$(WINENV) $(GO) build -trimpath $(3) -ldflags '$(WINLDFLAGS) $(4)' -o $(WINDIST)/$(1).exe ./$(2)" && \
	$(WINENV) $(GO) build -trimpath $(3) -ldflags '$(WINLDFLAGS) $(4)' -o $(WINDIST)/$(1).exe ./$(2)
endef

# The agent and the window are GUI-subsystem programs: started at login
# they flash no console. lastseend is a console program (a service, a
# terminal). The window is Wails' production build; WebView2 replaces
# WebKitGTK, so no webkit2_41 tag.
dist-windows: frontend
	@scripts/deps.sh windows
	@command -v $(WINCC) >/dev/null || { echo "dist-windows: $(WINCC) is missing (Debian package gcc-mingw-w64-x86-64; make deps-test installs it)" >&2; exit 1; }
	@command -v makensis >/dev/null || { echo "dist-windows: makensis is missing (Debian package nsis; make deps-test installs it)" >&2; exit 1; }
	@mkdir -p $(WINDIST) && rm -f $(WINDIST)/Lastseen-Setup-*.exe
	$(call winexe,lastseend,backend/cmd/lastseend,,)
	$(call winexe,lastseen-agent,app/cmd/lastseen-agent,,-H=windowsgui)
	$(call winexe,lastseen,.,-tags $(WINTAGS),-H=windowsgui)
	makensis -V2 -NOCD -DVERSION='$(VERSION)' -DNUMVERSION='$(WINNUMVER)' \
	  -DDIST='$(CURDIR)/$(WINDIST)' -DOUTFILE='$(CURDIR)/$(WINSETUP)' build/windows/installer.nsi
	@echo "dist-windows: $(WINDIST)/ ($(VERSION))"

# The Wine smoke test (internal/winetest). Without Wine it skips, saying
# so; LASTSEEN_REQUIRE_WINE=1 (CI) makes that a failure. (`make test` builds
# dist-windows anyway, for `make dist`.)
test-wine: dist-windows
	LASTSEEN_WINDOWS_DIST='$(CURDIR)/$(WINDIST)' LASTSEEN_WINDOWS_SETUP='$(CURDIR)/$(WINSETUP)' \
	  $(GO) test -tags wine -count=1 -timeout 8m -v ./internal/winetest

# `make test` runs the Wine smoke test after the other suites.
test: test-wine

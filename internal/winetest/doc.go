// Package winetest proves the Windows build under Wine on a Linux machine:
// the programs `make dist-windows` cross-builds and its installer, run in a
// fresh 64-bit Wine prefix on a private X server. Its only test is behind
// the build tag wine and runs from `make test-wine` (part of `make test`):
//
//	LASTSEEN_WINDOWS_DIST=build/dist/windows go test -tags wine ./internal/winetest
//
// Without Wine, mingw-w64 or the built files it skips, saying what is
// missing; LASTSEEN_REQUIRE_WINE=1 (CI) makes that a failure.
//
// What Wine cannot show is the dashboard itself: Wine has no WebView2, so
// the window is proven only as far as asking for it.
package winetest

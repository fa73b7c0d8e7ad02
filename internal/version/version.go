// Package version is the release version every Lastseen binary reports:
// `--version`, the service's start log, the agent's discovery file. The
// build sets it (`make build` and `make dist` pass
// -ldflags "-X github.com/lastseen/lastseen/internal/version.Version=…");
// a plain `go build` falls back to what the Go toolchain recorded.
package version

import "runtime/debug"

// Version is set by the linker. "dev" (or empty) means it was not, and
// String reads the module's build information instead.
var Version = "dev"

// String is the version to show: the one the build set, else the module
// version and VCS revision from the build information, else "dev".
func String() string {
	if Version != "" && Version != "dev" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return fromBuildInfo(info)
}

// fromBuildInfo is "MODULE-VERSION (REVISION[+dirty]) GO-VERSION", with
// whatever of it the toolchain recorded (-buildvcs=false records no revision).
func fromBuildInfo(info *debug.BuildInfo) string {
	v := info.Main.Version
	if v == "" {
		v = "dev"
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " (" + rev + modified + ")"
	}
	if info.GoVersion != "" {
		v += " " + info.GoVersion
	}
	return v
}

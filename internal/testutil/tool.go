package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Variables that, set to 1, turn a missing tool from a skip into a failure:
// CI sets them (.ci/run) so that a broken install cannot pass as a green run
// that tested nothing.
const (
	RequireDesktop  = "LASTSEEN_REQUIRE_DESKTOP"  // Xvfb, dbus-daemon, xdotool
	RequirePostgres = "LASTSEEN_REQUIRE_POSTGRES" // initdb, postgres
	RequireBrowser  = "LASTSEEN_REQUIRE_BROWSER"  // chromium
)

// debianPackage names the package that installs each tool the tests use,
// for the message that says how to get it.
var debianPackage = map[string]string{
	"Xvfb":        "xvfb",
	"dbus-daemon": "dbus",
	"xdotool":     "xdotool",
	"import":      "imagemagick",
	"chromium":    "chromium",
	"initdb":      "postgresql",
	"postgres":    "postgresql",
	"strace":      "strace",
}

// knownDirs are looked in after PATH: a test run with a trimmed PATH (a
// service manager's, a CI step's) still finds what the system installed.
var knownDirs = []string{"/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"}

// LookTool finds the program name on PATH or in the usual system
// directories. Its error says which Debian package installs it.
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range knownDirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	hint := "not on PATH"
	if pkg := debianPackage[name]; pkg != "" {
		hint += fmt.Sprintf(" (Debian package %s; `make deps-test` installs it)", pkg)
	}
	return "", fmt.Errorf("%s is not installed: %s", name, hint)
}

// Tool returns the path of the program name. Without it the test is
// skipped, saying what is missing; with requireEnv (one of the Require
// variables) set to 1 it fails instead.
func Tool(t testing.TB, name, requireEnv string) string {
	t.Helper()
	p, err := LookTool(name)
	if err != nil {
		Missing(t, requireEnv, "%v", err)
	}
	return p
}

// MustTool returns the path of the program name and fails the test without
// it: for runs that were asked for explicitly and would otherwise test
// nothing.
func MustTool(t testing.TB, name string) string {
	t.Helper()
	p, err := LookTool(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Missing ends a test that cannot run on this machine: a skip that says
// why, or a failure when requireEnv is set to 1.
func Missing(t testing.TB, requireEnv, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if requireEnv != "" && os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s=1: this must run here)", msg, requireEnv)
	}
	if requireEnv != "" {
		t.Skipf("skipping: %s (set %s=1 to make this a failure)", msg, requireEnv)
	}
	t.Skipf("skipping: %s", msg)
}

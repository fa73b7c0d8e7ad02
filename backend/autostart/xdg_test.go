//go:build !darwin && !windows

package autostart

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lastseen/lastseen/backend/presence"
)

func testItem(t *testing.T) (Item, string) {
	t.Helper()
	root := t.TempDir()
	return Item{ConfigHome: filepath.Join(root, "home-config"), ConfigDirs: []string{filepath.Join(root, "etc-xdg")}}, root
}

func mustEnabled(t *testing.T, it Item, want bool) {
	t.Helper()
	got, err := it.Enabled()
	if err != nil {
		t.Fatalf("Enabled: %v", err)
	}
	if got != want {
		t.Fatalf("Enabled = %v, want %v", got, want)
	}
}

func TestXDGEnableDisable(t *testing.T) {
	it, _ := testItem(t)
	mustEnabled(t, it, false)

	exe := "/opt/Last Seen/lastseen-agent"
	args := []string{"--data-dir", `/home/ann/data "x"`}
	if err := it.Enable(exe, args); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, it, true)

	p, _ := it.Path()
	if want := filepath.Join(it.ConfigHome, "autostart", "lastseen.desktop"); p != want {
		t.Errorf("Path = %s, want %s", p, want)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(p)
	e, err := parseEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseExec(e.keys["Exec"])
	if err != nil || !slices.Equal(got, append([]string{exe}, args...)) {
		t.Errorf("Exec parses to %q, %v", got, err)
	}
	// No temp files left behind.
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("autostart dir holds %d files, want 1", len(ents))
	}

	// Enabling again replaces, with new arguments.
	if err := it.Enable(exe, []string{"--headless"}); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(p)
	if !strings.Contains(string(data), `Exec="/opt/Last Seen/lastseen-agent" --headless`+"\n") {
		t.Errorf("entry not replaced:\n%s", data)
	}

	if err := it.Disable(); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, it, false)
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("entry still there after Disable: %v", err)
	}
	if err := it.Disable(); err != nil { // twice is fine
		t.Fatal(err)
	}
}

func TestXDGUserSwitchedOff(t *testing.T) {
	for _, line := range []string{"Hidden=true", "X-GNOME-Autostart-enabled=false"} {
		t.Run(line, func(t *testing.T) {
			it, _ := testItem(t)
			if err := it.Enable("/usr/bin/lastseen-agent", nil); err != nil {
				t.Fatal(err)
			}
			p, _ := it.Path()
			data, _ := os.ReadFile(p)
			// What GNOME Tweaks or KDE settings do: rewrite the switch.
			data = []byte(strings.Replace(string(data), "X-GNOME-Autostart-enabled=true", line, 1))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			mustEnabled(t, it, false)
			// Enabling from Lastseen's settings is the user's newer choice.
			if err := it.Enable("/usr/bin/lastseen-agent", nil); err != nil {
				t.Fatal(err)
			}
			mustEnabled(t, it, true)
		})
	}
}

func TestXDGSystemEntryIsMasked(t *testing.T) {
	it, _ := testItem(t)
	sys := filepath.Join(it.ConfigDirs[0], "autostart", DesktopFile)
	if err := os.MkdirAll(filepath.Dir(sys), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sys, desktopEntry("/usr/bin/lastseen-agent", nil), 0o644); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, it, true) // a package installed it for every user

	if err := it.Disable(); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, it, false)
	p, _ := it.Path()
	data, err := os.ReadFile(p)
	if err != nil || !strings.Contains(string(data), "Hidden=true") {
		t.Fatalf("no mask written: %v\n%s", err, data)
	}
	if _, err := os.Stat(sys); err != nil {
		t.Errorf("system entry touched: %v", err)
	}

	if err := it.Enable("/usr/bin/lastseen-agent", nil); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, it, true)
}

func TestXDGBrokenEntry(t *testing.T) {
	it, _ := testItem(t)
	p, _ := it.Path()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("garbage\x00\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := it.Enabled(); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("Enabled on a broken entry: err = %v, want one naming %s", err, p)
	}
	if err := it.Enable("/usr/bin/lastseen-agent", nil); err != nil {
		t.Fatal(err)
	}
	mustEnabled(t, it, true)
}

func TestEnableRejectsBadCommands(t *testing.T) {
	it, root := testItem(t)
	for _, c := range []struct {
		exe  string
		args []string
	}{
		{"", nil},
		{"lastseen-agent", nil},
		{"./bin/lastseen-agent", nil},
		{"/usr/bin/lastseen\x00-agent", nil},
		{"/usr/bin/lastseen-agent", []string{"ok", "bad\x00"}},
	} {
		err := it.Enable(c.exe, c.args)
		if presence.ErrorCode(err) != presence.EINVALID {
			t.Errorf("Enable(%q, %q) = %v, want an invalid error", c.exe, c.args, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "home-config")); !os.IsNotExist(err) {
		t.Errorf("a rejected Enable wrote something: %v", err)
	}
}

func TestXDGDefaultsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("XDG_CONFIG_DIRS", "relative/ignored:"+filepath.Join(dir, "sys"))
	var it Item
	p, err := it.Path()
	if err != nil || p != filepath.Join(dir, "autostart", DesktopFile) {
		t.Errorf("Path = %s, %v", p, err)
	}
	if got := it.configDirs(); !slices.Equal(got, []string{filepath.Join(dir, "sys")}) {
		t.Errorf("configDirs = %q", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "relative")
	t.Setenv("HOME", dir)
	if p, _ := it.Path(); p != filepath.Join(dir, ".config", "autostart", DesktopFile) {
		t.Errorf("Path with a relative XDG_CONFIG_HOME = %s", p)
	}
	t.Setenv("XDG_CONFIG_DIRS", "")
	if got := it.configDirs(); !slices.Equal(got, []string{"/etc/xdg"}) {
		t.Errorf("default configDirs = %q", got)
	}
}

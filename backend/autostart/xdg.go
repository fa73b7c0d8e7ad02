//go:build !darwin && !windows

package autostart

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func (it Item) configHome() (string, error) {
	if it.ConfigHome != "" {
		return it.ConfigHome, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("login item: %w", err)
	}
	return filepath.Join(home, ".config"), nil
}

func (it Item) configDirs() []string {
	if it.ConfigDirs != nil {
		return it.ConfigDirs
	}
	var dirs []string
	for _, d := range strings.Split(os.Getenv("XDG_CONFIG_DIRS"), ":") {
		if filepath.IsAbs(d) { // the spec: relative entries are invalid, skip them
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		dirs = []string{defaultXDGDir}
	}
	return dirs
}

// Path is the per-user entry's file, which Enable writes.
func (it Item) Path() (string, error) {
	home, err := it.configHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "autostart", DesktopFile), nil
}

// effective returns the entry a session manager would use: the user's one,
// else the first system-wide one; ok is false when there is none.
func (it Item) effective() (e entry, path string, ok bool, err error) {
	user, err := it.Path()
	if err != nil {
		return entry{}, "", false, err
	}
	paths := []string{user}
	for _, d := range it.configDirs() {
		paths = append(paths, filepath.Join(d, "autostart", DesktopFile))
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return entry{}, p, false, fmt.Errorf("read login item: %w", err)
		}
		e, err := parseEntry(data)
		if err != nil {
			return entry{}, p, false, fmt.Errorf("login item %s: %w", p, err)
		}
		return e, p, true, nil
	}
	return entry{}, "", false, nil
}

// Enabled reports whether the agent starts at login: an entry exists (the
// user's, or a system-wide one it does not override) and is neither
// Hidden nor switched off with X-GNOME-Autostart-enabled=false. An entry
// that is not a desktop entry at all is an error (the desktop ignores it;
// Enable replaces it).
func (it Item) Enabled() (bool, error) {
	e, _, ok, err := it.effective()
	if err != nil || !ok {
		return false, err
	}
	return e.enabled(), nil
}

// Enable writes the user's entry to start exe with args, replacing any
// entry there (including one the user hid: enabling is their choice too).
func (it Item) Enable(exe string, args []string) error {
	if err := checkCommand(exe, args); err != nil {
		return err
	}
	p, err := it.Path()
	if err != nil {
		return err
	}
	return writeFileAtomic(p, desktopEntry(exe, args))
}

// Disable removes the user's entry, and masks a system-wide one with a
// Hidden=true entry of the same name so the desktop skips it too.
func (it Item) Disable() error {
	p, err := it.Path()
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove login item: %w", err)
	}
	e, _, ok, err := it.effective()
	if err != nil {
		// A broken system-wide entry: mask it all the same.
		return writeFileAtomic(p, maskEntry())
	}
	if ok && e.enabled() {
		return writeFileAtomic(p, maskEntry())
	}
	return nil
}

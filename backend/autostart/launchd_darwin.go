//go:build darwin

package autostart

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Path is the launch agent's plist.
func (it Item) Path() (string, error) {
	home := it.HomeDir
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("login item: %w", err)
		}
		home = h
	}
	return filepath.Join(home, "Library", "LaunchAgents", LaunchdLabel+".plist"), nil
}

// Enabled reports whether the launch agent exists and is not marked
// Disabled. A switch-off in System Settings > Login Items (macOS 13+) lives
// in the system's background-task database, which is not readable here:
// launchd honours it, this reports the plist.
func (it Item) Enabled() (bool, error) {
	p, err := it.Path()
	if err != nil {
		return false, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read login item: %w", err)
	}
	return plistEnabled(data, p)
}

// Enable writes the launch agent; launchd loads it at the next login (the
// running agent is already running).
func (it Item) Enable(exe string, args []string) error {
	if err := checkCommand(exe, args); err != nil {
		return err
	}
	p, err := it.Path()
	if err != nil {
		return err
	}
	return writeFileAtomic(p, launchAgentPlist(exe, args))
}

// Disable removes the launch agent.
func (it Item) Disable() error {
	p, err := it.Path()
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove login item: %w", err)
	}
	return nil
}

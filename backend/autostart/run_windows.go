//go:build windows

package autostart

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

const (
	defaultRunKey      = `Software\Microsoft\Windows\CurrentVersion\Run`
	defaultApprovedKey = `Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run`
)

func (it Item) keys() (run, approved string) {
	run, approved = it.RunKey, it.ApprovedKey
	if run == "" {
		run = defaultRunKey
	}
	if approved == "" {
		approved = defaultApprovedKey
	}
	return run, approved
}

// Path names the Run value, for display.
func (it Item) Path() (string, error) {
	run, _ := it.keys()
	return `HKCU\` + run + `\` + RunValueName, nil
}

// Enabled reports whether the Run value exists and the user has not
// switched it off in Task Manager or Settings > Apps > Startup. Explorer
// records that switch in StartupApproved\Run as a binary value whose first
// byte is odd when disabled (0x03; 0x02 or 0x06 when enabled).
func (it Item) Enabled() (bool, error) {
	run, approved := it.keys()
	k, err := registry.OpenKey(registry.CURRENT_USER, run, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open %s: %w", run, err)
	}
	defer k.Close()
	v, _, err := k.GetStringValue(RunValueName)
	if errors.Is(err, registry.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s\\%s: %w", run, RunValueName, err)
	}
	if v == "" {
		return false, nil
	}
	disabled, err := approvedDisabled(approved)
	return !disabled && err == nil, err
}

// approvedDisabled reads Explorer's verdict; no value means enabled.
func approvedDisabled(path string) (bool, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, path, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open %s: %w", path, err)
	}
	defer k.Close()
	b, _, err := k.GetBinaryValue(RunValueName)
	if errors.Is(err, registry.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s\\%s: %w", path, RunValueName, err)
	}
	return startupDisabled(b), nil
}

// Enable sets the Run value and clears a "disabled" left in
// StartupApproved: turning it on in Lastseen's settings is the user's
// newer choice.
func (it Item) Enable(exe string, args []string) error {
	if err := checkCommand(exe, args); err != nil {
		return err
	}
	run, approved := it.keys()
	k, _, err := registry.CreateKey(registry.CURRENT_USER, run, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("open %s: %w", run, err)
	}
	defer k.Close()
	if err := k.SetStringValue(RunValueName, windowsCommandLine(exe, args)); err != nil {
		return fmt.Errorf("write %s\\%s: %w", run, RunValueName, err)
	}
	return deleteValue(approved)
}

// Disable removes the Run value and Explorer's record of it.
func (it Item) Disable() error {
	run, approved := it.keys()
	if err := deleteValue(run); err != nil {
		return err
	}
	return deleteValue(approved)
}

func deleteValue(path string) error {
	k, err := registry.OpenKey(registry.CURRENT_USER, path, registry.SET_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer k.Close()
	if err := k.DeleteValue(RunValueName); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return fmt.Errorf("delete %s\\%s: %w", path, RunValueName, err)
	}
	return nil
}

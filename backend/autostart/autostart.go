// Package autostart manages Lastseen's login item: the entry that starts
// the lastseen-agent executable when the user logs in.
//
//	Linux/BSD  $XDG_CONFIG_HOME/autostart/lastseen.desktop (XDG Autostart;
//	           Hidden=true or X-GNOME-Autostart-enabled=false count as disabled)
//	macOS      ~/Library/LaunchAgents/app.lastseen.agent.plist (RunAtLoad)
//	Windows    HKCU\Software\Microsoft\Windows\CurrentVersion\Run "Lastseen",
//	           honouring a "disabled" set by the user in Task Manager or
//	           Settings (Explorer\StartupApproved\Run)
//
// Every location is a field of Item, so tests work in a temporary directory
// (or a scratch registry key) and never touch the real login items.
package autostart

import (
	"path/filepath"
	"strings"

	"github.com/lastseen/lastseen/backend/presence"
)

// Names of the login item on each platform.
const (
	DesktopFile   = "lastseen.desktop"   // XDG autostart entry
	LaunchdLabel  = "app.lastseen.agent" // launchd label, and the plist's base name
	RunValueName  = "Lastseen"           // Windows Run value
	displayName   = "Lastseen"
	entryComment  = "Tells your Lastseen service when you are at this computer"
	defaultXDGDir = "/etc/xdg"
)

// Item is the login item. The zero value uses the real per-user locations;
// set the fields to use others.
type Item struct {
	// ConfigHome is the XDG config home (Linux/BSD). Default
	// $XDG_CONFIG_HOME, else ~/.config.
	ConfigHome string
	// ConfigDirs are the system XDG config dirs where a packaged entry may
	// live, which Disable then masks. Default $XDG_CONFIG_DIRS, else /etc/xdg.
	ConfigDirs []string
	// HomeDir is the user's home (macOS: Library/LaunchAgents under it).
	// Default os.UserHomeDir.
	HomeDir string
	// RunKey and ApprovedKey are paths under HKEY_CURRENT_USER (Windows).
	// Defaults: the Run key and Explorer's StartupApproved\Run key.
	RunKey, ApprovedKey string
}

// checkCommand validates what Enable is asked to launch: an absolute path
// (a login item has no useful working directory or PATH to resolve against)
// and no NUL bytes, which no platform can store.
func checkCommand(exe string, args []string) error {
	if exe == "" || !filepath.IsAbs(exe) {
		return presence.Errorf(presence.EINVALID, "login item: executable %q must be an absolute path", exe)
	}
	if strings.ContainsRune(exe, 0) {
		return presence.Errorf(presence.EINVALID, "login item: executable path contains a NUL byte")
	}
	for _, a := range args {
		if strings.ContainsRune(a, 0) {
			return presence.Errorf(presence.EINVALID, "login item: argument %q contains a NUL byte", a)
		}
	}
	return nil
}

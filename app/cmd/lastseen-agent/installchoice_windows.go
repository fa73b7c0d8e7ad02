//go:build windows

package main

import "golang.org/x/sys/windows/registry"

// installerKey and installerLoginValue are where the installer
// (build/windows/installer.nsi) records the user's "start when I sign in"
// choice; the uninstaller removes the key.
const (
	installerKey        = `Software\Lastseen`
	installerLoginValue = "InstallerStartAtLogin"
)

// loginChosenAtInstall reports whether the installer already asked about
// starting at login: the agent's first-run offer would otherwise turn it
// on again after the user unticked it there.
func loginChosenAtInstall() bool {
	k, err := registry.OpenKey(registry.CURRENT_USER, installerKey, registry.QUERY_VALUE)
	if err != nil {
		return false
	}
	defer k.Close()
	_, _, err = k.GetIntegerValue(installerLoginValue)
	return err == nil
}

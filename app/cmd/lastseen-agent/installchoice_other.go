//go:build !windows

package main

// loginChosenAtInstall: only the Windows installer asks about starting at
// login; the Linux packages and the macOS bundle leave it to the agent's
// first-run offer.
func loginChosenAtInstall() bool { return false }

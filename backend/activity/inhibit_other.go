//go:build !linux && !freebsd && !netbsd && !openbsd && !dragonfly

package activity

// inhibitCandidates: no idle-inhibitor watcher outside the D-Bus desktops.
// Windows keeps display-required power requests (what players set while a
// video plays) where only an elevated process may read them (powercfg
// /requests needs an administrator). On macOS, IOKit's power assertions
// (PreventUserIdleDisplaySleep, which players take) are readable and would
// be the media signal, through cgo; not done yet.
func inhibitCandidates(SignalConfig) []candidate[*signalWatcher] { return nil }

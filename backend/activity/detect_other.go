//go:build !linux && !freebsd && !netbsd && !openbsd && !dragonfly && !darwin && !windows

package activity

// No idle or lock backend on this platform; DetectWatcher still offers the
// clock-gap detector.
func idleCandidates(Config) []candidate[IdleSource] { return nil }

func watcherCandidates(Config) []candidate[Watcher] { return nil }

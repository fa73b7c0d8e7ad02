//go:build !linux && !windows && !darwin

package activity

// micCandidates: no microphone watcher on the BSDs and other systems yet;
// there the inhibitor watchers alone say who is present without input.
func micCandidates(SignalConfig) []candidate[*signalWatcher] { return nil }

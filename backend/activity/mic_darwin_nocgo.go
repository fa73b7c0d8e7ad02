//go:build darwin && !cgo

package activity

func macInputRunning() (bool, error) {
	return false, unsupported("%s: this build has no cgo, which reading CoreAudio needs", CoreAudioMicName)
}

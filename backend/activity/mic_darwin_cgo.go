//go:build darwin && cgo

package activity

/*
#cgo LDFLAGS: -framework CoreAudio
#include <stdlib.h>
#include <CoreAudio/CoreAudio.h>

// 1 when an audio device with input streams is running in any process, 0
// when none is, -1 when the HAL could not be asked. Element 0 is
// kAudioObjectPropertyElementMain (named ...Master before macOS 12).
static int lastseenInputRunning(void) {
	AudioObjectPropertyAddress all = {kAudioHardwarePropertyDevices, kAudioObjectPropertyScopeGlobal, 0};
	UInt32 size = 0;
	if (AudioObjectGetPropertyDataSize(kAudioObjectSystemObject, &all, 0, NULL, &size) != 0) {
		return -1;
	}
	if (size < sizeof(AudioObjectID)) {
		return 0;
	}
	AudioObjectID *devs = (AudioObjectID *)malloc(size);
	if (devs == NULL) {
		return -1;
	}
	if (AudioObjectGetPropertyData(kAudioObjectSystemObject, &all, 0, NULL, &size, devs) != 0) {
		free(devs);
		return -1;
	}
	UInt32 n = size / sizeof(AudioObjectID);
	int running = 0;
	for (UInt32 i = 0; i < n && !running; i++) {
		AudioObjectPropertyAddress streams = {kAudioDevicePropertyStreams, kAudioObjectPropertyScopeInput, 0};
		UInt32 ssize = 0;
		if (AudioObjectGetPropertyDataSize(devs[i], &streams, 0, NULL, &ssize) != 0 || ssize == 0) {
			continue; // no input side: a speaker
		}
		AudioObjectPropertyAddress somewhere = {kAudioDevicePropertyDeviceIsRunningSomewhere, kAudioObjectPropertyScopeGlobal, 0};
		UInt32 v = 0;
		UInt32 vsize = sizeof(v);
		if (AudioObjectGetPropertyData(devs[i], &somewhere, 0, NULL, &vsize, &v) == 0 && v != 0) {
			running = 1;
		}
	}
	free(devs);
	return running;
}
*/
import "C"

import "fmt"

func macInputRunning() (bool, error) {
	switch C.lastseenInputRunning() {
	case 1:
		return true, nil
	case 0:
		return false, nil
	}
	return false, fmt.Errorf("%s: CoreAudio did not answer", CoreAudioMicName)
}

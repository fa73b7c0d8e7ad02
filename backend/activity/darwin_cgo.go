//go:build darwin && cgo

package activity

/*
#cgo LDFLAGS: -framework CoreGraphics -framework CoreFoundation
#include <CoreGraphics/CoreGraphics.h>
#include <CoreFoundation/CoreFoundation.h>

// Seconds since the last keyboard, pointer or tablet event of any client,
// from the HID system state (what the user did, not what apps synthesised).
static double lastseenIdleSeconds(void) {
	return CGEventSourceSecondsSinceLastEventType(kCGEventSourceStateHIDSystemState, kCGAnyInputEventType);
}

// 1 when the console session's screen is locked, 0 when not, -1 when this
// user has no console session (e.g. logged in over SSH only).
static int lastseenScreenLocked(void) {
	CFDictionaryRef d = CGSessionCopyCurrentDictionary();
	if (d == NULL) {
		return -1;
	}
	int locked = 0;
	CFTypeRef v = CFDictionaryGetValue(d, CFSTR("CGSSessionScreenIsLocked"));
	if (v != NULL) {
		if (CFGetTypeID(v) == CFBooleanGetTypeID()) {
			locked = CFBooleanGetValue((CFBooleanRef)v) ? 1 : 0;
		} else if (CFGetTypeID(v) == CFNumberGetTypeID()) {
			int n = 0;
			CFNumberGetValue((CFNumberRef)v, kCFNumberIntType, &n);
			locked = n != 0;
		} else {
			locked = 1;
		}
	}
	CFRelease(d);
	return locked;
}
*/
import "C"

import (
	"context"
	"fmt"
	"math"
	"time"
)

func cgoAvailable() error { return nil }

func macIdleTime() (time.Duration, error) {
	s := float64(C.lastseenIdleSeconds())
	if math.IsNaN(s) || s < 0 {
		return 0, fmt.Errorf("%s: the HID system returned %v", CGEventSourceName, s)
	}
	return time.Duration(s * float64(time.Second)), nil
}

func macLocked(ctx context.Context) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	switch C.lastseenScreenLocked() {
	case 1:
		return true, nil
	case 0:
		return false, nil
	}
	return false, unsupported("%s: this user has no console session", CGSessionName)
}

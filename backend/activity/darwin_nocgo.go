//go:build darwin && !cgo

package activity

import (
	"context"
	"time"
)

func cgoAvailable() error {
	return unsupported("this build has no cgo, which macOS idle and lock detection need")
}

func macIdleTime() (time.Duration, error) { return 0, cgoAvailable() }

func macLocked(context.Context) (bool, error) { return false, cgoAvailable() }

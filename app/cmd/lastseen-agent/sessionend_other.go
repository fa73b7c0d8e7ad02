//go:build !windows

package main

import (
	"context"
	"log/slog"
)

// onSessionEnd: on Linux and macOS the end of a session reaches the agent
// as SIGTERM (systemd-logind, launchd), which main handles already.
func onSessionEnd(ctx context.Context, _ *slog.Logger) (context.Context, func()) {
	return ctx, func() {}
}

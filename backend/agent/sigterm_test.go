//go:build unix

package agent

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// A SIGTERM caught by signal.NotifyContext — what the agent's main uses,
// and what a session manager sends at logout — is a shutdown; an interrupt
// (Ctrl-C) is a quit. This holds the standard library to the cause text
// stopReason recognises.
func TestSignalCauses(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		want presence.EndReason
	}{{syscall.SIGTERM, presence.EndShutdown}, {syscall.SIGINT, presence.EndQuit}} {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		if err := syscall.Kill(os.Getpid(), tc.sig); err != nil {
			stop()
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			stop()
			t.Fatalf("%v: the context did not end", tc.sig)
		}
		if got := stopReason(ctx); got != tc.want {
			t.Errorf("%v (cause %v): %q, want %q", tc.sig, context.Cause(ctx), got, tc.want)
		}
		stop()
	}
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Why there is a gap: each way the agent goes offline puts its reason on
// the final beat, in the outbox and in the local history alike, and the
// lock makes away say "locked". Each case runs one agent for a minute of
// activity, does one thing, and reads what the service and the window's
// history were told.
func TestFinalBeatReasons(t *testing.T) {
	A, O := presence.Active, presence.Offline
	tests := []struct {
		name string
		do   func(r *rig, stop func(error))
		// sent is the queued beats that change state, "state(why)/reason";
		// history the local spans, "state(why)/end_reason".
		sent, history string
	}{
		{"sleep", func(r *rig, _ func(error)) { r.send(OSEvent{Kind: Sleeping}) },
			"active(input) offline/sleep", "active(input)/sleep"},
		{"logout or shutdown (the session ends)", func(r *rig, _ func(error)) { r.send(OSEvent{Kind: LoggingOut}) },
			"active(input) offline/shutdown", "active(input)/shutdown"},
		{"quit (the tray or the window)", func(_ *rig, stop func(error)) { stop(nil) },
			"active(input) offline/quit", "active(input)/quit"},
		{"stopped for a session end", func(_ *rig, stop func(error)) { stop(StopCause{presence.EndShutdown}) },
			"active(input) offline/shutdown", "active(input)/shutdown"},
		{"a cause that says nothing is a quit", func(_ *rig, stop func(error)) { stop(errors.New("bye")) },
			"active(input) offline/quit", "active(input)/quit"},
		{"pause", func(r *rig, _ func(error)) { r.pause(time.Now().Add(time.Hour)) },
			"active(input) offline/paused", "active(input)/paused"},
		{"invisible: the service hears why, history goes on", func(r *rig, _ func(error)) { r.setMode(Invisible) },
			"active(input) offline/invisible", "active(input)/"},
		{"invisible, then asleep: history ends by the sleep", func(r *rig, _ func(error)) {
			r.setMode(Invisible)
			r.advance(time.Minute)
			r.send(OSEvent{Kind: Sleeping})
		}, "active(input) offline/invisible", "active(input)/sleep"},
		{"lock: away by the lock, then asleep", func(r *rig, _ func(error)) {
			r.idle.touch() // locked at the keyboard
			r.send(OSEvent{Kind: Locked})
			r.advance(time.Minute)
			r.send(OSEvent{Kind: Sleeping})
		}, "active(input) away(locked) offline/sleep", "active(input)/ away(locked)/sleep"},
		{"appear away while locked is a choice, not the lock", func(r *rig, _ func(error)) {
			r.setMode(Away)
			r.idle.touch()
			r.send(OSEvent{Kind: Locked})
		}, "active(input) away", "active(input)/ away(locked)/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t, Config{}, "")
				ctx, cancel := context.WithCancelCause(context.Background())
				done := make(chan struct{})
				go func() {
					defer close(done)
					if err := r.a.Run(ctx); err != nil {
						t.Errorf("Run: %v", err)
					}
				}()
				synctest.Wait()
				stopped := false
				stop := func(cause error) {
					cancel(cause)
					<-done
					stopped = true
				}
				t.Cleanup(func() {
					if !stopped {
						cancel(nil)
						<-done
					}
				})
				r.idle.touch()
				r.advance(time.Minute)
				tt.do(r, stop)
				synctest.Wait()

				var sent []string
				var last string
				for _, b := range r.outbox() {
					k := string(b.State)
					if b.Why != "" || b.State == A {
						k += "(" + string(b.Why.Of(b.State)) + ")"
					}
					if b.State == O {
						k += "/" + string(b.Reason)
					}
					if k != last {
						sent = append(sent, k)
					}
					last = k
				}
				if got := strings.Join(sent, " "); got != tt.sent {
					t.Errorf("sent %s\nwant %s", got, tt.sent)
				}
				var hist []string
				for _, s := range r.history() {
					k := string(s.State)
					if s.Why != "" {
						k += "(" + string(s.Why) + ")"
					}
					hist = append(hist, fmt.Sprintf("%s/%s", k, s.EndReason))
				}
				if got := strings.Join(hist, " "); got != tt.history {
					t.Errorf("history %s\nwant %s", got, tt.history)
				}
			})
		})
	}
}

func (r *rig) pause(until time.Time) {
	r.t.Helper()
	if err := r.a.SetMode(context.Background(), Pause, until); err != nil {
		r.t.Fatal(err)
	}
	synctest.Wait()
}

func TestStopReason(t *testing.T) {
	cancelled := func(cause error) context.Context {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(cause)
		return ctx
	}
	plain, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		want presence.EndReason
	}{
		{"plain cancel", plain, presence.EndQuit},
		{"stop cause", cancelled(StopCause{presence.EndShutdown}), presence.EndShutdown},
		{"wrapped stop cause", cancelled(fmt.Errorf("session: %w", StopCause{presence.EndSleep})), presence.EndSleep},
		{"a reason no beat may carry", cancelled(StopCause{presence.EndSilence}), presence.EndQuit},
		{"another cause", cancelled(errors.New("x")), presence.EndQuit},
	}
	for _, tt := range tests {
		if got := stopReason(tt.ctx); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

package activity_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lastseen/lastseen/backend/activity"
)

// The agent's use: detect once, read idle every interval, react to events.
func Example() {
	ctx := context.Background()
	logger := slog.Default()

	idle, err := activity.Detect(ctx, logger)
	switch {
	case errors.Is(err, activity.ErrUnsupported):
		logger.Warn("no idle source; the user counts as active while the agent runs", "err", err)
	case err != nil:
		logger.Error("detect idle source", "err", err)
	default:
		defer idle.Close()
		fmt.Println("idle source:", idle.Name())
	}

	w, err := activity.DetectWatcher(ctx, logger)
	if err != nil {
		logger.Error("detect watcher", "err", err)
		return
	}
	defer w.Close()
	locked, err := w.LockedNow(ctx)
	fmt.Println("locked:", locked, err)

	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				return
			}
			// Record the state change (for Sleeping: "offline from ev.At"),
			// then let the system go on.
			fmt.Println(ev)
			ev.Done()
		case <-tick.C:
			if idle != nil {
				d, err := idle.Idle(ctx)
				fmt.Println(d, err) // an error is "unknown", never zero
			}
		case <-ctx.Done():
			return
		}
	}
}

package notify

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Desktop is this system's notification service: the notification centre,
// through osascript.
func Desktop() Sender { return OSAScript{} }

// OSAScript shows notifications with AppleScript's display notification.
// The title and body travel as arguments, never as script text, so nothing
// the service sends is parsed as AppleScript.
type OSAScript struct{}

// Send runs osascript once and waits for it.
func (OSAScript) Send(ctx context.Context, n Notification) error {
	cmd := exec.CommandContext(ctx, "osascript",
		"-e", "on run argv",
		"-e", "display notification (item 2 of argv) with title (item 1 of argv)",
		"-e", "end run",
		n.Title, n.Body)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("show a notification: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

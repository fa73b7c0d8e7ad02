package notify

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"unicode/utf16"
)

// Desktop is this system's notification service: a toast.
func Desktop() Sender { return Toast{} }

// powershellAppID is the AppUserModelID the toast is shown under. Windows
// shows toasts only for an application registered with a Start menu
// shortcut carrying its id; the installer registers none for the agent, so
// the toast borrows PowerShell's, which every Windows has.
const powershellAppID = `{1AC14E77-02E7-4E5D-B744-2EB1AE5198B7}\WindowsPowerShell\v1.0\powershell.exe`

// toastScript builds a ToastText02 toast (a bold title, one line of text)
// from the environment, so nothing the service sends is ever parsed as
// PowerShell.
const toastScript = `$ErrorActionPreference = 'Stop'
[Windows.UI.Notifications.ToastNotificationManager, Windows.UI.Notifications, ContentType = WindowsRuntime] > $null
$x = [Windows.UI.Notifications.ToastNotificationManager]::GetTemplateContent([Windows.UI.Notifications.ToastTemplateType]::ToastText02)
$t = $x.GetElementsByTagName('text')
$t.Item(0).AppendChild($x.CreateTextNode($env:LASTSEEN_NOTIFY_TITLE)) > $null
$t.Item(1).AppendChild($x.CreateTextNode($env:LASTSEEN_NOTIFY_BODY)) > $null
$n = [Windows.UI.Notifications.ToastNotification]::new($x)
[Windows.UI.Notifications.ToastNotificationManager]::CreateToastNotifier($env:LASTSEEN_NOTIFY_APP).Show($n)`

// Toast shows notifications as Windows toasts, through PowerShell's access
// to the Windows.UI.Notifications API (no cgo, no new dependency).
type Toast struct{}

// createNoWindow keeps PowerShell's console from flashing up: the agent is
// a GUI program without a console of its own.
const createNoWindow = 0x08000000

// Send runs PowerShell once and waits for it.
func (Toast) Send(ctx context.Context, n Notification) error {
	cmd := exec.CommandContext(ctx, "powershell.exe", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
		"-EncodedCommand", encodeCommand(toastScript))
	cmd.Env = append(os.Environ(),
		"LASTSEEN_NOTIFY_TITLE="+n.Title, "LASTSEEN_NOTIFY_BODY="+n.Body, "LASTSEEN_NOTIFY_APP="+powershellAppID)
	cmd.SysProcAttr = &syscall.SysProcAttr{HideWindow: true, CreationFlags: createNoWindow}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("show a toast: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// encodeCommand is PowerShell's -EncodedCommand form of a script: base64
// of UTF-16LE, which carries a script of several lines intact.
func encodeCommand(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return base64.StdEncoding.EncodeToString(b)
}

//go:build windows

package app

import (
	"errors"
	"fmt"

	"github.com/wailsapp/go-webview2/webviewloader"
)

// minWebView2 is the oldest WebView2 runtime Wails v2.9 accepts (its
// wv2installer.MinimumRuntimeVersion); older counts as missing.
const minWebView2 = "94.0.992.31"

// webviewMissing says why the dashboard cannot show on this machine, or
// nil. Wails asks the same inside wails.Run and then shows its own "The
// WebView2 runtime is required" dialog, which offers the Evergreen
// bootstrapper; asking first lets the window hold back the agent until it
// knows the dashboard can open, so a cancelled dialog leaves nothing
// running.
func webviewMissing() error {
	v, err := webviewloader.GetAvailableCoreWebView2BrowserVersionString("")
	if err != nil {
		return fmt.Errorf("look for the WebView2 runtime: %w", err)
	}
	if v == "" {
		return errors.New("the Microsoft Edge WebView2 runtime is not installed")
	}
	if c, err := webviewloader.CompareBrowserVersions(v, minWebView2); err == nil && c < 0 {
		return fmt.Errorf("the Microsoft Edge WebView2 runtime %s is older than %s", v, minWebView2)
	}
	return nil
}

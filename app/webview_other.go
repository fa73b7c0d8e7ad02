//go:build !windows

package app

// webviewMissing: Linux and macOS link their webview (WebKitGTK, WKWebView),
// so the window starts or fails as a whole.
func webviewMissing() error { return nil }

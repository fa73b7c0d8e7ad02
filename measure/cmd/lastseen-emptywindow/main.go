// Command lastseen-emptywindow is the yardstick for the dashboard window's
// cost: a Wails v2 window of the same size and options as `lastseen`, showing
// an empty page and binding nothing. Whatever the dashboard costs beyond this
// (memory over its processes, CPU while untouched) is the dashboard's own;
// everything up to it is the price of any webview window. The window
// benchmark (scripts/bench-window.sh) runs both side by side.
//
// Build: go build -tags desktop,production,webkit2_41 -o build/bin/lastseen-emptywindow ./measure/cmd/lastseen-emptywindow
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"
	"github.com/wailsapp/wails/v2/pkg/options/linux"
)

// Title is what the benchmark looks for on the display.
const Title = "Lastseen empty window"

// page is empty but for what a browser needs to lay out nothing.
const page = `<!doctype html><html><head><meta charset="utf-8"><title>` + Title + `</title></head><body></body></html>`

func main() {
	err := wails.Run(&options.App{
		Title: Title,
		// The dashboard window's default size and options, so the two
		// differ only in the page they show.
		Width:  1100,
		Height: 760,
		AssetServer: &assetserver.Options{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, page)
		})},
		Linux: &linux.Options{
			ProgramName:      "lastseen-emptywindow",
			WebviewGpuPolicy: linux.WebviewGpuPolicyNever,
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lastseen-emptywindow:", err)
		os.Exit(1)
	}
}

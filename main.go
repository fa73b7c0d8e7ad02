// Command lastseen is the Lastseen dashboard window. It starts the agent
// when it is not running, shows the dashboard, and exits when closed; the
// agent (lastseen-agent) stays in the tray. See package app.
//
// Build: go build -tags desktop,production,webkit2_41 -o build/bin/lastseen .
package main

import (
	"fmt"
	"os"

	"github.com/lastseen/lastseen/app"
)

func main() {
	if err := app.Run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lastseen:", err)
		os.Exit(1)
	}
}

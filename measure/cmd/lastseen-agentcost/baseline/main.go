// Command lastseen-agentcost-baseline is the floor lastseen-agentcost
// measures the agent against: a bare Go process whose only work is a 2 s
// ticker, the cadence at which the agent samples idle time. Whatever it
// costs is what the Go runtime alone costs on this machine; the agent's
// figures are read as multiples of it.
package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			// The tick is the work: one wakeup every 2 s, nothing more.
		case <-stop:
			return
		}
	}
}

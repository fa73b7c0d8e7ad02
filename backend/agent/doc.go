// Package agent is the always-on agent's core, headless: it samples OS
// activity, decides the device's presence state (DESIGN §2), applies the
// user's manual mode, writes every beat to the outbox in agentdb before
// anything tries to send it (while the disk cannot take writes, agentdb
// holds beats in a bounded queue in memory and the agent says so in its
// status), and sends the outbox to the presence service in batches with
// backoff.
//
// Every beat that changes a state carries when that state really began
// (presence.Beat.Since: the last input for idle, the lock for away, the
// sleep for offline, the first input for active), so spans end where things
// happened, not a threshold or a tick later; every active beat says why
// (input, or with Config.CountCallsAndMedia a call or media).
//
// It knows the OS and the service only through small interfaces defined here
// (IdleReader, optionally InputWaiter, a channel of OSEvent, SignalSource,
// Uploader); the composition root adapts the activity package and the HTTP
// client to them.
// Loops use the time package directly, so tests drive them with
// testing/synctest.
package agent

package tray

import (
	"bytes"
	"log"
	"log/slog"
	"sync/atomic"
)

// redirectStdLog sends the standard logger's output (which the systray
// library writes to, e.g. "failed to register" on every start without a
// tray host) to our logger at debug level, until restore is called. The
// user-facing line about a missing tray is ours, logged once.
func redirectStdLog(l *slog.Logger) (restore func()) {
	prevOut, prevFlags, prevPrefix := log.Writer(), log.Flags(), log.Prefix()
	w := &stdLogWriter{log: l, fallback: prevOut}
	log.SetOutput(w)
	log.SetFlags(0)
	log.SetPrefix("")
	return func() {
		log.SetOutput(prevOut)
		log.SetFlags(prevFlags)
		log.SetPrefix(prevPrefix)
	}
}

type stdLogWriter struct {
	log      *slog.Logger
	fallback interface{ Write([]byte) (int, error) }
	inside   atomic.Bool
}

func (w *stdLogWriter) Write(p []byte) (int, error) {
	// A handler that itself writes through the standard logger would come
	// back here; send that round to the original output instead of looping.
	if !w.inside.CompareAndSwap(false, true) {
		return w.fallback.Write(p)
	}
	defer w.inside.Store(false)
	w.log.Debug(string(bytes.TrimSpace(p)), "source", "systray")
	return len(p), nil
}

package serviceload

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// bareEnv, set in a process's environment, makes RunBareIfAsked serve the
// bare handler in it: the load starts its own program again as the bare
// server, so the yardstick runs in a process of its own, as lastseend does.
const bareEnv = "LASTSEEN_LOAD_BARE_SERVER"

// RunBareIfAsked serves the bare handler and exits when this process was
// started as the load's bare server; otherwise it returns at once. Call it
// first in main (and in TestMain of a test that runs the load).
func RunBareIfAsked() {
	if os.Getenv(bareEnv) == "" {
		return
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	srv := newHTTPServer(bareHandler())
	go func() { _ = srv.Serve(ln) }()
	log.Info("listening", "url", "http://"+ln.Addr().String())
	// The parent closes standard input (or dies) when it is done.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop <- syscall.SIGTERM
	}()
	<-stop
	_ = srv.Close()
	os.Exit(0)
}

// newHTTPServer is an HTTP server with lastseend's timeouts, so the bare
// server differs from the service only in what its handler does.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// bareHandler is the yardstick: it decodes the same JSON batch as the
// service (into the same type, unknown fields refused, size capped), and
// answers a result of the same shape, encoded the same way, with no
// authentication, no rate limit and no store. What lastseend costs beyond
// it is what lastseend does.
func bareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b presence.Batch
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, presence.MaxBatchBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil || len(b.Beats) == 0 {
			http.Error(w, `{"error":{"code":"invalid","message":"bad batch"}}`, http.StatusBadRequest)
			return
		}
		last := b.Beats[len(b.Beats)-1]
		at := last.At.UTC()
		body, _ := json.Marshal(presence.BatchResult{
			Accepted: len(b.Beats), Rejected: []presence.Rejection{}, LastSeq: last.Seq,
			Device: presence.DeviceView{ID: 1, Name: "load-0000", Status: last.State, LastSeen: &at},
		})
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(body, '\n'))
	})
}

// startBare starts this program again as the bare server.
func startBare() (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	env, _ := childEnv(bareEnv + "=1")
	return startChild("bare server", exe, nil, env)
}

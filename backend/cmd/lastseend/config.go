package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// Config is everything lastseend is told by flags and LASTSEEN_* variables.
type Config struct {
	// Addr is the listen address of serve.
	Addr string
	// DB is a SQLite file path, or a postgres:// URL.
	DB string
	// TLSCert and TLSKey, both or neither, make serve speak HTTPS.
	TLSCert, TLSKey string
	// Pulse is the beat cadence devices are judged by.
	Pulse presence.Pulse
	// LogLevel filters the JSON log on standard error.
	LogLevel slog.Level

	// UserRate and DeviceRate limit requests per token.
	UserRate, DeviceRate httpapi.Rate

	// ShutdownTimeout bounds how long a graceful stop waits for requests in
	// flight before it cuts them off; the store is flushed either way.
	ShutdownTimeout time.Duration

	// HTTP server timeouts. ReadTimeout bounds reading a request and its
	// body; net/http lifts it once the body is read, so streams outlive it.
	// There is no write timeout on purpose: SSE streams live for hours.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration

	// EventRing is how many recent live events the hub keeps so a stream
	// can resume with Last-Event-ID after a reconnect.
	EventRing int

	// Caps bound connections, streams, devices and failed sign-ins.
	Caps Caps

	// Retain, when positive, makes serve delete spans that ended longer
	// ago than this, at start and daily; zero keeps everything.
	Retain time.Duration

	// BaseURL is the service's public address, which one-time links and
	// pairing answers point to; empty: serve derives it from each request.
	BaseURL string

	// Sync is the SQLite store's synchronous level, "full" (every group
	// commit fsynced: a 200 survives a power cut) or "normal" (fsync at
	// checkpoints: a 200 survives kill -9 only). PostgreSQL ignores it.
	Sync string
}

// DefaultConfig is lastseend out of the box: loopback, a SQLite file in the
// working directory, DESIGN §2's 30 s + 30 s pulse.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		DB:                "lastseen.db",
		Pulse:             presence.DefaultPulse,
		LogLevel:          slog.LevelInfo,
		UserRate:          httpapi.DefaultUserRate,
		DeviceRate:        httpapi.DefaultDeviceRate,
		ShutdownTimeout:   15 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		EventRing:         1024,
		Caps:              DefaultCaps(),
		Sync:              "full",
	}
}

// Validate checks the configuration before anything is opened.
func (c Config) Validate() error {
	if c.DB == "" {
		return errors.New("--db must name a SQLite file or a postgres:// URL")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if err := c.Pulse.Validate(); err != nil {
		return fmt.Errorf("--interval/--grace: %s", presence.ErrorMessage(err))
	}
	for name, r := range map[string]httpapi.Rate{"--user-rate": c.UserRate, "--device-rate": c.DeviceRate} {
		if r.PerSecond <= 0 || r.Burst < 1 {
			return fmt.Errorf("%s must be a positive rate with a burst of at least 1", name)
		}
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("--shutdown-timeout must be positive")
	}
	if err := c.Caps.validate(); err != nil {
		return err
	}
	if s := strings.ToLower(c.Sync); s != "full" && s != "normal" {
		return fmt.Errorf("--sync must be full or normal, not %q", c.Sync)
	}
	if err := validateBaseURL(c.BaseURL); err != nil {
		return err
	}
	if c.Retain != 0 && c.Retain < minRetain {
		return fmt.Errorf("--retain must be 0 (keep everything) or at least %s, such as 90d", minRetain)
	}
	return nil
}

// IsPostgres reports whether DB names a PostgreSQL database: a postgres://
// or postgresql:// URL, or a libpq keyword string ("host=… dbname=…").
func (c Config) IsPostgres() bool {
	return strings.HasPrefix(c.DB, "postgres://") || strings.HasPrefix(c.DB, "postgresql://") ||
		pgKeywords.MatchString(c.DB)
}

var (
	pgKeywords = regexp.MustCompile(`(^|\s)(host|dbname|user|service)=`)
	pgPassword = regexp.MustCompile(`(password=)('[^']*'|\S+)`)
)

// RedactedDB is DB fit for a log line: a PostgreSQL DSN loses its password.
func (c Config) RedactedDB() string {
	switch {
	case !c.IsPostgres():
		return c.DB
	case strings.Contains(c.DB, "://"):
		u, err := url.Parse(c.DB)
		if err != nil {
			return "postgres://…"
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	default:
		return pgPassword.ReplaceAllString(c.DB, "${1}xxxxx")
	}
}

// rateValue reads a rate as "PER_SECOND/BURST", e.g. "2/20" or "0.5/5".
type rateValue struct{ r *httpapi.Rate }

func (v rateValue) String() string {
	if v.r == nil {
		return ""
	}
	return fmt.Sprintf("%g/%d", v.r.PerSecond, v.r.Burst)
}

func (v rateValue) Set(s string) error {
	var r httpapi.Rate
	if _, err := fmt.Sscanf(s, "%g/%d", &r.PerSecond, &r.Burst); err != nil || strings.Count(s, "/") != 1 {
		return fmt.Errorf("want PER_SECOND/BURST such as 2/20, got %q", s)
	}
	if r.PerSecond <= 0 || r.Burst < 1 {
		return fmt.Errorf("want a positive rate and a burst of at least 1, got %q", s)
	}
	*v.r = r
	return nil
}

// levelValue reads a slog level by name (debug, info, warn, error).
type levelValue struct{ l *slog.Level }

func (v levelValue) String() string {
	if v.l == nil {
		return ""
	}
	return strings.ToLower(v.l.String())
}

func (v levelValue) Set(s string) error { return v.l.UnmarshalText([]byte(s)) }

// storeFlags are the flags every command that opens the store takes.
func (c *Config) storeFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.DB, "db", c.DB, "the `database`: a SQLite file, or postgres://user:pass@host/db")
	fs.DurationVar(&c.Pulse.Interval, "interval", c.Pulse.Interval, "the beat `interval` devices keep")
	fs.DurationVar(&c.Pulse.Grace, "grace", c.Pulse.Grace, "how late a beat may be before the device is offline")
	fs.Var(levelValue{&c.LogLevel}, "log-level", "log `level`: debug, info, warn or error")
}

// serveFlags are serve's own flags.
func (c *Config) serveFlags(fs *flag.FlagSet) {
	c.storeFlags(fs)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen `address` (host:port)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "TLS certificate `file` (PEM); with --tls-key serves HTTPS")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "TLS private key `file` (PEM)")
	fs.Var(rateValue{&c.UserRate}, "user-rate", "requests allowed per user token, as `PER_SECOND/BURST`")
	fs.Var(rateValue{&c.DeviceRate}, "device-rate", "requests allowed per device token, as `PER_SECOND/BURST`")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long a stop waits for requests in flight")
	c.Caps.flags(fs)
	fs.StringVar(&c.Sync, "sync", c.Sync, "SQLite durability: `full` fsyncs every commit (a 200 survives a power cut), normal only at checkpoints (survives kill -9)")
	fs.StringVar(&c.BaseURL, "base-url", c.BaseURL, "the service's public `URL` (https://presence.example.com) for links and pairing; empty derives it from each request (X-Forwarded-Proto/Host behind a proxy)")
	fs.Var(retainValue{&c.Retain}, "retain", "delete spans that ended longer ago than this `period` (90d, 2160h), daily; 0 keeps everything")
}

// EnvName is the environment twin of a flag: --tls-cert is LASTSEEN_TLS_CERT.
func EnvName(flagName string) string {
	return "LASTSEEN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// LASTSEEN_* twin, so the command line always wins. An empty variable counts
// as unset, as container runtimes often pass them that way.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || f.Name == "help" {
			return
		}
		name := EnvName(f.Name)
		v, ok := lookup(name)
		if !ok || v == "" {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("%s=%q: %v", name, v, e)
		}
	})
	return err
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments ("user add alice --name Alice"), which the flag
// package alone stops at. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

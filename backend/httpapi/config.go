package httpapi

import (
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// Rate is a token bucket: PerSecond requests on average, Burst at once.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Default per-token rates. A device posts a batch every 30 s and at each state
// change, but the desktop agent also proxies the dashboard's reads with its
// device token, so devices get the same room as a person clicking around a
// dashboard; a runaway script still meets a wall at ten requests a second.
var (
	DefaultUserRate   = Rate{PerSecond: 10, Burst: 60}
	DefaultDeviceRate = Rate{PerSecond: 10, Burst: 60}
)

// DefaultFailedAuthRate bounds failed sign-ins per client address (an IPv4
// address or an IPv6 /64): a mistyped token now and then, never a
// guessing loop. Valid tokens are never held back by it.
var DefaultFailedAuthRate = Rate{PerSecond: 1, Burst: 20}

// DefaultAccountFailRate bounds failed password sign-ins per account (see
// signins): ten at once, then one every 30 s.
var DefaultAccountFailRate = Rate{PerSecond: 1.0 / 30, Burst: 10}

// DefaultPairRate bounds pairings started per client address (POST
// /api/v1/pair), and DefaultPairCodeRate the user codes looked up or
// decided in vain per address and per user: with 20^8 codes, ten misses
// and then one every ten seconds leaves guessing a live code hopeless.
var (
	DefaultPairRate     = Rate{PerSecond: 0.1, Burst: 10}
	DefaultPairCodeRate = Rate{PerSecond: 0.1, Burst: 10}
)

// Default caps. A person has a handful of machines and browser tabs; a
// server of a few thousand people keeps their dashboards open at once.
const (
	DefaultMaxStreamsPerUser = 20
	DefaultMaxStreams        = 10_000
	DefaultMaxDevicesPerUser = 100
)

// DefaultRevocationCheck is how often open streams of device tokens are
// checked against revocations made elsewhere (another instance, the
// command line); a revocation through this server ends them at once.
const DefaultRevocationCheck = 500 * time.Millisecond

// DefaultKeepAlive is how often an idle SSE stream gets a comment, well under
// the idle timeouts of common proxies (60 s and up).
const DefaultKeepAlive = 15 * time.Second

// Config is what a Server needs. Store and Hub are required; the rest have
// defaults (see WithDefaults).
type Config struct {
	Store presence.Store
	// Hub fans committed events out to SSE streams. It must be the hub whose
	// Publish is the store's presence.Options.Notify, or streams stay silent.
	Hub *Hub
	// Metrics, when nil, is a fresh set (then nothing feeds its writer
	// histograms: pass the one whose ObserveBatch the store calls).
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
	// Limits bound beat times (presence.PrepareBatch); zero takes presence.DefaultLimits.
	Limits presence.Limits
	// Frontend is the built dashboard. It may lack index.html (not built yet),
	// then browsers get a page saying so.
	Frontend fs.FS
	// UserRate and DeviceRate limit each token; zero takes the defaults.
	UserRate, DeviceRate Rate
	// KeepAlive is the SSE keepalive period; zero takes DefaultKeepAlive.
	KeepAlive time.Duration

	// FailedAuthRate limits failed authentications per client address
	// (RemoteAddr: behind a proxy, the proxy's); zero takes the default.
	FailedAuthRate Rate
	// MaxStreamsPerUser and MaxStreams cap open event streams per user
	// (over all their tokens) and in all; MaxDevicesPerUser caps the
	// devices a user may add through the API. Zero takes the defaults.
	MaxStreamsPerUser, MaxStreams, MaxDevicesPerUser int
	// MaxPublicStreamsPerAddr caps the public status streams one client
	// address (RemoteAddr, an IPv6 /64) holds open; they count against
	// MaxStreams too. Zero takes DefaultMaxPublicStreamsPerAddr.
	MaxPublicStreamsPerAddr int
	// RevocationCheck is how often open streams are checked against
	// revocations made outside this server (devices and API tokens revoked,
	// sessions ended, users disabled); zero takes the default.
	RevocationCheck time.Duration

	// BaseURL is the service's public address ("https://presence.example.com"),
	// which one-time links and pairing answers point to. Empty: derived
	// from each request (TLS or X-Forwarded-Proto, X-Forwarded-Host or Host).
	BaseURL string
	// AccountFailRate limits failed password sign-ins per account (for the
	// addresses that failed, see signins); zero takes the default.
	AccountFailRate Rate
	// PairRate limits pairings started per client address; PairCodeRate
	// the user codes tried in vain per address and per user. Zero takes
	// the defaults.
	PairRate, PairCodeRate Rate
}

// WithDefaults fills the unset fields.
func (c Config) WithDefaults() Config {
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Limits == (presence.Limits{}) {
		c.Limits = presence.DefaultLimits
	}
	if c.UserRate == (Rate{}) {
		c.UserRate = DefaultUserRate
	}
	if c.DeviceRate == (Rate{}) {
		c.DeviceRate = DefaultDeviceRate
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.FailedAuthRate == (Rate{}) {
		c.FailedAuthRate = DefaultFailedAuthRate
	}
	if c.MaxStreamsPerUser == 0 {
		c.MaxStreamsPerUser = DefaultMaxStreamsPerUser
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.MaxDevicesPerUser == 0 {
		c.MaxDevicesPerUser = DefaultMaxDevicesPerUser
	}
	if c.MaxPublicStreamsPerAddr == 0 {
		c.MaxPublicStreamsPerAddr = DefaultMaxPublicStreamsPerAddr
	}
	if c.RevocationCheck == 0 {
		c.RevocationCheck = DefaultRevocationCheck
	}
	if c.AccountFailRate == (Rate{}) {
		c.AccountFailRate = DefaultAccountFailRate
	}
	if c.PairRate == (Rate{}) {
		c.PairRate = DefaultPairRate
	}
	if c.PairCodeRate == (Rate{}) {
		c.PairCodeRate = DefaultPairCodeRate
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return c
}

// Validate checks a config after WithDefaults.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return presence.Errorf(presence.EINVALID, "httpapi: a store is required")
	case c.Hub == nil:
		return presence.Errorf(presence.EINVALID, "httpapi: a hub is required (and must be the store's Notify)")
	case c.Limits.MaxPast <= 0 || c.Limits.MaxFuture < 0 || c.Limits.SkewTolerance < 0:
		return presence.Errorf(presence.EINVALID, "httpapi: limits need a positive MaxPast and no negative MaxFuture or SkewTolerance")
	case c.KeepAlive < 0:
		return presence.Errorf(presence.EINVALID, "httpapi: keepalive must not be negative")
	case c.MaxStreamsPerUser < 0 || c.MaxStreams < 0 || c.MaxDevicesPerUser < 0 || c.MaxPublicStreamsPerAddr < 0:
		return presence.Errorf(presence.EINVALID, "httpapi: caps must not be negative")
	case c.RevocationCheck < 0:
		return presence.Errorf(presence.EINVALID, "httpapi: the revocation check period must not be negative")
	}
	if err := ValidateBaseURL(c.BaseURL); err != nil {
		return err
	}
	for _, r := range []struct {
		name string
		rate Rate
	}{
		{"user", c.UserRate}, {"device", c.DeviceRate}, {"failed authentication", c.FailedAuthRate},
		{"failed sign-in per account", c.AccountFailRate}, {"pairing", c.PairRate}, {"pairing code", c.PairCodeRate},
	} {
		if err := r.rate.validate(); err != nil {
			return presence.Errorf(presence.EINVALID, "httpapi: %s rate: %s", r.name, presence.ErrorMessage(err))
		}
	}
	return nil
}

func (r Rate) validate() error {
	if r.PerSecond <= 0 || math.IsNaN(r.PerSecond) || math.IsInf(r.PerSecond, 0) || r.Burst < 1 {
		return presence.Errorf(presence.EINVALID, "want a positive finite PerSecond and a Burst of at least 1, got %v/s burst %d", r.PerSecond, r.Burst)
	}
	return nil
}

// ValidateBaseURL checks a public base URL: empty (derive it from each
// request), or an absolute http(s) URL with a host and nothing after the
// path.
func ValidateBaseURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Host, ":") {
		return presence.Errorf(presence.EINVALID, "base URL must be an http(s) address such as https://presence.example.com, not %q", clip(s, maxValueLen))
	}
	return nil
}

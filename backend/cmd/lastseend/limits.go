package main

import (
	"errors"
	"flag"

	"github.com/lastseen/lastseen/backend/httpapi"
)

// Caps are what serve lets any one caller, and everyone together, hold:
// connections, event streams, devices, failed sign-ins.
type Caps struct {
	// MaxConns caps open connections (streams included); zero derives it
	// from the process's descriptor limit, leaving room for the store,
	// the log and refusing connections over the cap.
	MaxConns int
	// MaxStreams and MaxStreamsPerUser cap open event streams in all and
	// per user; MaxStreams is lowered to three quarters of the connection
	// cap if above it, so streams never take every connection.
	MaxStreams, MaxStreamsPerUser int
	// MaxPublicStreamsPerAddr caps the public status streams one client
	// address holds open (behind a reverse proxy, every client shares
	// the proxy's address).
	MaxPublicStreamsPerAddr int
	// MaxDevicesPerUser caps the devices a user may add through the API
	// (the command line, an administrator's tool, is not capped).
	MaxDevicesPerUser int
	// FailedAuthRate limits failed authentications per client address.
	FailedAuthRate httpapi.Rate
}

// DefaultCaps are httpapi's defaults, with the connection cap derived.
func DefaultCaps() Caps {
	return Caps{
		MaxStreams:              httpapi.DefaultMaxStreams,
		MaxStreamsPerUser:       httpapi.DefaultMaxStreamsPerUser,
		MaxPublicStreamsPerAddr: httpapi.DefaultMaxPublicStreamsPerAddr,
		MaxDevicesPerUser:       httpapi.DefaultMaxDevicesPerUser,
		FailedAuthRate:          httpapi.DefaultFailedAuthRate,
	}
}

func (l *Caps) flags(fs *flag.FlagSet) {
	fs.IntVar(&l.MaxConns, "max-conns", l.MaxConns, "most open `connections`, streams included; 0 derives it from the descriptor limit (ulimit -n)")
	fs.IntVar(&l.MaxStreams, "max-streams", l.MaxStreams, "most open event `streams` in all")
	fs.IntVar(&l.MaxStreamsPerUser, "max-streams-per-user", l.MaxStreamsPerUser, "most open event `streams` per user, over all their tokens")
	fs.IntVar(&l.MaxPublicStreamsPerAddr, "max-public-streams-per-addr", l.MaxPublicStreamsPerAddr, "most open public status `streams` per client address (IPv6: per /64); raise it behind a reverse proxy")
	fs.IntVar(&l.MaxDevicesPerUser, "max-devices-per-user", l.MaxDevicesPerUser, "most `devices` a user may add through the API")
	fs.Var(rateValue{&l.FailedAuthRate}, "auth-fail-rate", "failed sign-ins allowed per client address (IPv6: per /64), as `PER_SECOND/BURST`")
}

func (l Caps) validate() error {
	switch {
	case l.MaxConns < 0:
		return errors.New("--max-conns must be 0 (derived) or positive")
	case l.MaxStreams < 1 || l.MaxStreamsPerUser < 1 || l.MaxDevicesPerUser < 1 || l.MaxPublicStreamsPerAddr < 1:
		return errors.New("--max-streams, --max-streams-per-user, --max-public-streams-per-addr and --max-devices-per-user must be positive")
	case l.FailedAuthRate.PerSecond <= 0 || l.FailedAuthRate.Burst < 1:
		return errors.New("--auth-fail-rate must be a positive rate with a burst of at least 1")
	}
	return nil
}

// Descriptor headroom: what the process needs besides connections (the
// store's files and pool, the log, the listener) plus the refusals that
// may be under way, each holding a descriptor for a moment.
const (
	minHeadroom = 128
	// defaultConns is the cap where the descriptor limit cannot be read.
	defaultConns = 4096
	minConns     = 16
)

// connCaps are the connection and stream caps serve applies, and what they
// came from, for the start-up log.
type connCaps struct {
	conns, streams int
	fdLimit        uint64 // the descriptor limit read, 0 when unknown
	clamped        bool   // MaxConns was above what the limit leaves
}

// caps works out the connection cap (from MaxConns, or else the
// descriptor limit, keeping headroom) and the stream cap under it.
func (l Caps) caps() connCaps {
	c := connCaps{conns: l.MaxConns}
	avail := defaultConns
	if soft, ok := openFileLimit(); ok {
		c.fdLimit = soft
		headroom := max(uint64(minHeadroom), soft/8)
		avail = minConns
		if soft > headroom+minConns {
			avail = int(min(soft-headroom, 1<<30))
		}
	}
	switch {
	case c.conns == 0:
		c.conns = avail
	case c.fdLimit != 0 && c.conns > avail:
		c.conns, c.clamped = avail, true
	}
	c.streams = min(l.MaxStreams, max(c.conns-c.conns/4, 1))
	return c
}

package agenthost

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// A device's side of pairing with a presence service (RFC 8628, the device
// authorization grant): ask the service for codes, let the person see them,
// and poll until they approve or deny the device in their browser. Approval
// hands the device its token; the device never sees the person's password
// or session. The window's pairing (pair.go) and the pair command both
// wait this way.

// PairingService is the part of the service's API pairing uses (httpapi.Client).
type PairingService interface {
	StartPairing(ctx context.Context, deviceName, os string) (httpapi.PairingStart, error)
	PollPairing(ctx context.Context, deviceCode string) (httpapi.PairingPoll, error)
}

// PairingClock tells the time and waits. Nil means the system's.
type PairingClock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemPairingClock struct{}

func (systemPairingClock) Now() time.Time                         { return time.Now() }
func (systemPairingClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// How a pairing ends without a token. Each is final: a new pairing needs
// new codes.
var (
	ErrPairingDenied  = errors.New("the pairing was denied")
	ErrPairingExpired = errors.New("the pairing code expired before it was approved")
	// ErrPairingInvalidGrant: the service does not know the device code (any
	// more): it was used already, or the service lost it.
	ErrPairingInvalidGrant = errors.New("the service no longer knows this pairing")
)

// Paired is an approved pairing: this device on the service.
type Paired struct {
	Token  string // the device token (ls_dev_…), to keep owner-only
	Device presence.Device
	Handle string // whose device it is
}

// Pair asks svc for pairing codes for this device, hands them to show (the
// pair command prints them), then waits for the decision (WaitPairing).
func Pair(ctx context.Context, svc PairingService, deviceName, os string, clk PairingClock, show func(httpapi.PairingStart)) (Paired, error) {
	start, err := svc.StartPairing(ctx, deviceName, os)
	if err != nil {
		return Paired{}, fmt.Errorf("start pairing: %w", err)
	}
	if show != nil {
		show(start)
	}
	return WaitPairing(ctx, svc, start, clk)
}

// WaitPairing polls the token endpoint for start's device code every
// interval until the pairing is decided: it returns the device's token on
// approval; ErrPairingDenied, ErrPairingExpired or ErrPairingInvalidGrant
// when it ends without one; ctx's error when ctx ends first.
//
// slow_down adds presence.SlowDownStep to the interval for good (RFC 8628
// §3.5); an interval the service names is taken when it is longer. While
// the service cannot be reached, answers 5xx or limits the rate, it keeps
// trying at the interval (or after Retry-After) until the codes expire;
// any other failure ends it at once.
func WaitPairing(ctx context.Context, svc PairingService, start httpapi.PairingStart, clk PairingClock) (Paired, error) {
	if clk == nil {
		clk = systemPairingClock{}
	}
	interval := start.Interval
	if interval <= 0 {
		interval = presence.PairingInterval // RFC 8628 §3.2's default
	}
	life := start.ExpiresIn
	if life <= 0 {
		life = presence.PairingTTL
	}
	deadline := clk.Now().Add(life)
	wait := interval
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return Paired{}, ctx.Err()
		case <-clk.After(wait):
		}
		wait = interval
		p, err := svc.PollPairing(ctx, start.DeviceCode)
		switch {
		case ctx.Err() != nil:
			return Paired{}, ctx.Err()
		case err != nil && !pairTransient(err):
			return Paired{}, fmt.Errorf("ask whether the pairing was approved: %w", err)
		case err != nil:
			lastErr = err
			var ra presence.RetryAfterer
			if errors.As(err, &ra) && ra.RetryAfter() > wait {
				wait = ra.RetryAfter()
			}
		default:
			lastErr = nil
			switch p.Outcome {
			case presence.PollApproved:
				if p.Token == "" {
					return Paired{}, errors.New("the service approved the pairing but sent no token")
				}
				return Paired{Token: p.Token, Device: p.Device, Handle: p.Handle}, nil
			case presence.PollPending:
			case presence.PollSlowDown:
				interval += presence.SlowDownStep
			case presence.PollDenied:
				return Paired{}, ErrPairingDenied
			case presence.PollExpired:
				return Paired{}, ErrPairingExpired
			case httpapi.PairInvalidGrant:
				return Paired{}, ErrPairingInvalidGrant
			default:
				return Paired{}, fmt.Errorf("the service refused the pairing: %s %s", p.Outcome, p.Description)
			}
			interval = max(interval, p.Interval)
			wait = interval
		}
		// The service says when the codes expire; this bound is for a
		// service that cannot say (unreachable) or never does.
		if !clk.Now().Before(deadline) {
			if lastErr != nil {
				return Paired{}, fmt.Errorf("%w (the service could not be asked: %v)", ErrPairingExpired, lastErr)
			}
			return Paired{}, ErrPairingExpired
		}
	}
}

// transient reports a failure worth asking again after: the service could
// not be reached, was overloaded or limits the rate.
func pairTransient(err error) bool {
	var ae *httpapi.APIError
	if !errors.As(err, &ae) {
		return true // no answer at all: the network, DNS, a timeout
	}
	return ae.Status == 429 || ae.Status >= 500
}

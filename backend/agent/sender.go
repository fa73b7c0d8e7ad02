package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lastseen/lastseen/backend/agentdb"
	"github.com/lastseen/lastseen/backend/presence"
)

// RevokedMessage is the sync error shown while the service refuses the
// device's token with 401: sending stops until the token changes.
const RevokedMessage = "this device's token was revoked"

// SeqExhaustedMessage is the sync error shown when the service holds seqs
// for this device at or near presence.MaxSeq: renumbering the queue above
// them would leave no seq the service accepts, so sending stops until the
// device token changes.
const SeqExhaustedMessage = "this device's sequence is exhausted on the service; re-pair or reset the device"

// seqHeadroom is how many seqs must remain below presence.MaxSeq after a
// resync for the agent to go on: 2^32 is over a century at a beat a second.
// Less means the service holds a seq no agent made (a hostile or broken
// client with this device's token); sending on would soon run out.
const seqHeadroom = 1 << 32

// errSeqExhausted reports an answer whose last_seq leaves no room to
// renumber the queue above it.
var errSeqExhausted = errors.New(SeqExhaustedMessage)

// MaxRetryAfter caps a service's Retry-After: the beats are safe in the
// outbox, but an absurd value must not silence the agent for days.
const MaxRetryAfter = time.Hour

// Log attribute keys.
const (
	logErr      = "err"
	logFailures = "failures"
	logDelay    = "retry_in"
	logBeats    = "beats"
	logSeq      = "last_seq"
	logReason   = "reason"
	logEvent    = "event"
	logMode     = "mode"
	logState    = "state"
)

// sender is the one goroutine that empties the outbox into the Uploader.
type sender struct {
	db    *agentdb.DB
	log   *slog.Logger
	now   func() time.Time
	rand  func() float64
	facts *presence.Facts

	wake      chan struct{} // cap 1: beats were queued
	interrupt chan struct{} // cap 1: the uploader changed or a flush wants a send now
	flushGen  atomic.Uint64 // bumped by every flush

	mu        sync.Mutex
	cfg       Config
	up        Uploader
	target    string // names up's service; the run loop records it (it alone writes the sent mark)
	gen       uint64 // bumped by SetUploader
	stopped   string // non-empty: credentials refused, nothing is sent until the uploader changes
	failures  int
	reachable bool
	lastSync  time.Time
	curErr    string // the problem now ("" after a success)
	lastErr   string // the last problem ever, kept for Diagnostics
	lastErrAt time.Time
	nextRetry time.Time
	attempted chan struct{} // closed and replaced after every attempt
	onChange  func()
}

func newSender(db *agentdb.DB, cfg Config, log *slog.Logger, now func() time.Time, rnd func() float64, facts *presence.Facts) *sender {
	return &sender{
		db: db, cfg: cfg, log: log, now: now, rand: rnd, facts: facts,
		wake:      make(chan struct{}, 1),
		interrupt: make(chan struct{}, 1),
		attempted: make(chan struct{}),
		onChange:  func() {},
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// setUploader switches the service. The new uploader starts with a clean
// slate: no backoff, no refusal, and (when target names another service) a
// one-beat probe first, to learn what that service already holds.
func (s *sender) setUploader(ctx context.Context, u Uploader, target string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.up, s.target = u, target
	s.gen++
	s.stopped = ""
	s.failures = 0
	s.nextRetry = time.Time{}
	s.curErr = ""
	s.reachable = false
	s.mu.Unlock()
	poke(s.interrupt)
	poke(s.wake)
	s.onChange()
	return nil
}

func (s *sender) setConfig(cfg Config) {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
}

// canSend reports whether an attempt could be made now.
func (s *sender) canSend() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up != nil && s.stopped == ""
}

func (s *sender) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// attemptedChan is closed after the next attempt, whatever its outcome.
func (s *sender) attemptedChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempted
}

// flush asks for an immediate attempt (past any backoff, except a Retry-After
// the service asked for) and waits until the outbox is empty, sending is
// impossible, or d passed. Whatever is not sent stays queued.
func (s *sender) flush(d time.Duration) {
	s.flushGen.Add(1)
	poke(s.interrupt)
	poke(s.wake)
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		ch := s.attemptedChan()
		if s.db.Depth() == 0 || !s.canSend() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			return
		}
	}
}

// run sends until ctx ends.
func (s *sender) run(ctx context.Context) {
	var (
		gen       uint64
		started   bool
		sentSeq   int64 // highest seq sent to this target, persisted before sending
		limit     int   // batch size; halved when the service says a body is too large
		factsSent bool
	)
	for ctx.Err() == nil {
		s.mu.Lock()
		up, target, g, stopped, cfg := s.up, s.target, s.gen, s.stopped, s.cfg
		s.mu.Unlock()
		if !started || g != gen {
			// Only this goroutine writes the target and the sent mark, so a
			// switch can never interleave with a send to the old service.
			started, gen, limit, factsSent = true, g, cfg.BatchSize, false
			v, err := s.switchTarget(ctx, target)
			if err != nil {
				s.fail(ctx, gen, err, false)
				started = false
				continue
			}
			sentSeq = v
		}
		if up == nil || stopped != "" {
			s.waitWork(ctx)
			continue
		}
		n := min(limit, cfg.BatchSize)
		if sentSeq == 0 {
			// First exchange with this service: one beat tells us its
			// last_seq for this device before a whole batch could be
			// swallowed as duplicates (a wiped agent store, a reused token).
			n = 1
		}
		beats, err := s.db.Outbox(ctx, n)
		if err != nil {
			s.fail(ctx, gen, err, false)
			continue
		}
		if len(beats) == 0 {
			s.waitWork(ctx)
			continue
		}
		sentBefore := sentSeq
		if top := beats[len(beats)-1].Seq; top > sentSeq {
			if err := s.db.MarkSent(ctx, top); err != nil {
				s.fail(ctx, gen, err, false)
				continue
			}
			sentSeq = top
		}
		batch := presence.Batch{SentAt: s.now().UTC(), Beats: beats}
		if !factsSent {
			batch.Facts = fitFacts(s.facts)
		}
		rctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
		res, err := up.PostHeartbeats(rctx, batch)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			if err := s.settle(ctx, beats, res, sentBefore); err != nil {
				if errors.Is(err, errSeqExhausted) {
					s.stop(SeqExhaustedMessage, fmt.Errorf("the service's last_seq for this device is %d; renumbering above it needs %d seqs below %d",
						res.LastSeq, int64(seqHeadroom), int64(presence.MaxSeq)))
					continue
				}
				s.fail(ctx, gen, err, false)
				continue
			}
			factsSent = true
			s.succeeded()
			continue
		}
		if batch.Facts != nil && refusedBatch(err, len(beats)) {
			// The facts are the one part of the batch the agent did not
			// make for the service; they are worth no beat. Send on
			// without them, at once.
			factsSent = true
			s.log.Warn("the service refused a batch that carried the machine facts; sending without them",
				slog.String(logReason, presence.ErrorMessage(err)))
			s.attemptDone()
			continue
		}
		s.handleError(ctx, gen, beats, err, &limit)
	}
}

// refusedBatch reports an answer that refuses a batch of n beats as a
// whole, not for its size: 400, or 413 for a single beat (a larger batch
// is halved first). Refusals of single beats come in a successful answer's
// rejected list.
func refusedBatch(err error, n int) bool {
	c := presence.ErrorCode(err)
	return c == presence.EINVALID || c == presence.ETOOLARGE && n == 1
}

// switchTarget records the service now sent to and returns the sent mark for
// it (zero for a service not talked to before).
func (s *sender) switchTarget(ctx context.Context, target string) (int64, error) {
	if _, err := s.db.SetTarget(ctx, target); err != nil {
		return 0, err
	}
	v, err := s.db.SentSeq(ctx)
	if err != nil {
		return 0, fmt.Errorf("read sent mark: %w", err)
	}
	return v, nil
}

// handleError decides what a failed request means for the batch.
func (s *sender) handleError(ctx context.Context, gen uint64, beats []presence.Beat, err error, limit *int) {
	var apiErr *presence.Error
	answered := errors.As(err, &apiErr)
	switch presence.ErrorCode(err) {
	case presence.EUNAUTHORIZED:
		s.stop(RevokedMessage, err)
	case presence.EFORBIDDEN:
		// A token the service knows but will not take beats from (a user
		// token in the device slot): a setting to fix, not beats to discard.
		s.stop("the service refused this device's token: "+presence.ErrorMessage(err), err)
	case presence.ETOOLARGE:
		if len(beats) > 1 {
			*limit = max(1, len(beats)/2)
			s.log.Warn("batch too large; halving", slog.Int(logBeats, *limit))
			s.attemptDone()
			return
		}
		s.quarantine(ctx, gen, beats, err)
	default:
		// The service refused the batch as a whole (400: it judges beats one
		// by one and lists those it refuses in a successful answer, so this
		// is about the request, not a beat), or rate limits, unreachable or
		// failing services, odd answers (404 from a wrong URL): retry
		// later, the beats wait in the outbox. A batch-level refusal is
		// never a reason to quarantine beats: that lost every beat behind a
		// refusal that was not theirs.
		s.fail(ctx, gen, err, answered)
	}
}

// settle applies a successful answer to the outbox.
func (s *sender) settle(ctx context.Context, beats []presence.Beat, res presence.BatchResult, sentBefore int64) error {
	now := s.now()
	reasons := make(map[int64]string, len(res.Rejected))
	for _, r := range res.Rejected {
		reasons[r.Seq] = r.Error
	}
	var (
		valid []presence.Beat
		st    = agentdb.Settlement{SyncedAt: now}
	)
	for _, b := range beats {
		if why, ok := reasons[b.Seq]; ok {
			st.Quarantine = append(st.Quarantine, agentdb.Quarantined{Beat: b, Error: why, QuarantinedAt: now})
			continue
		}
		valid = append(valid, b)
	}
	// The service sorts a batch by seq and counts the beats at or below its
	// mark as duplicates: they are the lowest valid ones.
	dups := min(max(res.Duplicates, 0), len(valid))
	unexpected := false
	for _, b := range valid[:dups] {
		if b.Seq > sentBefore {
			unexpected = true // a duplicate of a beat we never sent it
		}
	}
	ahead := res.LastSeq > s.db.LastSeq()
	if (unexpected || ahead) && res.LastSeq > 0 {
		if res.LastSeq > presence.MaxSeq-seqHeadroom {
			// Renumbering above it would overflow or leave seqs the
			// service refuses: every later beat lost. Keep the queue as
			// it is for a re-paired device.
			return errSeqExhausted
		}
		for _, b := range valid[dups:] {
			st.Delete = append(st.Delete, b.Seq)
		}
		st.Resync = res.LastSeq
	} else {
		st.Through = beats[len(beats)-1].Seq
	}
	n, err := s.db.Settle(ctx, st)
	if err != nil {
		return err
	}
	if st.Resync > 0 {
		s.log.Warn("service already had beats of this device above ours (agent data reset or token reused); renumbered the queue",
			slog.Int64(logSeq, res.LastSeq), slog.Int(logBeats, n))
	}
	if len(st.Quarantine) > 0 {
		s.log.Warn("service rejected beats; quarantined",
			slog.Int(logBeats, len(st.Quarantine)), slog.String(logReason, st.Quarantine[0].Error))
	}
	return nil
}

func (s *sender) succeeded() {
	s.mu.Lock()
	failures := s.failures
	s.failures = 0
	s.reachable = true
	s.lastSync = s.now()
	s.curErr = ""
	s.nextRetry = time.Time{}
	s.mu.Unlock()
	if failures > 0 {
		s.log.Info("recovered after failures", slog.Int(logFailures, failures))
	}
	s.attemptDone()
	s.onChange()
}

// stop records a credential refusal: nothing is sent until SetUploader.
func (s *sender) stop(msg string, err error) {
	s.mu.Lock()
	first := s.stopped == ""
	s.stopped = msg
	s.reachable = true
	s.curErr, s.lastErr = msg, msg
	s.lastErrAt = s.now()
	s.mu.Unlock()
	if first {
		s.log.Error("sending stopped until the device token changes", slog.String(logReason, msg), slog.Any(logErr, err))
	}
	s.attemptDone()
	s.onChange()
}

func (s *sender) quarantine(ctx context.Context, gen uint64, beats []presence.Beat, cause error) {
	now := s.now()
	why := presence.ErrorMessage(cause)
	st := agentdb.Settlement{}
	for _, b := range beats {
		st.Quarantine = append(st.Quarantine, agentdb.Quarantined{Beat: b, Error: why, QuarantinedAt: now})
	}
	if _, err := s.db.Settle(ctx, st); err != nil {
		s.fail(ctx, gen, err, false)
		return
	}
	s.log.Warn("service refused a batch; quarantined", slog.Int(logBeats, len(beats)), slog.String(logReason, why))
	s.mu.Lock()
	s.reachable = true
	s.lastErr = "the service refused " + fmt.Sprint(len(beats)) + " beats: " + why
	s.curErr = s.lastErr
	s.lastErrAt = now
	s.mu.Unlock()
	s.attemptDone()
	s.onChange()
}

// fail records a failure and waits out the backoff (or the service's
// Retry-After, whichever is longer).
func (s *sender) fail(ctx context.Context, gen uint64, err error, answered bool) {
	s.mu.Lock()
	s.failures++
	n, cfg := s.failures, s.cfg
	delay := backoffDelay(n, cfg.BackoffMin, cfg.BackoffMax, s.rand())
	var ra presence.RetryAfterer
	honour := errors.As(err, &ra) && ra.RetryAfter() > 0
	if honour {
		delay = max(delay, min(ra.RetryAfter(), MaxRetryAfter))
	}
	s.reachable = answered
	s.lastErr = err.Error()
	s.curErr = s.lastErr
	s.lastErrAt = s.now()
	s.nextRetry = s.lastErrAt.Add(delay)
	s.mu.Unlock()
	if n == 1 {
		s.log.Warn("sending failed; will retry", slog.Any(logErr, err), slog.Duration(logDelay, delay))
	} else {
		s.log.Debug("sending failed again", slog.Any(logErr, err), slog.Int(logFailures, n), slog.Duration(logDelay, delay))
	}
	s.attemptDone()
	s.onChange()
	s.waitBackoff(ctx, gen, delay, honour)
}

func (s *sender) attemptDone() {
	s.mu.Lock()
	close(s.attempted)
	s.attempted = make(chan struct{})
	s.mu.Unlock()
}

// waitWork blocks until beats are queued, the uploader changes or ctx ends.
func (s *sender) waitWork(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-s.wake:
	case <-s.interrupt:
	}
}

// waitBackoff sleeps d, cut short by a new uploader or, unless the service
// asked for the wait (Retry-After), by a flush that began after the failure.
func (s *sender) waitBackoff(ctx context.Context, gen uint64, d time.Duration, asked bool) {
	seen := s.flushGen.Load()
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-s.interrupt:
			if s.generation() != gen || (!asked && s.flushGen.Load() != seen) {
				return
			}
		}
	}
}

// syncStatus is the sender's part of Status and Diagnostics.
type syncStatus struct {
	connected, reachable bool
	stopped              string
	failures             int
	lastSync, lastErrAt  time.Time
	nextRetry            time.Time
	curErr, lastErr      string
}

func (s *sender) status() syncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return syncStatus{
		connected: s.up != nil, reachable: s.reachable, stopped: s.stopped, failures: s.failures,
		lastSync: s.lastSync, lastErrAt: s.lastErrAt, nextRetry: s.nextRetry, curErr: s.curErr, lastErr: s.lastErr,
	}
}

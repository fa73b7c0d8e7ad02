// Package groupcommit batches many small writes into few transactions.
//
// A store that must answer "committed" for every request (DESIGN §3: a 200
// means committed) pays one fsync or one round trip per transaction, not per
// request. A Writer queues requests from any number of goroutines; a single
// goroutine collects them for a short linger, hands the whole group to a
// commit function that applies it inside one transaction, and answers every
// caller only after that commit returned.
//
// The guarantees callers rely on:
//
//   - Do answers with the request's own result only after the group holding
//     it was committed.
//   - If the group's commit fails and it held more than one request, each
//     request is committed again on its own, so one bad request does not fail
//     the others. The commit function must therefore be atomic: when it
//     returns an error it must have applied nothing (roll back).
//   - A caller whose context ends while its request still waits in the queue
//     withdraws it: Do returns the context's error and the request is never
//     committed. Once the collector has taken the request into a group, Do
//     waits for that group's outcome and reports it, so an answer is always
//     definite: either the real result, or an error meaning "not applied".
//   - Close stops accepting requests, commits everything already accepted and
//     returns once the collector has finished.
//   - With MaxWaiting set, a request that would make the waiting weight
//     exceed it is refused at once with a *FullError (errors.Is ErrFull)
//     that says when to come back; it was not applied. An overloaded store
//     thus answers "later" in microseconds instead of holding every caller,
//     and the memory behind the queue stays bounded.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("groupcommit: writer closed")

// ErrFull is what a *FullError is (errors.Is): the queue was full.
var ErrFull = errors.New("groupcommit: too much waiting to be committed")

// FullError refuses a request because MaxWaiting was reached. The request
// was not applied; it may be sent again after RetryAfter.
type FullError struct {
	// Waiting is the weight that was already waiting, Max the bound.
	Waiting, Max int
	// Wait is how long the waiting weight takes to commit at the writer's
	// recent pace: the earliest a retry may find room.
	Wait time.Duration
}

func (e *FullError) Error() string {
	return fmt.Sprintf("groupcommit: %d of at most %d waiting to be committed; retry in %s", e.Waiting, e.Max, e.Wait)
}

// Is makes errors.Is(err, ErrFull) hold.
func (e *FullError) Is(target error) bool { return target == ErrFull }

// RetryAfter is when to try again (the presence.RetryAfterer contract).
func (e *FullError) RetryAfter() time.Duration { return e.Wait }

// errMismatch marks a commit function that broke its contract.
var errMismatch = errors.New("groupcommit: commit returned the wrong number of results")

// CommitFunc applies a group of requests in one transaction and returns one
// result per request, in order. It must be all or nothing: on error nothing
// of the group may remain applied. A request-level failure that the function
// can detect without spoiling the transaction is better reported inside Res
// (for example a struct with an error field) than as the group's error, which
// costs a retry of every request on its own.
//
// ctx is the writer's own context; it is not cancelled by any caller, so one
// caller giving up never aborts a group that carries other callers' requests.
type CommitFunc[Req, Res any] func(ctx context.Context, reqs []Req) ([]Res, error)

// Options tune the collector. Zero values take the defaults.
type Options[Req any] struct {
	// Linger is how long the collector waits for more requests after the
	// first one of a group arrived (default 2 ms). Zero takes the default;
	// a negative value means no wait: a group is whatever is queued at once.
	Linger time.Duration
	// MaxBatch ends a group early once the summed weight of its requests
	// reaches it (default 1000). A single request heavier than MaxBatch
	// still forms a group of its own; a group may exceed MaxBatch by the
	// weight of its last request.
	MaxBatch int
	// Weight is the size of one request (default 1 each), e.g. its number of
	// beats, so MaxBatch bounds the work of one transaction.
	Weight func(Req) int
	// Queue is how many requests may wait for the collector (default 4096).
	// Do blocks (honouring its context) while the queue is full.
	Queue int
	// MaxWaiting, when above zero, bounds the summed weight of the
	// requests waiting for the collector (those taken into the group being
	// committed no longer count, nor, once the collector has passed them,
	// those their callers withdrew). Do refuses a request that would exceed it
	// with a *FullError instead of blocking, unless nothing waits at all, so
	// a single request heavier than the bound still goes through. The queue
	// then holds up to MaxWaiting requests, whatever Queue says.
	MaxWaiting int
}

const (
	defaultLinger   = 2 * time.Millisecond
	defaultMaxBatch = 1000
	defaultQueue    = 4096
	// A FullError's Wait stays within these: the floor for a writer that
	// has not timed a commit yet, the cap because a stalled commit would
	// make the estimate run away.
	minRetryHint = 10 * time.Millisecond
	maxRetryHint = time.Minute
)

// Writer is a group-commit writer. Its methods are safe for concurrent use.
type Writer[Req, Res any] struct {
	commit     CommitFunc[Req, Res]
	linger     time.Duration
	maxBatch   int
	weight     func(Req) int
	maxWaiting int64

	// waiting is the summed weight of requests sent to queue and not yet
	// received from it by the collector. costPerUnit is a moving average of
	// the commit time per unit of weight (ns), for FullError's hint; the
	// collector alone writes it.
	waiting     atomic.Int64
	costPerUnit atomic.Int64

	// mu orders Do's enqueue against Close's closing of queue: Do sends while
	// holding it for reading, Close takes it for writing, so no send ever
	// hits a closed channel.
	mu     sync.RWMutex
	closed bool
	queue  chan *request[Req, Res]
	done   chan struct{}
	ctx    context.Context
}

// request states: a queued request is either taken by the collector or
// withdrawn by its caller, never both (a CAS decides).
const (
	queued int32 = iota
	taken
	withdrawn
)

type request[Req, Res any] struct {
	req    Req
	weight int64 // Options.Weight of req, at least 1
	state  atomic.Int32
	res    Res
	err    error
	ready  chan struct{} // closed when res/err are final
}

// New starts a Writer whose collector goroutine runs until Close.
func New[Req, Res any](commit CommitFunc[Req, Res], opts Options[Req]) *Writer[Req, Res] {
	if opts.Linger == 0 {
		opts.Linger = defaultLinger
	}
	if opts.Linger < 0 {
		opts.Linger = 0
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultMaxBatch
	}
	if opts.Weight == nil {
		opts.Weight = func(Req) int { return 1 }
	}
	if opts.Queue <= 0 {
		opts.Queue = defaultQueue
	}
	if opts.MaxWaiting > 0 {
		// Every waiting request weighs at least 1, so a queue this long
		// never blocks a request the bound admits.
		opts.Queue = opts.MaxWaiting
	}
	w := &Writer[Req, Res]{
		commit:     commit,
		linger:     opts.Linger,
		maxBatch:   opts.MaxBatch,
		weight:     opts.Weight,
		maxWaiting: int64(max(opts.MaxWaiting, 0)),
		queue:      make(chan *request[Req, Res], opts.Queue),
		done:       make(chan struct{}),
		ctx:        context.Background(),
	}
	go w.run()
	return w
}

// Do queues req and returns its result once the group holding it has been
// committed. It returns ErrClosed after Close, a *FullError when MaxWaiting
// is reached, and ctx's error (wrapped) when ctx ends before the collector
// took the request; in each of these cases the request was not applied and
// never will be.
func (w *Writer[Req, Res]) Do(ctx context.Context, req Req) (Res, error) {
	var zero Res
	r := &request[Req, Res]{req: req, weight: int64(max(w.weight(req), 1)), ready: make(chan struct{})}
	if err := w.enqueue(ctx, r); err != nil {
		return zero, err
	}
	select {
	case <-r.ready:
		return r.res, r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, withdrawn) {
			return zero, fmt.Errorf("groupcommit: request withdrawn, not applied: %w", ctx.Err())
		}
		// Already part of a group: its outcome is moments away and is the
		// only honest answer.
		<-r.ready
		return r.res, r.err
	}
}

func (w *Writer[Req, Res]) enqueue(ctx context.Context, r *request[Req, Res]) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("groupcommit: request not applied: %w", err)
	}
	if err := w.admit(r.weight); err != nil {
		return err
	}
	select {
	case w.queue <- r:
		return nil
	case <-ctx.Done():
		w.waiting.Add(-r.weight)
		return fmt.Errorf("groupcommit: request not applied: %w", ctx.Err())
	}
}

// admit counts weight as waiting, or refuses it when that would pass
// MaxWaiting while something already waits.
func (w *Writer[Req, Res]) admit(weight int64) error {
	n := w.waiting.Add(weight)
	if w.maxWaiting == 0 || n <= w.maxWaiting || n == weight {
		return nil
	}
	w.waiting.Add(-weight)
	ahead := n - weight
	wait := time.Duration(min(ahead*w.costPerUnit.Load(), int64(maxRetryHint)))
	return &FullError{Waiting: int(ahead), Max: int(w.maxWaiting), Wait: max(wait, w.linger, minRetryHint)}
}

// Waiting is the summed weight of the requests waiting for the collector.
func (w *Writer[Req, Res]) Waiting() int { return int(w.waiting.Load()) }

// Close stops accepting requests, commits every request already accepted and
// waits for the collector to finish. Later calls return nil at once.
func (w *Writer[Req, Res]) Close() error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
	return nil
}

func (w *Writer[Req, Res]) run() {
	defer close(w.done)
	var timer *time.Timer
	for {
		first, ok := <-w.queue
		if !ok {
			return
		}
		group := make([]*request[Req, Res], 0, 16)
		weight := 0
		add := func(r *request[Req, Res]) {
			w.waiting.Add(-r.weight)
			if r.state.CompareAndSwap(queued, taken) {
				group = append(group, r)
				weight += int(r.weight)
			}
		}
		add(first)
		open := true
		if w.linger > 0 && weight < w.maxBatch {
			if timer == nil {
				timer = time.NewTimer(w.linger)
			} else {
				timer.Reset(w.linger)
			}
		collect:
			for weight < w.maxBatch {
				select {
				case r, more := <-w.queue:
					if !more {
						open = false
						break collect
					}
					add(r)
				case <-timer.C:
					break collect
				}
			}
			timer.Stop()
		}
		// Whatever is already queued joins too: no reason to make it wait
		// a whole extra commit.
	drain:
		for open && weight < w.maxBatch {
			select {
			case r, more := <-w.queue:
				if !more {
					open = false
					break drain
				}
				add(r)
			default:
				break drain
			}
		}
		if len(group) > 0 {
			start := time.Now()
			w.flush(group)
			w.observe(weight, time.Since(start))
		}
		if !open {
			return
		}
	}
}

// observe folds a group's commit time into costPerUnit, weighting the
// newest group by 1/8: quick to follow a slower disk, steady over one odd
// group.
func (w *Writer[Req, Res]) observe(weight int, d time.Duration) {
	sample := int64(d) / int64(max(weight, 1))
	old := w.costPerUnit.Load()
	if old == 0 {
		w.costPerUnit.Store(sample)
		return
	}
	w.costPerUnit.Store(old + (sample-old)/8)
}

// flush commits a group and answers its callers; on failure it retries each
// request alone so that only the failing ones see an error.
func (w *Writer[Req, Res]) flush(group []*request[Req, Res]) {
	reqs := make([]Req, len(group))
	for i, r := range group {
		reqs[i] = r.req
	}
	res, err := w.call(reqs)
	if err == nil {
		for i, r := range group {
			r.res = res[i]
			close(r.ready)
		}
		return
	}
	if len(group) == 1 || errors.Is(err, errMismatch) {
		for _, r := range group {
			r.err = err
			close(r.ready)
		}
		return
	}
	for _, r := range group {
		res, err := w.call([]Req{r.req})
		if err != nil {
			r.err = err
		} else {
			r.res = res[0]
		}
		close(r.ready)
	}
}

func (w *Writer[Req, Res]) call(reqs []Req) ([]Res, error) {
	res, err := w.commit(w.ctx, reqs)
	if err != nil {
		return nil, err
	}
	if len(res) != len(reqs) {
		// A broken commit function: the results cannot be matched to the
		// callers, so nobody may be told their request succeeded, and a
		// retry would apply the committed group twice.
		return nil, fmt.Errorf("%w: %d results for %d requests", errMismatch, len(res), len(reqs))
	}
	return res, nil
}

package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// ledger is a fake transactional store: commit applies a group atomically
// (or nothing) and records every group it saw.
type ledger struct {
	mu      sync.Mutex
	applied []int
	groups  [][]int
	delay   time.Duration
	// bad requests make any group holding them fail as a whole.
	bad map[int]bool
}

func (l *ledger) commit(_ context.Context, reqs []int) ([]string, error) {
	if l.delay > 0 {
		time.Sleep(l.delay) // the transaction's own latency
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.groups = append(l.groups, slices.Clone(reqs))
	for _, r := range reqs {
		if l.bad[r] {
			return nil, fmt.Errorf("request %d violates a constraint", r)
		}
	}
	res := make([]string, len(reqs))
	for i, r := range reqs {
		l.applied = append(l.applied, r)
		res[i] = fmt.Sprintf("ok %d", r)
	}
	return res, nil
}

func (l *ledger) snapshot() (applied []int, groups [][]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.applied), slices.Clone(l.groups)
}

// doAll runs Do for each request concurrently and returns results by request.
func doAll(w *Writer[int, string], reqs []int) (map[int]string, map[int]error) {
	var mu sync.Mutex
	res, errs := map[int]string{}, map[int]error{}
	var wg sync.WaitGroup
	for _, r := range reqs {
		wg.Go(func() {
			out, err := w.Do(context.Background(), r)
			mu.Lock()
			defer mu.Unlock()
			res[r], errs[r] = out, err
		})
	}
	wg.Wait()
	return res, errs
}

func seq(from, to int) []int {
	var s []int
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestGroupsConcurrentRequestsIntoOneCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &ledger{}
		w := New(l.commit, Options[int]{Linger: 2 * time.Millisecond})
		defer w.Close()
		res, errs := doAll(w, seq(1, 10))
		for r := 1; r <= 10; r++ {
			if errs[r] != nil || res[r] != fmt.Sprintf("ok %d", r) {
				t.Errorf("request %d: got %q, %v", r, res[r], errs[r])
			}
		}
		_, groups := l.snapshot()
		if len(groups) != 1 || len(groups[0]) != 10 {
			t.Errorf("groups = %v, want one group of 10", groups)
		}
	})
}

func TestLingerBoundsTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &ledger{}
		w := New(l.commit, Options[int]{Linger: 5 * time.Millisecond})
		defer w.Close()
		start := time.Now()
		if _, err := w.Do(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 5*time.Millisecond {
			t.Errorf("lone request answered after %v, want the 5ms linger", got)
		}
	})
}

func TestNegativeLingerDoesNotWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &ledger{}
		w := New(l.commit, Options[int]{Linger: -1})
		defer w.Close()
		start := time.Now()
		if _, err := w.Do(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("answered after %v, want at once", got)
		}
	})
}

func TestMaxBatchSplitsByWeight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Each request weighs its own value: 1..6 sum to 21; a group ends
		// once it reaches 5.
		l := &ledger{delay: time.Millisecond}
		w := New(l.commit, Options[int]{Linger: time.Second, MaxBatch: 5, Weight: func(r int) int { return r }})
		defer w.Close()
		_, errs := doAll(w, seq(1, 6))
		for r, err := range errs {
			if err != nil {
				t.Errorf("request %d: %v", r, err)
			}
		}
		applied, groups := l.snapshot()
		slices.Sort(applied)
		if !slices.Equal(applied, seq(1, 6)) {
			t.Errorf("applied %v, want 1..6 once each", applied)
		}
		for _, g := range groups {
			sum := 0
			for _, r := range g {
				sum += r
			}
			// A group stops at the request that reaches MaxBatch, so it
			// may exceed it by that request alone.
			if sum-g[len(g)-1] >= 5 {
				t.Errorf("group %v kept collecting past MaxBatch 5", g)
			}
		}
		if len(groups) < 3 {
			t.Errorf("groups = %v, want the weight to force at least 3", groups)
		}
	})
}

func TestFailingRequestDoesNotPoisonTheGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &ledger{bad: map[int]bool{3: true}}
		w := New(l.commit, Options[int]{Linger: time.Millisecond})
		defer w.Close()
		res, errs := doAll(w, seq(1, 5))
		for r := 1; r <= 5; r++ {
			switch {
			case r == 3 && errs[r] == nil:
				t.Errorf("request 3 succeeded, want its constraint error")
			case r != 3 && (errs[r] != nil || res[r] != fmt.Sprintf("ok %d", r)):
				t.Errorf("request %d: got %q, %v; want it committed despite request 3", r, res[r], errs[r])
			}
		}
		applied, _ := l.snapshot()
		slices.Sort(applied)
		if !slices.Equal(applied, []int{1, 2, 4, 5}) {
			t.Errorf("applied %v, want 1 2 4 5 exactly once", applied)
		}
	})
}

func TestCommitErrorReachesEveryCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("disk full")
		w := New(func(context.Context, []int) ([]string, error) { return nil, boom }, Options[int]{})
		defer w.Close()
		_, errs := doAll(w, seq(1, 4))
		for r, err := range errs {
			if !errors.Is(err, boom) {
				t.Errorf("request %d: err = %v, want %v", r, err, boom)
			}
		}
	})
}

func TestWrongResultCountIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		w := New(func(_ context.Context, reqs []int) ([]string, error) {
			calls++
			return []string{"only one"}, nil
		}, Options[int]{})
		defer w.Close()
		_, errs := doAll(w, seq(1, 3))
		for r, err := range errs {
			if err == nil {
				t.Errorf("request %d succeeded although results cannot be matched", r)
			}
		}
		if calls != 1 {
			t.Errorf("commit called %d times, want 1: a retry would apply the group twice", calls)
		}
	})
}

func TestCancelWhileQueuedWithdraws(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &ledger{delay: 10 * time.Millisecond}
		w := New(l.commit, Options[int]{Linger: -1})
		defer w.Close()
		// Request 1 occupies the collector for 10ms; request 2 waits in the
		// queue and its caller gives up after 1ms.
		go w.Do(context.Background(), 1)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_, err := w.Do(ctx, 2)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the deadline", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		applied, _ := l.snapshot()
		if !slices.Equal(applied, []int{1}) {
			t.Errorf("applied %v, want only 1: a withdrawn request must never commit", applied)
		}
	})
}

func TestCancelDuringCommitReportsTheOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &ledger{delay: 10 * time.Millisecond}
		w := New(l.commit, Options[int]{Linger: -1})
		defer w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		res, err := w.Do(ctx, 7)
		if err != nil || res != "ok 7" {
			t.Fatalf("got %q, %v; want the committed result although the caller gave up mid-commit", res, err)
		}
	})
}

func TestCloseDrainsAcceptedRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &ledger{delay: time.Millisecond}
		w := New(l.commit, Options[int]{Linger: time.Millisecond, MaxBatch: 3})
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range 20 {
			wg.Go(func() { _, errs[i] = w.Do(context.Background(), i) })
		}
		synctest.Wait() // every request is queued or being committed
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}
		applied, _ := l.snapshot()
		slices.Sort(applied)
		if !slices.Equal(applied, seq(0, 19)) {
			t.Errorf("applied %v, want all 20 accepted requests", applied)
		}
		if _, err := w.Do(context.Background(), 99); !errors.Is(err, ErrClosed) {
			t.Errorf("Do after Close: err = %v, want ErrClosed", err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

func TestFullQueueHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &ledger{delay: time.Hour}
		w := New(l.commit, Options[int]{Linger: -1, Queue: 1})
		go w.Do(context.Background(), 1) // taken, commit blocks for an hour
		synctest.Wait()
		go w.Do(context.Background(), 2) // fills the queue
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := w.Do(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the deadline while the queue is full", err)
		}
		w.Close() // waits out the hour in fake time
		applied, _ := l.snapshot()
		if !slices.Equal(applied, []int{1, 2}) {
			t.Errorf("applied %v, want 1 and 2 but never the refused 3", applied)
		}
	})
}

func TestCallerCancellationNeverReachesTheCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sawCancel bool
		w := New(func(ctx context.Context, reqs []int) ([]string, error) {
			time.Sleep(5 * time.Millisecond)
			sawCancel = sawCancel || ctx.Err() != nil
			return make([]string, len(reqs)), nil
		}, Options[int]{Linger: -1})
		defer w.Close()
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(time.Millisecond)
			cancel()
		}()
		if _, err := w.Do(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if sawCancel {
			t.Error("the commit saw a caller's cancellation")
		}
	})
}

// Close racing with many callers: each Do either commits or reports
// ErrClosed, and nothing panics on a closed queue.
func TestCloseRacingDo(t *testing.T) {
	l := &ledger{}
	w := New(l.commit, Options[int]{Linger: 100 * time.Microsecond})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := map[int]bool{}
	for i := range 200 {
		wg.Go(func() {
			_, err := w.Do(context.Background(), i)
			switch {
			case err == nil:
				mu.Lock()
				ok[i] = true
				mu.Unlock()
			case !errors.Is(err, ErrClosed):
				t.Errorf("request %d: %v", i, err)
			}
		})
		if i == 100 {
			wg.Go(func() { w.Close() })
		}
	}
	wg.Wait()
	w.Close()
	applied, _ := l.snapshot()
	if len(applied) != len(ok) {
		t.Errorf("%d applied but %d callers told so", len(applied), len(ok))
	}
	for _, r := range applied {
		if !ok[r] {
			t.Errorf("request %d applied but its caller got an error", r)
		}
	}
}

// gate is a commit that holds each group until released, so a test can
// fill the queue behind it.
type gate struct {
	ledger
	open chan struct{}
}

func newGate() *gate { return &gate{open: make(chan struct{})} }

func (g *gate) commit(ctx context.Context, reqs []int) ([]string, error) {
	<-g.open
	return g.ledger.commit(ctx, reqs)
}

func TestMaxWaitingRefusesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		w := New(g.commit, Options[int]{Linger: -1, MaxWaiting: 3})
		done := make(chan error, 4)
		for r := 1; r <= 4; r++ {
			go func() { _, err := w.Do(context.Background(), r); done <- err }()
			synctest.Wait() // 1 is taken into a group; 2, 3 and 4 wait
		}
		if got := w.Waiting(); got != 3 {
			t.Fatalf("Waiting() = %d, want 3", got)
		}
		start := time.Now()
		_, err := w.Do(context.Background(), 5)
		var full *FullError
		if !errors.As(err, &full) || !errors.Is(err, ErrFull) {
			t.Fatalf("err = %v, want a *FullError", err)
		}
		if time.Since(start) != 0 || full.Waiting != 3 || full.Max != 3 || full.RetryAfter() <= 0 {
			t.Errorf("refusal after %v: %+v", time.Since(start), full)
		}
		close(g.open)
		for range 4 {
			if err := <-done; err != nil {
				t.Errorf("accepted request failed: %v", err)
			}
		}
		if _, err := w.Do(context.Background(), 6); err != nil {
			t.Errorf("after the queue drained: %v", err)
		}
		w.Close()
		applied, _ := g.snapshot()
		if slices.Contains(applied, 5) || len(applied) != 5 {
			t.Errorf("applied %v, want 1-4 and 6, never the refused 5", applied)
		}
		if w.Waiting() != 0 {
			t.Errorf("Waiting() = %d after Close", w.Waiting())
		}
	})
}

func TestMaxWaitingCountsWeight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		w := New(g.commit, Options[int]{Linger: -1, MaxWaiting: 10, Weight: func(r int) int { return r }})
		done := make(chan error, 3)
		for _, r := range []int{1, 25} { // 1 is committing; 25 alone passes the empty queue
			go func() { _, err := w.Do(context.Background(), r); done <- err }()
			synctest.Wait()
		}
		if got := w.Waiting(); got != 25 {
			t.Fatalf("Waiting() = %d, want 25", got)
		}
		if _, err := w.Do(context.Background(), 1); !errors.Is(err, ErrFull) {
			t.Errorf("err = %v, want ErrFull past the bound", err)
		}
		close(g.open)
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("accepted request failed: %v", err)
			}
		}
		w.Close()
	})
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		w := New(g.commit, Options[int]{Linger: -1, MaxWaiting: 10, Weight: func(r int) int { return r }})
		done := make(chan error, 3)
		for _, r := range []int{1, 4, 6} { // 4+6 waiting fill the bound exactly
			go func() { _, err := w.Do(context.Background(), r); done <- err }()
			synctest.Wait()
		}
		if _, err := w.Do(context.Background(), 1); !errors.Is(err, ErrFull) {
			t.Errorf("err = %v, want ErrFull one past the bound", err)
		}
		close(g.open)
		for range 3 {
			if err := <-done; err != nil {
				t.Errorf("accepted request failed: %v", err)
			}
		}
		w.Close()
	})
}

// The hint is the waiting weight times the commit time per unit of weight
// the writer has been seeing.
func TestFullErrorHintFollowsThePace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &ledger{delay: 10 * time.Millisecond}
		w := New(l.commit, Options[int]{Linger: -1, MaxWaiting: 3})
		defer w.Close()
		if _, err := w.Do(context.Background(), 0); err != nil { // learns 10ms per unit
			t.Fatal(err)
		}
		for r := 1; r <= 4; r++ {
			go w.Do(context.Background(), r)
			synctest.Wait()
		}
		_, err := w.Do(context.Background(), 5)
		var full *FullError
		if !errors.As(err, &full) {
			t.Fatalf("err = %v, want a *FullError", err)
		}
		if full.RetryAfter() != 30*time.Millisecond {
			t.Errorf("RetryAfter = %v, want 3 waiting × 10ms", full.RetryAfter())
		}
	})
}

// A caller that gives up while the queue is full leaves no weight behind
// once the collector has passed its request.
func TestMaxWaitingReleasesCancelledRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate()
		w := New(g.commit, Options[int]{Linger: -1, MaxWaiting: 2})
		go w.Do(context.Background(), 1)
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		errs := make(chan error, 2)
		for r := 2; r <= 3; r++ {
			go func() { _, err := w.Do(ctx, r); errs <- err }()
		}
		synctest.Wait()
		cancel()
		for range 2 {
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want the cancellation", err)
			}
		}
		close(g.open)
		synctest.Wait()
		if _, err := w.Do(context.Background(), 4); err != nil {
			t.Errorf("after withdrawals: %v", err)
		}
		w.Close()
		if applied, _ := g.snapshot(); !slices.Equal(applied, []int{1, 4}) {
			t.Errorf("applied %v, want 1 and 4", applied)
		}
		if w.Waiting() != 0 {
			t.Errorf("Waiting() = %d, want 0", w.Waiting())
		}
	})
}

package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pruneEvery is how often serve with --retain prunes: daily, and once at
// start. Retention is counted in days or more, so a day's slack is nothing.
const pruneEvery = 24 * time.Hour

// minRetain is the shortest --retain: pruning a span the service may still
// be merging into would be pointless churn, and shorter is surely a typo
// ("30" meant as days).
const minRetain = time.Hour

// retainValue reads a retention period: a Go duration (720h) or a number
// of days (90d); 0 keeps everything.
type retainValue struct{ d *time.Duration }

func (v retainValue) String() string {
	if v.d == nil || *v.d == 0 {
		return "0"
	}
	if *v.d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(*v.d/(24*time.Hour)), 10) + "d"
	}
	return v.d.String()
}

func (v retainValue) Set(s string) error {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 100*366 {
			return fmt.Errorf("want a number of days such as 90d, got %q", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 {
			return fmt.Errorf("want a duration such as 90d or 2160h, got %q", s)
		}
	}
	*v.d = d
	return nil
}

// startPruning runs the retention loop of serve: spans that ended more than
// retain ago are deleted at start and then every pruneEvery. It returns a
// function that stops the loop and waits for it (before the store closes).
func (m *Main) startPruning() (stop func()) {
	retain := m.Config.Retain
	if retain <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(pruneEvery)
		defer tick.Stop()
		for {
			before := m.Now().Add(-retain)
			n, err := m.Store.PruneSpans(ctx, before)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				m.logger.Error("pruning old spans failed; trying again tomorrow", "err", err)
			default:
				m.logger.Info("pruned spans", "count", n, "ended_before", before.UTC().Format(time.RFC3339), "retain", retainValue{&retain}.String())
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

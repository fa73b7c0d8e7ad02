package httpapi

import (
	"sync"
	"testing"
	"time"
)

// One collection after a burst of streams, never more than one a second.
func TestHijackGCAfterABurst(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	runs := 0
	done := make(chan struct{}, 8)
	h := &hijackGC{now: func() time.Time { return now }, gc: func() {
		mu.Lock()
		runs++
		mu.Unlock()
		done <- struct{}{}
	}}
	for range hijackBurst - 1 {
		h.hijacked()
	}
	mu.Lock()
	if runs != 0 {
		t.Fatalf("%d collections before a burst", runs)
	}
	mu.Unlock()
	h.hijacked() // the burst's last
	<-done
	// Another burst within the second waits for the second to pass.
	now = now.Add(500 * time.Millisecond)
	for range 2 * hijackBurst {
		h.hijacked()
	}
	mu.Lock()
	if runs != 1 {
		t.Fatalf("%d collections within a second, want 1", runs)
	}
	mu.Unlock()
	now = now.Add(600 * time.Millisecond)
	h.hijacked()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if runs != 2 {
		t.Fatalf("%d collections after the second passed, want 2", runs)
	}
}

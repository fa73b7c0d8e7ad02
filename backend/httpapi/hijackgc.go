package httpapi

import (
	"runtime"
	"sync"
	"time"
)

// Collecting after a storm of streams.
//
// A stream takes over its connection (hijack) and drops the buffers
// net/http read its request with: some 8 KB of garbage per stream, which
// the collector frees only once the heap has grown by GOGC percent (the
// service runs at 200, see backend/cmd/lastseend/gc.go). When a page that
// embeds the status widget is opened by a thousand visitors at once, that
// garbage would sit in the heap, and in the process's memory, until then.
// So a burst of new streams is followed by one collection: at most one a
// second, and only after hijackBurst streams since the last.
const (
	hijackBurst = 256
	hijackEvery = time.Second
)

// hijackGC counts hijacked streams and starts a collection after a burst.
type hijackGC struct {
	mu    sync.Mutex
	count int
	last  time.Time
	now   func() time.Time
	gc    func() // runtime.GC, or a test's counter
}

func newHijackGC(now func() time.Time) *hijackGC {
	return &hijackGC{now: now, gc: runtime.GC}
}

// hijacked records one stream; it may start a collection in the background.
func (h *hijackGC) hijacked() {
	h.mu.Lock()
	h.count++
	due := h.count >= hijackBurst && h.now().Sub(h.last) >= hijackEvery
	if due {
		h.count, h.last = 0, h.now()
	}
	h.mu.Unlock()
	if due {
		go h.gc()
	}
}

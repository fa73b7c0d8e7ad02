package password

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h, err := Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string at the OWASP parameters", h)
	}
	h2, _ := Hash(ctx, "correct horse")
	if h == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		hash, pw string
		ok       bool
		err      error
	}{
		{h, "correct horse", true, nil},
		{h, "correct horsE", false, nil},
		{h, "", false, nil},
		{h2, "correct horse", true, nil},
		{"", "correct horse", false, nil}, // no password: the dummy, never a match
		{dummy, "anything", false, nil},   // the dummy's password is unknown
		{"$argon2id$v=19$m=1,t=1,p=1$x$y", "x", false, ErrMalformed},
		{"$argon2i$v=19$m=19456,t=2,p=1$Ltc5AY0brsdievRRVyGUuA$DxxBcDrC436N4xyaptJCoi3mVupP1Gh/RQi5QcjXC5E", "x", false, ErrMalformed},
		{"$argon2id$v=19$m=9999999,t=2,p=1$Ltc5AY0brsdievRRVyGUuA$DxxBcDrC436N4xyaptJCoi3mVupP1Gh/RQi5QcjXC5E", "x", false, ErrMalformed},
		{"$argon2id$v=19$m=19456,t=2,p=1,x=1$Ltc5AY0brsdievRRVyGUuA$DxxBcDrC436N4xyaptJCoi3mVupP1Gh/RQi5QcjXC5E", "x", false, ErrMalformed},
		{"plain text", "plain text", false, ErrMalformed},
	} {
		ok, err := Verify(ctx, tc.hash, tc.pw)
		if ok != tc.ok || !errors.Is(err, tc.err) {
			t.Errorf("Verify(%.30q, %q) = %v, %v; want %v, %v", tc.hash, tc.pw, ok, err, tc.ok, tc.err)
		}
	}
}

func TestDummyDecodes(t *testing.T) {
	p, key, err := decode(dummy)
	if err != nil {
		t.Fatal(err)
	}
	if p.memory != MemoryKiB || p.time != Iterations || p.threads != Parallelism || len(key) != keyLen || len(p.salt) != saltLen {
		t.Errorf("the dummy's parameters %+v differ from new hashes': an unknown handle would answer in another time", p)
	}
	if NeedsRehash(dummy) {
		t.Error("NeedsRehash(dummy)")
	}
	if !NeedsRehash("$argon2id$v=19$m=8192,t=3,p=1$Ltc5AY0brsdievRRVyGUuA$DxxBcDrC436N4xyaptJCoi3mVupP1Gh/RQi5QcjXC5E") {
		t.Error("old parameters do not need a rehash")
	}
}

// TestConcurrencyBounded: however many checks are asked for at once, no
// more than MaxConcurrent hash at a time, and a waiter whose context ends
// gives up rather than queue forever.
func TestConcurrencyBounded(t *testing.T) {
	ctx := context.Background()
	h, err := Hash(ctx, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int32
	// Watch the slots themselves while 8 checks run.
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := int32(len(slots)); n > peak.Load() {
				peak.Store(n)
			}
		}
	}()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := Verify(ctx, h, "pw"); !ok || err != nil {
				t.Errorf("verify: %v %v", ok, err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	if p := peak.Load(); p > MaxConcurrent || p < 1 {
		t.Errorf("peak concurrent hashes %d, want 1..%d", p, MaxConcurrent)
	}

	// All slots taken: a check with a context that ends gives up.
	for range MaxConcurrent {
		slots <- struct{}{}
	}
	defer func() {
		for range MaxConcurrent {
			<-slots
		}
	}()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := Verify(cctx, h, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("verify with every slot taken: %v, want the context's deadline", err)
	}
	if _, err := Hash(cctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hash with every slot taken: %v, want the context's deadline", err)
	}
}

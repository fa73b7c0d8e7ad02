package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/lastseen/lastseen/backend/presence"
)

func testWatches(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	ann, bob, cat := e.user("ann"), e.user("bob"), e.user("cat")
	handles := func(ws []presence.Watch) []string {
		out := []string{}
		for _, w := range ws {
			out = append(out, w.Handle)
		}
		return out
	}
	list := func(u presence.User) []string {
		t.Helper()
		ws, err := e.store.WatchList(e.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return handles(ws)
	}

	t.Run("watch, list by handle, watch again changes nothing", func(t *testing.T) {
		w1, err := e.store.SetWatch(e.ctx, ann.ID, "cat")
		if err != nil {
			t.Fatal(err)
		}
		if w1.Handle != "cat" || w1.Name != cat.Name || w1.CreatedAt.IsZero() {
			t.Errorf("watch = %+v", w1)
		}
		if _, err := e.store.SetWatch(e.ctx, ann.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		again, err := e.store.SetWatch(e.ctx, ann.ID, "cat")
		if err != nil || !again.CreatedAt.Equal(w1.CreatedAt) {
			t.Errorf("watching again = %+v, %v; want the first watch", again, err)
		}
		if got := fmt.Sprint(list(ann)); got != "[bob cat]" {
			t.Errorf("ann watches %s, want [bob cat]", got)
		}
		if got := list(bob); len(got) != 0 {
			t.Errorf("bob watches %v, want nobody: lists are per user", got)
		}
		e.reopen()
		if got := fmt.Sprint(list(ann)); got != "[bob cat]" {
			t.Errorf("after restart ann watches %s", got)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		_, err := e.store.SetWatch(e.ctx, ann.ID, "nobody")
		wantCode(t, "an unknown handle", err, presence.ENOTFOUND)
		_, err = e.store.SetWatch(e.ctx, ann.ID, "ann")
		wantCode(t, "oneself", err, presence.EINVALID)
		wantCode(t, "unwatch someone not watched", e.store.RemoveWatch(e.ctx, bob.ID, "cat"), presence.ENOTFOUND)
		wantCode(t, "unwatch an unknown handle", e.store.RemoveWatch(e.ctx, bob.ID, "nobody"), presence.ENOTFOUND)
	})

	t.Run("a disabled user cannot be watched and drops off the list", func(t *testing.T) {
		yes, no := true, false
		if _, err := e.store.UpdateUser(e.ctx, bob.ID, presence.UserUpdate{Disabled: &yes}); err != nil {
			t.Fatal(err)
		}
		_, err := e.store.SetWatch(e.ctx, cat.ID, "bob")
		wantCode(t, "watch a disabled user", err, presence.ENOTFOUND)
		if got := fmt.Sprint(list(ann)); got != "[cat]" {
			t.Errorf("with bob disabled ann watches %s, want [cat]", got)
		}
		if _, err := e.store.UpdateUser(e.ctx, bob.ID, presence.UserUpdate{Disabled: &no}); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(list(ann)); got != "[bob cat]" {
			t.Errorf("bob enabled again: ann watches %s, want [bob cat]", got)
		}
	})

	t.Run("unwatch", func(t *testing.T) {
		if err := e.store.RemoveWatch(e.ctx, ann.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(list(ann)); got != "[cat]" {
			t.Errorf("after unwatching bob: %s", got)
		}
	})

	t.Run("the list is bounded, even by concurrent watches", func(t *testing.T) {
		many := e.user("many")
		for i := range presence.MaxWatches + 5 {
			e.user(fmt.Sprintf("p%03d", i))
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[string]int{}
		for i := range presence.MaxWatches + 5 {
			wg.Go(func() {
				_, err := e.store.SetWatch(e.ctx, many.ID, fmt.Sprintf("p%03d", i))
				mu.Lock()
				codes[presence.ErrorCode(err)]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes[""] != presence.MaxWatches || codes[presence.ECONFLICT] != 5 {
			t.Errorf("outcomes %v, want %d watched and 5 conflicts", codes, presence.MaxWatches)
		}
		if n := len(list(many)); n != presence.MaxWatches {
			t.Errorf("%d watched, want %d", n, presence.MaxWatches)
		}
	})
}

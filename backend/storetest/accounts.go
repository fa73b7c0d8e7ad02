package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

func testAccounts(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	ann, annTok, err := e.store.CreateUser(e.ctx, "ann", "Ann Example")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a new user comes with a user token", func(t *testing.T) {
		if ann.ID == 0 || ann.Handle != "ann" || ann.Name != "Ann Example" || ann.Public {
			t.Errorf("user = %+v", ann)
		}
		if k, err := presence.TokenKindOf(annTok); err != nil || k != presence.UserToken {
			t.Errorf("token %q is of kind %q (%v), want a user token", annTok, k, err)
		}
		p, err := e.store.Authenticate(e.ctx, annTok)
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind != presence.UserToken || p.UserID != ann.ID || p.DeviceID != 0 || p.SessionID != 0 || p.TokenID == "" {
			t.Errorf("principal = %+v, want user %d by an API token", p, ann.ID)
		}
	})

	for _, h := range []string{"", "Ann", "a b", "-lead", "_lead", strings.Repeat("a", 40), "zoë", "a/b"} {
		t.Run(fmt.Sprintf("invalid handle %.12q", h), func(t *testing.T) {
			_, _, err := e.store.CreateUser(e.ctx, h, "x")
			wantCode(t, "create user "+h, err, presence.EINVALID)
		})
	}

	t.Run("a taken handle conflicts", func(t *testing.T) {
		_, _, err := e.store.CreateUser(e.ctx, "ann", "Another Ann")
		wantCode(t, "create ann twice", err, presence.ECONFLICT)
	})

	t.Run("racing creates of one handle: one wins", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { _, _, errs[i] = e.store.CreateUser(e.ctx, "race", "Racer") })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch presence.ErrorCode(err) {
			case "":
				won++
			case presence.ECONFLICT:
			default:
				t.Errorf("racing create: %v, want success or conflict", err)
			}
		}
		if won != 1 {
			t.Errorf("%d racing creates succeeded, want exactly 1", won)
		}
	})

	t.Run("users are found by id and handle", func(t *testing.T) {
		byH, err := e.store.UserByHandle(e.ctx, "ann")
		if err != nil || byH.ID != ann.ID || byH.Name != ann.Name {
			t.Errorf("by handle: %+v, %v", byH, err)
		}
		byID, err := e.store.UserByID(e.ctx, ann.ID)
		if err != nil || byID.Handle != "ann" {
			t.Errorf("by id: %+v, %v", byID, err)
		}
		_, err = e.store.UserByHandle(e.ctx, "nobody")
		wantCode(t, "unknown handle", err, presence.ENOTFOUND)
		_, err = e.store.UserByID(e.ctx, ann.ID+1000)
		wantCode(t, "unknown id", err, presence.ENOTFOUND)
		all, err := e.store.Users(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		handles := map[string]bool{}
		for _, u := range all {
			handles[u.Handle] = true
		}
		if len(all) != 2 || !handles["ann"] || !handles["race"] {
			t.Errorf("users = %+v, want ann and race", all)
		}
	})

	laptop, devTok, err := e.store.CreateDevice(e.ctx, ann.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a new device comes with a device token", func(t *testing.T) {
		if laptop.ID == 0 || laptop.UserID != ann.ID || laptop.Name != "laptop" || laptop.Revoked {
			t.Errorf("device = %+v", laptop)
		}
		if k, err := presence.TokenKindOf(devTok); err != nil || k != presence.DeviceToken {
			t.Errorf("token %q is of kind %q (%v), want a device token", devTok, k, err)
		}
		p, err := e.store.Authenticate(e.ctx, devTok)
		if err != nil {
			t.Fatal(err)
		}
		if p != (presence.Principal{Kind: presence.DeviceToken, UserID: ann.ID, DeviceID: laptop.ID}) {
			t.Errorf("principal = %+v, want device %d of user %d", p, laptop.ID, ann.ID)
		}
		list, err := e.store.Devices(e.ctx, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != laptop.ID || list[0].Status != presence.Offline {
			t.Errorf("devices = %+v, want the new laptop, offline", list)
		}
	})

	for _, n := range []string{"", "   ", strings.Repeat("x", 65)} {
		t.Run(fmt.Sprintf("invalid device name %.12q", n), func(t *testing.T) {
			_, _, err := e.store.CreateDevice(e.ctx, ann.ID, n)
			wantCode(t, "create device "+n, err, presence.EINVALID)
		})
	}

	t.Run("a device for an unknown user is not found", func(t *testing.T) {
		_, _, err := e.store.CreateDevice(e.ctx, ann.ID+1000, "ghost")
		wantCode(t, "create device for unknown user", err, presence.ENOTFOUND)
	})

	t.Run("bad tokens are unauthorized", func(t *testing.T) {
		forged, _ := presence.NewToken(presence.UserToken)
		swapped := "ls_usr_" + strings.TrimPrefix(devTok, "ls_dev_")
		for _, tok := range []string{"", "garbage", "ls_usr_", forged, swapped, annTok + "x", annTok[:len(annTok)-1], " " + annTok} {
			_, err := e.store.Authenticate(e.ctx, tok)
			wantCode(t, "authenticate "+tok, err, presence.EUNAUTHORIZED)
		}
	})

	bob := e.user("bob")
	bobPhone, bobTok, err := e.store.CreateDevice(e.ctx, bob.ID, "phone")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("another user's device is not found", func(t *testing.T) {
		err := e.store.RevokeDevice(e.ctx, ann.ID, bobPhone.ID)
		wantCode(t, "ann revokes bob's phone", err, presence.ENOTFOUND)
		if _, err := e.store.Authenticate(e.ctx, bobTok); err != nil {
			t.Errorf("bob's token after ann's attempt: %v", err)
		}
		err = e.store.RevokeDevice(e.ctx, ann.ID, bobPhone.ID+1000)
		wantCode(t, "revoke unknown device", err, presence.ENOTFOUND)
	})

	t.Run("revoking a device locks out its token", func(t *testing.T) {
		if err := e.store.RevokeDevice(e.ctx, ann.ID, laptop.ID); err != nil {
			t.Fatal(err)
		}
		_, err := e.store.Authenticate(e.ctx, devTok)
		wantCode(t, "revoked device token", err, presence.EUNAUTHORIZED)
		_, err = e.store.Ingest(e.ctx, laptop.ID, []presence.Beat{beat(1, 0, presence.Active)}, nil)
		wantCode(t, "ingest into revoked device", err, presence.EUNAUTHORIZED)
		list, err := e.store.Devices(e.ctx, ann.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 0 {
			t.Errorf("devices after revoke = %+v, want none", list)
		}
		if _, err := e.store.Authenticate(e.ctx, annTok); err != nil {
			t.Errorf("ann's user token after revoking her laptop: %v", err)
		}
		err = e.store.RevokeDevice(e.ctx, ann.ID, laptop.ID)
		wantCode(t, "revoke twice", err, presence.ENOTFOUND)
		e.reopen()
		_, err = e.store.Authenticate(e.ctx, devTok)
		wantCode(t, "revoked device token after restart", err, presence.EUNAUTHORIZED)
	})
}

func testUpdateUser(t *testing.T, opener Opener) {
	e := newEnv(t, opener)
	u := e.user("upd")
	str := func(s string) *string { return &s }
	yes, no := true, false

	// get reads the user back, without CreatedAt so users compare with ==.
	get := func() presence.User {
		t.Helper()
		got, err := e.store.UserByID(e.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		got.CreatedAt = time.Time{}
		return got
	}

	t.Run("a new user is private in UTC", func(t *testing.T) {
		if got := get(); got.Public || got.TZ != "" || got.Location().String() != "UTC" {
			t.Errorf("new user = %+v", got)
		}
	})

	t.Run("opt in, set the zone and the name", func(t *testing.T) {
		got, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{Name: str("Up Dated"), TZ: str("Europe/Paris"), Public: &yes})
		if err != nil {
			t.Fatal(err)
		}
		// upd is the first user, so an admin.
		want := presence.User{ID: u.ID, Handle: "upd", Name: "Up Dated", TZ: "Europe/Paris", Public: true, Admin: true}
		check := func(when string, got presence.User) {
			t.Helper()
			got.CreatedAt = time.Time{}
			if got != want {
				t.Errorf("%s: %+v, want %+v", when, got, want)
			}
		}
		check("returned", got)
		check("read back", get())
		e.reopen()
		check("after restart", get())
	})

	t.Run("the public detail level is kept, by every read", func(t *testing.T) {
		for _, d := range []presence.PublicDetail{presence.PublicOnline, presence.PublicState, presence.PublicLastSeen} {
			got, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{PublicDetail: &d})
			if err != nil {
				t.Fatal(err)
			}
			if got.PublicDetail != d || !got.Public {
				t.Errorf("set %s: returned %+v", d, got)
			}
			if got := get(); got.PublicDetail != d {
				t.Errorf("set %s: UserByID says %q", d, got.PublicDetail)
			}
			byHandle, err := e.store.UserByHandle(e.ctx, "upd")
			if err != nil || byHandle.PublicDetail != d {
				t.Errorf("set %s: UserByHandle says %q (%v)", d, byHandle.PublicDetail, err)
			}
		}
		online := presence.PublicOnline
		if _, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{PublicDetail: &online}); err != nil {
			t.Fatal(err)
		}
		e.reopen()
		if got := get(); got.PublicDetail != presence.PublicOnline {
			t.Errorf("after restart: %q", got.PublicDetail)
		}
		bad := presence.PublicDetail("everything")
		_, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{PublicDetail: &bad})
		wantCode(t, "an unknown level", err, presence.EINVALID)
		if got := get(); got.PublicDetail != presence.PublicOnline {
			t.Errorf("a refused level changed it to %q", got.PublicDetail)
		}
		last := presence.PublicLastSeen
		if _, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{PublicDetail: &last}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("nil fields stay", func(t *testing.T) {
		got, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{Name: str("Only Name")})
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "Only Name" || got.TZ != "Europe/Paris" || !got.Public {
			t.Errorf("after a name-only update: %+v", got)
		}
	})

	for _, tz := range []string{"Mars/Olympus", "Local", "europe/paris "} {
		t.Run("an unknown zone is refused whole: "+tz, func(t *testing.T) {
			before := get()
			_, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{Name: str("Nope"), TZ: str(tz), Public: &no})
			wantCode(t, "set tz "+tz, err, presence.EINVALID)
			if after := get(); after != before {
				t.Errorf("a refused update changed the user: %+v -> %+v", before, after)
			}
		})
	}

	t.Run("clearing the zone means UTC", func(t *testing.T) {
		got, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{TZ: str("")})
		if err != nil {
			t.Fatal(err)
		}
		if got.TZ != "" || got.Location() != time.UTC {
			t.Errorf("after clearing the zone: %+v", got)
		}
	})

	t.Run("opt out", func(t *testing.T) {
		if got, err := e.store.UpdateUser(e.ctx, u.ID, presence.UserUpdate{Public: &no}); err != nil || got.Public {
			t.Errorf("after opting out: %+v, %v", got, err)
		}
	})

	t.Run("an unknown user is not found", func(t *testing.T) {
		_, err := e.store.UpdateUser(e.ctx, u.ID+1000, presence.UserUpdate{Public: &yes})
		wantCode(t, "update unknown user", err, presence.ENOTFOUND)
	})
}

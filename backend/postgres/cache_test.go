package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lastseen/lastseen/backend/presence"
)

func entry(id, seq int64, st presence.State, last time.Time) devEntry {
	return devEntry{
		dev:  presence.Device{ID: id, UserID: 1, Name: fmt.Sprint("d", id)},
		pres: presence.DevicePresence{DeviceID: id, UserID: 1, State: st, LastBeat: last, LastSeq: seq},
	}
}

// A read that lost a race with a commit must not roll memory back, and a
// revocation sticks whatever order the news arrives in.
func TestCacheKeepsTheNewestState(t *testing.T) {
	cases := []struct {
		name      string
		puts      []devEntry
		wantSeq   int64
		wantFound bool
	}{
		{"newer replaces", []devEntry{entry(1, 3, A, t0), entry(1, 5, A, t0.Add(time.Second))}, 5, true},
		{"older is ignored", []devEntry{entry(1, 5, A, t0.Add(time.Second)), entry(1, 3, A, t0)}, 5, true},
		{"equal seq refreshes", []devEntry{entry(1, 5, A, t0), entry(1, 5, I, t0)}, 5, true},
		{"revoked hides", []devEntry{entry(1, 5, A, t0), revoked(entry(1, 5, A, t0))}, 0, false},
		{"revoked by an older read still hides", []devEntry{entry(1, 7, A, t0), revoked(entry(1, 5, A, t0))}, 0, false},
		{"a newer unrevoked read cannot unrevoke", []devEntry{revoked(entry(1, 5, A, t0)), entry(1, 9, A, t0)}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache()
			for _, e := range tc.puts {
				c.putDevice(e)
			}
			got, ok := c.device(1)
			if ok != tc.wantFound || (ok && got.pres.LastSeq != tc.wantSeq) {
				t.Errorf("device(1) = seq %d, found %v; want seq %d, found %v", got.pres.LastSeq, ok, tc.wantSeq, tc.wantFound)
			}
		})
	}
}

func revoked(e devEntry) devEntry {
	e.dev.Revoked = true
	return e
}

func TestCacheSuspects(t *testing.T) {
	p := presence.DefaultPulse
	now := t0.Add(10 * time.Minute)
	c := newCache()
	c.putDevice(entry(1, 1, A, now.Add(-time.Minute)))   // within the window
	c.putDevice(entry(2, 1, A, now.Add(-2*time.Minute))) // silent, not announced
	c.putDevice(entry(3, 1, O, now.Add(-2*time.Minute))) // offline by its own beat
	announced := entry(4, 1, I, now.Add(-2*time.Minute)) // silent, announced
	announced.expired = announced.pres.LastBeat
	c.putDevice(announced)
	c.putDevice(revoked(entry(5, 1, A, now.Add(-time.Hour)))) // revoked
	c.putDevice(entry(6, 0, O, time.Time{}))                  // never beat
	if got := c.suspects(now, p); fmt.Sprint(got) != "[2]" {
		t.Errorf("suspects = %v, want [2]", got)
	}
	// A revoked device leaves presence, its last active beat too.
	c.putUser(presence.User{ID: 1, Handle: "u"})
	c.mu.Lock()
	c.devices[5].pres.LastActive = now.Add(-time.Minute / 2)
	c.mu.Unlock()
	up := c.presence(now, p)
	if len(up) != 1 || len(up[0].Devices) != 5 || !up[0].LastSeen.IsZero() || up[0].Status != A {
		t.Errorf("presence = %+v", up)
	}
}

func TestUnavailableErrors(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true}, // admin shutdown
		{&pgconn.PgError{Code: "08006"}, true}, // connection failure
		{&pgconn.PgError{Code: "53300"}, true}, // too many connections
		{&pgconn.PgError{Code: "23505"}, false},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), true},
		{errors.New("something else"), false},
	}
	for _, tc := range cases {
		if got := unavailable(tc.err); got != tc.want {
			t.Errorf("unavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
		if got := presence.ErrorCode(dbError("op", tc.err)) == presence.EUNAVAILABLE; got != tc.want {
			t.Errorf("dbError(%v) has EUNAVAILABLE = %v, want %v", tc.err, got, tc.want)
		}
	}
}

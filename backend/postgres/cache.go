package postgres

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// cache is an instance's in-memory picture of users and devices, from which
// presence is served. The database is the truth; the cache follows it through
// this instance's own commits, the events of other instances, and periodic
// refreshes.
type cache struct {
	mu    sync.RWMutex
	users map[int64]presence.User
	// devices holds revoked devices too, flagged and left out of presence:
	// the flag keeps a late, stale read from bringing one back.
	devices map[int64]*devEntry
}

// devEntry is one device as the cache knows it.
type devEntry struct {
	dev  presence.Device
	pres presence.DevicePresence
	// expired is the last beat whose TTL expiry has been announced (by any
	// instance). A device silent past the TTL whose expired differs from
	// its LastBeat is a suspect: another instance may have heard it since.
	expired time.Time
}

func newCache() *cache {
	return &cache{users: map[int64]presence.User{}, devices: map[int64]*devEntry{}}
}

// newer reports whether a copy of a device read from the database (or an
// event) may replace what the cache holds: every accepted beat raises
// last_seq, so a lower one is an older read that lost a race with a commit.
func (e *devEntry) newer(than *devEntry) bool {
	return than == nil || e.pres.LastSeq >= than.pres.LastSeq
}

// putDevice stores a device read from the database, unless the cache already
// holds a later state of it. Revocation is final whatever the order.
func (c *cache) putDevice(e devEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.devices[e.dev.ID]
	if !e.newer(old) {
		if e.dev.Revoked && !old.dev.Revoked {
			r := *old
			r.dev.Revoked = true
			c.devices[e.dev.ID] = &r
		}
		return
	}
	if old != nil && old.dev.Revoked {
		e.dev.Revoked = true
	}
	c.devices[e.dev.ID] = &e
}

// putPresence applies a device's presence from an event, when it is not older
// than what the cache holds. Unknown devices are left to the next refresh.
func (c *cache) putPresence(p presence.DevicePresence, expired time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.devices[p.DeviceID]
	if old == nil || p.LastSeq < old.pres.LastSeq {
		return
	}
	e := *old
	e.pres, e.expired = p, expired
	c.devices[p.DeviceID] = &e
}

func (c *cache) putUser(u presence.User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users[u.ID] = u
}

// revokeDevice marks a device revoked.
func (c *cache) revokeDevice(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.devices[id]; old != nil {
		r := *old
		r.dev.Revoked = true
		c.devices[id] = &r
	}
}

// forgetDevice drops a device the database does not have.
func (c *cache) forgetDevice(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.devices, id)
}

// replaceAll swaps in a complete picture read from the database, keeping
// devices whose cached state is newer than the read.
func (c *cache) replaceAll(users []presence.User, devices []devEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nu := make(map[int64]presence.User, len(users))
	for _, u := range users {
		nu[u.ID] = u
	}
	nd := make(map[int64]*devEntry, len(devices))
	for i := range devices {
		e := &devices[i]
		if old := c.devices[e.dev.ID]; old != nil && !e.newer(old) {
			e = old
		}
		nd[e.dev.ID] = e
	}
	c.users, c.devices = nu, nd
}

// device returns a device that is not revoked.
func (c *cache) device(id int64) (devEntry, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.devices[id]
	if !ok || e.dev.Revoked {
		return devEntry{}, false
	}
	return *e, true
}

// user returns a user the cache knows.
func (c *cache) user(id int64) (presence.User, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.users[id]
	return u, ok
}

// suspects lists devices that look expired by TTL at now but whose expiry
// nobody has announced: memory alone must not call them offline.
func (c *cache) suspects(now time.Time, p presence.Pulse) []int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var ids []int64
	for id, e := range c.devices {
		if isSuspect(e, now, p) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func isSuspect(e *devEntry, now time.Time, p presence.Pulse) bool {
	if e.dev.Revoked {
		return false
	}
	exp := e.pres.ExpiresAt(p)
	return !exp.IsZero() && now.After(exp) && !e.expired.Equal(e.pres.LastBeat)
}

func status(e *devEntry, now time.Time, p presence.Pulse) presence.DeviceStatus {
	return presence.DeviceStatus{Device: e.dev, Status: e.pres.Status(now, p), Presence: e.pres}
}

// userPresenceLocked computes a user's presence over their cached devices,
// with overrides standing in for the cached copies of the same devices
// (changes being committed). A revoked device leaves presence entirely, its
// last active beat too. Caller holds mu.
func (c *cache) userPresenceLocked(u presence.User, now time.Time, p presence.Pulse, overrides []*devEntry) presence.UserPresence {
	up := presence.UserPresence{User: u, Devices: []presence.DeviceStatus{}}
	var live []presence.DevicePresence
	add := func(e *devEntry) {
		if !e.dev.Revoked {
			up.Devices = append(up.Devices, status(e, now, p))
			live = append(live, e.pres)
		}
	}
	for _, e := range c.devices {
		if e.dev.UserID != u.ID || slices.ContainsFunc(overrides, func(o *devEntry) bool { return o.dev.ID == e.dev.ID }) {
			continue
		}
		add(e)
	}
	for _, o := range overrides {
		if o.dev.UserID == u.ID {
			add(o)
		}
	}
	slices.SortFunc(up.Devices, func(a, b presence.DeviceStatus) int { return cmp.Compare(a.ID, b.ID) })
	up.Status = presence.UserStatus(now, p, live)
	up.LastSeen = presence.LastSeen(live)
	return up
}

// presence is every cached user's presence, users by handle, devices by id.
func (c *cache) presence(now time.Time, p presence.Pulse) []presence.UserPresence {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]presence.UserPresence, 0, len(c.users))
	for _, u := range c.users {
		out = append(out, c.userPresenceLocked(u, now, p, nil))
	}
	slices.SortFunc(out, func(a, b presence.UserPresence) int { return cmp.Compare(a.User.Handle, b.User.Handle) })
	return out
}

// userStatus is the user's status and last seen with some devices replaced
// by pending changes.
func (c *cache) userStatus(userID int64, now time.Time, p presence.Pulse, overrides ...*devEntry) (presence.State, time.Time) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	up := c.userPresenceLocked(presence.User{ID: userID}, now, p, overrides)
	return up.Status, up.LastSeen
}

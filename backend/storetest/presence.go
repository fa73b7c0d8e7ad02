package storetest

import (
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

func testPresence(t *testing.T, opener Opener) {
	A, I, O := presence.Active, presence.Idle, presence.Offline
	e := newEnv(t, opener)

	t.Run("a device is online until its pulse window passes", func(t *testing.T) {
		u := e.user("ttl")
		d := e.device(u, "desk")
		e.clock.Set(T0)
		e.ingest(d, beat(1, 0, A))
		st := e.status(d)
		if st.Status != A || !st.Presence.LastBeat.Equal(T0) || !st.Presence.LastActive.Equal(T0) || st.Presence.LastSeq != 1 {
			t.Errorf("status right after the beat = %s %+v, want active, last beat and last active T0, last_seq 1", st.Status, st.Presence)
		}
		if !st.LastSeen().Equal(T0) {
			t.Errorf("last seen = %v, want T0", st.LastSeen())
		}
		e.clock.Set(T0.Add(pulse.Window()))
		if st := e.status(d).Status; st != A {
			t.Errorf("status exactly one window later = %s, want still active", st)
		}
		e.clock.Set(T0.Add(pulse.Window() + time.Second))
		if st := e.status(d).Status; st != O {
			t.Errorf("status past the window = %s, want offline", st)
		}
		list, err := e.store.Devices(e.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Status != O || !list[0].LastSeen().Equal(T0) {
			t.Errorf("devices past the window = %+v, want one offline device last seen T0", list)
		}
	})

	t.Run("an offline beat is offline at once", func(t *testing.T) {
		u := e.user("quit")
		d := e.device(u, "desk")
		e.clock.Set(T0.Add(sec(5)))
		e.ingest(d, beat(1, 0, A), beat(2, sec(5), O))
		st := e.status(d)
		if st.Status != O || !st.LastSeen().Equal(T0) {
			t.Errorf("after an offline beat: %s, last seen %v; want offline, last seen T0", st.Status, st.LastSeen())
		}
	})

	t.Run("a user is their highest device and was last seen on any", func(t *testing.T) {
		u := e.user("many")
		desk, laptop := e.device(u, "desk"), e.device(u, "laptop")
		lonely := e.user("lonely")
		e.clock.Set(T0.Add(sec(30)))
		e.ingest(laptop, beat(1, 0, A))
		e.ingest(desk, beat(1, sec(30), I))
		check := func(when string, want presence.State, lastSeen time.Time, devs map[int64]presence.State) {
			t.Helper()
			all, err := e.store.Presence(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			var me, alone *presence.UserPresence
			for i := range all {
				switch all[i].User.ID {
				case u.ID:
					me = &all[i]
				case lonely.ID:
					alone = &all[i]
				}
			}
			if me == nil || alone == nil {
				t.Fatalf("%s: presence lists %d users, missing %s or %s", when, len(all), u.Handle, lonely.Handle)
			}
			if me.Status != want || !me.LastSeen.Equal(lastSeen) || me.User.Handle != u.Handle {
				t.Errorf("%s: %s is %s last seen %v, want %s last seen %v", when, me.User.Handle, me.Status, me.LastSeen, want, lastSeen)
			}
			got := map[int64]presence.State{}
			for _, d := range me.Devices {
				got[d.ID] = d.Status
			}
			if len(got) != len(devs) {
				t.Errorf("%s: devices %v, want %v", when, got, devs)
			}
			for id, st := range devs {
				if got[id] != st {
					t.Errorf("%s: device %d is %s, want %s", when, id, got[id], st)
				}
			}
			if alone.Status != O || !alone.LastSeen.IsZero() || len(alone.Devices) != 0 {
				t.Errorf("%s: a user without devices is %+v, want offline, never seen", when, *alone)
			}
		}
		check("both fresh", A, T0, map[int64]presence.State{desk.ID: I, laptop.ID: A})
		e.clock.Set(T0.Add(sec(61)))
		check("laptop expired", I, T0, map[int64]presence.State{desk.ID: I, laptop.ID: O})
		e.clock.Set(T0.Add(sec(91)))
		check("both expired", O, T0, map[int64]presence.State{desk.ID: O, laptop.ID: O})

		if err := e.store.RevokeDevice(e.ctx, u.ID, laptop.ID); err != nil {
			t.Fatal(err)
		}
		// A revoked device leaves presence entirely, its last active beat too.
		check("laptop revoked", O, time.Time{}, map[int64]presence.State{desk.ID: O})
	})

	t.Run("Pulse is the configured cadence", func(t *testing.T) {
		if got := e.store.Pulse(); got != pulse {
			t.Errorf("Pulse() = %+v, want %+v", got, pulse)
		}
	})
}

func testRestart(t *testing.T, opener Opener) {
	A, O := presence.Active, presence.Offline
	e := newEnv(t, opener)
	u := e.user("restart")

	t.Run("an open tail comes back and can be extended", func(t *testing.T) {
		d := e.device(u, "desk")
		e.clock.Set(T0.Add(sec(10)))
		e.ingest(d, beat(1, 0, A), beat(2, sec(10), A))
		before := e.deviceSpans(u, d)
		e.reopen()
		e.clock.Set(T0.Add(sec(20)))
		if st := e.status(d); st.Status != A || st.Presence.LastSeq != 2 || !st.Presence.LastBeat.Equal(T0.Add(sec(10))) {
			t.Errorf("after restart: %s %+v, want active at last_seq 2, last beat +10s", st.Status, st.Presence)
		}
		e.ingest(d, beat(3, sec(20), A))
		after := e.deviceSpans(u, d)
		checkSpans(t, d, after, []wantSpan{{A, 0, 20, false}})
		if len(before) == 1 && len(after) == 1 && before[0].ID != after[0].ID {
			t.Errorf("the tail changed ID across the restart: %d then %d", before[0].ID, after[0].ID)
		}
	})

	t.Run("a device silent while the service was down is offline and not stretched", func(t *testing.T) {
		d := e.device(u, "laptop")
		e.clock.Set(T0.Add(sec(10)))
		e.ingest(d, beat(1, 0, A), beat(2, sec(10), A))
		e.store.Close()
		e.store = nil
		e.clock.Set(T0.Add(10 * time.Minute))
		e.reopen()
		if st := e.status(d).Status; st != O {
			t.Errorf("status after 10 min down = %s, want offline", st)
		}
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 10, false}})
		e.ingest(d, beat(3, 10*time.Minute, A))
		checkSpans(t, d, e.deviceSpans(u, d), []wantSpan{{A, 0, 10, true}, {A, 600, 600, false}})
	})

	t.Run("accounts and tokens survive", func(t *testing.T) {
		v, utok, err := e.store.CreateUser(e.ctx, "survivor", "S")
		if err != nil {
			t.Fatal(err)
		}
		d, dtok, err := e.store.CreateDevice(e.ctx, v.ID, "phone")
		if err != nil {
			t.Fatal(err)
		}
		e.reopen()
		if p, err := e.store.Authenticate(e.ctx, utok); err != nil || p.UserID != v.ID {
			t.Errorf("user token after restart: %+v, %v", p, err)
		}
		if p, err := e.store.Authenticate(e.ctx, dtok); err != nil || p.DeviceID != d.ID {
			t.Errorf("device token after restart: %+v, %v", p, err)
		}
		if got, err := e.store.UserByHandle(e.ctx, "survivor"); err != nil || got.ID != v.ID {
			t.Errorf("user after restart: %+v, %v", got, err)
		}
	})

	t.Run("Close twice", func(t *testing.T) {
		s := e.store
		e.store = nil
		if err := s.Close(); err != nil {
			t.Errorf("first close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
		e.reopen()
	})
}

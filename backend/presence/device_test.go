package presence

import (
	"testing"
	"time"
)

func TestDeviceStatusTTL(t *testing.T) {
	p := DefaultPulse // 30 s + 30 s
	d := DevicePresence{}.Apply([]Beat{{Seq: 1, At: at(0), State: Active}, {Seq: 2, At: at(30), State: Idle}})
	tests := []struct {
		now  time.Time
		want State
	}{
		{at(30), Idle},
		{at(90), Idle},    // exactly interval + grace after the last beat
		{at(91), Offline}, // silent past the TTL
		{at(3600), Offline},
	}
	for _, tt := range tests {
		if got := d.Status(tt.now, p); got != tt.want {
			t.Errorf("Status at +%v = %s, want %s", tt.now.Sub(t0), got, tt.want)
		}
	}
	if got := d.OfflineSince(p); !got.Equal(at(60)) {
		t.Errorf("OfflineSince = +%v, want last beat + grace (+60s)", got.Sub(t0))
	}
	if got := d.ExpiresAt(p); !got.Equal(at(90)) {
		t.Errorf("ExpiresAt = +%v, want +90s", got.Sub(t0))
	}
	if d.LastSeq != 2 || !d.LastActive.Equal(at(0)) {
		t.Errorf("LastSeq %d LastActive %v", d.LastSeq, d.LastActive)
	}
	if (DevicePresence{}).Status(t0, p) != Offline {
		t.Error("a device that never beat is offline")
	}
	off := d.Apply([]Beat{{Seq: 3, At: at(40), State: Offline}})
	if off.Status(at(41), p) != Offline || !off.ExpiresAt(p).IsZero() {
		t.Error("an explicit offline beat is offline at once and never expires")
	}
}

func TestApplyKeepsNewestBeatOnReorder(t *testing.T) {
	d := DevicePresence{}.Apply([]Beat{{Seq: 1, At: at(50), State: Away}, {Seq: 2, At: at(40), State: Active}})
	if d.State != Away || !d.LastBeat.Equal(at(50)) {
		t.Fatalf("state %s at %v: an older beat must not overwrite a newer one", d.State, d.LastBeat)
	}
	if !d.LastActive.Equal(at(40)) {
		t.Fatalf("last active %v, want +40s", d.LastActive)
	}
}

func TestUserStatusOverDevices(t *testing.T) {
	p := DefaultPulse
	laptop := DevicePresence{}.Apply([]Beat{{Seq: 1, At: at(0), State: Away}})
	desktop := DevicePresence{}.Apply([]Beat{{Seq: 1, At: at(10), State: Active}})
	phone := DevicePresence{}.Apply([]Beat{{Seq: 1, At: at(5), State: Idle}})
	tests := []struct {
		name string
		now  time.Time
		devs []DevicePresence
		want State
	}{
		{"highest precedence wins", at(20), []DevicePresence{laptop, desktop, phone}, Active},
		{"idle beats away", at(20), []DevicePresence{laptop, phone}, Idle},
		{"expired devices drop out", at(68), []DevicePresence{laptop, desktop}, Active},
		{"all expired is offline", at(200), []DevicePresence{laptop, desktop}, Offline},
		{"no devices is offline", at(0), nil, Offline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UserStatus(tt.now, p, tt.devs); got != tt.want {
				t.Fatalf("UserStatus = %s, want %s", got, tt.want)
			}
		})
	}
	if got := LastSeen([]DevicePresence{laptop, desktop, phone}); !got.Equal(at(10)) {
		t.Fatalf("LastSeen = %v, want the latest active beat", got)
	}
}

func TestStatePrecedence(t *testing.T) {
	for i := 1; i < len(States); i++ {
		if States[i-1].Precedence() <= States[i].Precedence() {
			t.Fatalf("%s must outrank %s", States[i-1], States[i])
		}
	}
	if _, err := ParseState("busy"); ErrorCode(err) != EINVALID {
		t.Fatalf("ParseState(busy) = %v", err)
	}
	if State("x").Valid() || !Offline.Valid() {
		t.Fatal("Valid is wrong")
	}
}

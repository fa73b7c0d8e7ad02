package activity

import (
	"testing"

	"github.com/jezek/xgb"
)

// counterList builds a ListSystemCounters reply holding the named counters
// (IDs 1, 2, …), as the server encodes it.
func counterList(names ...string) []byte {
	buf := make([]byte, 32)
	buf[0] = 1
	xgb.Put32(buf[8:], uint32(len(names)))
	for i, name := range names {
		item := make([]byte, (14+len(name)+3)&^3)
		xgb.Put32(item, uint32(i+1))
		xgb.Put16(item[12:], uint16(len(name)))
		copy(item[14:], name)
		buf = append(buf, item...)
	}
	xgb.Put32(buf[4:], uint32((len(buf)-32)/4))
	return buf
}

func TestFindCounter(t *testing.T) {
	full := counterList("SERVERTIME", "IDLETIME", "DEVICEIDLETIME 2")
	tests := []struct {
		name    string
		reply   []byte
		want    uint32
		found   bool
		wantErr bool
	}{
		{"found among others", full, 2, true, false},
		{"name of a length that needs no padding", counterList("ABCDEFGHIJ", "IDLETIME"), 2, true, false},
		{"absent", counterList("SERVERTIME"), 0, false, false},
		{"empty list", counterList(), 0, false, false},
		{"a prefix is not the name", counterList("IDLETIME2"), 0, false, false},
		{"short reply", full[:20], 0, false, true},
		{"list cut short", full[:40], 0, false, true},
		{"name cut short", full[:32+14+4], 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, found, err := findCounter(tt.reply, "IDLETIME")
			if (err != nil) != tt.wantErr || found != tt.found || id != tt.want {
				t.Errorf("findCounter = %d, %v, %v; want %d, %v, error %v", id, found, err, tt.want, tt.found, tt.wantErr)
			}
		})
	}
}

func TestSyncInt64(t *testing.T) {
	for _, v := range []int64{0, 1, 1000, 1<<32 + 5, -1, -1 << 40, 1<<63 - 1} {
		b := make([]byte, 8)
		putInt64(b, v)
		if got := getInt64(b); got != v {
			t.Errorf("round trip of %d gave %d", v, got)
		}
	}
	// The high word goes first.
	b := make([]byte, 8)
	putInt64(b, 1<<32|2)
	if xgb.Get32(b) != 1 || xgb.Get32(b[4:]) != 2 {
		t.Errorf("encoding %x: want the high word first", b)
	}
}

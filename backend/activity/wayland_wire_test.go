//go:build linux || freebsd || netbsd || openbsd || dragonfly

package activity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// littleEndian skips tests whose expected bytes are spelled out for a
// little-endian host (the wire uses the host's order).
func littleEndian(t *testing.T) {
	t.Helper()
	if wlOrder.Uint16([]byte{1, 0}) != 1 {
		t.Skip("expected bytes are written for a little-endian host")
	}
}

// unhex decodes hex written in groups of words.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWaylandRequestEncoding(t *testing.T) {
	littleEndian(t)
	tests := []struct {
		name string
		req  *wlRequest
		want string
	}{
		{"wl_display.sync", newWlRequest(1, wlDisplaySync).uint(5),
			"01000000 00000c00 05000000"},
		{"wl_display.get_registry", newWlRequest(1, wlDisplayGetRegistry).uint(2),
			"01000000 01000c00 02000000"},
		// "wl_seat" is 7 bytes, 8 with its NUL: no padding.
		{"bind wl_seat", bindRequest(2, 9, "wl_seat", 1, 3),
			"02000000 00002000 09000000 08000000 776c5f73 65617400 01000000 03000000"},
		// 20 bytes + NUL = 21, padded to 24.
		{"bind ext_idle_notifier_v1", bindRequest(2, 12, "ext_idle_notifier_v1", 2, 4),
			"02000000 00003000 0c000000 15000000" +
				"6578745f 69646c65 5f6e6f74 69666965 725f7631 00000000" +
				"02000000 04000000"},
		// 17 bytes + NUL = 18, padded to 20.
		{"bind org_kde_kwin_idle", bindRequest(2, 7, "org_kde_kwin_idle", 1, 4),
			"02000000 00002c00 07000000 12000000" +
				"6f72675f 6b64655f 6b77696e 5f69646c 65000000" +
				"01000000 04000000"},
		{"empty string is its NUL, padded", newWlRequest(3, 7).str(""),
			"03000000 07001000 01000000 00000000"},
		{"get_idle_notification (v1): id, timeout, seat", extIdleNotify.request(4, 1, 5, 3, 1000),
			"04000000 01001400 05000000 e8030000 03000000"},
		{"get_input_idle_notification (v2): id, timeout, seat", extIdleNotify.request(4, 2, 5, 3, 1000),
			"04000000 02001400 05000000 e8030000 03000000"},
		{"get_idle_timeout: id, seat, timeout", kdeIdle.request(4, 1, 5, 3, 1000),
			"04000000 00001400 05000000 03000000 e8030000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.req.bytes()
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("encoded\n %x\nwant\n %x", got, want)
			}
			if len(got)%4 != 0 {
				t.Errorf("length %d is not a multiple of 4", len(got))
			}
		})
	}
}

func TestWaylandMessageDecoding(t *testing.T) {
	littleEndian(t)
	type event struct {
		object uint32
		opcode uint16
		body   string // hex
	}
	tests := []struct {
		name    string
		in      string // hex
		want    []event
		wantErr error // of the read after the events; nil means a clean io.EOF
	}{
		{"nothing", "", nil, nil},
		{"header only", "05000000 01000800", []event{{5, 1, ""}}, nil},
		{"two messages", "05000000 00000800 02000000 00000c00 2a000000",
			[]event{{5, 0, ""}, {2, 0, "2a000000"}}, nil},
		{"size below the header", "05000000 00000400", nil, errWlProtocol},
		{"size zero", "05000000 00000000", nil, errWlProtocol},
		{"size not a multiple of 4", "05000000 00000900 00", nil, errWlProtocol},
		{"size over the limit", "05000000 00001010", nil, errWlProtocol},
		{"largest size the header can hold", "05000000 0000ffff", nil, errWlProtocol},
		{"object 0", "00000000 00000800", nil, errWlProtocol},
		{"header cut short", "05000000 0000", nil, io.ErrUnexpectedEOF},
		{"body cut short", "05000000 00001000 01000000", nil, io.ErrUnexpectedEOF},
		{"body missing", "05000000 00001000", nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &wlReader{r: bytes.NewReader(unhex(t, tt.in))}
			for i, want := range tt.want {
				m, err := r.next()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if m.object != want.object || m.opcode != want.opcode || hex.EncodeToString(m.body) != strings.ReplaceAll(want.body, " ", "") {
					t.Errorf("message %d = {%d %d %x}, want %v", i, m.object, m.opcode, m.body, want)
				}
			}
			_, err := r.next()
			want := tt.wantErr
			if want == nil {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Errorf("last read: %v, want %v", err, want)
			}
		})
	}
}

func TestWaylandArgs(t *testing.T) {
	littleEndian(t)
	tests := []struct {
		name    string
		body    string
		read    func(a *wlArgs) string
		want    string
		wantErr bool
	}{
		{"uint", "2a000000", func(a *wlArgs) string { return hexU(a.uint()) }, "0000002a", false},
		{"uint cut short", "2a00", func(a *wlArgs) string { return hexU(a.uint()) }, "00000000", true},
		{"string", "08000000 776c5f73 65617400", func(a *wlArgs) string { return string(a.str()) }, "wl_seat", false},
		{"padded string", "06000000 68656c6c 6f000000", func(a *wlArgs) string { return string(a.str()) }, "hello", false},
		{"null string", "00000000", func(a *wlArgs) string { return hexB(a.str()) }, "nil", false},
		{"empty string", "01000000 00000000", func(a *wlArgs) string { return hexB(a.str()) }, "", false},
		{"string without its NUL", "04000000 61626364", func(a *wlArgs) string { return string(a.str()) }, "", true},
		{"string longer than the body", "09000000 61626364", func(a *wlArgs) string { return string(a.str()) }, "", true},
		{"string length near 2^32", "ffffffff 61626364", func(a *wlArgs) string { return string(a.str()) }, "", true},
		{"padding cut short", "05000000 61626300", func(a *wlArgs) string { return string(a.str()) }, "", true},
		{"bytes after the last argument", "01000000 02000000", func(a *wlArgs) string { return hexU(a.uint()) }, "00000001", true},
		{"first failure sticks", "0900", func(a *wlArgs) string {
			a.uint()
			return string(a.str())
		}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &wlArgs{b: unhex(t, tt.body)}
			got := tt.read(a)
			err := a.end()
			if got != tt.want {
				t.Errorf("read %q, want %q", got, tt.want)
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("end() = %v, want an error: %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errWlProtocol) {
				t.Errorf("end() = %v, want it to wrap errWlProtocol", err)
			}
		})
	}
}

func hexU(v uint32) string {
	return hex.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func hexB(b []byte) string {
	if b == nil {
		return "nil"
	}
	return string(b)
}

// TestWaylandDecoderMemoryIsBounded feeds the connection a flood of
// largest-size messages (globals with 4 KiB interface names, which a
// registry keeps none of): what reading them allocates must not grow with
// the stream.
func TestWaylandDecoderMemoryIsBounded(t *testing.T) {
	const n = 2000
	name := strings.Repeat("x", wlMaxMessage-20-1) // header, name, length, version: 20 bytes
	msg := newWlRequest(2, wlRegistryGlobal).uint(7).str(name).uint(1).bytes()
	if len(msg) != wlMaxMessage {
		t.Fatalf("test message is %d bytes, want %d", len(msg), wlMaxMessage)
	}
	stream := bytes.Repeat(msg, n)
	c := makeWlConn(fakeRW{r: bytes.NewReader(stream)})
	reg := &wlRegistry{want: "ext_idle_notifier_v1"}
	if _, err := c.newObject(reg.handle); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c.read()
	runtime.ReadMemStats(&after)
	if err := c.failure(); err == nil || !strings.Contains(err.Error(), "closed the connection") {
		t.Fatalf("read ended with %v, want the end of the stream", err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("read %d KiB of messages, allocated %d KiB", len(stream)>>10, allocated>>10)
	// One read buffer and its bufio.Reader, whatever the stream's length.
	if limit := uint64(4 * wlMaxMessage); allocated > limit {
		t.Errorf("reading %d bytes allocated %d bytes (limit %d)", len(stream), allocated, limit)
	}
	if reg.seat != nil || reg.notifier != nil {
		t.Errorf("the registry kept a global it does not want")
	}
}

// fakeRW is a connection whose reads come from r and whose writes go
// nowhere.
type fakeRW struct{ r io.Reader }

func (f fakeRW) Read(p []byte) (int, error)  { return f.r.Read(p) }
func (f fakeRW) Write(p []byte) (int, error) { return len(p), nil }
func (f fakeRW) Close() error                { return nil }

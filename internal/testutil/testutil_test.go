package testutil

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBuilt()
	os.Exit(code)
}

func TestPoll(t *testing.T) {
	var n atomic.Int32
	took, err := Poll("the third try", 5*time.Second, func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n.Load() != 3 || took <= 0 {
		t.Fatalf("Poll = %v, %v after %d tries; want nil after 3", took, err, n.Load())
	}

	cause := errors.New("object not exported")
	_, err = Poll("the object", 20*time.Millisecond, func() error { return cause })
	if !errors.Is(err, cause) || !strings.Contains(err.Error(), "the object") {
		t.Fatalf("Poll on timeout = %v; want it to name what it waited for and wrap the last error", err)
	}
}

func TestLookTool(t *testing.T) {
	if _, err := LookTool("sh"); err != nil {
		t.Fatalf("LookTool(sh): %v", err)
	}
	_, err := LookTool("Xvfb-that-is-not-there")
	if err == nil || !strings.Contains(err.Error(), "Xvfb-that-is-not-there") {
		t.Fatalf("LookTool of a missing tool = %v", err)
	}
	t.Setenv("PATH", "")
	if _, err := LookTool("sh"); err != nil {
		t.Errorf("LookTool(sh) with an empty PATH: %v; want it found in the system directories", err)
	}
}

func TestStartXvfb(t *testing.T) {
	var display string
	t.Run("start", func(t *testing.T) {
		display = StartXvfb(t)
		if !strings.HasPrefix(display, ":") {
			t.Fatalf("display %q", display)
		}
		c, err := net.Dial("unix", "/tmp/.X11-unix/X"+display[1:])
		if err != nil {
			t.Fatalf("the server does not accept connections: %v", err)
		}
		c.Close()
	})
	if display == "" {
		return // skipped
	}
	// The subtest's cleanup stopped the server.
	if c, err := net.Dial("unix", "/tmp/.X11-unix/X"+display[1:]); err == nil {
		c.Close()
		t.Fatalf("the X server on %s outlived its test", display)
	}
}

func TestStartSessionBus(t *testing.T) {
	var addr string
	t.Run("start", func(t *testing.T) {
		addr = StartSessionBus(t)
		conn, err := dbus.Connect(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var names []string
		if err := conn.BusObject().Call("org.freedesktop.DBus.ListNames", 0).Store(&names); err != nil {
			t.Fatal(err)
		}
	})
	if addr == "" {
		return // skipped
	}
	if conn, err := dbus.Connect(addr); err == nil {
		conn.Close()
		t.Fatalf("the bus at %s outlived its test", addr)
	}
}

func TestBuildBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	const pkg = "./internal/testutil/testdata/hello"
	plain := BuildBinary(t, pkg)
	if again := BuildBinary(t, pkg); again != plain {
		t.Errorf("built twice: %s and %s", plain, again)
	}
	tagged := BuildBinary(t, pkg, "testutil_tag")
	for bin, want := range map[string]string{plain: "hello\n", tagged: "hello tagged\n"} {
		out, err := exec.Command(bin).Output()
		if err != nil || string(out) != want {
			t.Errorf("%s printed %q, %v; want %q", bin, out, err, want)
		}
	}
}

package activity

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

func TestSubstreamState(t *testing.T) {
	for _, tc := range []struct {
		file, want string
		fails      bool
	}{
		{file: "closed.status", want: "closed"},
		{file: "running.status", want: "RUNNING"},
		{file: "prepared.status", want: "PREPARED"},
		{file: "paused.status", want: "PAUSED"},
		{file: "xrun.status", want: "XRUN"},
		{file: "setup.status", want: "SETUP"},
		{file: "empty.status", fails: true},
		{file: "garbage.status", fails: true},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "alsa", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := substreamState(b)
		if tc.fails {
			if err == nil {
				t.Errorf("%s: state %q, want an error", tc.file, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: state %q, %v; want %q", tc.file, got, err, tc.want)
		}
	}
}

// asound is a fake /proc/asound and /dev/snd.
type asound struct {
	t         *testing.T
	proc, dev string
}

func newAsound(t *testing.T) *asound {
	return &asound{t: t, proc: t.TempDir(), dev: t.TempDir()}
}

// status writes a substream's status file, copied from testdata: dir is
// e.g. "card0/pcm0c/sub0".
func (a *asound) status(dir, file string) {
	a.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "alsa", file))
	if err != nil {
		a.t.Fatal(err)
	}
	p := filepath.Join(a.proc, dir)
	if err := os.MkdirAll(p, 0o755); err != nil {
		a.t.Fatal(err)
	}
	// Written beside and renamed, so the watcher never reads half a file.
	tmp := filepath.Join(p, ".status")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		a.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(p, "status")); err != nil {
		a.t.Fatal(err)
	}
}

// node creates a device node stand-in in /dev/snd.
func (a *asound) node(name string) {
	a.t.Helper()
	if err := os.WriteFile(filepath.Join(a.dev, name), nil, 0o644); err != nil {
		a.t.Fatal(err)
	}
}

// touch opens and closes a device node, as a sound server does when a
// stream starts or its device is suspended.
func (a *asound) touch(name string) {
	a.t.Helper()
	f, err := os.Open(filepath.Join(a.dev, name))
	if err != nil {
		a.t.Fatal(err)
	}
	f.Close()
}

func TestReadCapture(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // substream dir → testdata status
		want  captureState
	}{
		{"no cards", nil, captureState{}},
		{"all closed", map[string]string{"card0/pcm0c/sub0": "closed.status", "card0/pcm0p/sub0": "closed.status"}, captureState{}},
		{"playback running is not a call", map[string]string{"card0/pcm0p/sub0": "running.status", "card0/pcm0c/sub0": "closed.status"}, captureState{}},
		{"capture prepared", map[string]string{"card0/pcm0c/sub0": "prepared.status"}, captureState{open: true}},
		{"capture paused", map[string]string{"card0/pcm0c/sub0": "paused.status"}, captureState{open: true}},
		{"capture running on a second card", map[string]string{
			"card0/pcm0c/sub0": "closed.status", "card1/pcm0c/sub0": "closed.status", "card1/pcm0c/sub1": "running.status",
		}, captureState{open: true, running: true}},
		{"a card's id link is not a card", map[string]string{"PCH/pcm0c/sub0": "running.status"}, captureState{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAsound(t)
			for dir, file := range tc.files {
				a.status(dir, file)
			}
			got, err := readCapture(a.proc)
			if err != nil || got != tc.want {
				t.Fatalf("readCapture = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	a := newAsound(t)
	a.status("card0/pcm0c/sub0", "garbage.status")
	if _, err := readCapture(a.proc); err == nil {
		t.Fatal("readCapture of an unreadable status succeeded")
	}
}

// TestALSACaptureEvents: with MicPoll an hour, every change below can only
// have been seen through the device nodes' open and close events.
func TestALSACaptureEvents(t *testing.T) {
	a := newAsound(t)
	a.status("card0/pcm0c/sub0", "closed.status")
	a.status("card0/pcm0p/sub0", "closed.status")
	a.node("pcmC0D0c")
	a.node("pcmC0D0p")
	a.node("controlC0")
	clk := &setClock{t: at(0)}
	src := detectSignals(t, SignalConfig{
		Getenv: env(), Now: clk.Now, ProcAsound: a.proc, DevSnd: a.dev, MicPoll: time.Hour,
	})
	if got := src.Name(); got != ALSACaptureName {
		t.Fatalf("Name = %q, want %q alone", got, ALSACaptureName)
	}
	if got := src.Signal(); got != (Signal{}) {
		t.Fatalf("Signal with nothing recording = %+v, want none", got)
	}

	// A call starts: the server opens the capture device, which runs.
	clk.set(at(1))
	a.status("card0/pcm0c/sub0", "running.status")
	a.touch("pcmC0D0c")
	waitSignal(t, src, Signal{Why: presence.ByCall, Since: at(1)})

	// It ends: the server suspends the device, closing it.
	clk.set(at(2))
	a.status("card0/pcm0c/sub0", "closed.status")
	a.touch("pcmC0D0c")
	waitSignal(t, src, Signal{Ended: at(2)})

	// A headset is plugged in and at once records: its node's creation is
	// the event, and (that change seen) its node is watched from then on.
	clk.set(at(3))
	a.status("card1/pcm0c/sub0", "running.status")
	a.node("pcmC1D0c")
	waitSignal(t, src, Signal{Why: presence.ByCall, Since: at(3), Ended: at(2)})
	clk.set(at(4))
	a.status("card1/pcm0c/sub0", "closed.status")
	a.touch("pcmC1D0c")
	waitSignal(t, src, Signal{Ended: at(4)})
}

// TestALSACapturePollsWhileOpen: a device held open (a server that never
// suspends, an app that pauses) gives no event when it starts or stops
// capturing, so while one is open the state is read every MicPoll.
func TestALSACapturePollsWhileOpen(t *testing.T) {
	a := newAsound(t)
	a.status("card0/pcm0c/sub0", "closed.status")
	a.node("pcmC0D0c")
	clk := &setClock{t: at(0)}
	src := detectSignals(t, SignalConfig{
		Getenv: env(), Now: clk.Now, ProcAsound: a.proc, DevSnd: a.dev, MicPoll: 20 * time.Millisecond,
	})

	a.status("card0/pcm0c/sub0", "prepared.status")
	a.touch("pcmC0D0c") // open, not yet capturing: no change
	clk.set(at(1))
	a.status("card0/pcm0c/sub0", "running.status") // no event
	waitSignal(t, src, Signal{Why: presence.ByCall, Since: at(1)})
	clk.set(at(2))
	a.status("card0/pcm0c/sub0", "paused.status") // no event
	waitSignal(t, src, Signal{Ended: at(2)})
}

func TestALSACaptureWithoutALSA(t *testing.T) {
	_, err := openALSACapture(SignalConfig{ProcAsound: filepath.Join(t.TempDir(), "none")}.withDefaults())
	if err == nil {
		t.Fatal("opened a microphone watcher with no /proc/asound")
	}
}

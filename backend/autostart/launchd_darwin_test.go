package autostart

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLaunchAgentEnableDisable(t *testing.T) {
	it := Item{HomeDir: t.TempDir()}
	if ok, err := it.Enabled(); err != nil || ok {
		t.Fatalf("Enabled = %v, %v; want false", ok, err)
	}
	if err := it.Enable("/Applications/Lastseen.app/Contents/MacOS/lastseen-agent", []string{"--headless"}); err != nil {
		t.Fatal(err)
	}
	p, _ := it.Path()
	if want := filepath.Join(it.HomeDir, "Library", "LaunchAgents", "app.lastseen.agent.plist"); p != want {
		t.Errorf("Path = %s, want %s", p, want)
	}
	if ok, err := it.Enabled(); err != nil || !ok {
		t.Fatalf("Enabled = %v, %v; want true", ok, err)
	}
	if err := it.Disable(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("plist still there: %v", err)
	}
	if ok, err := it.Enabled(); err != nil || ok {
		t.Fatalf("Enabled = %v, %v; want false", ok, err)
	}
}

package autostart

import (
	"crypto/rand"
	"encoding/hex"
	"testing"

	"golang.org/x/sys/windows/registry"
)

// scratchItem points the item at fresh keys under HKCU\Software\LastseenTest.
func scratchItem(t *testing.T) Item {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	base := `Software\LastseenTest\` + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		registry.DeleteKey(registry.CURRENT_USER, base+`\Run`)
		registry.DeleteKey(registry.CURRENT_USER, base+`\Approved`)
		registry.DeleteKey(registry.CURRENT_USER, base)
	})
	return Item{RunKey: base + `\Run`, ApprovedKey: base + `\Approved`}
}

func TestRunKeyEnableDisable(t *testing.T) {
	it := scratchItem(t)
	if ok, err := it.Enabled(); err != nil || ok {
		t.Fatalf("Enabled = %v, %v; want false", ok, err)
	}
	exe := `C:\Program Files\Lastseen\lastseen-agent.exe`
	if err := it.Enable(exe, []string{"--data-dir", `C:\Users\Ann\Lastseen Data\`}); err != nil {
		t.Fatal(err)
	}
	if ok, err := it.Enabled(); err != nil || !ok {
		t.Fatalf("Enabled = %v, %v; want true", ok, err)
	}
	k, err := registry.OpenKey(registry.CURRENT_USER, it.RunKey, registry.QUERY_VALUE)
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := k.GetStringValue(RunValueName)
	k.Close()
	if want := `"C:\Program Files\Lastseen\lastseen-agent.exe" --data-dir "C:\Users\Ann\Lastseen Data\\"`; err != nil || v != want {
		t.Errorf("Run value = %s, %v; want %s", v, err, want)
	}

	// The user switches it off in Task Manager.
	ak, _, err := registry.CreateKey(registry.CURRENT_USER, it.ApprovedKey, registry.SET_VALUE)
	if err != nil {
		t.Fatal(err)
	}
	if err := ak.SetBinaryValue(RunValueName, []byte{3, 0, 0, 0, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x01}); err != nil {
		t.Fatal(err)
	}
	ak.Close()
	if ok, err := it.Enabled(); err != nil || ok {
		t.Fatalf("Enabled after the user disabled it = %v, %v; want false", ok, err)
	}
	if err := it.Enable(exe, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := it.Enabled(); err != nil || !ok {
		t.Fatalf("Enabled after Enable = %v, %v; want true", ok, err)
	}
	if err := it.Disable(); err != nil {
		t.Fatal(err)
	}
	if ok, err := it.Enabled(); err != nil || ok {
		t.Fatalf("Enabled after Disable = %v, %v; want false", ok, err)
	}
}

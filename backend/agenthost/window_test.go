package agenthost

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/localapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// answer sends one request to the local API with the secret, as the
// window's bridge does, and returns the status and body.
func answer(t *testing.T, d localapi.Discovery, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, d.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.Secret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestWindowCannotMintTokens: in local mode the agent forwards the
// window's /api/v1 requests to the embedded service as the local
// account's user. POST /api/v1/devices then answered a device token, which
// the listener takes without the per-run secret, for as long as the device
// lives: JavaScript held a credential that outlived the run. Device
// management is now refused through the local API, and no route the window
// can reach answers a token.
func TestWindowCannotMintTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	d := runHost(t, t.TempDir())
	var st localapi.Status
	if code := call(t, d, "GET", "/local/v1/status", "", &st); code != 200 || st.Device.ID == 0 {
		t.Fatalf("status %d %+v", code, st)
	}

	code, body := answer(t, d, "POST", "/api/v1/devices", `{"name":"minted"}`)
	if code != http.StatusForbidden || !strings.Contains(body, `"forbidden"`) || !strings.Contains(body, "one device") {
		t.Fatalf("POST /api/v1/devices: %d %s, want 403 forbidden saying why", code, body)
	}
	if code, body := answer(t, d, "DELETE", "/api/v1/devices/"+strconv.FormatInt(st.Device.ID, 10), ""); code != http.StatusForbidden {
		t.Fatalf("DELETE the agent's own device: %d %s, want 403", code, body)
	}
	var devs httpapi.DevicesResponse
	if code := call(t, d, "GET", "/api/v1/devices", "", &devs); code != 200 || len(devs.Devices) != 1 || devs.Devices[0].ID != st.Device.ID {
		t.Fatalf("devices %d %+v: want this computer alone, still there", code, devs)
	}

	// Every route the window can reach, whatever it answers, answers no
	// token.
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/v1/me", ""},
		{"PATCH", "/api/v1/me", `{"public":false}`},
		{"GET", "/api/v1/presence", ""},
		{"GET", "/api/v1/sessions", ""},
		{"GET", "/api/v1/stats/daily", ""},
		{"GET", "/api/v1/devices", ""},
		{"POST", "/api/v1/devices", `{"name":"x"}`},
		{"PUT", "/api/v1/devices", `{"name":"x"}`},
		{"POST", "/api/v1/devices/", `{"name":"x"}`},
		{"DELETE", "/api/v1/devices/1", ""},
		{"GET", "/api/v1/export", ""},
		{"GET", "/api/v1/export?format=csv", ""},
		{"POST", "/api/v1/import", `{}`},
		{"POST", "/api/v1/login", `{"token":"ls_usr_x"}`},
		{"POST", "/api/v1/logout", ""},
		{"POST", "/api/v1/heartbeats", `{"beats":[]}`},
		{"GET", "/api/v1/public/" + st.Handle, ""},
		{"GET", "/local/v1/status", ""},
		{"GET", "/local/v1/settings", ""},
		{"GET", "/local/v1/history", ""},
		{"GET", "/local/v1/diagnostics", ""},
	} {
		code, body := answer(t, d, r.method, r.path, r.body)
		for _, kind := range []presence.TokenKind{presence.UserToken, presence.DeviceToken} {
			if prefix := "ls_" + string(kind) + "_"; strings.Contains(body, prefix) && !strings.Contains(r.body, prefix) {
				t.Errorf("%s %s answered %d with a token: %s", r.method, r.path, code, body)
			}
		}
	}
}

// TestDataFilesOwnerOnly: every file the agent keeps in its data dir —
// both databases with their -wal and -shm, the discovery file with the
// secret — is readable by its owner alone, including files a looser umask
// or an older version left behind.
func TestDataFilesOwnerOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole agent")
	}
	if runtime.GOOS == "windows" {
		t.Skip("mode bits")
	}
	dir := t.TempDir()
	// A local.db left readable by others (and its -wal): tightened at open.
	for _, name := range []string{LocalDBFile, LocalDBFile + "-wal", AgentDBFile + "-shm"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := runHost(t, dir)
	waitPresence(t, d, presence.Away) // beats written: both databases have their -wal and -shm
	want := []string{AgentDBFile, AgentDBFile + "-wal", AgentDBFile + "-shm",
		LocalDBFile, LocalDBFile + "-wal", LocalDBFile + "-shm", localapi.DiscoveryFile}
	for _, name := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s: mode %v, want owner-only", name, perm)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue // gone meanwhile
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s: mode %v, want owner-only", e.Name(), perm)
		}
	}
}

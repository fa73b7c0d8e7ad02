// Package archtest holds the architecture of DESIGN §4 as tests: who may
// import whom, what the always-on agent may link, and that every package says
// what it is for.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/lastseen/lastseen"

type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	Deps       []string
	Standard   bool
	GoFiles    []string
}

// list runs `go list -json` with the given arguments.
func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func ours(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

func TestDomainImportsOnlyTheStandardLibrary(t *testing.T) {
	for _, p := range list(t, "-deps", "./backend/presence") {
		if !p.Standard && p.ImportPath != module+"/backend/presence" {
			t.Errorf("backend/presence depends on %s; the domain imports only the standard library", p.ImportPath)
		}
	}
}

func TestBackendNeverImportsDesktopCode(t *testing.T) {
	for _, p := range list(t, "-deps", "./backend/...") {
		switch {
		case strings.HasPrefix(p.ImportPath, module+"/app"):
			t.Errorf("a backend package pulls in %s: nothing under backend/ may import app/", p.ImportPath)
		case strings.HasPrefix(p.ImportPath, "github.com/wailsapp/"), strings.HasPrefix(p.ImportPath, "fyne.io/systray"):
			t.Errorf("a backend package pulls in %s: only app/ talks to Wails or the tray", p.ImportPath)
		}
	}
}

// The always-on agent must stay a few MB: no Wails, no WebKit, no GTK.
func TestAgentLinksNoWebview(t *testing.T) {
	for _, tags := range []string{"", "desktop,production,webkit2_41"} {
		args := []string{"-deps"}
		if tags != "" {
			args = append(args, "-tags", tags)
		}
		for _, p := range list(t, append(args, "./app/cmd/lastseen-agent")...) {
			if strings.HasPrefix(p.ImportPath, "github.com/wailsapp/") || strings.Contains(p.ImportPath, "webkit") || strings.Contains(p.ImportPath, "gtk") {
				t.Errorf("lastseen-agent (tags %q) links %s", tags, p.ImportPath)
			}
		}
	}
}

// Implementations hang off the domain, not off each other; only the
// composition roots (and tests) wire them together.
func TestImplementationsImportOnlyTheDomain(t *testing.T) {
	shared := map[string]bool{"backend/presence": true, "backend/groupcommit": true}
	// The agent core owns its database the way a store owns its migrations.
	allowed := map[[2]string]bool{{"backend/agent", "backend/agentdb"}: true}
	roots := map[string]bool{"backend/cmd/lastseend": true, "app/cmd/lastseen-agent": true, "app": true, "": true}
	for _, p := range list(t, "./backend/...", "./app/...") {
		name := rel(p.ImportPath)
		if roots[name] || strings.HasPrefix(name, "backend/cmd/") || strings.HasPrefix(name, "backend/storetest") || strings.HasSuffix(name, "test") {
			continue
		}
		for _, imp := range p.Imports {
			if !ours(imp) {
				continue
			}
			dep := rel(imp)
			if shared[dep] || allowed[[2]string{name, dep}] || strings.HasPrefix(dep, name+"/") || dep == "frontend" || (strings.HasPrefix(name, "app/") && strings.HasPrefix(dep, "app/")) {
				continue
			}
			t.Errorf("%s imports %s: implementations import the domain (backend/presence), not each other", name, dep)
		}
	}
}

func TestEveryPackageHasADocComment(t *testing.T) {
	for _, p := range list(t, "./...") {
		if len(p.GoFiles) > 0 && p.Name != "main" && strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment", p.ImportPath)
		}
	}
}

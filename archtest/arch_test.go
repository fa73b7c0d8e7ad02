// Package archtest holds the architecture of DESIGN §4 as tests: who may
// import whom, what the shipped binaries may link, and that every package says
// what it is for. Every exception is named by its exact package path with the
// reason for it; none is granted by the shape of a name.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/lastseen/lastseen"

// measureRoot holds the measurement tools: commands and packages that run the
// product to measure it. They may import anything; nothing shipped links them.
const measureRoot = module + "/measure"

// testSupport names the packages whose non-test code exists to serve tests,
// with why. They may import "testing" and wire real implementations together;
// no shipped binary may link them. A package that is not here keeps "testing"
// inside its _test.go files. An entry for a package that does not exist yet
// is harmless.
var testSupport = map[string]string{
	"backend/storetest":       "the contract suite both service stores run",
	"backend/postgres/pgtest": "starts a throwaway PostgreSQL cluster for tests and the load command",
	"internal/testutil":       "helpers shared by the tests of several packages",
}

// shipped are the binaries a release is built from, with the tags `make build`
// builds them with.
var shipped = []struct{ pkg, tags string }{
	{"./app/cmd/lastseen-agent", ""},
	{"./backend/cmd/lastseend", ""},
	{".", "desktop,production,webkit2_41"},
}

// roots are the composition roots: wiring implementations together is their
// job, so they may import any of them.
var roots = map[string]string{
	"":                       "main.go, the window's main: it only calls app.Run",
	"app":                    "the window's composition root",
	"app/cmd/lastseen-agent": "the always-on agent's composition root",
	"backend/cmd/lastseend":  "the service's composition root",
}

// shared are the packages every implementation may import besides the domain.
var shared = map[string]string{
	"backend/presence":    "the domain",
	"backend/groupcommit": "the batching writer both service stores commit through",
	"backend/sqlitedb":    "the one SQLite open-and-migrate the service store and the agent's database share",
	"backend/apierror":    "the one error envelope the service's API, the local API and their clients speak",
	"backend/ssestream":   "the one Server-Sent Events reader the Go client, the window and the load tool share",
	"backend/importer":    "parsing of export files (ours, ActivityWatch's) into spans: stdlib and the domain only",
	"frontend":            "the built dashboard, embedded by the window and by lastseend",
	"internal/version":    "the release version the build stamps in, which every binary reports",
	"backend/password":    "the one password hash (argon2id, bounded concurrency) the API checks sign-ins with",
}

// wiring names the few implementations that may import other implementations,
// which ones, and why.
var wiring = map[string]struct {
	why     string
	imports []string
}{
	"backend/agent": {
		why:     "the agent core owns its database the way a store owns its migrations",
		imports: []string{"backend/agentdb"},
	},
	"app/tray": {
		why:     "the tray is a view over the agent: it speaks the agent's one Mode type and NextMidnight",
		imports: []string{"backend/agent"},
	},
	// The release tool writes the macOS LaunchAgent a Mac install puts in
	// place; it must carry the label the agent's own login item uses, or
	// one login would start two agents.
	"packaging/cmd/lastseen-pkg": {
		why:     "the packaged LaunchAgent carries the agent's own launchd label",
		imports: []string{"backend/autostart"},
	},
	// The agent's host is the agent's composition root minus main: service
	// switching, the local account, the remote proxy, the local API's
	// controls and the notifications of watched people (which follow the
	// service in use) need the implementations themselves, and keeping that wiring
	// in a package lets it be tested without starting a process.
	"backend/agenthost": {
		why: "the agent's host wires the agent's implementations together",
		imports: []string{
			"backend/agent", "backend/agentdb", "backend/activity", "backend/autostart",
			"backend/httpapi", "backend/localapi", "backend/notify", "backend/sqlite", "backend/sysinfo",
		},
	},
}

// baselines are measurement programs that must be built like the product to
// be measured against it, with why.
var baselines = map[string]string{
	"measure/cmd/lastseen-emptywindow": "the empty window the dashboard's cost is read against must be a Wails window too",
}

type pkg struct {
	ImportPath   string
	Name         string
	Doc          string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
	Standard     bool
	GoFiles      []string
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

func measuring(path string) bool {
	return path == measureRoot || strings.HasPrefix(path, measureRoot+"/")
}

func testingPkg(path string) bool { return path == "testing" || strings.HasPrefix(path, "testing/") }

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

// Wails and the tray belong to the desktop code; a measurement baseline may
// use them only when it is named, with its reason, in baselines.
func TestOnlyDesktopCodeImportsWailsOrTheTray(t *testing.T) {
	for _, p := range list(t, "./...") {
		name := rel(p.ImportPath)
		if name == "" || name == "app" || strings.HasPrefix(name, "app/") || baselines[name] != "" {
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "github.com/wailsapp/") || strings.HasPrefix(imp, "fyne.io/systray") {
				t.Errorf("%s imports %s: only app/ talks to Wails or the tray", name, imp)
			}
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

// The product never links the measurement tools, not even from its tests:
// measure/ runs the product from outside.
func TestOnlyMeasureImportsMeasure(t *testing.T) {
	for _, p := range list(t, "./...") {
		if measuring(p.ImportPath) {
			continue
		}
		for _, imps := range [][]string{p.Imports, p.TestImports, p.XTestImports} {
			for _, imp := range imps {
				if measuring(imp) {
					t.Errorf("%s imports %s: nothing outside measure/ imports the measurement tools", rel(p.ImportPath), rel(imp))
				}
			}
		}
	}
}

// thirdPartyTesting are the libraries we depend on whose own non-test code
// imports "testing", with why we accept it. Any other importer fails.
var thirdPartyTesting = map[string]string{
	"github.com/jezek/xgb": "xgb v1.1.1's testingTools.go (a leak checker for its own tests) is an ordinary file; the agent needs xgb for X11 idle time",
}

// What ships carries no test code: not the testing packages, not the test
// support of testSupport, not the measurement tools.
func TestShippedBinariesLinkNoTestOrMeasureCode(t *testing.T) {
	for _, b := range shipped {
		args := []string{"-deps"}
		if b.tags != "" {
			args = append(args, "-tags", b.tags)
		}
		for _, p := range list(t, append(args, b.pkg)...) {
			dep := p.ImportPath
			for _, imp := range p.Imports {
				if testingPkg(imp) && thirdPartyTesting[dep] == "" {
					t.Errorf("%s (tags %q) links %s through %s: test code does not ship", b.pkg, b.tags, imp, dep)
				}
			}
			switch {
			case measuring(dep):
				t.Errorf("%s (tags %q) links %s: the measurement tools do not ship", b.pkg, b.tags, rel(dep))
			case ours(dep) && testSupport[rel(dep)] != "":
				t.Errorf("%s (tags %q) links %s (%s): test support does not ship", b.pkg, b.tags, rel(dep), testSupport[rel(dep)])
			}
		}
	}
}

// A package's own code imports "testing" only when the package exists to
// serve tests, and then it says so in testSupport; that keeps the list the
// shipped-binaries rule relies on complete.
func TestOnlyTestSupportImportsTesting(t *testing.T) {
	for _, p := range list(t, "./...") {
		name := rel(p.ImportPath)
		if measuring(p.ImportPath) || testSupport[name] != "" {
			continue
		}
		for _, imp := range p.Imports {
			if testingPkg(imp) {
				t.Errorf("%s imports %s outside its _test.go files: move that code into a test file, or name the package in testSupport with the reason", name, imp)
			}
		}
	}
}

// Implementations hang off the domain, not off each other; only the
// composition roots and the packages named in wiring put them together.
// Test support may wire them for tests, and measure/ may import anything:
// neither ships.
func TestImplementationsImportOnlyTheDomain(t *testing.T) {
	for _, p := range list(t, "./...") {
		name := rel(p.ImportPath)
		if roots[name] != "" || testSupport[name] != "" || measuring(p.ImportPath) {
			continue
		}
		may := map[string]bool{}
		for _, dep := range wiring[name].imports {
			may[dep] = true
		}
		for _, imp := range p.Imports {
			if !ours(imp) {
				continue
			}
			dep := rel(imp)
			if shared[dep] != "" || may[dep] || strings.HasPrefix(dep, name+"/") || (strings.HasPrefix(name, "app/") && strings.HasPrefix(dep, "app/")) {
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

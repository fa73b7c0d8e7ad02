package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// builds are the programs BuildBinary built in this process, by package
// and tags; all live under one directory.
var builds struct {
	mu   sync.Mutex
	dir  string
	byID map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// BuildBinary builds the main package pkg of this module ("./backend/cmd/lastseend",
// relative to the module root, or a full import path) with the given build
// tags, once per test process, and returns the program's path. Every test
// that asks again gets the same program: building is the slow part of a
// test that runs a binary. A package whose tests call it removes the
// programs from TestMain with RemoveBuilt.
func BuildBinary(t testing.TB, pkg string, tags ...string) string {
	t.Helper()
	key := pkg + "\x00" + strings.Join(tags, ",")
	builds.mu.Lock()
	if builds.byID == nil {
		builds.byID = map[string]*build{}
	}
	b := builds.byID[key]
	if b == nil {
		b = &build{}
		builds.byID[key] = b
	}
	n := len(builds.byID)
	builds.mu.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(pkg, tags, n) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// RemoveBuilt removes what BuildBinary built. Call it from TestMain after
// m.Run: the programs serve every test of the process, so no single test's
// cleanup may remove them.
func RemoveBuilt() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir = ""
	}
	builds.byID = nil
}

func goBuild(pkg string, tags []string, n int) (string, error) {
	goTool, err := LookTool("go")
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	root, err := moduleRoot(goTool)
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	builds.mu.Lock()
	if builds.dir == "" {
		builds.dir, err = os.MkdirTemp("", "lastseen-bin-")
	}
	dir := builds.dir
	builds.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	// A directory per build keeps the program's own name (tools that find
	// a process by name, like the cost measurements, rely on it).
	out := filepath.Join(dir, strconv.Itoa(n), filepath.Base(pkg))
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command(goTool, append(args, pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// moduleRoot is the directory of the go.mod governing the working
// directory: tests run in their package's directory, somewhere below it.
func moduleRoot(goTool string) (string, error) {
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

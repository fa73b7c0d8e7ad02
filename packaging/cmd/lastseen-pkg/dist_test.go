package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Dist tests check what `make dist-linux dist-macos` wrote into
// LASTSEEN_DIST_DIR (make test-dist sets it, with LASTSEEN_DIST_VERSION):
// the validators Debian and freedesktop.org use, and a real install of the
// .deb on this machine. Without the variable they skip: they need the
// release build first, and root.
func distDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LASTSEEN_DIST_DIR")
	if dir == "" {
		t.Skip("LASTSEEN_DIST_DIR is not set: `make test-dist` builds the packages and runs these tests")
	}
	return dir
}

// tool finds a checker; with LASTSEEN_DIST_DIR set the packages are being
// checked for real, so a missing one fails (scripts/deps.sh test installs them).
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (Debian package %s; `make deps-test` installs it)", name, pkg)
	}
	return p
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func onePackage(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) != 1 {
		t.Fatalf("%s in %s: found %v, want exactly one (make dist-linux)", pattern, dir, m)
	}
	return m[0]
}

func TestDistDeb(t *testing.T) {
	dir := distDir(t)
	deb := onePackage(t, dir, "lastseen_*.deb")

	// lintian: no errors; its warnings are listed in the test log.
	out, err := exec.Command(tool(t, "lintian", "lintian"), "--tag-display-limit", "0", deb).CombinedOutput()
	t.Logf("lintian %s:\n%s", filepath.Base(deb), out)
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") {
			t.Errorf("lintian error: %s", line)
		}
	}
	if err != nil && !strings.Contains(string(out), "E: ") {
		t.Fatalf("lintian failed: %v", err)
	}

	root := t.TempDir()
	mustRun(t, tool(t, "dpkg-deb", "dpkg"), "-x", deb, root)
	mustRun(t, tool(t, "desktop-file-validate", "desktop-file-utils"), filepath.Join(root, "usr/share/applications/lastseen.desktop"))
	mustRun(t, tool(t, "appstreamcli", "appstream"), "validate", "--no-net", filepath.Join(root, "usr/share/metainfo/io.lastseen.Lastseen.metainfo.xml"))
	for _, size := range hicolorSizes {
		p := filepath.Join(root, fmt.Sprintf("usr/share/icons/hicolor/%dx%d/apps/lastseen.png", size, size))
		if _, err := loadPNG(p); err != nil {
			t.Errorf("icon %dx%d: %v", size, size, err)
		}
	}
	control := mustRun(t, "dpkg-deb", "-f", deb, "Depends")
	for _, want := range []string{"libgtk-3-0", "libwebkit2gtk-4.1-0"} {
		if !strings.Contains(control, want) {
			t.Errorf("Depends: %s lacks %s", control, want)
		}
	}
	if strings.Contains(control, "-dev") {
		t.Errorf("Depends: %s names a -dev package", control)
	}
	conffiles := mustRun(t, "sh", "-c", "dpkg-deb --ctrl-tarfile "+deb+" | tar -xO ./conffiles")
	if !strings.Contains(conffiles, "/etc/default/lastseend") {
		t.Errorf("conffiles %q lacks /etc/default/lastseend", conffiles)
	}
}

func TestDistRpm(t *testing.T) {
	dir := distDir(t)
	rpm := onePackage(t, dir, "lastseen-*.rpm")
	rpmTool := tool(t, "rpm", "rpm")
	files := mustRun(t, rpmTool, "-qpl", rpm)
	for _, want := range []string{"/usr/bin/lastseen\n", "/usr/bin/lastseen-agent\n", "/usr/bin/lastseend\n",
		"/usr/lib/systemd/system/lastseend.service\n", "/usr/share/applications/lastseen.desktop\n",
		"/usr/share/icons/hicolor/256x256/apps/lastseen.png\n", "/usr/share/metainfo/io.lastseen.Lastseen.metainfo.xml\n"} {
		if !strings.Contains(files, want) {
			t.Errorf("rpm lacks %s", strings.TrimSpace(want))
		}
	}
	requires := mustRun(t, rpmTool, "-qpR", rpm)
	if !strings.Contains(requires, "gtk3") || !strings.Contains(requires, "webkit2gtk4.1") || strings.Contains(requires, "-devel") {
		t.Errorf("rpm requires:\n%s", requires)
	}
	if conf := mustRun(t, rpmTool, "-qpc", rpm); !strings.Contains(conf, "/etc/default/lastseend") {
		t.Errorf("rpm config files %q lack /etc/default/lastseend", conf)
	}
}

// TestDistDebInstalls installs the .deb into this machine, as a user would,
// checks what it laid down, and removes it again.
func TestDistDebInstalls(t *testing.T) {
	dir := distDir(t)
	deb := onePackage(t, dir, "lastseen_*.deb")
	// As root, or through sudo when it asks no password (as scripts/deps.sh does).
	asRoot := func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
	if os.Geteuid() != 0 {
		if exec.Command("sudo", "-n", "true").Run() != nil {
			t.Skip("installing the .deb needs root, or sudo without a password")
		}
		asRoot = func(name string, args ...string) *exec.Cmd {
			return exec.Command("sudo", append([]string{"-n", "env", "DEBIAN_FRONTEND=noninteractive", name}, args...)...)
		}
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", "lastseen").Output(); err == nil && strings.HasSuffix(string(out), " installed") {
		t.Skip("a lastseen package is already installed here; not replacing it")
	}
	t.Cleanup(func() {
		if out, err := asRoot("dpkg", "--purge", "lastseen").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge lastseen: %v\n%s", err, out)
		}
		if _, err := os.Stat("/usr/bin/lastseend"); err == nil {
			t.Error("/usr/bin/lastseend is still there after dpkg --purge")
		}
	})
	if out, err := asRoot("dpkg", "-i", deb).CombinedOutput(); err != nil {
		// Missing runtime libraries: let apt bring them, as a user would.
		t.Logf("dpkg -i: %v\n%s", err, out)
		cmd := asRoot("apt-get", "install", "-f", "-y", "-q", "--no-install-recommends")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get install -f: %v\n%s", err, out)
		}
	}

	want := os.Getenv("LASTSEEN_DIST_VERSION")
	for _, bin := range []string{"lastseend", "lastseen-agent", "lastseen"} {
		out := strings.TrimSpace(mustRun(t, "/usr/bin/"+bin, "--version"))
		if !strings.HasPrefix(out, bin+" ") || (want != "" && out != bin+" "+want) {
			t.Errorf("%s --version = %q, want %q", bin, out, bin+" "+want)
		}
	}
	for _, p := range []string{"/usr/share/applications/lastseen.desktop", "/usr/share/icons/hicolor/48x48/apps/lastseen.png",
		"/usr/share/metainfo/io.lastseen.Lastseen.metainfo.xml", "/etc/default/lastseend", "/usr/share/doc/lastseen/copyright",
		"/usr/share/man/man1/lastseend.1.gz", "/usr/share/man/man1/lastseen-agent.1.gz", "/usr/share/man/man1/lastseen.1.gz"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("installed: %v", err)
		}
	}
	unit := "/lib/systemd/system/lastseend.service"
	analyze := tool(t, "systemd-analyze", "systemd")
	mustRun(t, analyze, "verify", unit)
	// Hardened: systemd's own exposure score at most 2.0 ("OK").
	out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	}

	// The installed service serves and answers its own health check.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	serve := exec.CommandContext(ctx, "/usr/bin/lastseend", "serve", "--addr", addr, "--db", filepath.Join(t.TempDir(), "ls.db"))
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = serve.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command("/usr/bin/lastseend", "healthcheck", "--addr", addr, "--timeout", "1s").CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lastseend healthcheck never passed: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDistMacOS(t *testing.T) {
	checkMacOSLayout(t, filepath.Join(distDir(t), "macos"))
}

// TestDistSums checks SHA256SUMS: every file of the release is listed, and
// every listed file has that digest.
func TestDistSums(t *testing.T) {
	dir := distDir(t)
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatalf("%v (make dist writes it)", err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		_, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q is not `DIGEST  FILE`", line)
		}
		listed[name] = true
	}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Type()&os.ModeSymlink != 0 {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel != "SHA256SUMS" && !listed[rel] {
			t.Errorf("%s is not in SHA256SUMS", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool(t, "sha256sum", "coreutils"), "--check", "--quiet", "--strict", "SHA256SUMS")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum --check: %v\n%s", err, out)
	}
}

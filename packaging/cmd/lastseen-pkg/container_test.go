package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// No container runtime runs here, so the image is not built by the tests:
// they check what can be checked without one.

const repoRoot = "../../.."

// instruction is one Containerfile instruction with its continuation lines
// joined.
type instruction struct {
	op, args string
}

func readContainerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(op), strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestContainerfile(t *testing.T) {
	ins := readContainerfile(t)
	var stages []string
	seen := map[string]string{}
	for _, in := range ins {
		switch in.op {
		case "FROM":
			stages = append(stages, in.args)
		case "COPY":
			fields := strings.Fields(in.args)
			fromStage := false
			var paths []string
			for _, f := range fields {
				if strings.HasPrefix(f, "--from=") {
					fromStage = true
				}
				if !strings.HasPrefix(f, "--") {
					paths = append(paths, f)
				}
			}
			if fromStage {
				continue
			}
			// Every source the build context must provide exists.
			for _, src := range paths[:len(paths)-1] {
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("COPY %s: %v", src, err)
				}
			}
		default:
			seen[in.op] = in.args
		}
	}
	if len(stages) < 2 {
		t.Fatalf("stages %v: want a build stage and a small runtime stage", stages)
	}
	runtime := stages[len(stages)-1]
	if !strings.Contains(runtime, "distroless") && !strings.Contains(runtime, "-slim") {
		t.Errorf("runtime stage %q is not a small image", runtime)
	}
	if u := seen["USER"]; u == "" || strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
		t.Errorf("USER %q: the service must not run as root", u)
	}
	if !strings.Contains(seen["VOLUME"], "/data") || !strings.Contains(seen["EXPOSE"], "8080") {
		t.Errorf("VOLUME %q, EXPOSE %q: want /data and 8080", seen["VOLUME"], seen["EXPOSE"])
	}
	if !strings.Contains(seen["HEALTHCHECK"], `"lastseend", "healthcheck"`) && !strings.Contains(seen["HEALTHCHECK"], `/lastseend", "healthcheck"`) {
		t.Errorf("HEALTHCHECK %q: want lastseend healthcheck (the image has no shell or curl)", seen["HEALTHCHECK"])
	}
	if !strings.Contains(seen["ENV"], "LASTSEEN_DB=/data/") {
		t.Errorf("ENV %q: the database belongs in the /data volume", seen["ENV"])
	}
	if _, err := os.Stat(filepath.Join(repoRoot, ".containerignore")); err != nil {
		t.Errorf("no .containerignore: node_modules and build output would enter the context: %v", err)
	}
}

func TestCompose(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Image string `yaml:"image"`
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
			DependsOn   map[string]any    `yaml:"depends_on"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	db, ok := c.Services["db"]
	if !ok || !strings.Contains(db.Image, "postgres:16") {
		t.Fatalf("no db service on postgres:16: %+v", c.Services)
	}
	for _, v := range db.Volumes {
		name, _, _ := strings.Cut(v, ":")
		if _, ok := c.Volumes[name]; !ok {
			t.Errorf("db volume %q is not declared", name)
		}
	}
	svc, ok := c.Services["lastseend"]
	if !ok || svc.Build == nil {
		t.Fatal("no lastseend service built from the Containerfile")
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "deploy", svc.Build.Context, svc.Build.Dockerfile)); err != nil {
		t.Errorf("build %s/%s: %v", svc.Build.Context, svc.Build.Dockerfile, err)
	}
	if !strings.HasPrefix(svc.Environment["LASTSEEN_DB"], "postgres://") || !strings.Contains(svc.Environment["LASTSEEN_DB"], "@db:") {
		t.Errorf("LASTSEEN_DB %q: want the db service's PostgreSQL", svc.Environment["LASTSEEN_DB"])
	}
	if _, ok := svc.DependsOn["db"]; !ok {
		t.Error("lastseend does not wait for db")
	}
}

package main

import (
	"fmt"
	"regexp"
	"strings"
)

// describeRE splits `git describe --tags --always --dirty` output:
// v1.2.3[-rc1][-4-gabc1234][-dirty].
var describeRE = regexp.MustCompile(`^v?(\d+(?:\.\d+)*)(?:-((?:alpha|beta|rc|pre)[.0-9]*))?(?:-(\d+)-g([0-9a-f]+))?(-dirty)?$`)

var shaRE = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)

// packageVersion turns a version from git into one dpkg and rpm both order
// correctly: a release candidate sorts before its release (~), commits after
// a tag after it (+git), and a tree with no tag at all before every release.
func packageVersion(v string) (string, error) {
	if m := describeRE.FindStringSubmatch(v); m != nil {
		out := m[1]
		if m[2] != "" {
			out += "~" + m[2]
		}
		if m[3] != "" {
			out += "+git" + m[3] + "." + m[4]
		}
		if m[5] != "" {
			out += ".dirty"
		}
		return out, nil
	}
	if m := shaRE.FindStringSubmatch(v); m != nil {
		out := "0.0.0+git." + m[1]
		if m[2] != "" {
			out += ".dirty"
		}
		return out, nil
	}
	if v == "dev" {
		return "0.0.0+dev", nil
	}
	return "", fmt.Errorf("version %q is neither a tag (v1.2.3) nor git describe output; set VERSION=", strings.TrimSpace(v))
}

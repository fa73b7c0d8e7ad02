package agent

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStayConsumerSide keeps the agent's core free of the packages it
// is wired to: it knows the OS and the service only through its own small
// interfaces, so the composition root decides what runs behind them.
func TestImportsStayConsumerSide(t *testing.T) {
	forbidden := []string{
		"github.com/lastseen/lastseen/backend/activity",
		"github.com/lastseen/lastseen/backend/httpapi",
		"github.com/lastseen/lastseen/backend/sqlite",
		"github.com/lastseen/lastseen/backend/localapi",
		"github.com/lastseen/lastseen/app",
		"github.com/wailsapp/wails",
		"net/http",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
}

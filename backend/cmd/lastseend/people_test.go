package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// mustLink checks that the last line of a command's output is a one-time
// link alone, at base, and returns its secret.
func mustLink(t *testing.T, out, base string) string {
	t.Helper()
	line := lastLine(out)
	u, err := url.Parse(line)
	if err != nil || strings.ContainsAny(line, " \t") || !strings.HasPrefix(line, base+"/welcome#") ||
		!strings.HasPrefix(u.Fragment, presence.LinkPrefix) {
		t.Fatalf("last line of output is not a %s/welcome#ls_inv_… link alone:\n%s", base, out)
	}
	return u.Fragment
}

// post sends a JSON body to the running server and returns the status and
// the session cookie it set, if any.
func post(t *testing.T, base, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(base+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	for _, c := range resp.Cookies() {
		if c.Name == httpapi.SessionCookie && c.MaxAge > 0 {
			return resp.StatusCode, c.Value
		}
	}
	return resp.StatusCode, ""
}

// streamEnds waits for the stream to end, within d.
func streamEnds(t *testing.T, conn net.Conn, br *bufio.Reader, d time.Duration) {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(d))
	for {
		line, err := br.ReadString('\n')
		if err == nil {
			if strings.HasPrefix(line, "data:") {
				t.Errorf("the ended stream received %q", line)
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("the stream did not end within %v: %v", d, err)
		}
		t.Logf("stream ended after %v", time.Since(start).Round(time.Millisecond))
		return
	}
}

// TestUserInviteAndReset: the links the command line prints are the
// service's, and work once.
func TestUserInviteAndReset(t *testing.T) {
	now := runningClock()
	db := filepath.Join(t.TempDir(), "lastseen.db")
	srv := mustServe(t, db, now, nil)
	base := srv.URL()

	out := mustCmd(t, now, "user", "invite", "ada", "--name", "Ada", "--admin", "--base-url", base+"/", "--db", db)
	secret := mustLink(t, out, base)
	if !strings.Contains(out, "administrator") {
		t.Errorf("invite output does not say admin:\n%s", out)
	}
	if st, _ := post(t, base, "/api/v1/links/peek", `{"secret":"`+secret+`"}`); st != 200 {
		t.Fatalf("peek: %d", st)
	}
	st, session := post(t, base, "/api/v1/links/redeem", `{"secret":"`+secret+`","password":"ada's password"}`)
	if st != 200 || session == "" {
		t.Fatalf("redeem: %d, cookie %q", st, session)
	}
	if st, _ := post(t, base, "/api/v1/links/redeem", `{"secret":"`+secret+`","password":"ada's password"}`); st != 404 {
		t.Errorf("redeeming twice: %d, want 404", st)
	}
	if st, _ := post(t, base, "/api/v1/login", `{"handle":"ada","password":"ada's password"}`); st != 200 {
		t.Fatalf("login: %d", st)
	}

	// The environment twin gives the base too.
	out, errs, code := runCmd(t, now, map[string]string{"LASTSEEN_BASE_URL": base}, "user", "reset-password", "ada", "--db", db)
	if code != 0 {
		t.Fatalf("reset-password: exit %d\n%s\n%s", code, out, errs)
	}
	secret = mustLink(t, out, base)
	if st, _ := post(t, base, "/api/v1/links/redeem", `{"secret":"`+secret+`","password":"a new password"}`); st != 200 {
		t.Fatalf("redeem the reset: %d", st)
	}
	if st, _ := post(t, base, "/api/v1/login", `{"handle":"ada","password":"ada's password"}`); st != 401 {
		t.Errorf("the old password: %d, want 401", st)
	}
	if st, _ := post(t, base, "/api/v1/login", `{"handle":"ada","password":"a new password"}`); st != 200 {
		t.Errorf("the new password: %d", st)
	}
}

// TestDisableAndTokensFromCommandLine: disabling a user and revoking an
// API token from another process lock them out of the running server and
// end their open streams within a second.
func TestDisableAndTokensFromCommandLine(t *testing.T) {
	ctx := context.Background()
	now := runningClock()
	db := filepath.Join(t.TempDir(), "lastseen.db")
	srv := mustServe(t, db, now, nil)
	mustCmd(t, now, "user", "add", "ann", "--db", db)
	bobTok := mustToken(t, mustCmd(t, now, "user", "add", "bob", "--db", db), "ls_usr_")

	out := mustCmd(t, now, "token", "add", "bob", "backup script", "--db", db)
	scriptTok := mustToken(t, out, "ls_usr_")
	list := mustCmd(t, now, "token", "list", "bob", "--db", db)
	if !strings.Contains(list, "backup script") {
		t.Fatalf("token list:\n%s", list)
	}
	var id string
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, "backup script") {
			id = strings.Fields(line)[0]
		}
	}
	script := httpapi.NewClient(srv.URL(), scriptTok, nil)
	if _, err := script.Me(ctx); err != nil {
		t.Fatal(err)
	}
	conn, br := openStream(t, srv.URL(), scriptTok)
	mustCmd(t, now, "token", "revoke", "bob", id, "--db", db)
	streamEnds(t, conn, br, time.Second)
	if _, err := script.Me(ctx); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("the revoked token: %v, want unauthorized", err)
	}

	bob := httpapi.NewClient(srv.URL(), bobTok, nil)
	conn, br = openStream(t, srv.URL(), bobTok)
	if out := mustCmd(t, now, "user", "disable", "bob", "--db", db); !strings.Contains(out, "disabled bob") {
		t.Errorf("user disable printed %q", out)
	}
	streamEnds(t, conn, br, time.Second)
	if _, err := bob.Me(ctx); presence.ErrorCode(err) != presence.EUNAUTHORIZED {
		t.Errorf("a disabled user's token: %v, want unauthorized", err)
	}
	if out := mustCmd(t, now, "user", "list", "--db", db); !strings.Contains(out, "disabled") || !strings.Contains(out, "admin") {
		t.Errorf("user list does not show the account's state:\n%s", out)
	}
	mustCmd(t, now, "user", "enable", "bob", "--db", db)
	if _, err := bob.Me(ctx); err != nil {
		t.Errorf("enabled again: %v", err)
	}
}

func TestPeopleCommandLine(t *testing.T) {
	now := runningClock()
	db := filepath.Join(t.TempDir(), "cli.db")
	mustCmd(t, now, "user", "add", "dave", "--db", db)
	for _, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"token"}, 2, "needs a subcommand"},
		{[]string{"token", "frob", "dave"}, 2, "unknown command"},
		{[]string{"user", "invite", "erin", "--db", db}, 2, "--base-url"},
		{[]string{"user", "invite", "Not A Handle", "--base-url", "https://p.example.com"}, 2, "handle"},
		{[]string{"user", "invite", "erin", "--base-url", "ftp://p.example.com", "--db", db}, 2, "base-url"},
		{[]string{"user", "reset-password", "dave", "--db", db}, 2, "--base-url"},
		{[]string{"token", "add", "dave", "  ", "--db", db}, 2, "token name"},
		{[]string{"serve", "--base-url", "not a url"}, 2, "base-url"},

		{[]string{"user", "invite", "dave", "--base-url", "https://p.example.com", "--db", db}, 1, "conflict"},
		{[]string{"user", "reset-password", "nobody", "--base-url", "https://p.example.com", "--db", db}, 1, "not_found"},
		{[]string{"user", "disable", "nobody", "--db", db}, 1, "not_found"},
		{[]string{"token", "revoke", "dave", "0011223344556677", "--db", db}, 1, "not_found"},
		{[]string{"token", "list", "nobody", "--db", db}, 1, "not_found"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errs, code := runCmd(t, now, nil, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.stderr) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tt.code, tt.stderr, out, errs)
			}
		})
	}
	if out := mustCmd(t, now, "help"); !strings.Contains(out, "user invite HANDLE") || !strings.Contains(out, "token add HANDLE NAME") {
		t.Errorf("help lacks the People commands:\n%s", out)
	}
}

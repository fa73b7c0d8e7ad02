package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/lastseen/lastseen/backend/httpapi"
	"github.com/lastseen/lastseen/backend/presence"
)

// The People commands: invite someone and reset a password (each prints a
// one-time link, alone on the last line, for the operator to hand over),
// disable and enable a user, and manage a user's named API tokens. Like
// the other admin commands they open the database directly, and work while
// serve runs on it: the server notices within a second (a disabled user's
// or a revoked token's open streams end).

func init() {
	for _, c := range peopleCommands {
		commands[c.name] = c
	}
}

// baseURLFlag adds --base-url, which links are made of.
func baseURLFlag(m *Main, fs *flag.FlagSet) {
	fs.StringVar(&m.Config.BaseURL, "base-url", m.Config.BaseURL, "the service's public `URL` (https://presence.example.com), which links point to")
}

// needBaseURL checks that a link can be made: --base-url or its twin given.
func needBaseURL(m *Main) error {
	if m.Config.BaseURL == "" {
		return errors.New("the link needs the service's public address: give --base-url https://… (or LASTSEEN_BASE_URL)")
	}
	return nil
}

var peopleCommands = []command{
	{
		name: "user invite", args: "HANDLE", minArgs: 1, maxArgs: 1,
		summary: "Invite someone: prints a one-time link, alone on the last line, where they choose a password and sign in. " +
			"It works once, for 7 days.",
		flags: func(m *Main, fs *flag.FlagSet) {
			fs.StringVar(&m.admin.name, "name", "", "the display `name` proposed to them")
			fs.BoolVar(&m.admin.makeAdmin, "admin", false, "make them an administrator (they may invite and manage people)")
			baseURLFlag(m, fs)
		},
		check: func(m *Main, fs *flag.FlagSet, args []string) error {
			if err := checkHandle(m, fs, args); err != nil {
				return err
			}
			if _, err := presence.NormalizeUserName(m.admin.name); err != nil {
				return messageOf(err)
			}
			return needBaseURL(m)
		},
		run: runUserInvite,
	},
	{
		name: "user reset-password", args: "HANDLE", minArgs: 1, maxArgs: 1,
		summary: "Make a password reset link for a user: prints it alone on the last line. It works once, for 24 hours; " +
			"using it ends all of the user's sessions.",
		flags: func(m *Main, fs *flag.FlagSet) { baseURLFlag(m, fs) },
		check: func(m *Main, fs *flag.FlagSet, args []string) error {
			if err := checkHandle(m, fs, args); err != nil {
				return err
			}
			return needBaseURL(m)
		},
		run: runUserResetPassword,
	},
	{
		name: "user disable", args: "HANDLE", minArgs: 1, maxArgs: 1,
		summary: "Disable a user: their sessions end, and none of their tokens or devices works until enabled again.",
		check:   checkHandle,
		run: func(ctx context.Context, m *Main, s presence.Store, args []string) error {
			return setDisabled(ctx, m, s, args[0], true)
		},
	},
	{
		name: "user enable", args: "HANDLE", minArgs: 1, maxArgs: 1,
		summary: "Enable a disabled user again.",
		check:   checkHandle,
		run: func(ctx context.Context, m *Main, s presence.Store, args []string) error {
			return setDisabled(ctx, m, s, args[0], false)
		},
	},
	{
		name: "token list", args: "HANDLE", minArgs: 1, maxArgs: 1,
		summary: "List a user's API tokens (their ids and names; the tokens themselves are never shown again).",
		check:   checkHandle,
		run:     runTokenList,
	},
	{
		name: "token add", args: "HANDLE NAME", minArgs: 2, maxArgs: 2,
		summary: "Add a named API token to a user. Prints the token, alone on the last line; it is shown only this once.",
		check: func(m *Main, fs *flag.FlagSet, args []string) error {
			if err := checkHandle(m, fs, args); err != nil {
				return err
			}
			_, err := presence.NormalizeTokenName(args[1])
			return messageOf(err)
		},
		run: runTokenAdd,
	},
	{
		name: "token revoke", args: "HANDLE ID", minArgs: 2, maxArgs: 2,
		summary: "Revoke one of a user's API tokens (ID from token list).",
		check:   checkHandle,
		run:     runTokenRevoke,
	},
}

func runUserInvite(ctx context.Context, m *Main, s presence.Store, args []string) error {
	name, _ := presence.NormalizeUserName(m.admin.name) // checked by the command's check
	l, secret, err := s.CreateLink(ctx, presence.Link{Purpose: presence.SignupLink, Handle: args[0], Name: name, Admin: m.admin.makeAdmin})
	if err != nil {
		return fmt.Errorf("user invite %s: %w", args[0], err)
	}
	role := ""
	if l.Admin {
		role = " as an administrator"
	}
	fmt.Fprintf(m.Stdout, "invited %s%s; send them the link below (it works once, until %s):\n%s\n",
		l.Handle, role, timeOrDash(l.ExpiresAt), linkURL(m.Config.BaseURL, secret))
	return nil
}

func runUserResetPassword(ctx context.Context, m *Main, s presence.Store, args []string) error {
	l, secret, err := s.CreateLink(ctx, presence.Link{Purpose: presence.ResetLink, Handle: args[0]})
	if err != nil {
		return fmt.Errorf("user reset-password %s: %w", args[0], err)
	}
	fmt.Fprintf(m.Stdout, "password reset for %s; send them the link below (it works once, until %s; using it signs them out everywhere):\n%s\n",
		l.Handle, timeOrDash(l.ExpiresAt), linkURL(m.Config.BaseURL, secret))
	return nil
}

// linkURL is the page that redeems a link, as the service makes it.
func linkURL(base, secret string) string { return strings.TrimRight(base, "/") + "/welcome#" + secret }

func setDisabled(ctx context.Context, m *Main, s presence.Store, handle string, disabled bool) error {
	verb := map[bool]string{true: "disable", false: "enable"}[disabled]
	u, err := s.UserByHandle(ctx, handle)
	if err != nil {
		return fmt.Errorf("user %s %s: %w", verb, handle, err)
	}
	if _, err := s.UpdateUser(ctx, u.ID, presence.UserUpdate{Disabled: &disabled}); err != nil {
		return fmt.Errorf("user %s %s: %w", verb, handle, err)
	}
	if disabled {
		fmt.Fprintf(m.Stdout, "disabled %s: their sessions ended, and their tokens and devices no longer work\n", u.Handle)
	} else {
		fmt.Fprintf(m.Stdout, "enabled %s: they may sign in again, and their tokens and devices work again\n", u.Handle)
	}
	return nil
}

func runTokenList(ctx context.Context, m *Main, s presence.Store, args []string) error {
	u, err := s.UserByHandle(ctx, args[0])
	if err != nil {
		return fmt.Errorf("token list %s: %w", args[0], err)
	}
	ts, err := s.APITokens(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("token list %s: %w", args[0], err)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tCREATED\tLAST USED")
	for _, t := range ts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, dash(t.Name), timeOrDash(t.CreatedAt), timeOrDash(t.LastUsed))
	}
	return w.Flush()
}

func runTokenAdd(ctx context.Context, m *Main, s presence.Store, args []string) error {
	u, err := s.UserByHandle(ctx, args[0])
	if err != nil {
		return fmt.Errorf("token add %s: %w", args[0], err)
	}
	name, _ := presence.NormalizeTokenName(args[1]) // checked by the command's check
	t, token, err := s.CreateAPIToken(ctx, u.ID, name)
	if err != nil {
		return fmt.Errorf("token add %s: %w", args[0], err)
	}
	fmt.Fprintf(m.Stdout, "added API token %s %q to %s; the token below is shown only this once:\n%s\n", t.ID, t.Name, u.Handle, token)
	return nil
}

func runTokenRevoke(ctx context.Context, m *Main, s presence.Store, args []string) error {
	u, err := s.UserByHandle(ctx, args[0])
	if err != nil {
		return fmt.Errorf("token revoke %s: %w", args[0], err)
	}
	if err := s.RevokeAPIToken(ctx, u.ID, args[1]); err != nil {
		return fmt.Errorf("token revoke %s %s: %w", args[0], args[1], err)
	}
	fmt.Fprintf(m.Stdout, "revoked API token %s of %s; it no longer works\n", args[1], u.Handle)
	return nil
}

// validateBaseURL is --base-url's check, the service's own.
func validateBaseURL(s string) error {
	if err := httpapi.ValidateBaseURL(s); err != nil {
		return fmt.Errorf("--base-url: %s", presence.ErrorMessage(err))
	}
	return nil
}

// accountOf is what user list says of an account: admin, disabled, or -.
func accountOf(u presence.User) string {
	var parts []string
	if u.Admin {
		parts = append(parts, "admin")
	}
	if u.Disabled {
		parts = append(parts, "disabled")
	}
	return dash(strings.Join(parts, ", "))
}

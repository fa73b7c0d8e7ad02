package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lastseen/lastseen/backend/presence"
)

// command is one verb of the command line.
type command struct {
	name    string // "serve", "user add", …
	args    string // positional arguments, for usage
	summary string
	minArgs int
	maxArgs int
	// flags adds the command's own flags (after the store's).
	flags func(m *Main, fs *flag.FlagSet)
	// check validates the parsed command line (a failure is a usage error).
	check func(m *Main, fs *flag.FlagSet, args []string) error
	// run executes an admin command against an open store.
	run func(ctx context.Context, m *Main, s presence.Store, args []string) error
	// noStore commands take no store flags (version).
	noStore bool
	// runFile executes a command on the database file itself, with no
	// store open (backup, restore).
	runFile func(ctx context.Context, m *Main, args []string) error
}

func (c command) argsText() string {
	if c.maxArgs == 0 {
		return "no arguments"
	}
	return c.args
}

// adminInput holds the values of the admin commands' own flags.
type adminInput struct {
	name   string
	tz     string
	public bool
	// makeAdmin is user invite's --admin.
	makeAdmin bool
	given     map[string]bool // which of them were given (flag or env)
}

var commands = map[string]command{
	"healthcheck": healthcheckCommand,
	"serve": {
		name: "serve", summary: "Run the presence service.",
	},
	"version": {
		name: "version", summary: "Print the version.", noStore: true,
	},
	"help": {
		name: "help", summary: "Show help for a command.",
	},
	"user add": {
		name: "user add", args: "HANDLE", minArgs: 1, maxArgs: 1,
		summary: "Add a user. Prints the user's token, alone on the last line; it is shown only this once.",
		flags: func(m *Main, fs *flag.FlagSet) {
			fs.StringVar(&m.admin.name, "name", "", "the user's display `name`")
		},
		check: checkHandle,
		run:   runUserAdd,
	},
	"user list": {
		name: "user list", summary: "List the users with their status.",
		run: runUserList,
	},
	"user set": {
		name: "user set", args: "HANDLE", minArgs: 1, maxArgs: 1,
		summary: "Change a user's display name, time zone or public status.",
		flags: func(m *Main, fs *flag.FlagSet) {
			fs.StringVar(&m.admin.name, "name", "", "the user's display `name`")
			fs.StringVar(&m.admin.tz, "tz", "", "IANA time `zone` for daily totals, e.g. Europe/Paris")
			fs.BoolVar(&m.admin.public, "public", false, "publish the status at /api/v1/public/HANDLE and the badge")
		},
		check: func(m *Main, fs *flag.FlagSet, args []string) error {
			if err := checkHandle(m, fs, args); err != nil {
				return err
			}
			if len(m.admin.given) == 0 {
				return errors.New("user set needs at least one of --name, --tz, --public")
			}
			if m.admin.given["tz"] {
				return messageOf(presence.ValidateTZ(m.admin.tz))
			}
			return nil
		},
		run: runUserSet,
	},
	"device add": {
		name: "device add", args: "HANDLE DEVICE-NAME", minArgs: 2, maxArgs: 2,
		summary: "Add a device to a user. Prints the device's token, alone on the last line; it is shown only this once.",
		check: func(m *Main, fs *flag.FlagSet, args []string) error {
			if err := checkHandle(m, fs, args); err != nil {
				return err
			}
			_, err := presence.NormalizeDeviceName(args[1])
			return messageOf(err)
		},
		run: runDeviceAdd,
	},
	"device list": {
		name: "device list", args: "HANDLE", minArgs: 1, maxArgs: 1,
		summary: "List a user's devices with their status.",
		check:   checkHandle,
		run:     runDeviceList,
	},
	"device revoke": {
		name: "device revoke", args: "HANDLE DEVICE-ID", minArgs: 2, maxArgs: 2,
		summary: "Revoke a device and its token.",
		check: func(m *Main, fs *flag.FlagSet, args []string) error {
			if err := checkHandle(m, fs, args); err != nil {
				return err
			}
			if id, err := strconv.ParseInt(args[1], 10, 64); err != nil || id <= 0 {
				return fmt.Errorf("DEVICE-ID must be a positive number (see device list), got %q", args[1])
			}
			return nil
		},
		run: runDeviceRevoke,
	},
	"backup": {
		name: "backup", args: "FILE", minArgs: 1, maxArgs: 1,
		summary: "Write a consistent copy of the SQLite database to FILE (owner-only), while serve runs. " +
			"For PostgreSQL use pg_dump.",
		runFile: runBackup,
	},
	"restore": {
		name: "restore", args: "FILE", minArgs: 1, maxArgs: 1,
		summary: "Replace the SQLite database with the backup FILE. Stop serve first: restore refuses while " +
			"anything has the database open. For PostgreSQL use pg_restore.",
		runFile: runRestore,
	},
}

// findCommand splits the command name off args.
func findCommand(args []string) (command, []string, error) {
	if len(args) == 0 {
		return command{}, nil, errors.New("no command given")
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return commands["help"], args[1:], nil
	case "-version", "--version":
		return commands["version"], args[1:], nil
	case "user", "device", "token":
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			return command{}, nil, fmt.Errorf("%s needs a subcommand (%s)", args[0], subcommands(args[0]))
		}
		c, ok := commands[args[0]+" "+args[1]]
		if !ok {
			return command{}, nil, fmt.Errorf("unknown command %q (want %s)", args[0]+" "+args[1], subcommands(args[0]))
		}
		return c, args[2:], nil
	}
	c, ok := commands[args[0]]
	if !ok {
		return command{}, nil, fmt.Errorf("unknown command %q", args[0])
	}
	return c, args[1:], nil
}

func subcommands(group string) string {
	switch group {
	case "user":
		return "add, list, set, invite, reset-password, disable, enable"
	case "token":
		return "list, add, revoke"
	}
	return "add, list, revoke"
}

// flagSet builds the flags of cmd onto m.Config and m.admin.
func (m *Main) flagSet(cmd command) *flag.FlagSet {
	fs := flag.NewFlagSet("lastseend "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported once, by Main, with the usage text
	switch {
	case cmd.name == "serve":
		m.Config.serveFlags(fs)
	case !cmd.noStore:
		m.Config.storeFlags(fs)
	}
	if cmd.flags != nil {
		cmd.flags(m, fs)
	}
	return fs
}

// recordGiven notes which admin flags were given, by flag or environment.
func (m *Main) recordGiven(fs *flag.FlagSet) {
	m.admin.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name", "tz", "public":
			m.admin.given[f.Name] = true
		}
	})
}

func checkHandle(m *Main, fs *flag.FlagSet, args []string) error {
	return messageOf(presence.ValidateHandle(args[0]))
}

// messageOf turns a domain error into its plain message for the usage line.
func messageOf(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(presence.ErrorMessage(err))
}

const topUsage = `lastseend is the Lastseen presence service.

Usage:
  lastseend serve [--addr 127.0.0.1:8080] [--db lastseen.db | --db postgres://…]
                  [--tls-cert FILE --tls-key FILE] [--interval 30s --grace 30s]
                  [--log-level info]
  lastseend user add HANDLE [--name NAME]           prints the user's token
  lastseend user list
  lastseend user set HANDLE [--public=true|false] [--tz Europe/Paris] [--name NAME]
  lastseend user invite HANDLE [--name NAME] [--admin] [--base-url URL]
                                                     prints a one-time sign-up link
  lastseend user reset-password HANDLE [--base-url URL]
                                                     prints a one-time password reset link
  lastseend user disable HANDLE / user enable HANDLE
  lastseend token list HANDLE
  lastseend token add HANDLE NAME                    prints a named API token
  lastseend token revoke HANDLE ID
  lastseend device add HANDLE DEVICE-NAME            prints the device's token
  lastseend device list HANDLE
  lastseend device revoke HANDLE DEVICE-ID
  lastseend backup FILE                               a consistent copy, while serve runs
  lastseend restore FILE                              with serve stopped
  lastseend healthcheck [--url URL]                   exit 0 when serve answers /healthz
  lastseend version
  lastseend help [COMMAND]

The user and device commands take --db too, and work while serve runs on the
same SQLite file. Every flag --some-flag has an environment twin
LASTSEEN_SOME_FLAG; a flag on the command line wins over its twin.
`

// commandUsage is the help text of one command, with its flags.
func (m *Main) commandUsage(cmd command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: lastseend %s", cmd.name)
	if cmd.maxArgs > 0 {
		fmt.Fprintf(&b, " %s", cmd.args)
	}
	fmt.Fprintf(&b, " [flags]\n\n%s\n", cmd.summary)
	// A fresh Main so the defaults shown are the defaults, not what this
	// command line already set.
	fs := NewMain().flagSet(cmd)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nFlags (each also read from LASTSEEN_<NAME>, e.g. --tls-cert from LASTSEEN_TLS_CERT):\n")
		fs.SetOutput(&b)
		fs.PrintDefaults()
	}
	return b.String()
}

// ---- admin commands ----

func runUserAdd(ctx context.Context, m *Main, s presence.Store, args []string) error {
	u, token, err := s.CreateUser(ctx, args[0], m.admin.name)
	if err != nil {
		return fmt.Errorf("user add %s: %w", args[0], err)
	}
	fmt.Fprintf(m.Stdout, "added user %s (id %d); the user token below is shown only this once:\n%s\n", u.Handle, u.ID, token)
	return nil
}

func runUserList(ctx context.Context, m *Main, s presence.Store, _ []string) error {
	users, err := s.Users(ctx)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	pres, err := s.Presence(ctx)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	byID := make(map[int64]presence.UserPresence, len(pres))
	for _, p := range pres {
		byID[p.User.ID] = p
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "HANDLE\tNAME\tTZ\tPUBLIC\tSTATUS\tDEVICES\tLAST SEEN\tACCOUNT")
	for _, u := range users {
		p, ok := byID[u.ID]
		status := presence.Offline
		if ok {
			status = p.Status
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", u.Handle, dash(u.Name), dash(u.TZ),
			yesNo(u.Public), status, len(p.Devices), timeOrDash(p.LastSeen), accountOf(u))
	}
	return w.Flush()
}

func runUserSet(ctx context.Context, m *Main, s presence.Store, args []string) error {
	u, err := s.UserByHandle(ctx, args[0])
	if err != nil {
		return fmt.Errorf("user set %s: %w", args[0], err)
	}
	var upd presence.UserUpdate
	if m.admin.given["name"] {
		upd.Name = &m.admin.name
	}
	if m.admin.given["tz"] {
		upd.TZ = &m.admin.tz
	}
	if m.admin.given["public"] {
		upd.Public = &m.admin.public
	}
	u, err = s.UpdateUser(ctx, u.ID, upd)
	if err != nil {
		return fmt.Errorf("user set %s: %w", args[0], err)
	}
	fmt.Fprintf(m.Stdout, "%s: name %s, time zone %s, public %s\n", u.Handle, dash(u.Name), dash(u.TZ), yesNo(u.Public))
	return nil
}

func runDeviceAdd(ctx context.Context, m *Main, s presence.Store, args []string) error {
	u, err := s.UserByHandle(ctx, args[0])
	if err != nil {
		return fmt.Errorf("device add %s: %w", args[0], err)
	}
	d, token, err := s.CreateDevice(ctx, u.ID, args[1])
	if err != nil {
		return fmt.Errorf("device add %s: %w", args[0], err)
	}
	fmt.Fprintf(m.Stdout, "added device %d %q to %s; the device token below is shown only this once:\n%s\n", d.ID, d.Name, u.Handle, token)
	return nil
}

func runDeviceList(ctx context.Context, m *Main, s presence.Store, args []string) error {
	u, err := s.UserByHandle(ctx, args[0])
	if err != nil {
		return fmt.Errorf("device list %s: %w", args[0], err)
	}
	devs, err := s.Devices(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("device list %s: %w", args[0], err)
	}
	w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tOS\tSTATUS\tLAST SEEN\tLAST SEQ")
	for _, d := range devs {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\n", d.ID, d.Name, dash(d.OS), d.Status, timeOrDash(d.LastSeen()), d.Presence.LastSeq)
	}
	return w.Flush()
}

func runDeviceRevoke(ctx context.Context, m *Main, s presence.Store, args []string) error {
	id, _ := strconv.ParseInt(args[1], 10, 64) // checked by the command's check
	u, err := s.UserByHandle(ctx, args[0])
	if err != nil {
		return fmt.Errorf("device revoke %s: %w", args[0], err)
	}
	if err := s.RevokeDevice(ctx, u.ID, id); err != nil {
		return fmt.Errorf("device revoke %s %d: %w", args[0], id, err)
	}
	fmt.Fprintf(m.Stdout, "revoked device %d of %s; its token no longer works\n", id, u.Handle)
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func timeOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

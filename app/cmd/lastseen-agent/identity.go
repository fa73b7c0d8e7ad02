package main

import (
	"os/user"
	"strings"
)

// localHandle derives the local user's handle from the OS account name:
// lowercase letters, digits, '-' and '_', at most 39, "me" when nothing is left.
func localHandle() string {
	name := "me"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if i := strings.LastIndexAny(name, `\/`); i >= 0 { // DOMAIN\user on Windows
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == '.' || r == ' ':
			b.WriteRune('-')
		}
	}
	h := strings.TrimLeft(b.String(), "-_")
	if len(h) > 35 {
		h = h[:35]
	}
	if h == "" {
		return "me"
	}
	return h
}

// displayName is the account's full name when the OS has one.
func displayName() string {
	if u, err := user.Current(); err == nil {
		if n := strings.TrimSpace(strings.Split(u.Name, ",")[0]); n != "" {
			return n
		}
		return u.Username
	}
	return ""
}

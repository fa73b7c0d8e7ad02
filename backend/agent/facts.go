package agent

import (
	"strings"
	"unicode/utf8"

	"github.com/lastseen/lastseen/backend/presence"
)

// MaxFactBytes is the most bytes the service stores of one machine fact
// (hostname, OS, platform, the agent's version). Facts come from the OS and may be anything: a
// hostname set by a DHCP server, a platform string a vendor made up.
const MaxFactBytes = 128

// fitFacts returns the facts as the service takes them: each valid UTF-8
// (a byte that is not becomes U+FFFD) and at most MaxFactBytes, cut at a
// rune boundary. A service that refused a batch for its facts (as services
// before the per-fact check did) would otherwise refuse every batch that
// carries them. Nil when nothing is left.
func fitFacts(f *presence.Facts) *presence.Facts {
	if f == nil {
		return nil
	}
	out := presence.Facts{Hostname: fitFact(f.Hostname), OS: fitFact(f.OS), Platform: fitFact(f.Platform), Version: fitFact(f.Version)}
	if out == (presence.Facts{}) {
		return nil
	}
	return &out
}

func fitFact(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxFactBytes {
		return s
	}
	i := MaxFactBytes
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

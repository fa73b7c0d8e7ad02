// Package password hashes and checks people's passwords with argon2id
// (RFC 9106), at the OWASP parameters: 19 MiB of memory, two passes, one
// lane. Hashes are PHC strings ("$argon2id$v=19$m=19456,t=2,p=1$salt$key"),
// so a later change of parameters still reads the old hashes.
//
// Each hash takes 19 MiB for tens of milliseconds, so at most MaxConcurrent
// run at once in the process; the others wait their turn (or until their
// context ends). A flood of sign-ins then costs time, never all the memory.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters of new hashes (OWASP Password Storage Cheat Sheet, argon2id).
const (
	MemoryKiB   = 19 * 1024
	Iterations  = 2
	Parallelism = 1
	saltLen     = 16
	keyLen      = 32
)

// MaxConcurrent is how many hashes run at once in the process.
const MaxConcurrent = 2

// Bounds on the parameters of a stored hash: a hash is ours, but a damaged
// or hostile row must not make one check take gigabytes.
const (
	maxMemoryKiB   = 256 * 1024
	maxIterations  = 16
	maxParallelism = 16
	minSaltLen     = 8
	maxSaltLen     = 64
	minKeyLen      = 16
	maxKeyLen      = 64
)

// slots bounds concurrent hashing.
var slots = make(chan struct{}, MaxConcurrent)

// ErrMalformed is a stored hash this package cannot read.
var ErrMalformed = errors.New("password: malformed hash")

// Hash returns the PHC string of a fresh argon2id hash of pw, with a random
// salt. It waits for a free slot, or until ctx ends.
func Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	p := params{memory: MemoryKiB, time: Iterations, threads: Parallelism, salt: salt, keyLen: keyLen}
	key, err := p.derive(ctx, pw)
	if err != nil {
		return "", err
	}
	return p.encode(key), nil
}

// Verify reports whether pw matches the stored hash encoded, comparing in
// constant time. An empty encoded (an unknown handle, a user without a
// password) is checked against a dummy hash of the same cost and is never a
// match: the answer takes as long as for a real account, so its timing
// tells nobody whether the account exists. It waits for a free slot, or
// until ctx ends.
func Verify(ctx context.Context, encoded, pw string) (bool, error) {
	known := encoded != ""
	if !known {
		encoded = dummy
	}
	p, want, err := decode(encoded)
	if err != nil {
		// Check the dummy anyway, so a damaged row answers in the usual time.
		if p, want, err = decode(dummy); err != nil {
			panic("password: the dummy hash does not decode") // a constant; tested
		}
		_, _ = p.deriveCompare(ctx, pw, want)
		return false, ErrMalformed
	}
	ok, err := p.deriveCompare(ctx, pw, want)
	return ok && known, err
}

// NeedsRehash reports whether a stored hash was made with other parameters
// than new hashes are (rehash it at the next successful sign-in).
func NeedsRehash(encoded string) bool {
	p, key, err := decode(encoded)
	return err != nil || p.memory != MemoryKiB || p.time != Iterations || p.threads != Parallelism || len(key) != keyLen
}

// dummy is an argon2id hash, at the parameters of new hashes, of a random
// password nobody knows (it was thrown away).
const dummy = "$argon2id$v=19$m=19456,t=2,p=1$Ltc5AY0brsdievRRVyGUuA$DxxBcDrC436N4xyaptJCoi3mVupP1Gh/RQi5QcjXC5E"

type params struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	keyLen  uint32
}

func (p params) derive(ctx context.Context, pw string) ([]byte, error) {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("password: waiting to hash: %w", ctx.Err())
	}
	defer func() { <-slots }()
	return argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, p.keyLen), nil
}

func (p params) deriveCompare(ctx context.Context, pw string, want []byte) (bool, error) {
	got, err := p.derive(ctx, pw)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

var b64 = base64.RawStdEncoding

func (p params) encode(key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, b64.EncodeToString(p.salt), b64.EncodeToString(key))
}

// decode reads a PHC argon2id string within the bounds above.
func decode(s string) (params, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return params{}, nil, ErrMalformed
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return params{}, nil, ErrMalformed
	}
	var p params
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &threads); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", p.memory, p.time, threads) != parts[3] {
		return params{}, nil, ErrMalformed
	}
	if p.time < 1 || p.time > maxIterations || threads < 1 || threads > maxParallelism ||
		p.memory < 8*threads || p.memory > maxMemoryKiB {
		return params{}, nil, ErrMalformed
	}
	p.threads = uint8(threads)
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return params{}, nil, ErrMalformed
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return params{}, nil, ErrMalformed
	}
	p.salt, p.keyLen = salt, uint32(len(key))
	return p, key, nil
}

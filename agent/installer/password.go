package installer

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// hashScheme names the only password hash this build accepts. It is part of
// the stored string so that a stronger scheme can be added later without
// guessing what an old config holds.
const hashScheme = "pbkdf2-sha256"

// DefaultIterations is the PBKDF2 cost HashPassword uses when asked for 0:
// about a quarter of a second on a Cortex-A7, once per password try, which
// the lock-out limits anyway; it is there to slow an offline search of a
// config file that leaked.
const DefaultIterations = 100_000

// MinPasswordLen is the fewest digits an installer password may have. Four,
// as a payment PIN: with MaxTries wrong tries per Lockout (3 per 15 min by
// default) guessing 10 000 passwords at the keypad takes weeks, and the
// lock-out survives restarts. More digits would not protect a config that
// leaked (its PBKDF2 hash falls to an offline search of 10^6 as of 10^4;
// the hash must stay secret either way), while one to three digits fall
// at the keypad within hours. So 1-3 are refused, when hashing and at the
// keypad, and the demo's 2468 stays valid.
const MinPasswordLen = 4

// ErrPasswordHash is wrapped by every error about the configured hash: a
// configuration problem, not a wrong password.
var ErrPasswordHash = errors.New("installer: bad installer password hash")

// HashPassword returns the string to put in the config for password:
// "pbkdf2-sha256$ITERATIONS$SALT$HASH" with salt and hash in unpadded
// base64. A nil salt gets 16 random bytes; iterations 0 means
// DefaultIterations. The password must be MinPasswordLen to
// DefaultMaxPasswordLen digits, as the keypad types them (the password
// field takes no more).
func HashPassword(password string, salt []byte, iterations int) (string, error) {
	if password == "" || strings.Trim(password, "0123456789") != "" {
		return "", errors.New("installer: the installer password must be digits")
	}
	if len(password) < MinPasswordLen {
		return "", fmt.Errorf("installer: the installer password must have at least %d digits", MinPasswordLen)
	}
	if len(password) > DefaultMaxPasswordLen {
		return "", fmt.Errorf("installer: the installer password must have at most %d digits (what the keypad's field takes)", DefaultMaxPasswordLen)
	}
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	if salt == nil {
		salt = make([]byte, 16)
		if _, err := rand.Read(salt); err != nil {
			return "", fmt.Errorf("installer: salt: %w", err)
		}
	}
	sum, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("installer: hash: %w", err)
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("%s$%d$%s$%s", hashScheme, iterations, b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

// ValidatePasswordHash checks that s is a HashPassword string, for config
// validation; the error wraps ErrPasswordHash and never quotes s.
func ValidatePasswordHash(s string) error {
	_, err := parsePasswordHash(s)
	return err
}

// passwordHash is a parsed HashPassword string.
type passwordHash struct {
	iterations int
	salt, sum  []byte
}

// parsePasswordHash checks s and says which part is wrong without echoing
// it: the hash is a secret too.
func parsePasswordHash(s string) (passwordHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 4 || parts[0] != hashScheme {
		return passwordHash{}, fmt.Errorf("%w: want %s$ITERATIONS$SALT$HASH", ErrPasswordHash, hashScheme)
	}
	var h passwordHash
	var err error
	if h.iterations, err = strconv.Atoi(parts[1]); err != nil || h.iterations < 1 || h.iterations > 10_000_000 {
		return passwordHash{}, fmt.Errorf("%w: iterations", ErrPasswordHash)
	}
	b64 := base64.RawStdEncoding
	if h.salt, err = b64.DecodeString(parts[2]); err != nil || len(h.salt) < 8 {
		return passwordHash{}, fmt.Errorf("%w: salt (base64, at least 8 bytes)", ErrPasswordHash)
	}
	if h.sum, err = b64.DecodeString(parts[3]); err != nil || len(h.sum) != sha256.Size {
		return passwordHash{}, fmt.Errorf("%w: hash (base64, 32 bytes)", ErrPasswordHash)
	}
	return h, nil
}

// matches derives the key of typed and compares it with the stored one in
// constant time, so the time a try takes says nothing about how close it was.
func (h passwordHash) matches(typed string) bool {
	sum, err := pbkdf2.Key(sha256.New, typed, h.salt, h.iterations, sha256.Size)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(sum, h.sum) == 1
}

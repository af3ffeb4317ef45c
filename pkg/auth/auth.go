// Package auth authenticates applications by API key. Keys carry a prefix
// naming their main scope (eye_w_ write, eye_r_ read, eye_a_ admin), are
// stored only as SHA-256 hashes, and are cached by the services that check
// them so the hot path needs no database round trip.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Scope is a right granted to a key.
type Scope string

// Scopes.
const (
	ScopeWrite Scope = "write" // ingest events and register sessions
	ScopeRead  Scope = "read"  // query the application's own data
	ScopeAdmin Scope = "admin" // change events, see every application
)

// Valid reports whether s is one of the known scopes.
func (s Scope) Valid() bool { return s == ScopeWrite || s == ScopeRead || s == ScopeAdmin }

// PrimaryScope is the scope a key's prefix names: the most powerful of
// scopes (admin, then read, then write), or "" when none is known.
func PrimaryScope(scopes []Scope) Scope {
	for _, s := range []Scope{ScopeAdmin, ScopeRead, ScopeWrite} {
		if slices.Contains(scopes, s) {
			return s
		}
	}
	return ""
}

// Principal is who a key authenticates: the key, its scopes, and the
// application it belongs to with that application's settings.
type Principal struct {
	AppID    uuid.UUID
	KeyID    uuid.UUID
	Scopes   []Scope
	Settings AppSettings
	// ExpiresAt is when the key stops working (set when it was rotated);
	// zero means never.
	ExpiresAt time.Time
}

// AppSettings are an application's ingestion settings.
type AppSettings struct {
	// AllowedOrigins are the browser origins (e.g. "https://shop.example")
	// allowed to send events with this application's write keys; "*" allows
	// any. Empty: no browser origin is allowed.
	AllowedOrigins []string
	// RateLimit is the sustained events per second one key may ingest, and
	// RateBurst the bucket size; 0 means the gateway's default.
	RateLimit float64
	RateBurst int
	// StrictSessions makes events of never-registered sessions errors
	// (unknown_session) instead of creating the session.
	StrictSessions bool
	// StrictTypes makes events of a type (category, name) that has no JSON
	// Schema errors (unknown_event_type) instead of accepting them
	// unchecked.
	StrictTypes bool
}

// Has reports whether p holds scope s.
func (p Principal) Has(s Scope) bool { return slices.Contains(p.Scopes, s) }

// Errors returned by Authenticate.
var (
	ErrNoKey      = errors.New("missing API key")
	ErrUnknownKey = errors.New("unknown, revoked or expired API key")
)

// KeyPrefixLen is how many leading characters of a key are stored and shown
// to identify it: "eye_", the scope letter, "_" and 4 random characters.
const KeyPrefixLen = 10

// KeyPrefix returns the displayable start of key; it reveals too little of
// the random part to help guess the rest.
func KeyPrefix(key string) string {
	if len(key) <= KeyPrefixLen {
		return key
	}
	return key[:KeyPrefixLen]
}

// Hash is the stored form of a key.
type Hash [sha256.Size]byte

// HashKey hashes a key for storage and lookup.
func HashKey(key string) Hash { return sha256.Sum256([]byte(key)) }

// KeyStore finds the principal for a key hash, or returns ErrUnknownKey.
type KeyStore interface {
	LookupKey(ctx context.Context, h Hash) (Principal, error)
}

// NewKey generates a random key with the prefix for scope.
func NewKey(s Scope) (string, error) {
	if !s.Valid() {
		return "", fmt.Errorf("new key: unknown scope %q", s)
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("new key: %w", err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return "eye_" + string(s[0]) + "_" + string(b), nil
}

// Authenticator checks keys against a KeyStore through a short-lived cache:
// a revoked key stops working within TTL, an expiring key exactly at its
// expiry (an answer is never cached past it).
type Authenticator struct {
	store KeyStore
	ttl   time.Duration
	now   func() time.Time

	mu    sync.Mutex
	cache map[Hash]cached
}

// lookupTimeout bounds one key lookup. The lookup runs apart from the
// caller, because a driver may not honour cancellation when the database
// stops answering (lib/pq only asks the server to cancel): a frozen
// Postgres must give a quick 503, not a hung request.
const lookupTimeout = 2 * time.Second

func (a *Authenticator) lookup(ctx context.Context, h Hash) (Principal, error) {
	type result struct {
		p   Principal
		err error
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	done := make(chan result, 1) // buffered: an abandoned lookup still finishes
	go func() {
		p, err := a.store.LookupKey(ctx, h)
		done <- result{p, err}
	}()
	select {
	case r := <-done:
		return r.p, r.err
	case <-ctx.Done():
		return Principal{}, fmt.Errorf("look up key: %w", ctx.Err())
	}
}

type cached struct {
	p       Principal
	err     error
	expires time.Time
}

// NewAuthenticator returns an Authenticator caching answers for ttl.
func NewAuthenticator(store KeyStore, ttl time.Duration) (*Authenticator, error) {
	if store == nil {
		return nil, errors.New("auth: nil key store")
	}
	return &Authenticator{store: store, ttl: ttl, now: time.Now, cache: make(map[Hash]cached)}, nil
}

// Authenticate returns the principal for key. Unknown keys are cached too,
// so a flood of bad keys does not reach the database.
func (a *Authenticator) Authenticate(ctx context.Context, key string) (Principal, error) {
	if key == "" {
		return Principal{}, ErrNoKey
	}
	h := HashKey(key)
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[h]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.p, c.err
	}
	p, err := a.lookup(ctx, h)
	if err != nil && !errors.Is(err, ErrUnknownKey) {
		// The store is unavailable: nothing is cached, and a key that was
		// valid at its last check keeps working (unless it has expired) so
		// ingestion does not depend on Postgres being up.
		if ok && c.err == nil && (c.p.ExpiresAt.IsZero() || now.Before(c.p.ExpiresAt)) {
			return c.p, nil
		}
		return Principal{}, err
	}
	a.mu.Lock()
	if len(a.cache) > 100_000 { // bound memory under a key-guessing flood
		clear(a.cache)
	}
	expires := now.Add(a.ttl)
	if err == nil && !p.ExpiresAt.IsZero() && p.ExpiresAt.Before(expires) {
		expires = p.ExpiresAt
	}
	a.cache[h] = cached{p: p, err: err, expires: expires}
	a.mu.Unlock()
	return p, err
}
